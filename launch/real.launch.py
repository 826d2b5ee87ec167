"""The real SO-100 / SO-101 arm: robot_state_publisher, controller_manager with the
joint_state_topic_hardware_interface hardware, the controllers, and so100_driver in hardware mode
(control:=standalone: the driver follows the trajectories itself, no ros2_control).

    ros2 launch so100_vla real.launch.py port:=/dev/ttyACM0 calibration_file:=~/my_arm.json

bringup.launch.py's plan with hardware:=real; takes only the arguments it declares (--show-args).
See docs/launch.md and so100_bringup/launch_plan.py.
"""
from __future__ import annotations

from so100_bringup.launch_support import launch_description

NAME = "real.launch.py"


def generate_launch_description():
    return launch_description(NAME)
