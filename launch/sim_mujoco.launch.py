"""The MuJoCo table scene (so100_mujoco_sim) as the arm: controller_manager over the
topic interface, controllers, cameras, /clock (use_sim_time defaults to true); optionally the
policy node (the README demo's graph on a full ROS machine).

    ros2 launch so100_vla sim_mujoco.launch.py policy:=true policy_path:=/path/to/ckpt

bringup.launch.py's plan with hardware:=mujoco; takes only the arguments it declares (--show-args).
See docs/launch.md and so100_bringup/launch_plan.py.
"""
from __future__ import annotations

from so100_bringup.launch_support import launch_description

NAME = "sim_mujoco.launch.py"


def generate_launch_description():
    return launch_description(NAME)
