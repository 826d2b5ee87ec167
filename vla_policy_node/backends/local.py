"""Local LeRobot policy: any PreTrainedPolicy folder, loaded with LeRobot's own factory.

The checkpoint's config.json picks the policy class (get_policy_class), its weights load with
`from_pretrained`, and its saved policy_preprocessor / policy_postprocessor pipelines carry the
normalisation statistics, tokenizer steps etc. Nothing here knows ACT from SmolVLA or pi0.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from .base import (STATE_KEY, BackendError, CheckpointError, PolicyBackend, PolicyInput,
                   read_spec_from_config)

_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16"}


def _resolve_device(device: str) -> str:
    import torch

    if device in ("", "auto"):
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CheckpointError(f"device {device!r} requested but CUDA is not available on this machine")
    return device


class LocalLeRobotBackend(PolicyBackend):
    """Runs a LeRobot policy in this process (call predict_chunk from one worker thread)."""

    def __init__(self, path: str | Path, device: str = "cpu", dtype: str = "float32",
                 torch_threads: int = 0):
        self.path = Path(path).expanduser()
        self.spec = read_spec_from_config(self.path)
        try:
            import torch
            from lerobot.configs import PreTrainedConfig
            from lerobot.policies.factory import get_policy_class, make_pre_post_processors
        except ImportError as exc:
            raise CheckpointError(f"the local backend needs lerobot and torch: {exc} "
                                  "(pip install so100_vla[policy])") from None
        if dtype not in _DTYPES:
            raise CheckpointError(f"unknown dtype {dtype!r}; expected one of {sorted(_DTYPES)}")
        if torch_threads > 0:
            torch.set_num_threads(int(torch_threads))
        self._torch = torch
        self.device = _resolve_device(device)
        self.dtype = getattr(torch, _DTYPES[dtype])
        where = f"policy checkpoint {self.path}"
        try:
            config = PreTrainedConfig.from_pretrained(str(self.path))
            config.device = self.device
            policy_cls = get_policy_class(config.type)
        except Exception as exc:  # draccus / unknown type / bad fields
            raise CheckpointError(f"{where}: config.json cannot be used: {exc}") from None
        weights = [p for p in self.path.glob("*.safetensors") if p.name.startswith("model")]
        if not weights:
            raise CheckpointError(f"{where} has no model.safetensors (weights missing)")
        try:
            self.policy = policy_cls.from_pretrained(str(self.path), config=config)
        except Exception as exc:
            raise CheckpointError(f"{where}: weights cannot be loaded ({type(exc).__name__}: {exc})") from None
        self.policy.to(device=self.device, dtype=self.dtype)
        self.policy.eval()
        for name in ("policy_preprocessor.json", "policy_postprocessor.json"):
            if not (self.path / name).is_file():
                raise CheckpointError(f"{where} has no {name} (LeRobot >= 0.4 saves the "
                                      "normalisation pipelines next to the weights)")
        override = {"device_processor": {"device": self.device}}
        try:
            self.preprocessor, self.postprocessor = make_pre_post_processors(
                config, pretrained_path=str(self.path), preprocessor_overrides=override,
                postprocessor_overrides={"device_processor": {"device": "cpu"}})
        except Exception as exc:
            raise CheckpointError(f"{where}: pre/post-processors cannot be loaded: {exc}") from None
        self.config = config
        self._lock = threading.Lock()

    def to_batch(self, obs: PolicyInput) -> dict:
        """PolicyInput -> the un-batched dict LeRobot's preprocessor takes (float [0,1] CHW images)."""
        torch = self._torch
        batch = {STATE_KEY: torch.from_numpy(np.asarray(obs.state, dtype=np.float32))}
        for key, rgb in obs.images.items():
            batch[key] = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)
        batch["task"] = obs.task or ""
        return batch

    def infer_batch(self, batch: dict) -> np.ndarray:
        """preprocess -> predict_action_chunk -> postprocess, the bare policy call."""
        torch = self._torch
        with self._lock, torch.inference_mode():
            processed = self.preprocessor(batch)
            if self.dtype != torch.float32:
                processed = {k: (v.to(self.dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v)
                             for k, v in processed.items()}
            actions = self.policy.predict_action_chunk(processed)
            actions = self.postprocessor(actions.float())
        out = actions.detach().cpu().float().numpy()
        return out[0] if out.ndim == 3 else out

    def predict_chunk(self, obs: PolicyInput) -> np.ndarray:
        try:
            return self.infer_batch(self.to_batch(obs))
        except Exception as exc:
            raise BackendError(f"policy inference failed: {type(exc).__name__}: {exc}") from exc

    def reset(self) -> None:
        self.policy.reset()
