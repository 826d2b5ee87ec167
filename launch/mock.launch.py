"""The arm with ros2_control's mock_components (states mirror commands): controllers,
MoveIt and the policy node without hardware.

    ros2 launch so100_vla mock.launch.py rviz:=true moveit:=true

bringup.launch.py's plan with hardware:=mock; takes only the arguments it declares (--show-args).
See docs/launch.md and so100_bringup/launch_plan.py.
"""
from __future__ import annotations

from so100_bringup.launch_support import launch_description

NAME = "mock.launch.py"


def generate_launch_description():
    return launch_description(NAME)
