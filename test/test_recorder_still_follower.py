"""The recorder core's check for a follower that does not follow its action (no ROS, no lerobot)."""
from __future__ import annotations

import math

import pytest

from so100_bringup.recorder.core import StillFollowerCheck

HOME = [0.1, -0.2, 0.3, 0.0, 0.5, 0.2]


def leader(t: float, amplitude: float = 0.3) -> list[float]:
    return [HOME[0] + amplitude * math.sin(3 * t), *HOME[1:]]


def record(check: StillFollowerCheck, frames: int, state, action) -> int:
    return sum(check.add(state(k / 30), action(k / 30)) for k in range(frames))


def test_a_still_follower_under_a_moving_leader_is_reported():
    check = StillFollowerCheck(window=60)
    flagged = record(check, 300, lambda t: HOME, leader)
    assert flagged == check.still_frames > 250
    text = check.summary(fps=30)
    assert "follower did not follow" in text and "driver running" in text
    assert 0.3 < check.largest_action_range <= 0.6


def test_a_follower_that_follows_is_not_reported():
    check = StillFollowerCheck(window=60)
    lagging = lambda t: leader(t - 0.1)  # noqa: E731  # the follower trails the leader by 0.1 s
    assert record(check, 300, lagging, leader) == 0
    assert check.summary(fps=30) == ""


def test_sensor_noise_on_a_still_arm_is_still_and_small_leader_jitter_is_not_motion():
    check = StillFollowerCheck(window=60)
    noisy = lambda t: [x + 0.0015 * ((int(t * 30) % 3) - 1) for x in HOME]  # noqa: E731  # +-1 encoder step
    assert record(check, 120, noisy, lambda t: leader(t, amplitude=0.02)) == 0  # the operator holds still
    assert record(check, 120, noisy, leader) > 0


def test_a_grasp_with_the_arm_still_is_not_reported_when_the_arm_moved_within_the_window():
    check = StillFollowerCheck(window=60)  # 2 s at 30 fps
    # arm moves for 2 s, then holds while the leader's gripper squeezes on for 1 s
    moving = [leader(k / 30) for k in range(60)]
    squeeze = [[*moving[-1][:5], moving[-1][5] + 0.01 * k] for k in range(30)]
    states = moving + [[*moving[-1][:5], moving[-1][5]]] * 30
    assert sum(check.add(s, a) for s, a in zip(states, moving + squeeze)) == 0


def test_a_follower_that_stops_halfway_is_reported_and_a_new_episode_starts_clean():
    check = StillFollowerCheck(window=30)
    stopped = lambda t: leader(min(t, 2.0))  # noqa: E731  # follows for 2 s, then stops
    assert record(check, 180, stopped, leader) > 0
    check.reset()
    assert check.still_frames == 0 and check.summary(30) == ""


def test_window_needs_two_frames():
    with pytest.raises(ValueError, match="at least 2 frames"):
        StillFollowerCheck(window=1)
