"""Safety limits for policy output (plain Python, no ROS).

Two layers: `validate_chunk` rejects what must never be executed (NaN/inf, wrong shape, empty)
so the node holds position and reports an error instead; `JointLimiter` shapes what is executed:
targets clamped to the URDF position limits (so100_description.joints, the same table the URDF
is built from), then a causal filter that bounds each step's velocity and its change
(acceleration), then a final clamp. The filter starts from the previous committed knot, so a
far-away first action becomes a ramp, never a jump.
"""
from __future__ import annotations

import math
import numpy as np

from so100_description.joints import LimitArrays


class InvalidPolicyOutput(ValueError):
    """The policy produced something that must not reach the arm (the text says what)."""


def validate_chunk(chunk, action_dim: int, min_len: int = 1) -> np.ndarray:
    """Return `chunk` as a float64 T x action_dim array or raise InvalidPolicyOutput."""
    try:
        arr = np.asarray(chunk, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidPolicyOutput(f"policy output is not numeric: {exc}") from None
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]  # batch of one
    if arr.ndim == 1 and arr.shape[0] == action_dim:
        arr = arr[None, :]  # single action
    if arr.ndim != 2 or arr.shape[1] != action_dim:
        raise InvalidPolicyOutput(
            f"policy output has shape {tuple(arr.shape)}; expected (T, {action_dim})")
    if arr.shape[0] < min_len:
        raise InvalidPolicyOutput(f"policy output has {arr.shape[0]} actions; expected at least {min_len}")
    bad = ~np.isfinite(arr)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise InvalidPolicyOutput(
            f"policy output contains {int(bad.sum())} non-finite value(s) (first at step {rows[0]}, "
            f"dimension {cols[0]})")
    return arr


class JointLimiter:
    """Clamp + velocity/acceleration limiting of knot sequences on a fixed time step."""

    def __init__(self, limits: LimitArrays):
        self.limits = limits
        self.clamped_knots = 0  # diagnostics: knots changed by any limit

    @staticmethod
    def _brake(distance: float, dv_max: float, dt: float) -> float:
        """Largest speed from which a stop in steps of dv_max fits in `distance`:
        from n*dv_max a discrete stop covers dv_max*dt*n(n+1)/2; the last short step may arrive."""
        if distance <= 0.0:
            return 0.0
        steps = math.floor(-0.5 + math.sqrt(0.25 + 2.0 * distance / (dv_max * dt)))
        return max(dv_max * steps, min(distance / dt, dv_max))

    def clamp(self, positions: np.ndarray) -> np.ndarray:
        return np.clip(positions, self.limits.lower, self.limits.upper)

    def __call__(self, targets: np.ndarray, p_prev: np.ndarray, v_prev: np.ndarray,
                 dt: float) -> tuple[np.ndarray, np.ndarray]:
        """targets (K x n) -> (positions, velocities) that respect every limit, starting from
        the knot before (p_prev, with velocity v_prev)."""
        lim = self.limits
        goal = self.clamp(np.asarray(targets, dtype=float))
        out_p = np.empty_like(goal)
        out_v = np.empty_like(goal)
        brake = self._brake
        # joints are independent: a scalar loop per joint is ~10x faster than numpy on 6-vectors
        for j in range(goal.shape[1]):
            lo, hi = float(lim.lower[j]), float(lim.upper[j])
            vmax, dv_max = float(lim.velocity[j]), float(lim.acceleration[j]) * dt
            p = min(max(float(p_prev[j]), lo), hi)
            v = min(max(float(v_prev[j]), -vmax), vmax)
            g_prev = None
            for k in range(goal.shape[0]):
                g = float(goal[k, j])
                # track the knots: their own velocity plus a braked correction of the error beyond
                # it, so a far-away target is approached without overshoot and a smooth chunk is
                # followed unchanged
                v_goal = v if g_prev is None else (g - g_prev) / dt
                g_prev = g
                error = g - p - v_goal * dt
                b = brake(abs(error), dv_max, dt)
                want = v_goal + min(max(error / dt, -b), b)
                want = min(max(want, -vmax), vmax)
                # never so fast towards a position limit that stopping would need more than amax
                want = min(want, brake(hi - p, dv_max, dt))
                want = max(want, -brake(p - lo, dv_max, dt))
                v_new = min(max(want, v - dv_max), v + dv_max)
                p_new = min(max(p + v_new * dt, lo), hi)
                v = (p_new - p) / dt
                p = p_new
                out_p[k, j], out_v[k, j] = p, v
        changed = np.any(np.abs(out_p - np.asarray(targets, dtype=float)) > 1e-9, axis=1)
        self.clamped_knots += int(changed.sum())
        return out_p, out_v
