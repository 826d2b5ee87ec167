"""Joint trajectory follower with joint_trajectory_controller semantics (no ROS imports).

On a pip-only machine there is no ros2_control, so the driver node and the MuJoCo sim node
follow trajectory_msgs/JointTrajectory themselves through this one module. Semantics kept
from joint_trajectory_controller (JTC):

* A new trajectory replaces the current one for the joints it names. The motion starts from
  the current setpoint (position and velocity at the time of receipt) and goes to the new
  trajectory's first point in the future; points already in the past are dropped.
* Header stamp 0 (``start_time`` None or 0) means "now". A trajectory that is stamped and
  lies wholly in the past is rejected (as JTC rejects one that ends before it is received).
* Interpolation per segment as JTC's spline: linear when a knot has positions only, cubic
  Hermite when both knots have velocities, quintic when they also have accelerations.
* After the last point the joints hold its positions with zero velocity.
* Joints a trajectory does not name keep their own command (arm and gripper are separate
  controllers in a ros2_control setup; here they share one follower).

Setpoints are clamped to the position limits given at construction.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass
class TrajectoryPoint:
    time_from_start: float  # s
    positions: np.ndarray  # rad, one per joint of the trajectory
    velocities: np.ndarray | None = None
    accelerations: np.ndarray | None = None


class TrajectoryRejected(ValueError):
    """A trajectory that JTC would reject (unknown joints, bad sizes, NaN, unordered times)."""


@dataclass(eq=False)  # identity comparison: list.remove must not compare arrays
class _ActiveTrajectory:
    columns: np.ndarray  # follower column of each trajectory joint
    times: np.ndarray  # (K,) absolute knot times; times[0] is the anchor (receipt time)
    pos: np.ndarray  # (K, n)
    vel: np.ndarray  # (K, n), zeros where a knot has none
    acc: np.ndarray  # (K, n)
    has_vel: np.ndarray  # (K,) bool
    has_acc: np.ndarray  # (K,) bool

    @property
    def end_time(self) -> float:
        return float(self.times[-1])

    def evaluate(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        if t >= self.times[-1]:
            return self.pos[-1].copy(), np.zeros(self.pos.shape[1])
        if t <= self.times[0]:
            return self.pos[0].copy(), self.vel[0].copy()
        i = int(np.searchsorted(self.times, t, side="right")) - 1
        t0, t1 = self.times[i], self.times[i + 1]
        dt = t1 - t0
        s = t - t0
        p0, p1 = self.pos[i], self.pos[i + 1]
        if self.has_acc[i] and self.has_acc[i + 1] and self.has_vel[i] and self.has_vel[i + 1]:
            return _quintic(p0, self.vel[i], self.acc[i], p1, self.vel[i + 1], self.acc[i + 1], dt, s)
        if self.has_vel[i] and self.has_vel[i + 1]:
            return _cubic(p0, self.vel[i], p1, self.vel[i + 1], dt, s)
        rate = (p1 - p0) / dt
        return p0 + rate * s, rate


def _cubic(p0, v0, p1, v1, T, s):
    a2 = (3 * (p1 - p0) - (2 * v0 + v1) * T) / T**2
    a3 = (2 * (p0 - p1) + (v0 + v1) * T) / T**3
    return p0 + v0 * s + a2 * s**2 + a3 * s**3, v0 + 2 * a2 * s + 3 * a3 * s**2


def _quintic(p0, v0, a0, p1, v1, a1, T, s):
    T2, T3, T4, T5 = T**2, T**3, T**4, T**5
    c3 = (20 * (p1 - p0) - (8 * v1 + 12 * v0) * T - (3 * a0 - a1) * T2) / (2 * T3)
    c4 = (30 * (p0 - p1) + (14 * v1 + 16 * v0) * T + (3 * a0 - 2 * a1) * T2) / (2 * T4)
    c5 = (12 * (p1 - p0) - 6 * (v1 + v0) * T - (a0 - a1) * T2) / (2 * T5)
    pos = p0 + v0 * s + 0.5 * a0 * s**2 + c3 * s**3 + c4 * s**4 + c5 * s**5
    vel = v0 + a0 * s + 3 * c3 * s**2 + 4 * c4 * s**3 + 5 * c5 * s**4
    return pos, vel


class TrajectoryFollower:
    """Samples position/velocity setpoints for `joint_names` from received trajectories."""

    def __init__(self, joint_names: Sequence[str], initial_positions: Sequence[float],
                 lower: Sequence[float] | None = None, upper: Sequence[float] | None = None):
        self.joint_names = list(joint_names)
        self._index = {name: i for i, name in enumerate(self.joint_names)}
        n = len(self.joint_names)
        self._lower = np.full(n, -np.inf) if lower is None else np.asarray(lower, dtype=float)
        self._upper = np.full(n, np.inf) if upper is None else np.asarray(upper, dtype=float)
        initial = np.asarray(initial_positions, dtype=float)
        if initial.shape != (n,) or not np.all(np.isfinite(initial)):
            raise ValueError(f"initial_positions must be {n} finite values, got {initial.tolist()}")
        self._hold = np.clip(initial, self._lower, self._upper)
        self._trajectories: list[_ActiveTrajectory] = []
        self._lock = threading.Lock()

    # -- commands ---------------------------------------------------------------------------
    def set_trajectory(self, joint_names: Sequence[str], points: Sequence[TrajectoryPoint],
                       start_time: float | None, now: float) -> None:
        """Replace the trajectory of the named joints (JTC splice). Raises TrajectoryRejected."""
        columns = self._columns(joint_names)
        _validate(points, len(columns))
        start = now if not start_time else float(start_time)
        times = np.array([start + p.time_from_start for p in points])
        future = times > now
        if not np.any(future):
            if start_time:
                raise TrajectoryRejected("trajectory ends in the past (stamped before now)")
            future[-1] = True  # unstamped, all at t<=0: go to the last point from now
            times[-1] = now + 1e-3
        kept = [p for p, f in zip(points, future) if f]
        with self._lock:
            pos0, vel0 = self._evaluate(now)
            traj = _ActiveTrajectory(
                columns=columns,
                times=np.concatenate([[now], times[future]]),
                pos=np.vstack([pos0[columns]] + [np.asarray(p.positions, float) for p in kept]),
                vel=np.vstack([vel0[columns]] + [_or_zeros(p.velocities, len(columns)) for p in kept]),
                acc=np.vstack([np.zeros(len(columns))] + [_or_zeros(p.accelerations, len(columns)) for p in kept]),
                has_vel=np.array([True] + [p.velocities is not None and len(p.velocities) > 0 for p in kept]),
                has_acc=np.array([True] + [p.accelerations is not None and len(p.accelerations) > 0 for p in kept]),
            )
            self._release(columns, pos0)
            self._trajectories.append(traj)

    def hold(self, now: float, positions: Sequence[float] | None = None) -> None:
        """Cancel every trajectory and hold `positions` (default: the current setpoint)."""
        with self._lock:
            if positions is None:
                target, _ = self._evaluate(now)
            else:
                target = np.asarray(positions, dtype=float)
                if target.shape != self._hold.shape or not np.all(np.isfinite(target)):
                    raise ValueError(f"hold positions must be {len(self._hold)} finite values")
            self._trajectories.clear()
            self._hold = np.clip(target, self._lower, self._upper)

    # -- sampling ---------------------------------------------------------------------------
    def sample(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """(positions, velocities) setpoints of all joints at time `now`, clamped to limits."""
        with self._lock:
            pos, vel = self._evaluate(now)
            finished = [t for t in self._trajectories if now >= t.end_time]
            for traj in finished:
                self._hold[traj.columns] = traj.pos[-1]
                self._trajectories.remove(traj)
            return pos, vel

    @property
    def active(self) -> bool:
        with self._lock:
            return bool(self._trajectories)

    # -- internals --------------------------------------------------------------------------
    def _evaluate(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        pos = self._hold.copy()
        vel = np.zeros_like(pos)
        for traj in self._trajectories:
            p, v = traj.evaluate(now)
            pos[traj.columns] = p
            vel[traj.columns] = v
        clamped = np.clip(pos, self._lower, self._upper)
        vel[clamped != pos] = 0.0
        return clamped, vel

    def _release(self, columns: np.ndarray, current: np.ndarray) -> None:
        """Take `columns` away from older trajectories; those joints hold `current` meanwhile."""
        self._hold[columns] = current[columns]
        kept: list[_ActiveTrajectory] = []
        for traj in self._trajectories:
            mask = ~np.isin(traj.columns, columns)
            if mask.all():
                kept.append(traj)
            elif mask.any():
                kept.append(_ActiveTrajectory(traj.columns[mask], traj.times, traj.pos[:, mask],
                                              traj.vel[:, mask], traj.acc[:, mask],
                                              traj.has_vel, traj.has_acc))
        self._trajectories = kept

    def _columns(self, joint_names: Sequence[str]) -> np.ndarray:
        unknown = [j for j in joint_names if j not in self._index]
        if unknown or not joint_names:
            raise TrajectoryRejected(
                f"trajectory names joints {unknown or '[]'} not among {self.joint_names}")
        if len(set(joint_names)) != len(joint_names):
            raise TrajectoryRejected(f"duplicate joint names in trajectory: {list(joint_names)}")
        return np.array([self._index[j] for j in joint_names])


def _or_zeros(values, n: int) -> np.ndarray:
    if values is None or len(values) == 0:
        return np.zeros(n)
    return np.asarray(values, dtype=float)


def _validate(points: Sequence[TrajectoryPoint], n: int) -> None:
    if not points:
        raise TrajectoryRejected("trajectory has no points")
    last = -math.inf
    for k, p in enumerate(points):
        for field in ("positions", "velocities", "accelerations"):
            values = getattr(p, field)
            if field == "positions" and (values is None or len(values) == 0):
                raise TrajectoryRejected(f"point {k} has no positions")
            if values is None or len(values) == 0:
                continue
            arr = np.asarray(values, dtype=float)
            if arr.shape != (n,):
                raise TrajectoryRejected(f"point {k}: {field} has {arr.size} values for {n} joints")
            if not np.all(np.isfinite(arr)):
                raise TrajectoryRejected(f"point {k}: {field} contains NaN or inf")
        if not (p.time_from_start > last) or not math.isfinite(p.time_from_start):
            raise TrajectoryRejected(f"point {k}: time_from_start must increase strictly")
        last = p.time_from_start


def _duration_s(d) -> float:
    return float(d.sec) + float(d.nanosec) * 1e-9


def points_from_msg(msg) -> tuple[list[str], list[TrajectoryPoint], float | None]:
    """trajectory_msgs/JointTrajectory (duck-typed) -> (joint names, points, start time or None)."""
    stamp = _duration_s(msg.header.stamp)
    points = [
        TrajectoryPoint(
            time_from_start=_duration_s(p.time_from_start),
            positions=np.asarray(p.positions, dtype=float),
            velocities=np.asarray(p.velocities, dtype=float) if len(p.velocities) else None,
            accelerations=np.asarray(p.accelerations, dtype=float) if len(p.accelerations) else None,
        )
        for p in msg.points
    ]
    return list(msg.joint_names), points, (stamp if stamp > 0 else None)
