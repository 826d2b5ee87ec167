"""LeRobot calibration files and the one place that converts ticks <-> radians <-> LeRobot units.

Plain Python (no rclpy, no lerobot, no torch): the robot PC of a remote-inference setup runs the
driver with neither installed.

Conventions (docs/real_arm.md has the full derivation):

* Ticks are what the STS3215 reports in Present_Position *after* the homing offset LeRobot wrote
  during calibration, i.e. the raw values LeRobot's ``FeetechMotorsBus`` normalises.
* Arm joints: radians = (ticks - mid) * 2*pi / 4095 with mid = (range_min + range_max) / 2.
  This is exactly LeRobot's DEGREES normalisation converted to radians, so URDF zero = LeRobot
  calibration zero and ``degrees(rad)`` is the number a LeRobot policy trained in degrees sees.
  The sign matches the official ``so101_new_calib`` model (LeRobot degrees map to its joint
  angles without a sign flip). Like LeRobot's DEGREES mode, ``drive_mode`` is not applied to
  arm joints in radians; it is applied in the older -100..100 convention, as LeRobot does.
* Gripper: LeRobot's RANGE_0_100 (0 = closed at range_min, 100 = open at range_max, mirrored
  when drive_mode is 1) mapped linearly onto the URDF gripper limits:
  radians = lower + pct / 100 * (upper - lower). Closed = lower limit, open = upper limit.
* 4096 wrap-around: a reading is unwrapped to within half a turn of the joint's mid-range before
  converting, so a joint whose travel crosses the 0/4095 seam (or a sign-magnitude negative
  reading) converts continuously; goals are wrapped back into 0..4095 for the register.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from so100_description.joints import ARM_JOINTS, GRIPPER_JOINTS, JOINT_NAMES, MOTOR_IDS, joint_limits

TICKS_PER_REV = 4096
# LeRobot scales degrees by the model resolution minus one ("max_res" in motors_bus).
LEROBOT_MAX_RES = TICKS_PER_REV - 1
RAD_PER_TICK = 2.0 * math.pi / LEROBOT_MAX_RES
HALF_TURN_MID = 2047  # LeRobot's set_half_turn_homings makes mid-travel read this value
MAX_HOMING_OFFSET = 2047  # Homing_Offset is sign-magnitude with the sign in bit 11
FULL_TURN_JOINTS: tuple[str, ...] = ("wrist_roll",)
CALIBRATION_KEYS: tuple[str, ...] = ("id", "drive_mode", "homing_offset", "range_min", "range_max")


class ArmUnits(str, Enum):
    """LeRobot's two conventions for the arm joints (the gripper is always 0..100)."""
    DEGREES = "degrees"  # use_degrees=True, the default since early 2026
    RANGE_M100_100 = "range_m100_100"  # the older default


class CalibrationError(ValueError):
    """A calibration file or table that cannot be used; the message says what and where."""


@dataclass(frozen=True)
class MotorCalibration:
    id: int
    drive_mode: int
    homing_offset: int
    range_min: int
    range_max: int


def _validate_motor(name: str, cal: MotorCalibration, where: str) -> None:
    if cal.drive_mode not in (0, 1):
        raise CalibrationError(f"{where}: motor {name!r} has drive_mode {cal.drive_mode}; expected 0 or 1")
    if abs(cal.homing_offset) > MAX_HOMING_OFFSET:
        raise CalibrationError(
            f"{where}: motor {name!r} homing_offset {cal.homing_offset} outside +-{MAX_HOMING_OFFSET}")
    if not (0 <= cal.range_min < cal.range_max <= TICKS_PER_REV - 1):
        raise CalibrationError(
            f"{where}: motor {name!r} range [{cal.range_min}, {cal.range_max}] must satisfy "
            f"0 <= range_min < range_max <= {TICKS_PER_REV - 1}; re-run the calibration")
    if not (0 <= cal.id <= 253):
        raise CalibrationError(f"{where}: motor {name!r} has id {cal.id}; expected 0..253")


