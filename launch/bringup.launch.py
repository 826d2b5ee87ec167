"""Top-level bringup of the SO-100 / SO-101 stack: robot (mock | mujoco | gazebo | real),
optionally the VLA policy node, MoveIt's move_group and RViz.

    ros2 launch so100_vla bringup.launch.py hardware:=mujoco policy:=true policy_path:=/path/to/ckpt
    ros2 launch so100_vla bringup.launch.py --show-args

Which nodes start with which parameters is decided in so100_bringup/launch_plan.py (plain
Python, tested without ROS launch); this file only turns that plan into launch actions. The
other launch files include this one with some arguments fixed (see docs/launch.md).
"""
from __future__ import annotations

import os

from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction,
                            SetEnvironmentVariable)
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from so100_bringup.launch_plan import ALL_ARGS, Plan, bringup_plan, launch_file_arguments, parse_args

NAME = "bringup.launch.py"


def plan_to_actions(plan: Plan) -> list:
    from ament_index_python.packages import get_package_share_directory

    actions: list = [SetEnvironmentVariable(k, v) for k, v in plan.environment.items()]
    for inc in plan.includes:
        path = os.path.join(get_package_share_directory(inc.package), "launch", inc.launch_file)
        actions.append(IncludeLaunchDescription(PythonLaunchDescriptionSource(path),
                                                launch_arguments=list(inc.arguments.items())))
    for spec in plan.nodes:
        actions.append(Node(package=spec.package, executable=spec.executable, name=spec.name,
                            namespace=spec.namespace, parameters=spec.parameters,
                            remappings=spec.remappings, arguments=spec.arguments,
                            respawn=spec.respawn, output="screen"))
    return actions


def _setup(context, *_args, **_kwargs) -> list:
    values = {name: LaunchConfiguration(name).perform(context) for name in ALL_ARGS}
    return plan_to_actions(bringup_plan(parse_args(values)))


def generate_launch_description() -> LaunchDescription:
    declared = [DeclareLaunchArgument(name, default_value=default, description=description,
                                      **({"choices": list(choices)} if choices else {}))
                for name, default, description, choices in launch_file_arguments(NAME)]
    return LaunchDescription([*declared, OpaqueFunction(function=_setup)])
