"""The VLA policy node alone (the robot side runs elsewhere), parameters from
config/policy.yaml with the given overrides; namespace and remaps as for every node.

    ros2 launch so100_vla policy.launch.py policy_path:=/path/to/ckpt cameras:=front=/cam/image_raw

bringup.launch.py's plan with robot:=false policy:=true; takes only the arguments it declares (--show-args).
See docs/launch.md and so100_bringup/launch_plan.py.
"""
from __future__ import annotations

from so100_bringup.launch_support import launch_description

NAME = "policy.launch.py"


def generate_launch_description():
    return launch_description(NAME)
