"""The ArmController over the mock hardware: command sources, the safety rule, watchdog, resync,
e-stop, and the one hw/joint_commands parser (no ROS, no serial port)."""
from __future__ import annotations

import numpy as np
import pytest

from so100_bringup.control.arm_controller import ArmController, CommandRejected, bounded_goal, joint_command_from
from so100_bringup.control.follower import TrajectoryPoint
from so100_bringup.control.hardware import MockArm
from so100_description.joints import JOINT_NAMES, LimitArrays, prefixed

LIMITS = LimitArrays.for_joints(JOINT_NAMES)


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def make(mode: str = "standalone", initial=None, max_step: float = 0.05):
    clock = FakeClock()
    arm = MockArm(initial=initial, tau=0.0, clock=clock)
    ctl = ArmController(arm, JOINT_NAMES, LIMITS, max_step, mode=mode, watchdog_timeout=0.5, clock=clock)
    return ctl, arm, clock


def test_nothing_is_written_before_a_command():
    ctl, arm, clock = make(initial=[0.1] * 6)
    for _ in range(10):
        ctl.cycle(clock())
    assert arm.writes == []
    np.testing.assert_allclose(ctl.goal, [0.1] * 6)


def test_trajectory_is_followed_through_the_step_bound():
    ctl, arm, clock = make()
    ctl.cycle(clock())
    ctl.set_trajectory(JOINT_NAMES, [TrajectoryPoint(0.01, np.full(6, 1.0))], None, clock())
    clock.t += 0.02
    ctl.cycle(clock())
    np.testing.assert_allclose(arm.writes[-1], np.full(6, 0.05))  # 1 rad wanted, 0.05 allowed
    for _ in range(40):
        clock.t += 0.005
        ctl.cycle(clock())
    np.testing.assert_allclose(arm.writes[-1], np.full(6, 1.0))
    steps = np.abs(np.diff(np.array(arm.writes), axis=0))
    assert steps.max() <= 0.05 + 1e-12


def test_bounded_goal_clamps_keeps_nan_and_bounds_the_step():
    base = np.zeros(6)
    goal = bounded_goal(np.array([9.0, -9.0, np.nan, 0.01, 0.0, 0.0]), base, LIMITS, 0.05)
    np.testing.assert_allclose(goal, [0.05, -0.05, 0.0, 0.01, 0.0, 0.0])
    near = LIMITS.upper - 0.01
    np.testing.assert_allclose(bounded_goal(near + 1.0, near, LIMITS, 0.05), LIMITS.upper)


def test_from_outside_the_limits_only_back_toward_them():
    outside = LIMITS.lower - 0.2
    further = bounded_goal(outside - 1.0, outside, LIMITS, 0.05)
    assert np.all(further >= outside)  # never further out: clamped to the limit, approached
    back = bounded_goal(np.zeros(6), outside, LIMITS, 0.05)
    np.testing.assert_allclose(back, outside + 0.05)  # back in, one bounded step


def test_enable_outside_the_limits_writes_the_reading():
    rest = LIMITS.lower - 0.15
    ctl, arm, clock = make(initial=rest)
    arm.set_torque(True)
    ctl.cycle(clock())
    np.testing.assert_allclose(ctl.goal, rest)
    assert arm.writes == []  # the hardware holds what it read; nothing moves
    ctl.set_trajectory(JOINT_NAMES, [TrajectoryPoint(0.1, np.zeros(6))], None, clock())
    for _ in range(5):
        clock.t += 0.005
        ctl.cycle(clock())
    steps = np.diff(np.vstack([rest, *arm.writes]), axis=0)
    assert np.all(steps >= 0) and np.abs(steps).max() <= 0.05 + 1e-12


