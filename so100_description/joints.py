"""Joint names and limits of the SO-100 / SO-101 arm (no ROS imports).

Joint names are LeRobot's motor names; limits come from config/joint_limits.yaml, the same
file the xacro reads, so the URDF, the safety clamps and MoveIt agree by construction.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

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


def limit_arrays(joints: Sequence[str], variant: str = "so101",
                 prefix: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) position limits for `joints` (names may carry `prefix`)."""
    table = joint_limits(variant)
    lims = [table[strip_prefix(j, prefix)] for j in joints]
    return np.array([l.lower for l in lims]), np.array([l.upper for l in lims])


def strip_prefix(joint: str, prefix: str = "") -> str:
    if prefix and joint.startswith(prefix):
        return joint[len(prefix):]
    return joint


def prefixed(names: Sequence[str], prefix: str = "") -> list[str]:
    return [prefix + n for n in names]


def clamp_positions(positions: Mapping[str, float], variant: str = "so101",
                    prefix: str = "") -> dict[str, float]:
    """Clamp a {joint: rad} mapping to the URDF position limits."""
    table = joint_limits(variant)
    return {j: table[strip_prefix(j, prefix)].clamp(float(p)) for j, p in positions.items()}
