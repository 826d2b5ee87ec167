"""Gazebo (gz Harmonic on Jazzy): the table world with a cube and cameras, the arm spawned
with gz_ros2_control, controllers spawned, ros_gz_bridge for camera images, camera_info and
/clock (use_sim_time defaults to true).

    ros2 launch so100_vla sim_gazebo.launch.py gz_gui:=false policy:=true policy_path:=...

bringup.launch.py's plan with hardware:=gazebo; takes only the arguments it declares (--show-args).
See docs/launch.md and so100_bringup/launch_plan.py.
"""
from __future__ import annotations

from so100_bringup.launch_support import launch_description

NAME = "sim_gazebo.launch.py"


def generate_launch_description():
    return launch_description(NAME)
