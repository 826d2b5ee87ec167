"""Behaviour of the shared trajectory follower (joint_trajectory_controller semantics)."""
from __future__ import annotations

import numpy as np
import pytest

from so100_bringup.control.follower import (TrajectoryFollower, TrajectoryPoint, TrajectoryRejected,
                                    points_from_msg)

NAMES = ["a", "b", "g"]


def pt(t, *pos, vel=None, acc=None):
    return TrajectoryPoint(t, np.array(pos, float), None if vel is None else np.array(vel, float),
                           None if acc is None else np.array(acc, float))


def make(initial=(0.0, 0.0, 0.0), lower=None, upper=None):
    return TrajectoryFollower(NAMES, initial, lower, upper)


def test_linear_interpolation_then_hold_at_last_point():
    f = make()
    f.set_trajectory(["a", "b"], [pt(1.0, 1.0, -1.0), pt(2.0, 2.0, -2.0)], None, now=10.0)
    p, v = f.sample(10.5)
    assert p == pytest.approx([0.5, -0.5, 0.0])
    assert v == pytest.approx([1.0, -1.0, 0.0])
    p, _ = f.sample(11.5)
    assert p == pytest.approx([1.5, -1.5, 0.0])
    p, v = f.sample(20.0)
    assert p == pytest.approx([2.0, -2.0, 0.0]) and v == pytest.approx([0, 0, 0])
    assert not f.active


def test_new_trajectory_replaces_current_without_a_jump():
    f = make()
    f.set_trajectory(["a"], [pt(1.0, 1.0)], None, now=0.0)
    before, _ = f.sample(0.5)
    f.set_trajectory(["a"], [pt(1.0, -1.0)], None, now=0.5)
    after, _ = f.sample(0.5)
    assert after == pytest.approx(before)
    assert f.sample(1.0)[0][0] == pytest.approx(0.5 + (-1.0 - 0.5) * 0.5)
    assert f.sample(1.5)[0][0] == pytest.approx(-1.0)


def test_points_in_the_past_are_dropped_for_stamped_trajectories():
    f = make()
    # stamped at t=0, received at t=1.5: points at 1.0 (past) and 2.0 (future)
    f.set_trajectory(["a"], [pt(1.0, 5.0), pt(2.0, 2.0)], start_time=0.0001, now=1.5)
    assert f.sample(1.5)[0][0] == pytest.approx(0.0)  # starts from the current setpoint
    assert f.sample(1.75)[0][0] == pytest.approx(1.0, abs=1e-3)  # straight towards 2.0, never 5.0
    assert f.sample(2.1)[0][0] == pytest.approx(2.0)


def test_trajectory_wholly_in_the_past_is_rejected_and_motion_continues():
    f = make()
    f.set_trajectory(["a"], [pt(2.0, 2.0)], None, now=0.0)
    with pytest.raises(TrajectoryRejected):
        f.set_trajectory(["a"], [pt(0.5, -3.0)], start_time=0.1, now=1.0)
    assert f.sample(1.0)[0][0] == pytest.approx(1.0)


def test_joints_not_named_keep_their_own_trajectory():
    f = make()
    f.set_trajectory(["a", "b"], [pt(2.0, 2.0, 2.0)], None, now=0.0)
    f.set_trajectory(["g"], [pt(1.0, 1.0)], None, now=1.0)
    p, _ = f.sample(1.5)
    assert p == pytest.approx([1.5, 1.5, 0.5])
    p, _ = f.sample(3.0)
    assert p == pytest.approx([2.0, 2.0, 1.0])


def test_trajectories_of_different_joints_finish_in_any_order():
    f = make()
    f.set_trajectory(["a"], [pt(3.0, 1.0)], None, now=0.0)
    f.set_trajectory(["g"], [pt(1.0, 0.5)], None, now=0.0)
    f.set_trajectory(["b"], [pt(2.0, -1.0)], None, now=0.0)
    for t in (1.5, 2.5, 3.5):
        p, _ = f.sample(t)
    assert p == pytest.approx([1.0, -1.0, 0.5])
    assert not f.active


def test_setpoints_are_clamped_to_limits():
    f = make(lower=[-1, -1, 0], upper=[1, 1, 0.5])
    f.set_trajectory(NAMES, [pt(1.0, 3.0, -3.0, 2.0)], None, now=0.0)
    p, v = f.sample(5.0)
    assert p == pytest.approx([1.0, -1.0, 0.5])
    assert np.all(v == 0)


def test_cubic_segments_match_given_velocities():
    f = make()
    f.set_trajectory(["a"], [pt(1.0, 1.0, vel=[0.0]), pt(2.0, 2.0, vel=[2.0])], None, now=0.0)
    p, v = f.sample(1.0)
    assert p[0] == pytest.approx(1.0) and v[0] == pytest.approx(0.0, abs=1e-9)
    p, v = f.sample(2.0 - 1e-9)
    assert p[0] == pytest.approx(2.0, abs=1e-6) and v[0] == pytest.approx(2.0, abs=1e-5)


def test_quintic_segments_match_given_accelerations():
    f = make()
    f.set_trajectory(["a"], [pt(1.0, 0.0, vel=[0.0], acc=[0.0]), pt(2.0, 1.0, vel=[0.0], acc=[0.0])],
                     None, now=0.0)
    samples = [f.sample(1.0 + k / 100)[0][0] for k in range(101)]
    assert samples[50] == pytest.approx(0.5)
    assert np.all(np.diff(samples) >= -1e-12)  # monotone, no overshoot


@pytest.mark.parametrize("names,points", [
    (["zz"], [pt(1.0, 1.0)]),
    (["a"], [pt(1.0, float("nan"))]),
    (["a"], [pt(1.0, 1.0), pt(0.5, 2.0)]),
    (["a", "b"], [pt(1.0, 1.0)]),
    (["a"], []),
    (["a", "a"], [pt(1.0, 1.0, 1.0)]),
])
def test_invalid_trajectories_are_rejected_without_side_effects(names, points):
    f = make(initial=(0.3, 0.2, 0.1))
    with pytest.raises(TrajectoryRejected):
        f.set_trajectory(names, points, None, now=0.0)
    assert f.sample(1.0)[0] == pytest.approx([0.3, 0.2, 0.1])


def test_hold_cancels_motion():
    f = make()
    f.set_trajectory(["a"], [pt(1.0, 1.0)], None, now=0.0)
    f.hold(0.5)
    assert f.sample(2.0)[0][0] == pytest.approx(0.5)
    f.hold(2.0, positions=[0.1, 0.2, 0.3])
    assert f.sample(3.0)[0] == pytest.approx([0.1, 0.2, 0.3])


def test_points_from_real_joint_trajectory_message():
    msgs = pytest.importorskip("trajectory_msgs.msg", reason="ROS 2 message wheels not installed")
    from builtin_interfaces.msg import Duration
    msg = msgs.JointTrajectory(joint_names=["a", "b"])
    msg.points = [msgs.JointTrajectoryPoint(positions=[1.0, 2.0], time_from_start=Duration(sec=0, nanosec=500_000_000)),
                  msgs.JointTrajectoryPoint(positions=[3.0, 4.0], velocities=[0.1, 0.2],
                                            time_from_start=Duration(sec=1, nanosec=0))]
    names, points, start = points_from_msg(msg)
    assert names == ["a", "b"] and start is None
    assert [p.time_from_start for p in points] == [0.5, 1.0]
    assert points[0].velocities is None and points[1].velocities == pytest.approx([0.1, 0.2])
    msg.header.stamp.sec = 7
    assert points_from_msg(msg)[2] == pytest.approx(7.0)