def validate_calibration(calibration: Mapping[str, MotorCalibration], where: str = "calibration",
                         joints: Sequence[str] = JOINT_NAMES) -> None:
    """Raise CalibrationError unless every joint in `joints` has a sane entry."""
    missing = [j for j in joints if j not in calibration]
    if missing:
        raise CalibrationError(f"{where}: no calibration for motor(s) {missing}; "
                               f"a SO-100/SO-101 file names {list(JOINT_NAMES)}")
    for name, cal in calibration.items():
        _validate_motor(name, cal, where)


def load_calibration(path: str | Path) -> dict[str, MotorCalibration]:
    """Read a LeRobot calibration JSON (e.g. ~/.cache/huggingface/lerobot/calibration/robots/
    so_follower/<id>.json) as it is."""
    path = Path(path).expanduser()
    where = f"calibration file {path}"
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise CalibrationError(f"{where} does not exist; run LeRobot's calibration "
                               "(lerobot-calibrate) or so100_calibrate, or pass the right path") from None
    except OSError as exc:
        raise CalibrationError(f"{where} cannot be read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"{where} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CalibrationError(f"{where}: expected a JSON object keyed by motor name")
    calibration: dict[str, MotorCalibration] = {}
    for name, entry in data.items():
        if not isinstance(entry, dict):
            raise CalibrationError(f"{where}: entry {name!r} is not an object")
        missing = [k for k in CALIBRATION_KEYS if k not in entry]
        if missing:
            raise CalibrationError(f"{where}: motor {name!r} lacks {missing}")
        values = {}
        for key in CALIBRATION_KEYS:
            value = entry[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
                raise CalibrationError(f"{where}: motor {name!r} field {key!r}={value!r} is not an integer")
            values[key] = int(value)
        calibration[name] = MotorCalibration(**values)
    validate_calibration(calibration, where)
    return calibration


def save_calibration(calibration: Mapping[str, MotorCalibration], path: str | Path) -> None:
    """Write the same JSON LeRobot writes (motor name -> the five integer fields, indent 4)."""
    validate_calibration(calibration, f"calibration for {path}", joints=())
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {name: asdict(cal) for name, cal in calibration.items()}
    path.write_text(json.dumps(payload, indent=4))


# Under lerobot_calibration_root(): LeRobot 0.6's folders (Robot/Teleoperator `name`: so_follower,
# so_leader) first, then the per-variant names of older LeRobot versions.
LEROBOT_FOLLOWER_DIRS = ("robots/so_follower", "robots/so101_follower", "robots/so100_follower")
LEROBOT_LEADER_DIRS = ("teleoperators/so_leader", "teleoperators/so101_leader", "teleoperators/so100_leader")


def lerobot_calibration_root() -> Path:
    """Where LeRobot keeps calibration files: $HF_LEROBOT_CALIBRATION, else
    $HF_LEROBOT_HOME/calibration, else $HF_HOME/lerobot/calibration (HF_HOME defaults to
    ~/.cache/huggingface), as lerobot.utils.constants resolves it."""
    hf_home = Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser()
    lerobot_home = Path(os.environ.get("HF_LEROBOT_HOME", hf_home / "lerobot")).expanduser()
    return Path(os.environ.get("HF_LEROBOT_CALIBRATION", lerobot_home / "calibration")).expanduser()


def resolve_calibration_path(calibration_file: str, robot_id: str,
                             folders: Sequence[str] = LEROBOT_FOLLOWER_DIRS) -> Path | None:
    """An explicit file wins; else LeRobot's file of `robot_id` in the first of `folders` that has
    it (the first folder when none does, so the error names where it was looked for); None when
    neither is given."""
    if calibration_file:
        return Path(calibration_file).expanduser()
    if not robot_id:
        return None
    candidates = [lerobot_calibration_root() / d / f"{robot_id}.json" for d in folders]
    return next((c for c in candidates if c.exists()), candidates[0])


def nominal_calibration(variant: str = "so101") -> dict[str, MotorCalibration]:
    """A calibration whose ranges are the URDF limits around a half-turn homing (for sim and tests).

    wrist_roll gets the full 0..4095 range, as LeRobot records it."""
    limits = joint_limits(variant)
    calibration: dict[str, MotorCalibration] = {}
    for name in JOINT_NAMES:
        if name in FULL_TURN_JOINTS:
            lo, hi = 0, TICKS_PER_REV - 1
        else:
            lo = HALF_TURN_MID + round(limits[name].lower / RAD_PER_TICK)
            hi = HALF_TURN_MID + round(limits[name].upper / RAD_PER_TICK)
        calibration[name] = MotorCalibration(id=MOTOR_IDS[name], drive_mode=0, homing_offset=0,
                                             range_min=lo, range_max=hi)
    return calibration


def _finite(joint: str, value: float, what: str) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{what} for joint {joint!r} is not finite ({value})")
    return value


class JointUnitConverter:
    """Ticks <-> URDF radians <-> LeRobot units for the six SO-100/SO-101 joints."""

    def __init__(self, calibration: Mapping[str, MotorCalibration],
                 arm_units: ArmUnits | str = ArmUnits.DEGREES, variant: str = "so101"):
        try:
            self.arm_units = ArmUnits(arm_units)
        except ValueError:
            raise ValueError(f"unknown arm_units {arm_units!r}; expected one of "
                             f"{[u.value for u in ArmUnits]}") from None
        validate_calibration(calibration)
        self.calibration = dict(calibration)
        self.variant = variant
        limits = joint_limits(variant)
        self._grip_lower = {j: limits[j].lower for j in GRIPPER_JOINTS}
        self._grip_upper = {j: limits[j].upper for j in GRIPPER_JOINTS}

    # -- helpers ---------------------------------------------------------------------------
    def _cal(self, joint: str) -> MotorCalibration:
        try:
            return self.calibration[joint]
        except KeyError:
            raise KeyError(f"unknown joint {joint!r}; expected one of {list(JOINT_NAMES)}") from None

    @staticmethod
    def _mid(cal: MotorCalibration) -> float:
        return (cal.range_min + cal.range_max) / 2.0

    def _unwrap(self, cal: MotorCalibration, ticks: float) -> float:
        """Bring a reading to within half a turn of mid-range (0/4095 seam, signed readings)."""
        offset = ticks - self._mid(cal) + TICKS_PER_REV / 2
        return ticks - TICKS_PER_REV * math.floor(offset / TICKS_PER_REV)

    def _gripper_fraction_from_ticks(self, cal: MotorCalibration, ticks: float) -> float:
        frac = (ticks - cal.range_min) / (cal.range_max - cal.range_min)
        return 1.0 - frac if cal.drive_mode else frac

    def _ticks_from_gripper_fraction(self, cal: MotorCalibration, frac: float) -> float:
        frac = 1.0 - frac if cal.drive_mode else frac
        return cal.range_min + frac * (cal.range_max - cal.range_min)

    def _rad_from_fraction(self, joint: str, frac: float) -> float:
        lo, hi = self._grip_lower[joint], self._grip_upper[joint]
        return lo + frac * (hi - lo)

    def _fraction_from_rad(self, joint: str, rad: float) -> float:
        lo, hi = self._grip_lower[joint], self._grip_upper[joint]
        return (rad - lo) / (hi - lo)

    def ticks_to_radians_float(self, joint: str, ticks: float) -> float:
        cal = self._cal(joint)
        ticks = self._unwrap(cal, float(ticks))
        if joint in GRIPPER_JOINTS:
            return self._rad_from_fraction(joint, self._gripper_fraction_from_ticks(cal, ticks))
        return (ticks - self._mid(cal)) * RAD_PER_TICK

    def radians_to_ticks_float(self, joint: str, radians: float) -> float:
        """Unwrapped, unrounded ticks (may lie outside 0..4095 near the seam)."""
        cal = self._cal(joint)
        radians = _finite(joint, radians, "position")
        if joint in GRIPPER_JOINTS:
            return self._ticks_from_gripper_fraction(cal, self._fraction_from_rad(joint, radians))
        return self._mid(cal) + radians / RAD_PER_TICK

    # -- public API -----------------------------------------------------------------------
    def ticks_to_radians(self, joint: str, ticks: int) -> float:
        return self.ticks_to_radians_float(joint, ticks)

    def radians_to_ticks(self, joint: str, radians: float) -> int:
        """Goal_Position value for `radians`, rounded to the nearest tick, wrapped into 0..4095."""
        return int(round(self.radians_to_ticks_float(joint, radians))) % TICKS_PER_REV

    def radians_per_tick(self, joint: str) -> float:
        """Scale of one tick in radians (velocities: rad/s = ticks/s * this)."""
        cal = self._cal(joint)
        if joint in GRIPPER_JOINTS:
            return (self._grip_upper[joint] - self._grip_lower[joint]) / (cal.range_max - cal.range_min)
        return RAD_PER_TICK

    def radians_to_lerobot(self, joint: str, radians: float) -> float:
        """Degrees or -100..100 (arm, per `arm_units`), 0..100 (gripper), as LeRobot normalises."""
        cal = self._cal(joint)
        radians = _finite(joint, radians, "position")
        if joint in GRIPPER_JOINTS:
            return min(100.0, max(0.0, self._fraction_from_rad(joint, radians) * 100.0))
        if self.arm_units is ArmUnits.DEGREES:
            return math.degrees(radians)
        ticks = min(float(cal.range_max), max(float(cal.range_min), self.radians_to_ticks_float(joint, radians)))
        norm = (ticks - cal.range_min) / (cal.range_max - cal.range_min) * 200.0 - 100.0
        return -norm if cal.drive_mode else norm

    def lerobot_to_radians(self, joint: str, value: float) -> float:
        """Inverse of radians_to_lerobot; out-of-range normalised values are bounded as LeRobot does."""
        cal = self._cal(joint)
        value = _finite(joint, value, "LeRobot value")
        if joint in GRIPPER_JOINTS:
            return self._rad_from_fraction(joint, min(100.0, max(0.0, value)) / 100.0)
        if self.arm_units is ArmUnits.DEGREES:
            return math.radians(value)
        value = -value if cal.drive_mode else value
        value = min(100.0, max(-100.0, value))
        ticks = (value + 100.0) / 200.0 * (cal.range_max - cal.range_min) + cal.range_min
        return (ticks - self._mid(cal)) * RAD_PER_TICK

    def state_vector(self, positions: Mapping[str, float], joints: Sequence[str] = JOINT_NAMES) -> np.ndarray:
        """{joint: rad} -> LeRobot units in `joints` order (observation.state)."""
        missing = [j for j in joints if j not in positions]
        if missing:
            raise KeyError(f"positions lack joint(s) {missing}")
        return np.array([self.radians_to_lerobot(j, positions[j]) for j in joints], dtype=np.float64)

    def positions_from_action(self, action: Sequence[float], joints: Sequence[str] = JOINT_NAMES) -> dict[str, float]:
        """LeRobot action vector (in `joints` order) -> {joint: rad}. Non-finite values raise."""
        values = np.asarray(action, dtype=np.float64).reshape(-1)
        if values.shape[0] != len(joints):
            raise ValueError(f"action has {values.shape[0]} values for {len(joints)} joints {list(joints)}")
        return {j: self.lerobot_to_radians(j, v) for j, v in zip(joints, values)}


__all__ = ["ArmUnits", "CalibrationError", "MotorCalibration", "JointUnitConverter", "load_calibration",
           "save_calibration", "nominal_calibration", "validate_calibration", "ARM_JOINTS", "TICKS_PER_REV",
           "RAD_PER_TICK", "HALF_TURN_MID"]
