"""Calibration file I/O and ticks <-> radians <-> LeRobot conversions (LeRobot's bus as oracle)."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from so100_description.calibration import (ArmUnits, CalibrationError, JointUnitConverter, MotorCalibration,
                                       load_calibration, nominal_calibration, save_calibration)
from so100_description.joints import ARM_JOINTS, JOINT_NAMES, joint_limits

DATA = Path(__file__).resolve().parent / "data"
REAL_FILE = DATA / "so101_follower_calibration.json"


@pytest.fixture(scope="module")
def real_cal() -> dict[str, MotorCalibration]:
    return load_calibration(REAL_FILE)


def with_drive_mode(cal, joints):
    return {n: dataclasses.replace(c, drive_mode=1) if n in joints else c for n, c in cal.items()}


# ---------------------------------------------------------------- file I/O
def test_load_reads_lerobot_file_as_is(real_cal):
    raw = json.loads(REAL_FILE.read_text())
    assert list(real_cal) == list(JOINT_NAMES)
    for name, entry in raw.items():
        assert dataclasses.asdict(real_cal[name]) == entry


def test_save_then_load_round_trips_and_matches_lerobot_format(real_cal, tmp_path):
    out = tmp_path / "sub" / "arm.json"
    save_calibration(real_cal, out)
    assert load_calibration(out) == real_cal
    assert json.loads(out.read_text()) == json.loads(REAL_FILE.read_text())


def test_lerobot_can_load_what_we_save(real_cal, tmp_path):
    draccus = pytest.importorskip("draccus", reason="draccus comes with lerobot")
    lerobot_motors = pytest.importorskip("lerobot.motors", reason="lerobot not installed")
    out = tmp_path / "arm.json"
    save_calibration(real_cal, out)
    with open(out) as f, draccus.config_type("json"):
        loaded = draccus.load(dict[str, lerobot_motors.MotorCalibration], f)
    assert {k: dataclasses.asdict(v) for k, v in loaded.items()} == \
        {k: dataclasses.asdict(v) for k, v in real_cal.items()}


@pytest.mark.parametrize("content, fragment", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    (json.dumps({"shoulder_pan": {"id": 1}}), "lacks"),
    (json.dumps({n: {"id": i, "drive_mode": 0, "homing_offset": 0, "range_min": 10, "range_max": 5}
                 for i, n in enumerate(JOINT_NAMES, 1)}), "range"),
    (json.dumps({n: {"id": i, "drive_mode": 0, "homing_offset": 0, "range_min": 10, "range_max": 500}
                 for i, n in enumerate(JOINT_NAMES[:5], 1)}), "gripper"),
    (json.dumps({n: {"id": i, "drive_mode": 3, "homing_offset": 0, "range_min": 10, "range_max": 500}
                 for i, n in enumerate(JOINT_NAMES, 1)}), "drive_mode"),
    (json.dumps({n: {"id": i, "drive_mode": 0, "homing_offset": "x", "range_min": 10, "range_max": 500}
                 for i, n in enumerate(JOINT_NAMES, 1)}), "not an integer"),
])
def test_corrupt_files_give_clear_errors(tmp_path, content, fragment):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CalibrationError, match=fragment) as info:
        load_calibration(path)
    assert str(path) in str(info.value)


def test_missing_file_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(CalibrationError, match="calibrat") as info:
        load_calibration(tmp_path / "nope.json")
    assert "nope.json" in str(info.value)


# ---------------------------------------------------------------- conventions
def test_zero_is_mid_range_and_degrees_equal_lerobot_degrees(real_cal):
    conv = JointUnitConverter(real_cal, "degrees")
    for j in ARM_JOINTS:
        c = real_cal[j]
        mid = (c.range_min + c.range_max) / 2
        assert conv.ticks_to_radians(j, mid) == pytest.approx(0.0, abs=1e-12)
        # +90 degrees of LeRobot = +pi/2 rad (same sign as the so101_new_calib model)
        assert conv.ticks_to_radians(j, mid + 4095 / 4) == pytest.approx(math.pi / 2)
        assert conv.radians_to_lerobot(j, 0.3) == pytest.approx(math.degrees(0.3))


def test_gripper_maps_0_100_onto_urdf_limits(real_cal):
    conv = JointUnitConverter(real_cal)
    lim = joint_limits("so101")["gripper"]
    c = real_cal["gripper"]
    assert conv.ticks_to_radians("gripper", c.range_min) == pytest.approx(lim.lower)  # closed
    assert conv.ticks_to_radians("gripper", c.range_max) == pytest.approx(lim.upper)  # open
    assert conv.lerobot_to_radians("gripper", 0) == pytest.approx(lim.lower)
    assert conv.lerobot_to_radians("gripper", 100) == pytest.approx(lim.upper)
    assert conv.radians_to_lerobot("gripper", lim.upper + 1) == 100.0
    flipped = JointUnitConverter(with_drive_mode(real_cal, {"gripper"}))
    assert flipped.ticks_to_radians("gripper", c.range_min) == pytest.approx(lim.upper)


@pytest.mark.parametrize("units", list(ArmUnits))
@pytest.mark.parametrize("drive", [False, True])
def test_round_trips_exact_to_one_tick(real_cal, units, drive):
    cal = with_drive_mode(real_cal, set(JOINT_NAMES)) if drive else real_cal
    conv = JointUnitConverter(cal, units)
    for j in JOINT_NAMES:
        c = cal[j]
        for t in range(c.range_min, c.range_max + 1, 7):
            rad = conv.ticks_to_radians(j, t)
            assert conv.radians_to_ticks(j, rad) == t
            back = conv.radians_to_ticks(j, conv.lerobot_to_radians(j, conv.radians_to_lerobot(j, rad)))
            assert abs(back - t) <= 1


def test_wrist_roll_full_range_and_wrap_around(real_cal):
    conv = JointUnitConverter(real_cal)
    assert conv.ticks_to_radians("wrist_roll", 0) == pytest.approx(-math.pi, abs=1e-3)
    assert conv.ticks_to_radians("wrist_roll", 4095) == pytest.approx(math.pi, abs=1e-3)
    for t in (0, 1, 2047, 2048, 4094, 4095):
        assert conv.radians_to_ticks("wrist_roll", conv.ticks_to_radians("wrist_roll", t)) == t
    # a joint whose travel crosses the 0/4095 seam converts continuously
    seam = dict(real_cal, shoulder_pan=MotorCalibration(1, 0, 0, 0, 1000))
    conv = JointUnitConverter(seam)
    below, above = conv.ticks_to_radians("shoulder_pan", 4095), conv.ticks_to_radians("shoulder_pan", 0)
    assert above - below == pytest.approx(2 * math.pi / 4095)
    assert conv.ticks_to_radians("shoulder_pan", -1) == pytest.approx(below)  # sign-magnitude reading
    assert conv.radians_to_ticks("shoulder_pan", below) == 4095  # goals wrap into the register range


def test_state_vector_and_action_shapes_and_bad_input(real_cal):
    conv = JointUnitConverter(real_cal)
    pos = {j: 0.1 * i for i, j in enumerate(JOINT_NAMES)}
    vec = conv.state_vector(pos)
    assert vec.shape == (6,)
    back = conv.positions_from_action(vec)
    for j in JOINT_NAMES:
        assert back[j] == pytest.approx(pos[j])
    with pytest.raises(KeyError, match="gripper"):
        conv.state_vector({j: 0.0 for j in ARM_JOINTS})
    with pytest.raises(ValueError, match="6 joints"):
        conv.positions_from_action([0.0] * 5)
    with pytest.raises(ValueError, match="finite"):
        conv.positions_from_action([0, 0, float("nan"), 0, 0, 0])
    with pytest.raises(ValueError, match="arm_units"):
        JointUnitConverter(real_cal, "furlongs")


def test_nominal_calibration_spans_urdf_limits():
    for variant in ("so100", "so101"):
        cal = nominal_calibration(variant)
        conv = JointUnitConverter(cal, variant=variant)
        lim = joint_limits(variant)
        for j in JOINT_NAMES:
            c = cal[j]
            if j == "wrist_roll":
                assert (c.range_min, c.range_max) == (0, 4095)
                continue
            assert conv.ticks_to_radians(j, c.range_min) == pytest.approx(lim[j].lower, abs=1e-3)
            assert conv.ticks_to_radians(j, c.range_max) == pytest.approx(lim[j].upper, abs=1e-3)


# ---------------------------------------------------------------- LeRobot's own bus as the oracle
def lerobot_bus(cal: dict[str, MotorCalibration], units: ArmUnits):
    feetech = pytest.importorskip("lerobot.motors.feetech", reason="lerobot[feetech] not installed")
    motors_mod = pytest.importorskip("lerobot.motors", reason="lerobot not installed")
    arm_mode = (motors_mod.MotorNormMode.DEGREES if units is ArmUnits.DEGREES
                else motors_mod.MotorNormMode.RANGE_M100_100)
    motors = {j: motors_mod.Motor(c.id, "sts3215",
                                  motors_mod.MotorNormMode.RANGE_0_100 if j == "gripper" else arm_mode)
              for j, c in cal.items()}
    lr_cal = {j: motors_mod.MotorCalibration(**dataclasses.asdict(c)) for j, c in cal.items()}
    return feetech.FeetechMotorsBus(port="/dev/null-not-opened", motors=motors, calibration=lr_cal)


@pytest.mark.parametrize("units", list(ArmUnits))
@pytest.mark.parametrize("drive", [False, True])
def test_matches_lerobot_normalisation(real_cal, units, drive):
    cal = with_drive_mode(real_cal, {"shoulder_lift", "gripper"}) if drive else real_cal
    bus = lerobot_bus(cal, units)
    conv = JointUnitConverter(cal, units)
    for j in JOINT_NAMES:
        c = cal[j]
        ticks = list(range(max(0, c.range_min - 40), min(4095, c.range_max + 40) + 1, 3))
        ours = [conv.radians_to_lerobot(j, conv.ticks_to_radians(j, t)) for t in ticks]
        theirs = [bus._normalize({c.id: t})[c.id] for t in ticks]
        np.testing.assert_allclose(ours, theirs, atol=1e-9, err_msg=j)
        # LeRobot's inverse truncates to int; ours rounds: never more than one tick apart
        for value in np.linspace(min(theirs), max(theirs), 97):
            their_ticks = bus._unnormalize({c.id: float(value)})[c.id]
            our_ticks = conv.radians_to_ticks(j, conv.lerobot_to_radians(j, float(value)))
            assert abs(our_ticks - their_ticks) <= 1, (j, value, our_ticks, their_ticks)
