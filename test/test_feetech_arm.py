"""SO100Arm (plain-Python core of the driver) against the emulator: LeRobot's configuration,
safety rules, and recovery from every fault without a goal outside the limits."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from so100_bringup.calibration import JointUnitConverter, load_calibration
from so100_bringup.feetech.arm import ArmConfig, SO100Arm
from so100_bringup.feetech.bus import BusError
from so100_bringup.feetech.emulator import Sts3215Emulator
from so100_description.joints import JOINT_NAMES, joint_limits

CAL = load_calibration(Path(__file__).resolve().parent / "data" / "so101_follower_calibration.json")
CONV = JointUnitConverter(CAL)
LIM = joint_limits("so101")
LOWER = np.array([LIM[j].lower for j in JOINT_NAMES])
UPPER = np.array([LIM[j].upper for j in JOINT_NAMES])


def tick_bounds(joint: str) -> tuple[int, int]:
    a, b = CONV.radians_to_ticks(joint, LIM[joint].lower), CONV.radians_to_ticks(joint, LIM[joint].upper)
    return min(a, b), max(a, b)


def assert_goals_within_limits(emu: Sts3215Emulator) -> int:
    """Every Goal_Position ever written to every servo lies inside the URDF limits."""
    n = 0
    for joint in JOINT_NAMES:
        lo, hi = tick_bounds(joint)
        goals = [v for name, v in emu.servos[CAL[joint].id].write_log if name == "Goal_Position"]
        assert all(lo <= g <= hi for g in goals), (joint, lo, hi, [g for g in goals if not lo <= g <= hi][:5])
        n += len(goals)
    return n


def run(arm: SO100Arm, command, seconds: float):
    deadline = time.monotonic() + seconds
    reading = None
    while time.monotonic() < deadline:
        reading = arm.cycle(command) or reading
        time.sleep(0.002)
    return reading


@pytest.fixture()
def emulator(tmp_path):
    emu = Sts3215Emulator(link=tmp_path / "arm")
    emu.apply_calibration(CAL)
    with emu:
        yield emu


@pytest.fixture()
def arm(emulator):
    a = SO100Arm(ArmConfig(port=emulator.port, calibration=CAL, timeout_ms=50.0, reconnect_period=0.1,
                           max_step=0.05, lost_timeout=0.5))
    a.connect()
    yield a
    a.close()


def test_connect_configures_like_lerobot(emulator, arm):
    for joint in JOINT_NAMES:
        i = CAL[joint].id
        assert emulator.register(i, "Return_Delay_Time") == 0
        assert emulator.register(i, "Acceleration") == 254
        assert emulator.register(i, "Maximum_Acceleration") == 254
        assert (emulator.register(i, "P_Coefficient"), emulator.register(i, "I_Coefficient"),
                emulator.register(i, "D_Coefficient")) == (16, 0, 32)
        assert emulator.register(i, "Torque_Enable") == 1
        assert emulator.register(i, "Homing_Offset") == CAL[joint].homing_offset
    g = CAL["gripper"].id
    assert (emulator.register(g, "Max_Torque_Limit"), emulator.register(g, "Protection_Current"),
            emulator.register(g, "Overload_Torque")) == (500, 250, 25)
    assert emulator.register(1, "Max_Torque_Limit") == 1000  # arm joints keep full torque


def test_torque_on_sets_goal_to_present_first(emulator, arm):
    log = emulator.servos[1].write_log
    torque_on = max(k for k, (n, v) in enumerate(log) if n == "Torque_Enable" and v == 1)
    goals = [k for k, (n, _) in enumerate(log[:torque_on]) if n == "Goal_Position"]
    assert goals, "goal must be set before torque comes on"
    assert log[goals[-1]][1] == emulator.register(1, "Present_Position")


def test_readings_in_radians_match_servo_ticks(emulator, arm):
    reading = arm.cycle()
    for k, joint in enumerate(JOINT_NAMES):
        ticks = emulator.register(CAL[joint].id, "Present_Position")
        assert reading.positions[k] == pytest.approx(CONV.ticks_to_radians(joint, ticks))
    assert reading.fresh.all()


def test_goal_reaches_servos_in_ticks(emulator, arm):
    target = np.array([0.4, -0.5, 0.3, -0.2, 1.2, 1.0])
    reading = run(arm, target, 1.5)
    for k, joint in enumerate(JOINT_NAMES):
        assert emulator.register(CAL[joint].id, "Goal_Position") == CONV.radians_to_ticks(joint, target[k])
    np.testing.assert_allclose(reading.positions, target, atol=0.01)


def test_out_of_limit_and_nan_commands_never_leave_the_limits(emulator, arm):
    run(arm, UPPER + 3.0, 1.0)
    for joint in JOINT_NAMES:
        hi = CONV.radians_to_ticks(joint, LIM[joint].upper)
        assert emulator.register(CAL[joint].id, "Goal_Position") == hi
    run(arm, LOWER - 3.0, 1.0)
    before = arm.goal.copy()
    arm.cycle(np.full(6, np.nan))  # a NaN command keeps the previous goal
    np.testing.assert_array_equal(arm.goal, before)
    assert arm.clamped > 0
    assert assert_goals_within_limits(emulator) > 50


def test_step_limit_per_cycle(emulator, arm):
    start = arm.goal.copy()
    arm.cycle(start + 1.0)
    np.testing.assert_allclose(arm.goal - start, np.minimum(0.05, UPPER - start), atol=1e-12)
    assert arm.step_limited == 1


def test_no_writes_with_torque_off(emulator, arm):
    arm.set_torque(False)
    assert emulator.register(2, "Torque_Enable") == 0
    writes = arm.writes
    run(arm, np.zeros(6), 0.1)
    assert arm.writes == writes


def test_dropped_and_corrupt_replies_are_survived(emulator, arm):
    emulator.faults.drop_probability = 0.2
    emulator.faults.corrupt_probability = 0.2
    target = np.array([0.3, 0.3, -0.3, 0.3, -0.3, 0.5])
    run(arm, target, 1.5)
    emulator.clear_faults()
    reading = run(arm, target, 0.5)
    assert arm.bus.stats.timeouts + arm.bus.stats.corrupt > 5
    assert not arm.status.fault
    np.testing.assert_allclose(reading.positions, target, atol=0.01)
    assert_goals_within_limits(emulator)


def test_silent_servo_holds_then_recovers(emulator, arm):
    run(arm, np.zeros(6), 0.2)
    emulator.set_silent(3)
    run(arm, np.full(6, 0.5), 0.8)
    assert arm.status.lost_ids == [3] and "elbow_flex" in arm.status.fault
    goals = {i: emulator.register(i, "Goal_Position") for i in (1, 2, 4, 5, 6)}
    run(arm, np.full(6, 0.8), 0.2)
    assert {i: emulator.register(i, "Goal_Position") for i in goals} == goals  # others hold while faulted
    emulator.set_silent(3, False)
    resyncs = arm.resync_count
    run(arm, None, 0.5)
    assert arm.status.fault == "" and arm.resync_count > resyncs
    target = np.array([0.2, 0.1, 0.2, 0.1, 0.2, 0.3])
    reading = run(arm, target, 1.0)
    np.testing.assert_allclose(reading.positions, target, atol=0.01)
    assert_goals_within_limits(emulator)


def test_port_vanishes_and_comes_back(emulator, arm):
    run(arm, np.full(6, 0.2), 0.3)
    emulator.vanish()
    run(arm, np.full(6, 0.4), 0.3)  # no exception while gone
    assert not arm.status.connected and "lost" in arm.status.fault
    assert arm.cycle(np.zeros(6)) is None
    emulator.reappear()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not arm.status.connected:
        arm.cycle(None)
        time.sleep(0.02)
    assert arm.status.connected and arm.status.fault == "" and arm.torque_enabled
    reading = run(arm, np.full(6, -0.1), 1.0)
    np.testing.assert_allclose(reading.positions, np.full(6, -0.1), atol=0.01)
    assert_goals_within_limits(emulator)


def test_calibration_mismatch_can_be_refused(emulator):
    emulator.set_register(2, "Homing_Offset", 11)
    arm = SO100Arm(ArmConfig(port=emulator.port, calibration=CAL, write_calibration=False))
    with pytest.raises(BusError, match="write_calibration"):
        arm.connect()
    arm.close()


def test_health_values(emulator, arm):
    health = arm.read_health()
    assert health["gripper"].voltage == pytest.approx(12.0)
    assert health["shoulder_pan"].temperature == 31
