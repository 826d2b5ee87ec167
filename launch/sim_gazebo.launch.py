"""Gazebo (gz Harmonic on Jazzy): the table world with a cube and cameras, the arm spawned
with gz_ros2_control, controllers spawned, ros_gz_bridge for camera images, camera_info and
/clock (use_sim_time defaults to true).

    ros2 launch so100_vla sim_gazebo.launch.py gz_gui:=false policy:=true policy_path:=...

Includes bringup.launch.py with hardware:=gazebo; see docs/launch.md and so100_bringup/launch_plan.py.
"""
from __future__ import annotations

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

from so100_bringup.launch_plan import LAUNCH_FILE_FIXED, launch_file_arguments

NAME = "sim_gazebo.launch.py"


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
