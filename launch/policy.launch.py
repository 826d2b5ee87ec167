"""The VLA policy node alone (the robot side runs elsewhere), parameters from
config/policy.yaml with the given overrides; namespace and remaps as for every node.

    ros2 launch so100_vla policy.launch.py policy_path:=/path/to/ckpt cameras:=front=/cam/image_raw

Includes bringup.launch.py with robot:=false policy:=true; see docs/launch.md and so100_bringup/launch_plan.py.
"""
from __future__ import annotations

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

from so100_bringup.launch_plan import LAUNCH_FILE_FIXED, launch_file_arguments

NAME = "policy.launch.py"


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
