"""Joint names and limits of the SO-100 / SO-101 arm (no ROS imports).

Joint names are LeRobot's motor names; limits come from config/joint_limits.yaml, the same
file the xacro reads, so the URDF, the safety clamps and MoveIt agree by construction.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

JOINT_NAMES: tuple[str, ...] = (
    "shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
ARM_JOINTS: tuple[str, ...] = JOINT_NAMES[:5]
GRIPPER_JOINTS: tuple[str, ...] = ("gripper",)
MOTOR_IDS: dict[str, int] = {name: i + 1 for i, name in enumerate(JOINT_NAMES)}
VARIANTS: tuple[str, ...] = ("so100", "so101")

LIMITS_FILE = Path(__file__).resolve().parent / "config" / "joint_limits.yaml"


@dataclass(frozen=True)
class JointLimit:
    lower: float  # rad
    upper: float  # rad
    velocity: float  # rad/s
    effort: float  # N*m
    acceleration: float  # rad/s^2

    def clamp(self, position: float) -> float:
        return min(max(position, self.lower), self.upper)


@lru_cache(maxsize=None)
def joint_limits(variant: str = "so101") -> dict[str, JointLimit]:
    """Limits of every joint of `variant`, keyed by unprefixed joint name."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown arm variant {variant!r}; expected one of {VARIANTS}")
    table = yaml.safe_load(LIMITS_FILE.read_text())[variant]
    return {name: JointLimit(**{k: float(v) for k, v in table[name].items()}) for name in JOINT_NAMES}


@dataclass(frozen=True)
class LimitArrays:
    """Limits of a list of joints as arrays (their order): the one place they are built."""

    lower: np.ndarray  # rad
    upper: np.ndarray  # rad
    velocity: np.ndarray  # rad/s
    acceleration: np.ndarray  # rad/s^2
    effort: np.ndarray  # N*m

    @classmethod
    def for_joints(cls, joints: Sequence[str], variant: str = "so101", prefix: str = "",
                   velocity_scale: float = 1.0, acceleration_scale: float = 1.0) -> "LimitArrays":
        """Limits of `joints` (names may carry `prefix`); velocity and acceleration scaled."""
        table = joint_limits(variant)
        lims = [table[strip_prefix(j, prefix)] for j in joints]
        return cls(lower=np.array([l.lower for l in lims]), upper=np.array([l.upper for l in lims]),
                   velocity=np.array([l.velocity for l in lims]) * float(velocity_scale),
                   acceleration=np.array([l.acceleration for l in lims]) * float(acceleration_scale),
                   effort=np.array([l.effort for l in lims]))

    def clamp(self, positions: np.ndarray) -> np.ndarray:
        return np.clip(positions, self.lower, self.upper)


def strip_prefix(joint: str, prefix: str = "") -> str:
    if prefix and joint.startswith(prefix):
        return joint[len(prefix):]
    return joint


def prefixed(names: Sequence[str], prefix: str = "") -> list[str]:
    return [prefix + n for n in names]
