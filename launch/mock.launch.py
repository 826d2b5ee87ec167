"""The arm with ros2_control's mock_components (states mirror commands): controllers,
MoveIt and the policy node without hardware.

    ros2 launch so100_vla mock.launch.py rviz:=true moveit:=true

Includes bringup.launch.py with hardware:=mock; see docs/launch.md and so100_bringup/launch_plan.py.
"""
from __future__ import annotations

from so100_bringup.launch_support import including_bringup_launch_description

NAME = "mock.launch.py"


def generate_launch_description():
    return including_bringup_launch_description(NAME, __file__)
