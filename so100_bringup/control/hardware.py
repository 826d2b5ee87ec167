"""The small hardware interface the arm controller drives (plain Python, no rclpy).

Three implementations: the Feetech bus (`so100_bringup.feetech.arm.SO100Arm`), the MuJoCo arm
(`so100_bringup.sim.hardware.MujocoArm`) and `MockArm` below (tests, dry runs). Units are URDF
radians in JOINT_NAMES order. An implementation writes what it is given: the limits and the step
bound are the controller's job, the one place they live.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from so100_description.joints import JOINT_NAMES


class HardwareError(RuntimeError):
    """The hardware cannot do what was asked now (not connected, faulted); the text says why."""


@dataclass
class JointReading:
    stamp: float  # time.monotonic() (wall) or sim time, whichever the hardware runs on
    positions: np.ndarray  # rad, JOINT_NAMES order; NaN where never read
    velocities: np.ndarray  # rad/s
    efforts: np.ndarray  # N*m
    fresh: np.ndarray  # bool: this joint answered in this read


@dataclass
class HardwareStatus:
    connected: bool = False
    torque_enabled: bool = False
    fault: str = ""  # empty when healthy
    values: dict[str, Any] = field(default_factory=dict)  # implementation-specific diagnostics


class ArmHardware(Protocol):
    """What the controller needs of an arm."""

    joint_names: tuple[str, ...]

    def read(self) -> JointReading | None:
        """The latest joint state, or None while there is none (port gone, not connected yet).
        Never raises for hardware faults: they show in `status()`."""

    def write(self, goal: np.ndarray) -> None:
        """Send one goal per joint (rad). Never raises for hardware faults."""

    def set_torque(self, enabled: bool) -> None:
        """Torque on (goals first set to the measured pose, so nothing moves) or off (limp).
        Raises HardwareError when it cannot be done now."""

    @property
    def status(self) -> HardwareStatus: ...

    @property
    def resync_count(self) -> int:
        """Bumps whenever the caller must restart from the measured pose (connect, reconnect,
        torque change, a revived servo, a sim reset)."""

    def close(self, disable_torque: bool = False) -> None: ...


class MockArm:
    """An arm in memory: each joint moves toward its goal as a first-order lag (time constant
    `tau` s, on `clock`). Faults can be injected by setting `fault` (reads stop, writes refused)."""

    def __init__(self, initial: Sequence[float] | None = None, tau: float = 0.05,
                 clock: Callable[[], float] = time.monotonic, torque: bool = True):
        self.joint_names = JOINT_NAMES
        n = len(self.joint_names)
        self.positions = np.zeros(n) if initial is None else np.asarray(initial, dtype=float).copy()
        self.goal = self.positions.copy()
        self.tau = tau
        self._clock = clock
        self._t = clock()
        self.torque_enabled = torque
        self.fault = ""
        self.writes: list[np.ndarray] = []  # every goal written, for tests
        self._resync = 1

    @property
    def resync_count(self) -> int:
        return self._resync

    def _advance(self) -> np.ndarray:
        now = self._clock()
        dt, self._t = max(0.0, now - self._t), now
        previous = self.positions.copy()
        if self.torque_enabled and self.tau > 0:
            self.positions += (self.goal - self.positions) * (1.0 - np.exp(-dt / self.tau))
        elif self.torque_enabled:
            self.positions = self.goal.copy()
        return (self.positions - previous) / dt if dt > 0 else np.zeros_like(previous)

    def read(self) -> JointReading | None:
        if self.fault:
            return None
        velocities = self._advance()
        return JointReading(self._t, self.positions.copy(), velocities, np.zeros_like(self.positions),
                            np.ones(len(self.positions), dtype=bool))

    def write(self, goal: np.ndarray) -> None:
        if self.fault or not self.torque_enabled:
            return
        self.goal = np.asarray(goal, dtype=float).copy()
        self.writes.append(self.goal.copy())

    def set_torque(self, enabled: bool) -> None:
        if self.fault:
            raise HardwareError(f"mock arm faulted: {self.fault}")
        if enabled:
            self.goal = self.positions.copy()
        self.torque_enabled = enabled
        self._resync += 1

    @property
    def status(self) -> HardwareStatus:
        return HardwareStatus(connected=not self.fault, torque_enabled=self.torque_enabled, fault=self.fault)

    def close(self, disable_torque: bool = False) -> None:
        if disable_torque:
            self.torque_enabled = False
