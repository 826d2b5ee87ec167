"""so100_calibrate's procedure against the emulator: LeRobot's half-turn homing and range
recording, written as LeRobot's JSON."""
from __future__ import annotations

import json
import time

import pytest

from so100_bringup.calibrate import calibrate
from so100_description.calibration import JointUnitConverter, load_calibration, save_calibration
from so100_bringup.feetech.bus import BusError, FeetechBus
from so100_bringup.feetech.emulator import Sts3215Emulator
from so100_description.joints import JOINT_NAMES, MOTOR_IDS

MID = {1: 1500, 2: 2600, 3: 900, 4: 3000, 5: 100, 6: 2047}  # actual encoder positions at "mid"
SWING = 700  # the operator moves each joint +-SWING around mid


@pytest.fixture()
def emulator(tmp_path):
    with Sts3215Emulator(link=tmp_path / "arm", positions=MID) as emu:
        yield emu


def move(emu, offsets):
    with emu.lock:
        for i, servo in emu.servos.items():
            homing = servo.get("Homing_Offset")
            servo.present = (MID[i] + offsets.get(i, 0) - homing) % 4096


def test_calibration_routine_writes_lerobot_json(emulator, tmp_path):
    bus = FeetechBus(emulator.port, list(MOTOR_IDS.values()))
    bus.open()

    def wait_ranges(stop):
        for sign in (-1, 1, 0):
            move(emulator, {i: sign * SWING for i in MID if i != 5})
            time.sleep(0.15)
        stop.set()

    try:
        cal = calibrate(bus, wait_mid=lambda: None, wait_ranges=wait_ranges)
    finally:
        bus.close()
    for joint in JOINT_NAMES:
        c = cal[joint]
        assert c.homing_offset == MID[c.id] - 2047
        assert c.drive_mode == 0
        if joint == "wrist_roll":
            assert (c.range_min, c.range_max) == (0, 4095)
        else:
            assert (c.range_min, c.range_max) == (2047 - SWING, 2047 + SWING)
        assert emulator.register(c.id, "Homing_Offset") == c.homing_offset
        assert emulator.register(c.id, "Max_Position_Limit") == c.range_max
    out = tmp_path / "calib" / "my_arm.json"
    save_calibration(cal, out)
    assert load_calibration(out) == cal
    assert set(json.loads(out.read_text())["gripper"]) == {"id", "drive_mode", "homing_offset", "range_min",
                                                           "range_max"}
    # after homing, the pose the operator called "mid" is URDF zero
    conv = JointUnitConverter(cal)
    for joint in JOINT_NAMES:
        if joint != "gripper":
            assert conv.ticks_to_radians(joint, emulator.register(cal[joint].id, "Present_Position")) == \
                pytest.approx(0.0, abs=2e-3)


def test_joint_that_never_moves_is_an_error(emulator):
    bus = FeetechBus(emulator.port, list(MOTOR_IDS.values()))
    bus.open()
    try:
        with pytest.raises(BusError, match="did not move"):
            calibrate(bus, wait_mid=lambda: None, wait_ranges=lambda stop: (time.sleep(0.1), stop.set()))
    finally:
        bus.close()


@pytest.mark.parametrize("role", ["robot", "teleop"])
def test_so100_calibrate_against_the_sweeping_emulator_writes_what_lerobot_loads(tmp_path, monkeypatch, role):
    pytest.importorskip("lerobot", reason="lerobot not installed: its calibration loader is the oracle")
    from so100_bringup.calibrate import main

    root = tmp_path / "lerobot_calibration"
    monkeypatch.setenv("HF_LEROBOT_CALIBRATION", str(root))
    with Sts3215Emulator(link=tmp_path / "arm", positions=MID) as emu:
        emu.sweep(period=1.0)  # the emulated operator: +-nominal range around mid, once the mid is read
        amplitude = {i: servo.sweep_amplitude for i, servo in emu.servos.items()}
        assert main(["--port", emu.port, f"--{role}-id", "emulated", "--record-seconds", "1.3"]) == 0
    if role == "robot":  # LeRobot's own loader reads the file (draccus), as lerobot-record would
        from lerobot.robots.so_follower import SOFollower, SOFollowerRobotConfig

        device = SOFollower(SOFollowerRobotConfig(port=emu.port, id="emulated",
                                                  calibration_dir=root / "robots" / "so_follower"))
    else:
        from lerobot.teleoperators.so_leader import SOLeader, SOLeaderTeleopConfig

        device = SOLeader(SOLeaderTeleopConfig(port=emu.port, id="emulated",
                                               calibration_dir=root / "teleoperators" / "so_leader"))
    loaded = device.calibration
    assert set(loaded) == set(JOINT_NAMES)
    for joint in JOINT_NAMES:
        c, servo_id = loaded[joint], MOTOR_IDS[joint]
        assert (c.id, c.drive_mode, c.homing_offset) == (servo_id, 0, MID[servo_id] - 2047)
        if joint == "wrist_roll":
            assert (c.range_min, c.range_max) == (0, 4095)
            continue
        # the range covers the scripted motion (sampled every ~20 ms: within 2 % at the turning
        # points) and nothing beyond it
        low, high = 2047 - amplitude[servo_id], 2047 + amplitude[servo_id]
        assert low - 1 <= c.range_min <= low + 0.02 * amplitude[servo_id], (joint, c, low)
        assert high - 0.02 * amplitude[servo_id] <= c.range_max <= high + 1, (joint, c, high)
