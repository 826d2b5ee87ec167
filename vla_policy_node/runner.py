"""The policy loop without ROS: observation -> backend (worker thread) -> safety -> splice -> publish.

The rclpy node (node.py) and the benchmarks drive this class; it owns one worker thread so ROS
callbacks never block on inference. Life cycle: `start()` the thread, `enable(True)` to run,
`enable(False)` to stop (hold), `estop()` to hold and latch until the next enable, `shutdown()`.
A bad policy output (NaN, wrong shape), a failing backend or an unusable EE conversion holds the
arm at its current setpoint, records the error and disables the loop: nothing runs until an
operator enables it again.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .backends.base import BackendError, PolicyBackend
from .chunking import ChunkScheduler, Segment
from .observation import BuiltObservation, ObservationBuilder, ObservationUnavailable
from .safety import InvalidPolicyOutput, validate_chunk

ActionMapper = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (chunk, current rad) -> T x n rad


@dataclass
class RunnerStatus:
    enabled: bool = False
    estopped: bool = False
    fault: str = ""  # last fault that disabled the loop
    waiting: str = ""  # why no inference is running right now (missing/stale input)
    stalls: int = 0  # times an inference was due and an input was missing or stale
    image_stalls: int = 0  # of those, the ones an image held up
    inferences: int = 0
    published: int = 0
    last_inference_s: float = float("nan")  # backend call
    last_image_to_publish_s: float = float("nan")  # freshest frame's arrival -> publish
    history: list[tuple[float, float]] = field(default_factory=list)  # (image->publish, backend) pairs


class PolicyRunner:
    def __init__(self, backend: PolicyBackend, builder: ObservationBuilder, scheduler: ChunkScheduler,
                 action_mapper: ActionMapper, publish: Callable[[Segment], None],
                 publish_hold: Callable[[np.ndarray], None], now_fn: Callable[[], float],
                 action_dim: int, log: Callable[[str, str], None] | None = None,
                 require_new_frame: bool = True, history: int = 200):
        self.backend = backend
        self.builder = builder
        self.scheduler = scheduler
        self.action_mapper = action_mapper
        self._publish = publish
        self._publish_hold = publish_hold
        self._now = now_fn
        self.action_dim = int(action_dim)
        self._log = log or (lambda level, text: None)
        self.require_new_frame = require_new_frame and bool(builder.image_hw)
        self._history = history
        self.status = RunnerStatus()
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._running = False
        self._generation = 0  # bumps on enable/disable/estop: results of older inferences are dropped
        self._last_seq = -1
        self._thread: threading.Thread | None = None

    # -- control --------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._running = True
            self._thread = threading.Thread(target=self._loop, name="policy-worker", daemon=True)
            self._thread.start()

    def shutdown(self, timeout: float = 5.0) -> None:
        self._running = False
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def notify(self) -> None:
        """A new input arrived: let the worker check whether to infer now."""
        self._wake.set()

    def enable(self, on: bool) -> str:
        with self._lock:
            self._generation += 1
            if on:
                self.status.enabled, self.status.estopped, self.status.fault = True, False, ""
                self.scheduler.reset()
                self._last_seq = -1
                try:
                    self.backend.reset()
                except Exception as exc:  # a reset failure must not leave the loop half-enabled
                    self.status.enabled = False
                    return f"backend reset failed: {exc}"
                message = "policy enabled"
            else:
                self.status.enabled = False
                self._hold("stopped")
                message = "policy stopped: holding position"
        self._wake.set()
        return message

    def estop(self) -> str:
        with self._lock:
            self._generation += 1
            self.status.enabled = False
            self.status.estopped = True
            self._hold("e-stop")
        return "e-stop: holding position; enable to resume"

    # -- worker ---------------------------------------------------------------------------
    def _loop(self) -> None:
        poll = max(0.002, self.scheduler.dt / 4)
        while self._running:
            self._wake.wait(poll)
            self._wake.clear()
            if not self._running:
                break
            try:
                self.step()
            except Exception as exc:  # never let the worker die silently
                self._fault(f"internal error: {type(exc).__name__}: {exc}")

    def step(self) -> bool:
        """Run one inference if one is due and possible; True when something was published."""
        with self._lock:
            if not self.status.enabled:
                return False
            generation = self._generation
            now = self._now()
            if not self.scheduler.needs_inference(now):
                return False
            if self.require_new_frame and self.builder.frame_seq == self._last_seq:
                # due, but only frames already used: wait for the next one (and say so if they stopped)
                self._set_waiting(self.builder.input_problem(now))
                return False
            try:
                built = self.builder.build(now)
            except ObservationUnavailable as exc:
                self._set_waiting(str(exc))
                return False
            self.status.waiting = ""
            self._last_seq = built.frame_seq
        return self._infer(built, now, generation)

    def _infer(self, built: BuiltObservation, obs_time: float, generation: int) -> bool:
        t_call = time.perf_counter()
        try:
            raw = self.backend.predict_chunk(built.policy_input)
        except BackendError as exc:
            return self._fault(str(exc), generation)
        t_infer = time.perf_counter() - t_call
        try:
            actions = validate_chunk(raw, self.action_dim)
            joints = self.action_mapper(actions, built.positions)
            joints = validate_chunk(joints, self.scheduler.n)
        except (InvalidPolicyOutput, ValueError, KeyError) as exc:
            return self._fault(f"invalid policy output: {exc}", generation)
        with self._lock:
            if generation != self._generation or not self.status.enabled:
                return False  # stopped or re-enabled meanwhile: this chunk belongs to the past
            now = self._now()
            self.scheduler.record_latency(now - obs_time)
            segment = self.scheduler.integrate(joints, obs_time, now, current=built.positions)
            self.status.inferences += 1
            self.status.last_inference_s = t_infer
            if segment is None:
                self._log("warn", "chunk arrived too late: every action already in the past")
                return False
            self._publish(segment)
            t_pub = time.perf_counter()
            self.status.published += 1
            if built.newest_image_arrival:
                self.status.last_image_to_publish_s = t_pub - built.newest_image_arrival
                self.status.history.append((self.status.last_image_to_publish_s, t_infer))
                del self.status.history[:-self._history]
        return True

    def _set_waiting(self, reason: str) -> None:
        if reason and not self.status.waiting:
            self.status.stalls += 1
            self.status.image_stalls += "image" in reason
        if reason and reason.split(" (")[0] != self.status.waiting.split(" (")[0]:
            self._log("warn", f"waiting for inputs: {reason}")
        self.status.waiting = reason

    # -- holding --------------------------------------------------------------------------
    def current_setpoint(self, now: float) -> np.ndarray | None:
        sample = self.scheduler.sample(now)
        if sample is not None:
            return sample[0]
        return self.builder.latest_positions()

    def _hold(self, why: str) -> None:
        now = self._now()
        position = self.current_setpoint(now)
        if position is None:
            return  # never commanded, nothing measured: nothing to hold
        self.scheduler.hold(now, position)
        try:
            self._publish_hold(position)
        except Exception as exc:
            self._log("error", f"could not publish hold ({why}): {exc}")

    def _fault(self, message: str, generation: int | None = None) -> bool:
        with self._lock:
            if generation is not None and generation != self._generation:
                return False
            self._generation += 1
            self.status.enabled = False
            self.status.fault = message
            self._hold("fault")
        self._log("error", f"{message}; holding position, policy disabled (call ~/enable to resume)")
        return False
