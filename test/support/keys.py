"""Scripted operator keys on a fake clock, for the record and evaluation loops."""
from __future__ import annotations

from typing import Sequence


class FakeClock:
    """Seconds that pass only when something waits (ScriptedKeys.get)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ScriptedKeys:
    """A key source whose keys come at given clock times: get(timeout) returns the next key
    when it is due within `timeout` (moving the clock to its time), else lets `timeout` pass.
    Once the script is used up it is `closed` (like stdin at its end)."""

    is_tty = True

    def __init__(self, clock: FakeClock, script: Sequence[tuple[float, str]]):
        self.clock = clock
        self.script = sorted(script, key=lambda item: item[0])
        self.closed = False

    def get(self, timeout: float) -> str | None:
        if self.script and self.script[0][0] <= self.clock.now + timeout:
            at, key = self.script.pop(0)
            self.clock.now = max(self.clock.now, at)
            return key
        self.clock.now += timeout
        self.closed = not self.script
        return None
