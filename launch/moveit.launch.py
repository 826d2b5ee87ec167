"""MoveIt: move_group with the so100_description/moveit config (pick_ik, OMPL, the
joint_trajectory_controllers) and RViz with the MotionPlanning display, for any hardware;
robot:=false when the robot side already runs.

    ros2 launch so100_vla moveit.launch.py hardware:=mujoco

bringup.launch.py's plan with moveit:=true (rviz defaults to true); takes only the arguments it
declares (--show-args).
See docs/launch.md and so100_bringup/launch_plan.py.
"""
from __future__ import annotations

from so100_bringup.launch_support import launch_description

NAME = "moveit.launch.py"


def generate_launch_description():
    return launch_description(NAME)
