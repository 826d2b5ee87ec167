"""One arm controller over any `ArmHardware` (plain Python, no rclpy).

The driver node (Feetech servos) and the sim node (MuJoCo) are thin ROS shells over this class.
It owns, once for every backend:

* the command source: the shared TrajectoryFollower (standalone mode: JointTrajectory topics,
  joint_trajectory_controller semantics) or the latest `hw/joint_commands` (hardware mode: the
  far side of ros2_control's topic-based system), parsed by `joint_command_from`;
* the watchdog: in hardware mode, commands older than `watchdog_timeout` make the arm hold the
  measured pose until new ones arrive;
* resync: after connect, reconnect, a torque change, a revived servo or a sim reset the goal
  restarts from the measured pose, and the follower holds it;
* the safety rule, in one place (`bounded_goal`): a NaN joint keeps its goal, goals are clamped to
  the URDF limits, and each goal moves at most `max_step` rad per cycle from the last one. A goal
  that starts outside the limits (an arm resting beyond them at torque-on) stays where it is or
  moves back toward the limits, step-bounded: enabling torque never moves the arm.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from so100_bringup.control.follower import TrajectoryFollower, TrajectoryPoint, TrajectoryRejected
from so100_bringup.control.hardware import ArmHardware, HardwareError, JointReading
from so100_description.joints import LimitArrays

MODES = ("standalone", "hardware")


class CommandRejected(ValueError):
    """A joint command message the controller will not use; the text says why."""


def joint_command_from(msg_names: Sequence[str], msg_positions: Sequence[float],
                       joint_names: Sequence[str]) -> np.ndarray:
    """`hw/joint_commands` (names + positions) -> one position per joint of `joint_names`, in that
    order. Every joint must be there exactly once, with a finite value, and no other joint."""
    names = list(msg_names)
    if len(names) != len(msg_positions):
        raise CommandRejected(f"{len(names)} names but {len(msg_positions)} positions")
    if len(set(names)) != len(names):
        raise CommandRejected(f"duplicate joint names {names}")
    wanted = list(joint_names)
    missing = [j for j in wanted if j not in names]
    unknown = [n for n in names if n not in wanted]
    if missing or unknown:
        raise CommandRejected(f"expected exactly the joints {wanted}; missing {missing}, unknown {unknown}")
    index = {n: i for i, n in enumerate(names)}
    try:
        command = np.array([float(msg_positions[index[j]]) for j in wanted])
    except (TypeError, ValueError) as exc:
        raise CommandRejected(f"positions are not numbers: {exc}") from None
    if not np.all(np.isfinite(command)):
        raise CommandRejected(f"non-finite positions {dict(zip(wanted, command.tolist()))}")
    return command


def bounded_goal(command: np.ndarray, base: np.ndarray, limits: LimitArrays,
                 max_step: float) -> np.ndarray:
    """The goal to write after `base` when `command` is wanted: NaN joints keep `base`, the rest
    are clamped to the limits and moved at most `max_step` from `base`. From a `base` outside the
    limits the goal only moves back toward them."""
    command = np.where(np.isfinite(command), command, base)
    clamped = np.clip(command, limits.lower, limits.upper)
    return base + np.clip(clamped - base, -max_step, max_step)


@dataclass
class ControllerStatus:
    mode: str
    accepting: bool  # commands are followed
    estopped: bool
    watchdog_tripped: bool
    goals_written: int
    goals_clamped: int  # goals changed by the limit clamp
    goals_step_limited: int  # goals changed by the step bound
    rejected_commands: int


class ArmController:
    """Commands in, safe goals out, one `cycle()` per control period (thread-safe)."""

    def __init__(self, hardware: ArmHardware, joint_names: Sequence[str], limits: LimitArrays,
                 max_step: float, mode: str = "standalone", watchdog_timeout: float = 0.5,
                 accepting: bool = True, clock: Callable[[], float] = time.monotonic):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if max_step <= 0:
            raise ValueError(f"max_step must be > 0 rad, got {max_step}")
        self.hw = hardware
        self.joint_names = list(joint_names)  # as on the topics (with any prefix)
        self.limits = limits
        self.max_step = float(max_step)
        self.mode = mode
        self.watchdog_timeout = float(watchdog_timeout)
        self._clock = clock  # wall clock of the watchdog
        self.accepting = accepting
        self.estopped = False
        self.goal: np.ndarray | None = None  # rad, the last goal written (None until known)
        self.last: JointReading | None = None
        self._now = 0.0  # node clock of the last cycle
        # Holds mid-range until the first reading re-syncs it; no goal is written before that.
        self.follower = TrajectoryFollower(self.joint_names, limits.clamp(np.zeros(len(self.joint_names))),
                                           limits.lower, limits.upper)
        self._commanded = False  # a command arrived since the last resync
        self._hw_command: np.ndarray | None = None
        self._hw_command_time = 0.0
        self.watchdog_tripped = False
        self._resync_seen = -1
        self.writes = 0
        self.clamped = 0
        self.step_limited = 0
        self.rejected_commands = 0
        self._lock = threading.RLock()

    # -- command sources (any thread) ---------------------------------------------------------
    def accepting_commands(self) -> bool:
        status = self.hw.status
        return (self.accepting and not self.estopped and status.connected and status.torque_enabled
                and not status.fault and self._resync_seen == self.hw.resync_count)

    def set_trajectory(self, joint_names: Sequence[str], points: Sequence[TrajectoryPoint],
                       start_time: float | None, now: float) -> None:
        """Standalone mode: follow a trajectory (JTC splice). Raises TrajectoryRejected."""
        with self._lock:
            self.follower.set_trajectory(joint_names, points, start_time, now)
            self._commanded = True

    def on_joint_commands(self, names: Sequence[str], positions: Sequence[float]) -> None:
        """Hardware mode: the latest position command. Raises CommandRejected."""
        try:
            command = joint_command_from(names, positions, self.joint_names)
        except CommandRejected:
            self.rejected_commands += 1
            raise
        with self._lock:
            self._hw_command = command
            self._hw_command_time = self._clock()
            self.watchdog_tripped = False
            self._commanded = True

    # -- operator (services) ------------------------------------------------------------------
    def enable(self, enabled: bool) -> str:
        """True: torque on, clear the e-stop, follow commands; False: hold the measured pose and
        ignore commands. Raises HardwareError."""
        with self._lock:
            if enabled:
                self.hw.set_torque(True)
                self.estopped = False
                self.accepting = True
                return "torque on, following commands"
            self.accepting = False
            self._hold()
            return "holding the measured pose; commands ignored"

    def set_torque(self, enabled: bool) -> str:
        with self._lock:
            self.hw.set_torque(enabled)
            return "torque on (holding the measured pose)" if enabled else "torque off (limp)"

    def estop(self, disable_torque: bool = False) -> str:
        """Hold the measured pose and ignore commands until enable(True). Never raises."""
        with self._lock:
            self.estopped = True
            self._hold()
            if disable_torque:
                try:
                    self.hw.set_torque(False)
                except HardwareError as exc:
                    return f"e-stop: holding, but torque could not be switched off: {exc}"
            return "e-stop: holding; enable resumes"

    def resync(self) -> None:
        """Restart from the measured pose at the next cycle (e.g. after a sim reset)."""
        with self._lock:
            self._resync_seen = -1

    # -- the control cycle --------------------------------------------------------------------
    def cycle(self, now: float) -> JointReading | None:
        """Read the arm, take this cycle's command from the source (trajectories are sampled at
        `now`, the node clock) and write it through the safety rule."""
        with self._lock:
            reading = self._read(now)
            if reading is not None:
                command = self._command()
                if command is not None:
                    self._write(command)
            return reading

    def step(self, command: Sequence[float] | np.ndarray | None = None, now: float = 0.0) -> JointReading | None:
        """One cycle with an explicit command (tests, benches, scripts); None writes nothing."""
        with self._lock:
            reading = self._read(now)
            if reading is not None and command is not None and self.accepting and not self.estopped:
                self._write(np.asarray(command, dtype=float).reshape(-1))
            return reading

    def exclusive(self) -> threading.RLock:
        """`with controller.exclusive():` uses the hardware outside the cycle (e.g. a health read)
        without racing the cycle or a service call: one user of the bus at a time."""
        return self._lock

    def status(self) -> ControllerStatus:
        return ControllerStatus(self.mode, self.accepting, self.estopped, self.watchdog_tripped, self.writes,
                                self.clamped, self.step_limited, self.rejected_commands)

    # -- internals ----------------------------------------------------------------------------
    def _read(self, now: float) -> JointReading | None:
        reading = self.hw.read()
        if reading is None:
            return None
        self.last = reading
        self._now = now
        if self._resync_seen != self.hw.resync_count and np.all(np.isfinite(reading.positions)):
            self._resync_seen = self.hw.resync_count
            self.goal = reading.positions.copy()  # as measured, inside the limits or not
            self.follower.hold(now, self.limits.clamp(reading.positions))
            self._hw_command = None
            self._commanded = False
        return reading

    def _command(self) -> np.ndarray | None:
        if not self.accepting or self.estopped or not self._commanded:
            return None
        if self.mode == "standalone":
            positions, _ = self.follower.sample(self._now)
            return positions
        if self._hw_command is None:
            return None
        if self._clock() - self._hw_command_time > self.watchdog_timeout:
            if not self.watchdog_tripped:
                self.watchdog_tripped = True
                self._hold()
            return None
        return self._hw_command

    def _writable(self) -> bool:
        status = self.hw.status
        return (status.connected and status.torque_enabled and not status.fault and self.goal is not None
                and self._resync_seen == self.hw.resync_count)

    def _write(self, command: np.ndarray) -> None:
        if not self._writable():
            return
        if command.shape != self.goal.shape:
            raise ValueError(f"command has {command.shape[0]} values for joints {self.joint_names}")
        target = bounded_goal(command, self.goal, self.limits, self.max_step)
        finite = np.where(np.isfinite(command), command, self.goal)
        clamped = np.clip(finite, self.limits.lower, self.limits.upper)
        self.clamped += int(np.any(clamped != finite))
        self.step_limited += int(np.any(target != clamped))
        self.hw.write(target)
        self.goal = target
        self.writes += 1

    def _hold(self) -> None:
        """Goal := the measured pose (e-stop, disable, watchdog); the follower holds it too."""
        if self.last is None or not np.all(np.isfinite(self.last.positions)):
            return
        self.goal = self.last.positions.copy()
        self.follower.hold(self._now, self.limits.clamp(self.goal))
        self._commanded = False
        status = self.hw.status
        if status.connected and status.torque_enabled and not status.fault:
            self.hw.write(self.goal)
            self.writes += 1


class ControlLoop:
    """Calls `cycle()` every 1/rate_hz s on a thread of its own and counts missed deadlines
    (cycles that started more than one period late)."""

    def __init__(self, cycle: Callable[[], None], rate_hz: float, name: str = "control_loop",
                 on_error: Callable[[Exception], None] | None = None):
        if rate_hz <= 0:
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        self.period = 1.0 / rate_hz
        self._cycle = cycle
        self._on_error = on_error or (lambda exc: None)
        self.cycles = 0
        self.missed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> "ControlLoop":
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            try:
                self._cycle()
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any single bad cycle
                self._on_error(exc)
            self.cycles += 1
            next_tick += self.period
            delay = next_tick - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                if delay < -self.period:
                    self.missed += 1
                next_tick = time.monotonic()
