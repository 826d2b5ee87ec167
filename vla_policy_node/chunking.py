"""Asynchronous action-chunk scheduling and splicing (plain Python, no ROS, no torch).

Time model. Every action of every chunk lives on one global control grid t_k = origin + k*dt
(dt = 1/fps of the policy). Action i of a chunk inferred from an observation taken at time
t_obs is meant for grid index round((t_obs - origin)/dt) + i, as in LeRobot's synchronous loop
where action 0 is sent right after the observation. Snapping to the grid moves a chunk by at
most dt/2 and makes successive chunks share knot times, so splices are exact.

Asynchrony. `needs_inference(now)` turns true while the current plan still has at least
`trigger_fraction` of a chunk (or, if longer, the expected inference latency plus a margin) left
to run, so the next chunk is computed on the freshest observation while the arm keeps moving.
When a chunk arrives, actions whose time is already past (now + lead_time, the inference and
transport latency) are dropped.

Splicing: a smooth crossfade ("temporal blend"), not real-time chunking (RTC). RTC inpaints the
overlap inside the model's sampler and so only applies to flow/diffusion policies with access
to their denoising loop; a crossfade works with every policy, local or remote. The first kept
action of the new chunk starts exactly at the committed plan (weight 0) and the weight rises
with the quintic smootherstep 6s^5 - 15s^4 + 10s^3, whose first and second derivatives vanish at
both ends, so position, velocity and acceleration stay continuous. What is faded out is the
correction (old plan - new chunk), held at its last value past the old plan's end, so the fade
may outlast the overlap. The fade length adapts: at least `blend_steps`, longer when the two
plans disagree by a lot, so that the fade's own acceleration stays below `blend_accel_ratio`
times the new chunk's peak acceleration (at most `blend_max_steps` and the chunk's length).
A first chunk (no plan yet) fades in from the arm's measured position over `blend_steps`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

# max |d^2/ds^2 smootherstep(s)| on [0, 1] = 10/sqrt(3)
_SMOOTHERSTEP_MAX_CURVATURE = 10.0 / math.sqrt(3.0)
# acceleration floor (rad/s^2) that keeps the adaptive blend finite for constant chunks
_MIN_REFERENCE_ACCEL = 0.5


def smootherstep(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, 0.0, 1.0)
    return s * s * s * (s * (6.0 * s - 15.0) + 10.0)


def knot_velocities(p_prev: np.ndarray, positions: np.ndarray, dt: float) -> np.ndarray:
    """Central-difference velocity at each knot (the last knot, where the plan ends, at rest),
    so a spline follower (JTC, the shared follower) interpolates with cubic Hermite segments."""
    path = np.vstack([p_prev, positions])
    vel = np.zeros_like(positions)
    if len(positions) > 1:
        vel[:-1] = (path[2:] - path[:-2]) / (2.0 * dt)
    return vel


@dataclass
class Segment:
    """A piece of the plan to send: knots on the control grid (absolute times, rad, rad/s)."""
    times: np.ndarray  # (K,)
    positions: np.ndarray  # (K, n)
    velocities: np.ndarray  # (K, n)
    dropped: int = 0  # actions of the chunk that were already in the past
    blend_steps: int = 0  # length of the crossfade used


@dataclass
class ScheduleStats:
    chunks: int = 0
    stale_chunks: int = 0  # arrived with every action already in the past
    dropped_actions: int = 0
    splices: list[int] = field(default_factory=list)  # grid indices where chunks were spliced


Limiter = Callable[[np.ndarray, np.ndarray, np.ndarray, float], tuple[np.ndarray, np.ndarray]]


class ChunkScheduler:
    """Keeps the committed joint-space plan and splices new chunks into it."""

    def __init__(self, n_joints: int, dt: float, trigger_fraction: float = 0.5,
                 lead_time: float = 0.03, blend_steps: int = 4, blend_max_steps: int = 30,
                 blend_accel_ratio: float = 0.25, latency_margin: float = 1.5,
                 chunk_horizon: int | None = None, limiter: Limiter | None = None,
                 blend: bool = True):
        if dt <= 0:
            raise ValueError(f"dt must be positive, got {dt}")
        if not 0.0 <= trigger_fraction <= 1.0:
            raise ValueError(f"trigger_fraction must be within [0, 1], got {trigger_fraction}")
        self.n = int(n_joints)
        self.dt = float(dt)
        self.trigger_fraction = float(trigger_fraction)
        self.lead_time = float(lead_time)
        self.blend_steps = max(1, int(blend_steps))
        self.blend_max_steps = max(self.blend_steps, int(blend_max_steps))
        self.blend_accel_ratio = float(blend_accel_ratio)
        self.latency_margin = float(latency_margin)
        self.chunk_horizon = chunk_horizon  # actions per chunk used (None: all)
        self.limiter = limiter
        self.blend = blend  # False: naive replace (the benchmark's baseline)
        self.origin: float | None = None
        self._k0 = 0  # grid index of the plan's first knot
        self._plan = np.zeros((0, self.n))  # committed positions, one row per grid index from _k0
        self._last_chunk_len = 0
        self.latency_estimate = 0.0  # s, running estimate of observation -> chunk latency
        self.stats = ScheduleStats()

    # -- grid ---------------------------------------------------------------------------
    def grid_index(self, t: float) -> int:
        if self.origin is None:
            self.origin = t
        return int(round((t - self.origin) / self.dt))

    def grid_time(self, k: int | np.ndarray) -> np.ndarray | float:
        assert self.origin is not None
        return self.origin + np.asarray(k) * self.dt

    # -- plan queries ---------------------------------------------------------------------
    @property
    def has_plan(self) -> bool:
        return len(self._plan) > 0

    @property
    def plan_end_time(self) -> float | None:
        if not self.has_plan:
            return None
        return float(self.grid_time(self._k0 + len(self._plan) - 1))

    def plan_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(times, positions) of the committed plan."""
        if not self.has_plan:
            return np.zeros(0), np.zeros((0, self.n))
        ks = np.arange(self._k0, self._k0 + len(self._plan))
        return np.asarray(self.grid_time(ks)), self._plan.copy()

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray] | None:
        """(position, velocity) of the plan at `t`; holds the last knot after the end."""
        if not self.has_plan:
            return None
        x = (t - self.grid_time(self._k0)) / self.dt
        last = len(self._plan) - 1
        if x >= last:
            return self._plan[-1].copy(), np.zeros(self.n)
        if x <= 0:
            vel = (self._plan[1] - self._plan[0]) / self.dt if last > 0 else np.zeros(self.n)
            return self._plan[0].copy(), vel
        i = int(math.floor(x))
        frac = x - i
        vel = (self._plan[i + 1] - self._plan[i]) / self.dt
        return self._plan[i] + frac * (self._plan[i + 1] - self._plan[i]), vel

    def remaining_time(self, now: float) -> float:
        end = self.plan_end_time
        return 0.0 if end is None else max(0.0, end - now)

    def needs_inference(self, now: float) -> bool:
        """True when the next chunk should be computed now so that the arm never waits."""
        if not self.has_plan:
            return True
        chunk_len = self._last_chunk_len or 1
        threshold = max(self.trigger_fraction * chunk_len * self.dt,
                        self.latency_margin * self.latency_estimate + self.lead_time + self.dt)
        return self.remaining_time(now) <= threshold

    def record_latency(self, seconds: float) -> None:
        if not math.isfinite(seconds) or seconds < 0:
            return
        # fast rise, slow decay: one slow inference must move the trigger point at once
        if seconds > self.latency_estimate:
            self.latency_estimate = seconds
        else:
            self.latency_estimate = 0.8 * self.latency_estimate + 0.2 * seconds

    # -- commands -------------------------------------------------------------------------
    def reset(self) -> None:
        self._plan = np.zeros((0, self.n))
        self._last_chunk_len = 0

    def hold(self, now: float, position: np.ndarray) -> None:
        """Forget the plan and hold `position` from `now` on (stop / e-stop / fault)."""
        k = self.grid_index(now)
        self._k0 = k
        self._plan = np.asarray(position, dtype=float).reshape(1, self.n).copy()
        self._last_chunk_len = 0

    def integrate(self, chunk: np.ndarray, obs_time: float, now: float,
                  current: np.ndarray | None = None) -> Segment | None:
        """Splice `chunk` (T x n, rad, already validated) observed at `obs_time` into the plan.

        `current` is the arm's position, used to start from when there is no plan yet.
        Returns the segment to publish, or None when every action is already in the past."""
        chunk = np.asarray(chunk, dtype=float)
        if chunk.ndim != 2 or chunk.shape[1] != self.n or len(chunk) == 0:
            raise ValueError(f"chunk must be T x {self.n}, got shape {chunk.shape}")
        if self.chunk_horizon:
            chunk = chunk[: self.chunk_horizon]
        self.stats.chunks += 1
        k_obs = self.grid_index(obs_time)
        k_first = max(k_obs, int(math.ceil((now + self.lead_time - self.origin) / self.dt - 1e-9)))
        drop = k_first - k_obs
        self.stats.dropped_actions += min(drop, len(chunk))
        if drop >= len(chunk):
            self.stats.stale_chunks += 1
            return None
        new = chunk[drop:]
        ks = np.arange(k_first, k_first + len(new))
        times = np.asarray(self.grid_time(ks), dtype=float)

        if not self.has_plan:
            start = current if current is not None else new[0]
            self.hold(now, np.asarray(start, dtype=float))
        old = np.array([self._plan_at_index(k) for k in ks])
        prev_k = k_first - 1
        p_prev = self._plan_at_index(prev_k)
        v_prev = (p_prev - self._plan_at_index(prev_k - 1)) / self.dt

        steps = 0
        if self.blend:
            plan_last_k = self._k0 + len(self._plan) - 1
            overlap = max(0, min(len(new), plan_last_k - k_first + 1))
            # correction = old plan - new chunk where the old plan exists, held constant after its
            # end (the old plan's last word on where the arm should be relative to the new chunk)
            correction = old - new
            if 0 < overlap < len(new):
                correction[overlap:] = correction[overlap - 1]
            steps = self._blend_length(correction, new, overlap)
            weights = smootherstep(np.arange(len(new)) / steps)[:, None]
            blended = new + (1.0 - weights) * correction
        else:
            blended = new
        if self.limiter is not None:
            positions, _ = self.limiter(blended, p_prev, v_prev, self.dt)
        else:
            positions = blended
        velocities = knot_velocities(p_prev, positions, self.dt)
        self._commit(k_first, positions)
        self._last_chunk_len = len(chunk)
        self.stats.splices.append(k_first)
        return Segment(times=times, positions=positions, velocities=velocities, dropped=drop,
                       blend_steps=steps)

    # -- internals ------------------------------------------------------------------------
    def _plan_at_index(self, k: int) -> np.ndarray:
        i = k - self._k0
        if i < 0:
            return self._plan[0].copy()
        if i >= len(self._plan):
            return self._plan[-1].copy()
        return self._plan[i].copy()

    def _blend_length(self, correction: np.ndarray, new: np.ndarray, overlap: int) -> int:
        """Crossfade length: long enough that w''*gap/(L*dt)^2 stays under blend_accel_ratio times
        the chunk's own peak acceleration (at least blend_steps, at most blend_max_steps)."""
        if overlap <= 0:  # starting from rest (or after the plan ran out): a short fade-in
            return max(1, min(self.blend_steps, len(new)))
        gap = float(np.max(np.abs(correction)))
        accel = np.abs(np.diff(new, n=2, axis=0)) / self.dt**2 if len(new) >= 3 else np.zeros(1)
        ref = max(float(np.max(accel)), _MIN_REFERENCE_ACCEL)
        needed = math.sqrt(_SMOOTHERSTEP_MAX_CURVATURE * gap / (self.blend_accel_ratio * ref)) / self.dt
        steps = int(math.ceil(max(self.blend_steps, needed)))
        return max(1, min(steps, self.blend_max_steps, len(new)))

    def _commit(self, k_first: int, positions: np.ndarray) -> None:
        keep = max(0, k_first - self._k0)
        head = self._plan[:keep]
        if keep > len(self._plan):  # gap after the old plan ended: hold its last knot
            pad = np.repeat(self._plan[-1:], keep - len(self._plan), axis=0)
            head = np.vstack([self._plan, pad])
        plan = np.vstack([head, positions]) if len(head) else positions.copy()
        k0 = self._k0 if keep > 0 else k_first
        # keep a short history only (sampling and velocity need one knot before `now`)
        trim = max(0, len(plan) - len(positions) - 4)
        self._plan, self._k0 = plan[trim:], k0 + trim
