"""When to publish what, in sim time, and how to pace sim time against the wall clock."""
from __future__ import annotations

import math
import time
from typing import Callable


class Periodic:
    """Fires once per `period` of sim time: at the first step at or after each multiple.

    A step that skips several periods fires once (no burst of stale frames).
    """

    def __init__(self, rate_hz: float, start: float = 0.0):
        if not rate_hz > 0:
            raise ValueError(f"rate must be positive, got {rate_hz}")
        self.period = 1.0 / rate_hz
        self._next = start

    def due(self, now: float) -> bool:
        if now + 1e-9 < self._next:
            return False
        self._next += self.period * (math.floor((now + 1e-9 - self._next) / self.period) + 1)
        return True


class Pacer:
    """Keeps sim time at `rtf` x wall time (rtf <= 0: as fast as possible) and measures RTF.

    When the sim cannot keep up it simply runs slower: no catch-up burst after a slow stretch.
    Counts its missed deadlines: steps that began more than `late_s` after their wall-clock due
    time (the sim node uses one camera period: an observation the policy was owed came late).
    """

    def __init__(self, rtf: float, wall: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, max_lag_s: float = 0.1,
                 late_s: float = 1.0 / 30.0):
        self.rtf = rtf
        self._wall = wall
        self._sleep = sleep
        self._max_lag = max_lag_s
        self._late = late_s
        self.steps = 0
        self.late_steps = 0  # missed deadlines: steps that began more than `late_s` behind schedule
        self._anchor_wall: float | None = None
        self._anchor_sim = 0.0
        self._window: tuple[float, float] | None = None
        self.measured_rtf = 0.0

    def wait(self, sim_time: float) -> None:
        now = self._wall()
        if self._anchor_wall is None:
            self._anchor_wall, self._anchor_sim = now, sim_time
            self._window = (now, sim_time)
            return
        if self.rtf > 0:
            due = self._anchor_wall + (sim_time - self._anchor_sim) / self.rtf
            self.steps += 1
            self.late_steps += now - due > self._late
            if due > now:
                self._sleep(due - now)
                now = self._wall()
            elif now - due > self._max_lag:  # behind: re-anchor so we do not sprint later
                self._anchor_wall, self._anchor_sim = now, sim_time
        w0, s0 = self._window
        if now - w0 >= 1.0:
            self.measured_rtf = (sim_time - s0) / (now - w0)
            self._window = (now, sim_time)
