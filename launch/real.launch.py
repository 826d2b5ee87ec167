"""The real SO-100 / SO-101 arm: robot_state_publisher, controller_manager with the
topic_based_ros2_control hardware, the controllers, and so100_driver in hardware mode
(control:=standalone: the driver follows the trajectories itself, no ros2_control).

    ros2 launch so100_vla real.launch.py port:=/dev/ttyACM0 calibration_file:=~/my_arm.json

Includes bringup.launch.py with hardware:=real; see docs/launch.md and so100_bringup/launch_plan.py.
"""
from __future__ import annotations

from so100_bringup.launch_support import including_bringup_launch_description

NAME = "real.launch.py"


def generate_launch_description():
    return including_bringup_launch_description(NAME, __file__)
