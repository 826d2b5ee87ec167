"""The launch files' shared code: declare a launch file's arguments and either turn the plan of
so100_bringup/launch_plan.py into launch_ros actions (bringup.launch.py) or include
bringup.launch.py with the file's fixed arguments (every other launch file).

ROS 2 `launch` / `launch_ros` are apt packages: they are imported inside the functions, so this
module imports (and its decisions stay in launch_plan.py) on machines without them.
"""
from __future__ import annotations

import os
from typing import Any

from so100_bringup.launch_plan import (ALL_ARGS, LAUNCH_FILE_FIXED, Plan, bringup_plan, launch_file_arguments,
                                       parse_args)

BRINGUP = "bringup.launch.py"


def declared_arguments(launch_file: str) -> list[Any]:
    """DeclareLaunchArgument of every argument `launch_file` declares (launch_plan.LAUNCH_FILES)."""
    from launch.actions import DeclareLaunchArgument

    return [DeclareLaunchArgument(name, default_value=default, description=description,
                                  **({"choices": list(choices)} if choices else {}))
            for name, default, description, choices in launch_file_arguments(launch_file)]


def plan_to_actions(plan: Plan) -> list[Any]:
    """The plan's environment, includes and nodes as launch / launch_ros actions."""
    from ament_index_python.packages import get_package_share_directory
    from launch.actions import IncludeLaunchDescription, SetEnvironmentVariable
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch_ros.actions import Node

    actions: list[Any] = [SetEnvironmentVariable(k, v) for k, v in plan.environment.items()]
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


def _bringup_actions(context, *_args, **_kwargs) -> list[Any]:
    # Runs at launch time: the argument values are only known then.
    from launch.substitutions import LaunchConfiguration

    values = {name: LaunchConfiguration(name).perform(context) for name in ALL_ARGS}
    return plan_to_actions(bringup_plan(parse_args(values)))


def bringup_launch_description(launch_file: str = BRINGUP) -> Any:
    """bringup.launch.py: its arguments (all of them), then the plan for their values."""
    from launch import LaunchDescription
    from launch.actions import OpaqueFunction

    return LaunchDescription([*declared_arguments(launch_file), OpaqueFunction(function=_bringup_actions)])


def including_bringup_launch_description(launch_file: str, launch_file_path: str) -> Any:
    """A launch file that declares its arguments and includes bringup.launch.py (its sibling in
    the same folder) with them, plus the ones it fixes (launch_plan.LAUNCH_FILE_FIXED)."""
    from launch import LaunchDescription
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch.substitutions import LaunchConfiguration

    forwarded: dict[str, Any] = {name: LaunchConfiguration(name) for name, *_ in launch_file_arguments(launch_file)}
    forwarded.update(LAUNCH_FILE_FIXED[launch_file])
    bringup = os.path.join(os.path.dirname(os.path.abspath(launch_file_path)), BRINGUP)
    return LaunchDescription([*declared_arguments(launch_file), IncludeLaunchDescription(
        PythonLaunchDescriptionSource(bringup), launch_arguments=list(forwarded.items()))])
