"""The real SO-100 / SO-101 arm: robot_state_publisher, controller_manager with the
topic_based_ros2_control hardware, the controllers, and so100_driver in hardware mode
(control:=standalone: the driver follows the trajectories itself, no ros2_control).

    ros2 launch so100_vla real.launch.py port:=/dev/ttyACM0 calibration_file:=~/my_arm.json

Includes bringup.launch.py with hardware:=real; see docs/launch.md and so100_bringup/launch_plan.py.
"""
from __future__ import annotations

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

from so100_bringup.launch_plan import LAUNCH_FILE_FIXED, launch_file_arguments

NAME = "real.launch.py"


def generate_launch_description() -> LaunchDescription:
    arguments = launch_file_arguments(NAME)
    declared = [DeclareLaunchArgument(name, default_value=default, description=description,
                                      **({"choices": list(choices)} if choices else {}))
                for name, default, description, choices in arguments]
    forwarded = {name: LaunchConfiguration(name) for name, *_ in arguments}
    forwarded.update(LAUNCH_FILE_FIXED[NAME])
    bringup = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bringup.launch.py")
    return LaunchDescription([*declared, IncludeLaunchDescription(
        PythonLaunchDescriptionSource(bringup), launch_arguments=list(forwarded.items()))])
