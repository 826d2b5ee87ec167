"""Local LeRobot policy: any PreTrainedPolicy folder, loaded with LeRobot's own factory.

The checkpoint's config.json picks the policy class (get_policy_class), its weights load with
`from_pretrained`, and its saved policy_preprocessor / policy_postprocessor pipelines carry the
normalisation statistics, tokenizer steps etc. Nothing here knows ACT from SmolVLA or pi0.

Vision-language policies also name models by hub id or folder: SmolVLA's `vlm_model_name` (whose
config and processor it reads at construction) and tokenizer steps' `tokenizer_name`. Those are
checked before loading, so an offline robot gets "download X once" rather than a stack trace.
"""
from __future__ import annotations

import json
import os
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


# Key prefix of SmolVLA's VLM inside its policy state dict (model.vlm_with_expert.vlm.*).
_SMOLVLA_VLM_PREFIX = "model.vlm_with_expert.vlm."


def _external_models(path: Path, config) -> list[tuple[str, str, str]]:
    """(what, name, a file it must have) for every model the checkpoint names outside itself."""
    refs = []
    vlm = getattr(config, "vlm_model_name", None)
    if isinstance(vlm, str) and vlm:
        refs.append(("vlm_model_name in config.json", vlm, "config.json"))
    try:
        steps = json.loads((path / "policy_preprocessor.json").read_text()).get("steps", [])
    except (OSError, ValueError, AttributeError):
        steps = []  # reported when the processors are loaded
    for step in steps if isinstance(steps, list) else []:
        name = (step.get("config") or {}).get("tokenizer_name") if isinstance(step, dict) else None
        if isinstance(name, str) and name and name not in [r[1] for r in refs]:
            refs.append((f"tokenizer_name of {step.get('registry_name', 'a step')} in policy_preprocessor.json",
                         name, "tokenizer_config.json"))
    return refs


def check_external_models(path: Path, config) -> None:
    """A folder that is missing, or a hub id that is not cached while HF_HUB_OFFLINE is set
    -> CheckpointError naming it and the fix."""
    from huggingface_hub import constants, try_to_load_from_cache

    for what, name, needed in _external_models(path, config):
        local = Path(name).expanduser()
        if local.is_dir():
            continue
        if local.is_absolute() or name.startswith(("~", ".")) or name.count("/") > 1:
            raise CheckpointError(f"policy checkpoint {path}: {what} is {name!r}, a folder that does "
                                  "not exist (was the model moved? point it at its new place)")
        offline = constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
        if offline and not isinstance(try_to_load_from_cache(name, needed), str):
            raise CheckpointError(
                f"policy checkpoint {path}: {what} is the hub model {name!r}, which is not in the "
                f"Hugging Face cache and HF_HUB_OFFLINE is set: download it once while online "
                f"(hf download {name}) or set {what.split(' ')[0]} to a local copy of it")


def _skip_duplicate_vlm_weights(path: Path, config) -> bool:
    """SmolVLA checkpoints saved with load_vlm_weights=True would load the full VLM from the hub
    at construction, only for model.safetensors to overwrite it. When the checkpoint carries the
    VLM weights, build the VLM from its config instead (then only its config and processor are
    needed). Returns True when it switched (the caller verifies the weights covered the VLM)."""
    if not getattr(config, "load_vlm_weights", False):
        return False
    from safetensors import safe_open

    try:
        with safe_open(str(path / "model.safetensors"), framework="pt") as f:
            has_vlm = any(k.startswith(_SMOLVLA_VLM_PREFIX) for k in f.keys())
    except Exception:
        return False  # unreadable: from_pretrained reports it
    if has_vlm:
        config.load_vlm_weights = False
    return has_vlm


def _check_vlm_weights_loaded(path: Path, policy) -> None:
    """Every VLM tensor was in model.safetensors (lerobot loads non-strictly), tied copies aside."""
    from safetensors import safe_open

    with safe_open(str(path / "model.safetensors"), framework="pt") as f:
        saved = set(f.keys())
    state = policy.state_dict()
    loaded_ptrs = {t.data_ptr() for k, t in state.items() if k in saved}
    missing = [k for k, t in state.items()
               if k.startswith(_SMOLVLA_VLM_PREFIX) and k not in saved and t.data_ptr() not in loaded_ptrs]
    if missing:
        raise CheckpointError(f"policy checkpoint {path}: model.safetensors lacks {len(missing)} VLM "
                              f"weight(s) (e.g. {missing[0]})")


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
        check_external_models(self.path, config)
        vlm_from_checkpoint = _skip_duplicate_vlm_weights(self.path, config)
        try:
            self.policy = policy_cls.from_pretrained(str(self.path), config=config)
        except ImportError as exc:  # e.g. SmolVLA without transformers
            raise CheckpointError(f"{where}: policy type {config.type!r} needs a package that is not "
                                  f"installed: {exc} (pip install so100_vla[vla])") from None
        except Exception as exc:
            raise CheckpointError(f"{where}: weights cannot be loaded ({type(exc).__name__}: {exc})") from None
        if vlm_from_checkpoint:
            _check_vlm_weights_loaded(self.path, self.policy)
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
