"""Policy actions -> joint radians (plain Python).

Joint space: LeRobot units (degrees or -100..100 for the arm, 0..100 gripper) -> radians through
the calibration module. End-effector space ("ee_absolute" / "ee_delta"): T x 7
(x, y, z, roll, pitch, yaw, gripper) handed to vla_policy_node.ee_actions (end-effector IK), imported
lazily so joint-space setups do not need pinocchio.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from so100_description.joints import JOINT_NAMES

ACTION_SPACES = ("joint", "ee_absolute", "ee_delta")
EE_ACTION_DIM = 7


class JointActionMapper:
    def __init__(self, converter, joints: Sequence[str] = JOINT_NAMES):
        self.converter = converter
        self.joints = list(joints)

    def __call__(self, chunk: np.ndarray, current: np.ndarray) -> np.ndarray:
        return np.array([[self.converter.lerobot_to_radians(j, float(v)) for j, v in zip(self.joints, row)]
                         for row in np.asarray(chunk, dtype=float)])


class EndEffectorActionMapper:
    def __init__(self, mode: str, variant: str = "so101", frame: str = "base_link", **options):
        try:
            from vla_policy_node.ee_actions import EndEffectorActionConverter
        except ImportError as exc:
            raise RuntimeError(f"action_space ee_{mode} needs vla_policy_node.ee_actions "
                               f"(end-effector IK) and its dependencies: {exc}") from None
        self.converter = EndEffectorActionConverter(variant=variant, mode=mode, frame=frame, **options)

    def __call__(self, chunk: np.ndarray, current: np.ndarray) -> np.ndarray:
        return np.asarray(self.converter.to_joint_chunk(np.asarray(chunk, dtype=float),
                                                        np.asarray(current, dtype=float)), dtype=float)


def make_action_mapper(action_space: str, converter, variant: str = "so101", frame: str = "base_link",
                       **ee_options):
    """(mapper, expected action dimension) for a node's `action_space` parameter; `ee_options`
    (fps, velocity_scale, gripper_unit, orientation) go to the end-effector converter."""
    if action_space == "joint":
        return JointActionMapper(converter), len(JOINT_NAMES)
    if action_space in ("ee_absolute", "ee_delta"):
        mode = "absolute" if action_space == "ee_absolute" else "delta"
        return EndEffectorActionMapper(mode, variant, frame, **ee_options), EE_ACTION_DIM
    raise ValueError(f"unknown action_space {action_space!r}; expected one of {ACTION_SPACES}")
