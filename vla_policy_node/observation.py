"""Build LeRobot observations from the latest camera frames and joint state (no rclpy).

* Images: one slot per policy camera (`observation.images.<name>`), fed with RGB frames already
  decoded by so100_common.images; at build time each frame is brought to the policy's H x W
  ("resize": plain resize; "crop": centre-crop to the policy's aspect ratio, then resize).
* State: /joint_states by joint name (any order, extra joints ignored, optional prefix) ->
  radians -> LeRobot units through so100_description.calibration.JointUnitConverter, the same module
  the driver uses, so a policy trained on a real arm with LeRobot sees the same numbers.
* Staleness: ages are measured from receipt in this node (camera and arm clocks of other
  machines need not agree); an input older than `max_age` makes the build fail with a reason.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from so100_common.images import RESIZE_MODES, fit_image
from so100_description.joints import JOINT_NAMES

from .backends.base import IMAGE_PREFIX, PolicyInput


class ObservationUnavailable(RuntimeError):
    """No usable observation right now (missing or stale input); the text says which."""


class JointStateError(ValueError):
    """A /joint_states message that cannot be used (missing joints, NaN, size mismatch)."""




@dataclass
class Frame:
    rgb: np.ndarray
    received: float  # node clock, s
    arrival_wall: float  # time.perf_counter() at receipt, for latency figures


@dataclass
class BuiltObservation:
    policy_input: PolicyInput
    positions: np.ndarray  # rad, in `joints` order (for safety, EE conversion)
    oldest_input: float  # receipt time of the oldest input used
    newest_image_arrival: float  # perf_counter of the freshest frame used
    frame_seq: int = 0


class ObservationBuilder:
    """Thread-safe store of the latest inputs; `build(now)` snapshots them for one inference."""

    def __init__(self, image_shapes: Mapping[str, tuple[int, ...] | None], converter,
                 joints: Sequence[str] = JOINT_NAMES, prefix: str = "", max_image_age: float = 0.5,
                 max_state_age: float = 0.5, resize_mode: str = "resize", task: str = "",
                 state_vector: Callable[[Mapping[str, float]], np.ndarray] | None = None):
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f"unknown resize mode {resize_mode!r}; expected one of {RESIZE_MODES}")
        self.image_hw = {k: (None if s is None else (int(s[1]), int(s[2]))) for k, s in image_shapes.items()}
        for key in self.image_hw:
            if not key.startswith(IMAGE_PREFIX):
                raise ValueError(f"image key {key!r} must start with {IMAGE_PREFIX!r}")
        self.converter = converter
        self.joints = list(joints)
        self.prefix = prefix
        self.max_image_age = float(max_image_age)
        self.max_state_age = float(max_state_age)
        self.resize_mode = resize_mode
        self._state_vector = state_vector or (lambda pos: converter.state_vector(pos, self.joints))
        self._lock = threading.Lock()
        self._frames: dict[str, Frame] = {}
        self.frame_seq = 0  # bumps on every new frame (the runner never infers twice on one frame)
        self._positions: np.ndarray | None = None
        self._state_time = -math.inf
        self.task = task
        self.rejected_states = 0

    # -- inputs --------------------------------------------------------------------------
    def set_task(self, task: str) -> None:
        with self._lock:
            self.task = str(task)

    def update_image(self, key: str, rgb: np.ndarray, received: float, arrival_wall: float) -> None:
        if key not in self.image_hw:
            raise KeyError(f"{key!r} is not an image input of the policy ({sorted(self.image_hw)})")
        with self._lock:
            self._frames[key] = Frame(rgb, received, arrival_wall)
            self.frame_seq += 1

    def update_joint_state(self, names: Sequence[str], positions: Sequence[float], received: float) -> np.ndarray:
        """Store a JointState; raises JointStateError (and keeps the previous one) when unusable."""
        try:
            values = self.positions_from_joint_state(names, positions)
        except JointStateError:
            self.rejected_states += 1
            raise
        with self._lock:
            self._positions, self._state_time = values, received
        return values

    def positions_from_joint_state(self, names: Sequence[str], positions: Sequence[float]) -> np.ndarray:
        names = list(names)
        if len(positions) != len(names):
            raise JointStateError(f"joint_states has {len(names)} names but {len(positions)} positions")
        index = {n: i for i, n in enumerate(names)}
        wanted = [self.prefix + j for j in self.joints]
        missing = [j for j in wanted if j not in index]
        if missing:
            raise JointStateError(f"joint_states lacks joint(s) {missing}")
        values = np.array([positions[index[j]] for j in wanted], dtype=float)
        if not np.all(np.isfinite(values)):
            bad = [j for j, v in zip(wanted, values) if not math.isfinite(v)]
            raise JointStateError(f"joint_states has non-finite position(s) for {bad}")
        return values

    def latest_positions(self) -> np.ndarray | None:
        with self._lock:
            return None if self._positions is None else self._positions.copy()

    # -- snapshot ------------------------------------------------------------------------
    def input_problem(self, now: float) -> str:
        """Why no observation can be built at `now` ("" when one can)."""
        with self._lock:
            return self._input_problem(now, self._frames, self._positions, self._state_time)

    def _input_problem(self, now, frames, positions, state_time) -> str:
        if positions is None:
            return "no /joint_states received yet"
        if now - state_time > self.max_state_age:
            return f"joint state is stale ({now - state_time:.3f} s old > {self.max_state_age} s)"
        missing = [k for k in self.image_hw if k not in frames]
        if missing:
            return f"no image received yet for {missing}"
        stale = {k: round(now - f.received, 3) for k, f in frames.items() if now - f.received > self.max_image_age}
        if stale:
            return f"image(s) stale (age s > {self.max_image_age}): {stale}"
        return ""

    def build(self, now: float) -> BuiltObservation:
        with self._lock:
            frames = dict(self._frames)
            seq = self.frame_seq
            positions = None if self._positions is None else self._positions.copy()
            state_time = self._state_time
            task = self.task
        problem = self._input_problem(now, frames, positions, state_time)
        if problem:
            raise ObservationUnavailable(problem)
        images = {k: fit_image(f.rgb, self.image_hw[k], self.resize_mode) for k, f in frames.items()
                  if k in self.image_hw}
        state = np.asarray(self._state_vector(dict(zip(self.joints, positions))), dtype=np.float32)
        oldest = min([state_time] + [f.received for f in frames.values()])
        newest_arrival = max((f.arrival_wall for f in frames.values()), default=0.0)
        return BuiltObservation(PolicyInput(state=state, images=images, task=task, timestamp=oldest),
                                positions, oldest, newest_arrival, seq)
