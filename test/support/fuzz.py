"""Shared pieces of the fuzz tests (test_fuzz_*.py): how many inputs each property gets, and a
hardware interface that checks every goal the arm controller writes against the joint limits.

`SO100_FUZZ_EXAMPLES` sets the number of generated inputs per callback: the test suite uses a
few hundred so it stays fast; docs/reliability.md gives the 10,000-input run and its figures."""
from __future__ import annotations

import os

import numpy as np

from so100_bringup.control.hardware import MockArm
from so100_description.joints import JOINT_NAMES, LimitArrays

FUZZ_EXAMPLES = int(os.environ.get("SO100_FUZZ_EXAMPLES", "200"))


def fuzz_settings(**overrides):
    """hypothesis settings for a fuzzed callback: FUZZ_EXAMPLES inputs, no per-example deadline
    (a loaded CI machine is not a failure), no example database written into the repository."""
    from hypothesis import HealthCheck, settings

    kw = dict(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    kw.update(overrides)
    return settings(**kw)


class LimitGuardArm(MockArm):
    """A MockArm that records every goal written to it and whether it was inside the joint limits
    (`variant`, JOINT_NAMES order), and the largest per-joint step between two writes."""

    def __init__(self, variant: str = "so101", **kw):
        super().__init__(**kw)
        self.limits = LimitArrays.for_joints(JOINT_NAMES, variant)
        self.writes = 0
        self.out_of_limits: list[np.ndarray] = []
        self.max_step = 0.0
        self._last: np.ndarray | None = None

    def write(self, goal: np.ndarray) -> None:
        goal = np.asarray(goal, dtype=float)
        self.writes += 1
        inside = np.all(np.isfinite(goal)) and np.all(goal >= self.limits.lower - 1e-9) \
            and np.all(goal <= self.limits.upper + 1e-9)
        if not inside:
            self.out_of_limits.append(goal.copy())
        if self._last is not None and np.all(np.isfinite(goal)):
            self.max_step = max(self.max_step, float(np.max(np.abs(goal - self._last))))
        self._last = goal.copy()
        super().write(goal)
