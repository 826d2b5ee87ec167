"""Top-level bringup of the SO-100 / SO-101 stack: robot (mock | mujoco | gazebo | real),
optionally the VLA policy node, MoveIt's move_group and RViz.

    ros2 launch so100_vla bringup.launch.py hardware:=mujoco policy:=true policy_path:=/path/to/ckpt
    ros2 launch so100_vla bringup.launch.py --show-args

Which nodes start with which parameters is decided in so100_bringup/launch_plan.py (plain
Python, tested without ROS launch); this file only turns that plan into launch actions
(so100_bringup/launch_support.py, shared by every launch file). The other launch files run the
same plan with some arguments fixed and take only the arguments they declare (see docs/launch.md).
"""
from __future__ import annotations

from so100_bringup.launch_support import launch_description

NAME = "bringup.launch.py"


def generate_launch_description():
    return launch_description(NAME)
