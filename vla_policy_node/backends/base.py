"""What every policy backend provides (plain Python; no rclpy, no torch at import time)."""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

IMAGE_PREFIX = "observation.images."
STATE_KEY = "observation.state"
ACTION_KEY = "action"


class CheckpointError(RuntimeError):
    """A policy checkpoint that is missing, corrupt or does not fit this robot/node setup."""


class BackendError(RuntimeError):
    """Inference failed (remote server gone, model raised); the node holds and reports it."""


@dataclass
class PolicySpec:
    """The policy's inputs and outputs, as its checkpoint declares them."""
    policy_type: str
    state_dim: int | None
    action_dim: int
    image_shapes: dict[str, tuple[int, ...] | None]  # full key -> (C, H, W); None: any size
    chunk_size: int
    source: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def camera_names(self) -> list[str]:
        return [k[len(IMAGE_PREFIX):] for k in self.image_shapes]

    def image_hw(self, key: str) -> tuple[int, int] | None:
        shape = self.image_shapes.get(key)
        if shape is None or len(shape) != 3:
            return None
        return int(shape[1]), int(shape[2])


@dataclass
class PolicyInput:
    """One observation in LeRobot's units, ready for any backend."""
    state: np.ndarray  # (state_dim,) float32, LeRobot units
    images: dict[str, np.ndarray]  # full key -> H x W x 3 uint8 RGB
    task: str = ""
    timestamp: float = 0.0  # s, when it was observed (node clock)


class PolicyBackend(ABC):
    spec: PolicySpec

    @abstractmethod
    def predict_chunk(self, obs: PolicyInput) -> np.ndarray:
        """One inference: (T, action_dim) actions in LeRobot units (not yet validated)."""

    def reset(self) -> None:
        """Forget episode state (called when the node is (re-)enabled)."""

    def close(self) -> None:
        """Release resources (threads, channels)."""


def read_spec_from_config(path: str | Path) -> PolicySpec:
    """Read a LeRobot checkpoint's config.json into a PolicySpec with clear errors."""
    root = Path(path).expanduser()
    if not root.exists():
        raise CheckpointError(f"policy checkpoint {root} does not exist")
    if not root.is_dir():
        raise CheckpointError(f"policy checkpoint {root} is not a directory (expected a LeRobot "
                              "save_pretrained folder with config.json and model.safetensors)")
    config_file = root / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"policy checkpoint {root} has no config.json")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"policy checkpoint {config_file} is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or "type" not in config:
        raise CheckpointError(f"{config_file} has no policy 'type' (not a LeRobot policy config)")
    inputs = config.get("input_features") or {}
    outputs = config.get("output_features") or {}
    if ACTION_KEY not in outputs:
        raise CheckpointError(f"{config_file} declares no '{ACTION_KEY}' output feature")
    try:
        action_dim = int(outputs[ACTION_KEY]["shape"][-1])
        state_dim = int(inputs[STATE_KEY]["shape"][-1]) if STATE_KEY in inputs else None
        images = {k: tuple(int(v) for v in ft["shape"]) for k, ft in inputs.items()
                  if ft.get("type") == "VISUAL" or k.startswith(IMAGE_PREFIX)}
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise CheckpointError(f"{config_file} has malformed input/output features: {exc}") from None
    chunk = int(config.get("n_action_steps") or config.get("chunk_size") or 1)
    return PolicySpec(policy_type=str(config["type"]), state_dim=state_dim, action_dim=action_dim,
                      image_shapes=images, chunk_size=chunk, source=str(root),
                      extra={"chunk_size": config.get("chunk_size")})


def check_compatibility(spec: PolicySpec, cameras: Sequence[str], state_dim: int,
                        action_dim: int) -> None:
    """Raise CheckpointError naming every mismatch between the checkpoint and the node setup."""
    problems: list[str] = []
    if spec.state_dim is not None and spec.state_dim != state_dim:
        problems.append(f"observation.state has {spec.state_dim} dimensions but the arm provides "
                        f"{state_dim} joints")
    if spec.action_dim != action_dim:
        problems.append(f"action has {spec.action_dim} dimensions; the node's action space needs {action_dim}")
    known = set(spec.camera_names)
    unknown = [c for c in cameras if c not in known]
    if unknown:
        problems.append(f"camera key(s) {unknown} are not inputs of the policy "
                        f"(it expects {sorted(known) or 'no cameras'})")
    missing = [c for c in spec.camera_names if c not in cameras]
    if missing:
        problems.append(f"the policy needs camera(s) {missing} that are not mapped to a topic")
    if problems:
        raise CheckpointError(f"policy {spec.source or spec.policy_type} does not fit: " + "; ".join(problems))
