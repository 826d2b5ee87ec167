"""The launch files' shared code: declare a launch file's arguments and, at launch time, turn the
plan of so100_bringup/launch_plan.py for their values into launch_ros actions. Every launch file
is the same two steps; the wrappers (real.launch.py, ...) differ from bringup.launch.py only in
the arguments they accept and fix (launch_plan.LAUNCH_FILES / LAUNCH_FILE_FIXED). They do not
include bringup.launch.py: an include would list bringup's arguments in `--show-args` and let
any of them through from the command line.

ROS 2 `launch` / `launch_ros` are apt packages: they are imported inside the functions, so this
module imports (and its decisions stay in launch_plan.py) on machines without them.
"""
from __future__ import annotations

import os
from typing import Any

from so100_bringup.launch_plan import Plan, launch_file_arguments, plan_at_launch_time


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


def _plan_actions(context, launch_file: str) -> list[Any]:
    # Runs at launch time: the argument values are only known then. A refused argument raises
    # here, which stops `ros2 launch` with the message before anything starts.
    return plan_to_actions(plan_at_launch_time(launch_file, context.launch_configurations))


def launch_description(launch_file: str) -> Any:
    """The LaunchDescription of `launch_file`: its arguments, then the plan for their values."""
    from launch import LaunchDescription
    from launch.actions import OpaqueFunction

    return LaunchDescription([*declared_arguments(launch_file),
                              OpaqueFunction(function=_plan_actions, args=[launch_file])])
