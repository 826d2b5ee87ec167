"""The ArmController over the Feetech hardware (SO100Arm), against the emulator: LeRobot's
configuration, the safety rules, torque-on without a jump, and recovery from every fault without
a goal outside the limits."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from so100_description.calibration import JointUnitConverter, load_calibration
from so100_bringup.control.arm_controller import ArmController
from so100_bringup.feetech.arm import ArmConfig, CalibrationMismatchError, SO100Arm
from so100_bringup.feetech.emulator import Sts3215Emulator
from so100_description.joints import JOINT_NAMES, LimitArrays, joint_limits

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


def run(ctl: ArmController, command, seconds: float):
    deadline = time.monotonic() + seconds
    reading = None
    while time.monotonic() < deadline:
        reading = ctl.step(command) or reading
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
                           lost_timeout=0.5))
    a.connect()
    yield a
    a.close()


@pytest.fixture()
def ctl(arm):
    c = ArmController(arm, JOINT_NAMES, LimitArrays.for_joints(JOINT_NAMES), max_step=0.05)
    c.step(None)  # first read: the goal starts at the measured pose
    return c


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


def test_readings_in_radians_match_servo_ticks(emulator, arm, ctl):
    reading = ctl.step()
    for k, joint in enumerate(JOINT_NAMES):
        ticks = emulator.register(CAL[joint].id, "Present_Position")
        assert reading.positions[k] == pytest.approx(CONV.ticks_to_radians(joint, ticks))
    assert reading.fresh.all()


def test_goal_reaches_servos_in_ticks(emulator, arm, ctl):
    target = np.array([0.4, -0.5, 0.3, -0.2, 1.2, 1.0])
    reading = run(ctl, target, 1.5)
    for k, joint in enumerate(JOINT_NAMES):
        assert emulator.register(CAL[joint].id, "Goal_Position") == CONV.radians_to_ticks(joint, target[k])
    np.testing.assert_allclose(reading.positions, target, atol=0.01)


def test_out_of_limit_and_nan_commands_never_leave_the_limits(emulator, arm, ctl):
    run(ctl, UPPER + 3.0, 1.0)
    for joint in JOINT_NAMES:
        hi = CONV.radians_to_ticks(joint, LIM[joint].upper)
        assert emulator.register(CAL[joint].id, "Goal_Position") == hi
    run(ctl, LOWER - 3.0, 1.0)
    before = ctl.goal.copy()
    ctl.step(np.full(6, np.nan))  # a NaN command keeps the previous goal
    np.testing.assert_array_equal(ctl.goal, before)
    assert ctl.clamped > 0
    assert assert_goals_within_limits(emulator) > 50


def test_step_limit_per_cycle(emulator, arm, ctl):
    start = ctl.goal.copy()
    ctl.step(start + 1.0)
    np.testing.assert_allclose(ctl.goal - start, np.minimum(0.05, UPPER - start), atol=1e-12)
    assert ctl.step_limited == 1


def test_no_writes_with_torque_off(emulator, arm, ctl):
    arm.set_torque(False)
    assert emulator.register(2, "Torque_Enable") == 0
    writes = arm.writes
    run(ctl, np.zeros(6), 0.1)
    assert arm.writes == writes


def test_dropped_and_corrupt_replies_are_survived(emulator, arm, ctl):
    emulator.faults.drop_probability = 0.2
    emulator.faults.corrupt_probability = 0.2
    target = np.array([0.3, 0.3, -0.3, 0.3, -0.3, 0.5])
    run(ctl, target, 1.5)
    emulator.clear_faults()
    reading = run(ctl, target, 0.5)
    assert arm.bus.stats.timeouts + arm.bus.stats.corrupt > 5
    assert not arm.status.fault
    np.testing.assert_allclose(reading.positions, target, atol=0.01)
    assert_goals_within_limits(emulator)


def test_silent_servo_holds_then_recovers(emulator, arm, ctl):
    run(ctl, np.zeros(6), 0.2)
    emulator.set_silent(3)
    run(ctl, np.full(6, 0.5), 0.8)
    assert arm.status.lost_ids == [3] and "elbow_flex" in arm.status.fault
    goals = {i: emulator.register(i, "Goal_Position") for i in (1, 2, 4, 5, 6)}
    run(ctl, np.full(6, 0.8), 0.2)
    assert {i: emulator.register(i, "Goal_Position") for i in goals} == goals  # others hold while faulted
    emulator.set_silent(3, False)
    resyncs = arm.resync_count
    run(ctl, None, 0.5)
    assert arm.status.fault == "" and arm.resync_count > resyncs
    target = np.array([0.2, 0.1, 0.2, 0.1, 0.2, 0.3])
    reading = run(ctl, target, 1.0)
    np.testing.assert_allclose(reading.positions, target, atol=0.01)
    assert_goals_within_limits(emulator)


def test_port_vanishes_and_comes_back(emulator, arm, ctl):
    run(ctl, np.full(6, 0.2), 0.3)
    emulator.vanish()
    run(ctl, np.full(6, 0.4), 0.3)  # no exception while gone
    assert not arm.status.connected and "lost" in arm.status.fault
    assert ctl.step(np.zeros(6)) is None
    emulator.reappear()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not arm.status.connected:
        ctl.step(None)
        time.sleep(0.02)
    assert arm.status.connected and arm.status.fault == "" and arm.torque_enabled
    reading = run(ctl, np.full(6, -0.1), 1.0)
    np.testing.assert_allclose(reading.positions, np.full(6, -0.1), atol=0.01)
    assert_goals_within_limits(emulator)


def test_calibration_mismatch_is_refused_by_default_with_every_difference(emulator):
    lift, grip = CAL["shoulder_lift"], CAL["gripper"]
    emulator.set_register(lift.id, "Homing_Offset", lift.homing_offset + 11)
    emulator.set_register(grip.id, "Max_Position_Limit", grip.range_max - 40)
    arm = SO100Arm(ArmConfig(port=emulator.port, calibration=CAL))  # write_calibration: False by default
    with pytest.raises(CalibrationMismatchError) as refused:
        arm.connect()
    arm.close()
    text = str(refused.value)
    assert f"shoulder_lift (id {lift.id}): Homing_Offset {lift.homing_offset + 11} -> {lift.homing_offset}" in text
    assert f"gripper (id {grip.id}): Max_Position_Limit {grip.range_max - 40} -> {grip.range_max}" in text
    assert "shoulder_pan" not in text and "write_calibration:=true" in text and "recalibrate" in text
    assert all(not servo.write_log for servo in emulator.servos.values())  # refused before writing anything

    arm = SO100Arm(ArmConfig(port=emulator.port, calibration=CAL, write_calibration=True))
    arm.connect()
    arm.close()
    assert emulator.register(lift.id, "Homing_Offset") == lift.homing_offset
    assert emulator.register(grip.id, "Max_Position_Limit") == grip.range_max


def test_health_values(emulator, arm):
    health = arm.read_health()
    assert health["gripper"].voltage == pytest.approx(12.0)
    assert health["shoulder_pan"].temperature == 31


def place(emu: Sts3215Emulator, joint: str, radians: float) -> int:
    """Put a servo physically at `radians` (torque off, as an arm at rest); returns its ticks."""
    ticks = int(round(CONV.radians_to_ticks_float(joint, radians)))
    servo = emu.servos[CAL[joint].id]
    with emu.lock:
        servo.present = float(ticks)
        servo._store("Goal_Position", ticks)
        servo._store("Torque_Enable", 0)
        servo._publish_state()
    return ticks


def goals_after_torque_on(emu: Sts3215Emulator, joint: str) -> list[int]:
    log = emu.servos[CAL[joint].id].write_log
    torque_on = min(k for k, (n, v) in enumerate(log) if n == "Torque_Enable" and v == 1)
    before = [v for n, v in log[:torque_on] if n == "Goal_Position"]
    return before[-1:] + [v for n, v in log[torque_on:] if n == "Goal_Position"]


@pytest.mark.parametrize("rest", [-1.92, 1.90])
def test_torque_on_outside_the_limits_never_jumps(emulator, rest):
    """An arm resting beyond a URDF limit (LeRobot's rest pose sits near them) gets the reading as
    its first goal, and afterwards moves only back toward the limits, one bounded step a cycle."""
    joint, k = "shoulder_lift", JOINT_NAMES.index("shoulder_lift")
    ticks = place(emulator, joint, rest)
    emulator.servos[CAL[joint].id].write_log.clear()
    arm = SO100Arm(ArmConfig(port=emulator.port, calibration=CAL, timeout_ms=50.0))
    ctl = ArmController(arm, JOINT_NAMES, LimitArrays.for_joints(JOINT_NAMES), max_step=0.05)
    try:
        arm.connect()
        first = goals_after_torque_on(emulator, joint)[0]
        assert abs(first - ticks) <= 1, (first, ticks)
        run(ctl, None, 0.2)  # enabled, no command yet: nothing moves
        assert goals_after_torque_on(emulator, joint) == [first]
        assert ctl.goal[k] == pytest.approx(rest, abs=2 * CONV.radians_per_tick(joint))
        # commands further out are refused; commands inside are approached in bounded steps
        run(ctl, np.where(np.arange(6) == k, 3 * rest, ctl.goal), 0.1)
        run(ctl, np.zeros(6), 0.5)
    finally:
        arm.close()
    goals = goals_after_torque_on(emulator, joint)
    radians = np.array([CONV.ticks_to_radians(joint, g) for g in goals])
    steps = np.diff(radians)
    assert np.all(np.abs(steps) <= 0.05 + CONV.radians_per_tick(joint)), steps.max()
    toward = np.sign(-rest)
    assert np.all(steps * toward >= -CONV.radians_per_tick(joint)), "moved further out of the limits"
    assert abs(radians[-1]) < LIM[joint].upper  # reached the inside


def test_torque_on_by_service_outside_the_limits_never_jumps(emulator, arm, ctl):
    """Torque off, the arm is pushed beyond a limit by hand, torque on again: no jump."""
    joint = "elbow_flex"
    arm.set_torque(False)
    ticks = place(emulator, joint, LIM[joint].upper + 0.1)
    emulator.servos[CAL[joint].id].write_log.clear()
    ctl.enable(True)
    first = goals_after_torque_on(emulator, joint)[0]
    assert abs(first - ticks) <= 1
    run(ctl, None, 0.1)
    assert goals_after_torque_on(emulator, joint) == [first]