def test_hardware_mode_watchdog_holds_the_measured_pose():
    ctl, arm, clock = make(mode="hardware")
    ctl.cycle(clock())
    ctl.on_joint_commands(list(JOINT_NAMES), [0.02] * 6)
    ctl.cycle(clock())
    np.testing.assert_allclose(arm.writes[-1], [0.02] * 6)
    clock.t += 0.6  # commands stop
    ctl.cycle(clock())
    assert ctl.watchdog_tripped
    np.testing.assert_allclose(arm.writes[-1], arm.positions)  # hold where the arm is
    n = len(arm.writes)
    clock.t += 0.1
    ctl.cycle(clock())
    assert len(arm.writes) == n  # and nothing more until commands come back
    ctl.on_joint_commands(list(JOINT_NAMES), [0.0] * 6)
    ctl.cycle(clock())
    assert not ctl.watchdog_tripped and len(arm.writes) == n + 1


@pytest.mark.parametrize("names, positions, why", [
    (list(JOINT_NAMES), [0.0] * 5, "positions"),
    (list(JOINT_NAMES[:5]), [0.0] * 5, "missing"),
    (list(JOINT_NAMES) + ["elbow"], [0.0] * 7, "unknown"),
    (list(JOINT_NAMES[:5]) + ["shoulder_pan"], [0.0] * 6, "duplicate"),
    (list(JOINT_NAMES), [0.0] * 5 + [float("nan")], "non-finite"),
])
def test_joint_command_parser_refuses_bad_messages(names, positions, why):
    with pytest.raises(CommandRejected, match=why):
        joint_command_from(names, positions, JOINT_NAMES)


def test_joint_command_parser_reorders_and_counts_rejections():
    order = list(reversed(JOINT_NAMES))
    np.testing.assert_allclose(joint_command_from(order, [5, 4, 3, 2, 1, 0], JOINT_NAMES), [0, 1, 2, 3, 4, 5])
    ctl, _, _ = make(mode="hardware")
    with pytest.raises(CommandRejected):
        ctl.on_joint_commands(["x"], [0.0])
    assert ctl.status().rejected_commands == 1


def test_prefixed_joint_names():
    names = prefixed(JOINT_NAMES, "left_")
    np.testing.assert_allclose(joint_command_from(names, [0.1] * 6, names), [0.1] * 6)
    with pytest.raises(CommandRejected):
        joint_command_from(list(JOINT_NAMES), [0.1] * 6, names)


def test_estop_holds_and_ignores_commands_until_enabled():
    ctl, arm, clock = make()
    ctl.cycle(clock())
    ctl.set_trajectory(JOINT_NAMES, [TrajectoryPoint(1.0, np.full(6, 0.5))], None, clock())
    clock.t += 0.1
    ctl.cycle(clock())
    ctl.estop()
    held = arm.writes[-1].copy()
    np.testing.assert_allclose(held, arm.positions)
    assert not ctl.accepting_commands()
    n = len(arm.writes)
    clock.t += 0.1
    ctl.cycle(clock())
    assert len(arm.writes) == n
    ctl.enable(True)
    ctl.cycle(clock())
    assert ctl.accepting_commands() and not ctl.status().estopped


def test_resync_after_torque_change_restarts_from_the_measured_pose():
    ctl, arm, clock = make()
    ctl.cycle(clock())
    ctl.set_trajectory(JOINT_NAMES, [TrajectoryPoint(0.05, np.full(6, 0.3))], None, clock())
    for _ in range(20):
        clock.t += 0.01
        ctl.cycle(clock())
    arm.set_torque(False)
    arm.positions[:] = -0.4  # moved by hand while limp
    arm.set_torque(True)
    n = len(arm.writes)
    ctl.cycle(clock())
    np.testing.assert_allclose(ctl.goal, -0.4)
    clock.t += 0.1
    ctl.cycle(clock())
    assert len(arm.writes) == n  # the old trajectory does not pull the arm back


def test_faulted_hardware_gets_no_goals():
    ctl, arm, clock = make()
    ctl.cycle(clock())
    arm.fault = "servo 3 silent"
    assert ctl.cycle(clock()) is None
    ctl.step(np.ones(6))
    assert arm.writes == []
