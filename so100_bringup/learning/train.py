"""Train a small ACT on a recorded LeRobot dataset, on the CPU, with lerobot's own trainer.

No fork: this builds a `TrainPipelineConfig` (dataset, ACT config, schedule) and calls
`lerobot.scripts.lerobot_train.train` with it; lerobot shows its tqdm progress bar and logs
metrics every `--log-freq` steps. Around it this command adds what the learning loop needs:
a thread limit (a shared 2-core machine), offline settings (no hub, no ImageNet download: the
ResNet backbone starts from random weights), a loss plot (PNG, drawn with OpenCV) from the
logged losses, and an export of the final checkpoint as fp16/bf16 safetensors that the policy
node loads like any LeRobot checkpoint.

    python -m so100_bringup.learning.train --dataset-root data/so101_pick_place \
        --output-dir outputs/act_so101_pick_place --steps 3000 --export models/act_so101_pick_place
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

log = logging.getLogger("so100_vla.train")

_LOSS_RE = re.compile(r"\bloss:([0-9.eE+-]+)")


@dataclass
class TrainSettings:
    dataset_root: Path
    output_dir: Path
    repo_id: str = "local/so101_recording"
    steps: int = 3000
    batch_size: int = 8
    lr: float = 2e-4
    # "cosine": linear warm-up then cosine decay to lr * min_lr_ratio (lerobot's
    # CosineDecayWithWarmupSchedulerConfig); "constant": ACT's own preset (AdamW, fixed lr).
    lr_schedule: str = "cosine"
    warmup_steps: int = 200
    min_lr_ratio: float = 0.1
    weight_decay: float = 1e-4
    grad_clip_norm: float = 10.0
    chunk_size: int = 30
    n_action_steps: int = 30
    dim_model: int = 256
    dim_feedforward: int = 1024
    n_heads: int = 8
    n_encoder_layers: int = 2
    n_decoder_layers: int = 1
    # The scripted expert is deterministic (one way to do each layout): ACT's VAE, there to model
    # several ways of doing the same thing, only adds cost and noise.
    use_vae: bool = False
    kl_weight: float = 10.0
    log_freq: int = 50
    save_freq: int = 1000
    seed: int = 1000
    threads: int = 1
    num_workers: int = 0
    video_backend: str = "pyav"
    episodes: list[int] | None = None
    cameras: list[str] | None = None  # the dataset's cameras the policy sees (None: all of them)
    extra: dict = field(default_factory=dict)


class LossRecorder(logging.Handler):
    """Collects the `loss:` values lerobot logs every log_freq steps."""

    def __init__(self, log_freq: int):
        super().__init__(level=logging.INFO)
        self.log_freq = log_freq
        self.points: list[tuple[int, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a foreign record with bad args: not ours
            return
        if "step:" in text:
            match = _LOSS_RE.search(text)
            if match:
                self.points.append(((len(self.points) + 1) * self.log_freq, float(match.group(1))))


def limit_threads(threads: int) -> None:
    """One core means one core: torch intra/inter-op pools and the BLAS/OpenMP pools."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # already set once in this process
        pass


LR_SCHEDULES = ("constant", "cosine")


def input_features(dataset_root: Path, cameras: Sequence[str]) -> dict:
    """The policy inputs for a subset of the dataset's cameras (state + those image streams)."""
    from lerobot.configs import FeatureType
    from lerobot.utils.feature_utils import dataset_to_policy_features

    features = dataset_to_policy_features(_read_info(dataset_root)["features"])
    images = {k[len("observation.images."):] for k, ft in features.items()
              if ft.type is FeatureType.VISUAL and k.startswith("observation.images.")}
    unknown = sorted(set(cameras) - images)
    if unknown or not cameras:
        raise SystemExit(f"train: cameras {unknown or '(none)'} are not in the dataset (it has {sorted(images)})")
    wanted = {f"observation.images.{c}" for c in cameras}
    return {k: ft for k, ft in features.items()
            if ft.type is not FeatureType.ACTION and (ft.type is not FeatureType.VISUAL or k in wanted)}


def _optimizer_and_schedule(s: TrainSettings) -> dict:
    """TrainPipelineConfig arguments for the learning-rate schedule."""
    if s.lr_schedule == "constant":
        return {}  # ACT's preset: AdamW at optimizer_lr / optimizer_lr_backbone, no scheduler
    if s.lr_schedule != "cosine":
        raise SystemExit(f"train: lr schedule must be one of {LR_SCHEDULES}, got {s.lr_schedule!r}")
    from lerobot.optim.optimizers import AdamWConfig
    from lerobot.optim.schedulers import CosineDecayWithWarmupSchedulerConfig

    return {"use_policy_training_preset": False,
            "optimizer": AdamWConfig(lr=s.lr, weight_decay=s.weight_decay, grad_clip_norm=s.grad_clip_norm),
            "scheduler": CosineDecayWithWarmupSchedulerConfig(
                num_warmup_steps=min(s.warmup_steps, s.steps), num_decay_steps=s.steps, peak_lr=s.lr,
                decay_lr=s.lr * s.min_lr_ratio)}


def build_config(s: TrainSettings):
    from lerobot.configs.default import DatasetConfig, WandBConfig
    from lerobot.configs.train import TrainPipelineConfig
    from lerobot.policies.act.configuration_act import ACTConfig

    extra = dict(s.extra)
    if s.cameras:
        extra["input_features"] = input_features(s.dataset_root, s.cameras)
    policy = ACTConfig(
        device="cpu", push_to_hub=False, pretrained_backbone_weights=None,
        chunk_size=s.chunk_size, n_action_steps=s.n_action_steps, dim_model=s.dim_model,
        dim_feedforward=s.dim_feedforward, n_heads=s.n_heads, n_encoder_layers=s.n_encoder_layers,
        n_decoder_layers=s.n_decoder_layers, use_vae=s.use_vae, kl_weight=s.kl_weight,
        optimizer_lr=s.lr, optimizer_lr_backbone=s.lr, optimizer_weight_decay=s.weight_decay, **extra)
    dataset = DatasetConfig(repo_id=s.repo_id, root=str(s.dataset_root), video_backend=s.video_backend,
                            episodes=s.episodes)
    return TrainPipelineConfig(
        dataset=dataset, policy=policy, output_dir=Path(s.output_dir), job_name=Path(s.output_dir).name,
        seed=s.seed, num_workers=s.num_workers, batch_size=s.batch_size, steps=s.steps,
        log_freq=s.log_freq, save_freq=s.save_freq, save_checkpoint=True, env_eval_freq=0,
        wandb=WandBConfig(enable=False), persistent_workers=False, prefetch_factor=None
        if s.num_workers == 0 else 2, **_optimizer_and_schedule(s))


def _read_info(dataset_root: Path) -> dict:
    info = Path(dataset_root) / "meta" / "info.json"
    if not info.is_file():
        raise SystemExit(f"train: {dataset_root} is not a LeRobot dataset (no meta/info.json); record one "
                         "with the recorder node first")
    return json.loads(info.read_text())


def check_dataset(s: TrainSettings) -> None:
    meta = _read_info(s.dataset_root)
    if int(meta.get("total_episodes", 0)) == 0:
        raise SystemExit(f"train: {s.dataset_root} holds no episodes")


def train(s: TrainSettings) -> tuple[Path, list[tuple[int, float]]]:
    """Run lerobot's trainer; returns the last checkpoint's pretrained_model dir and the losses."""
    check_dataset(s)
    if Path(s.output_dir).exists():
        raise SystemExit(f"train: {s.output_dir} exists; lerobot refuses to overwrite a run (pick a new "
                         "--output-dir or delete it)")
    limit_threads(s.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from lerobot.scripts import lerobot_train as trainer

    cfg = build_config(s)
    losses = LossRecorder(s.log_freq)
    root = logging.getLogger()
    # lerobot's init_logging() resets the root handlers: attach ours right after it runs.
    original_init = trainer.init_logging

    def init_logging_then_record(*a, **kw):
        original_init(*a, **kw)
        root.addHandler(losses)

    trainer.init_logging = init_logging_then_record
    try:
        trainer.train(cfg)
    finally:
        trainer.init_logging = original_init
        root.removeHandler(losses)
    last = Path(s.output_dir) / "checkpoints" / "last" / "pretrained_model"
    if not last.is_dir():
        raise RuntimeError(f"training finished but {last} is missing")
    return last, losses.points


def plot_losses(points: Sequence[tuple[int, float]], path: Path, title: str = "ACT training loss") -> Path:
    """A small line plot (PNG) of loss over steps, drawn with OpenCV (no matplotlib needed)."""
    import cv2
    import numpy as np

    w, h, left, right, top, bottom = 800, 480, 80, 20, 40, 50
    img = np.full((h, w, 3), 255, np.uint8)
    cv2.putText(img, title, (left, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 1, cv2.LINE_AA)
    x0, x1, y0, y1 = left, w - right, h - bottom, top
    cv2.rectangle(img, (x0, y1), (x1, y0), (0, 0, 0), 1)
    if points:
        steps = np.array([p[0] for p in points], float)
        loss = np.array([p[1] for p in points], float)
        lo, hi = float(loss.min()), float(loss.max())
        hi = hi if hi > lo else lo + 1.0
        smax = max(float(steps.max()), 1.0)
        xs = x0 + (steps / smax) * (x1 - x0)
        ys = y0 - (loss - lo) / (hi - lo) * (y0 - y1)
        pts = np.stack([xs, ys], axis=1).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(img, [pts], False, (200, 60, 20), 2, cv2.LINE_AA)
        for frac in (0.0, 0.5, 1.0):
            y = int(y0 - frac * (y0 - y1))
            cv2.putText(img, f"{lo + frac * (hi - lo):.3g}", (5, y + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                        (0, 0, 0), 1, cv2.LINE_AA)
            x = int(x0 + frac * (x1 - x0))
            cv2.putText(img, f"{int(frac * smax)}", (x - 15, h - 25), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                        (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "step", (w // 2 - 20, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise OSError(f"could not write {path}")
    return path


def export_checkpoint(pretrained_dir: Path, out_dir: Path, dtype: str = "float16") -> Path:
    """Copy a LeRobot pretrained_model dir with its weights cast to fp16/bf16 (config, processor
    files and stats unchanged), so `from_pretrained` (and the policy node) load it as is."""
    import torch
    from safetensors.torch import load_file, save_file

    dtypes = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
    if dtype not in dtypes:
        raise ValueError(f"dtype must be one of {sorted(dtypes)}")
    pretrained_dir, out_dir = Path(pretrained_dir), Path(out_dir)
    weights = pretrained_dir / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} is missing: not a LeRobot pretrained_model directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    for item in pretrained_dir.iterdir():
        if item.name == "model.safetensors" or item.name == "train_config.json":
            continue
        if item.is_file():
            shutil.copy2(item, out_dir / item.name)
    tensors = load_file(str(weights))
    cast = {k: (v.to(dtypes[dtype]) if v.is_floating_point() else v).contiguous() for k, v in tensors.items()}
    save_file(cast, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    return out_dir


def parse_args(argv: Sequence[str] | None = None) -> tuple[TrainSettings, argparse.Namespace]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d = TrainSettings(Path("."), Path("."))
    ap.add_argument("--dataset-root", required=True, type=Path, help="LeRobot dataset directory (recorder root)")
    ap.add_argument("--repo-id", default=d.repo_id)
    ap.add_argument("--output-dir", required=True, type=Path, help="lerobot run directory (must not exist)")
    for name in ("steps", "batch_size", "chunk_size", "n_action_steps", "dim_model", "dim_feedforward",
                 "n_heads", "n_encoder_layers", "n_decoder_layers", "log_freq", "save_freq", "seed",
                 "threads", "num_workers"):
        ap.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    ap.add_argument("--lr", type=float, default=d.lr, help="learning rate (peak rate with --lr-schedule cosine)")
    ap.add_argument("--lr-schedule", default=d.lr_schedule, choices=LR_SCHEDULES)
    ap.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    ap.add_argument("--min-lr-ratio", type=float, default=d.min_lr_ratio, help="cosine: final lr / peak lr")
    ap.add_argument("--weight-decay", type=float, default=d.weight_decay)
    ap.add_argument("--cameras", nargs="+", help="train on these dataset cameras only (default: all)")
    ap.add_argument("--kl-weight", type=float, default=d.kl_weight)
    ap.add_argument("--vae", action=argparse.BooleanOptionalAction, default=d.use_vae,
                    help="train ACT with its VAE encoder (for multimodal human demonstrations)")
    ap.add_argument("--video-backend", default=d.video_backend)
    ap.add_argument("--episodes", type=int, nargs="*", help="train on these episode indices only")
    ap.add_argument("--export", type=Path, help="write the final checkpoint here as reduced-precision "
                    "safetensors (e.g. models/act_so101_pick_place)")
    ap.add_argument("--export-dtype", default="float16", choices=("float16", "bfloat16", "float32"))
    args = ap.parse_args(argv)
    s = TrainSettings(dataset_root=args.dataset_root, output_dir=args.output_dir, repo_id=args.repo_id,
                      lr=args.lr, lr_schedule=args.lr_schedule, warmup_steps=args.warmup_steps,
                      min_lr_ratio=args.min_lr_ratio, weight_decay=args.weight_decay, cameras=args.cameras,
                      kl_weight=args.kl_weight, use_vae=args.vae,
                      video_backend=args.video_backend, episodes=args.episodes,
                      **{k: getattr(args, k) for k in ("steps", "batch_size", "chunk_size", "n_action_steps",
                                                       "dim_model", "dim_feedforward", "n_heads",
                                                       "n_encoder_layers", "n_decoder_layers", "log_freq",
                                                       "save_freq", "seed", "threads", "num_workers")})
    if s.n_action_steps > s.chunk_size:
        ap.error("--n-action-steps cannot exceed --chunk-size")
    return s, args


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    s, args = parse_args(argv)
    t0 = time.monotonic()
    last, points = train(s)
    minutes = (time.monotonic() - t0) / 60.0
    plot = plot_losses(points, Path(s.output_dir) / "loss.png")
    summary = {"steps": s.steps, "train_minutes": round(minutes, 2), "threads": s.threads,
               "first_loss": points[0][1] if points else None, "last_loss": points[-1][1] if points else None,
               "checkpoint": str(last), "loss_plot": str(plot)}
    (Path(s.output_dir) / "losses.json").write_text(json.dumps({"summary": summary, "losses": points}, indent=1))
    if args.export:
        out = export_checkpoint(last, args.export, args.export_dtype)
        shutil.copy2(plot, out / "loss.png")
        summary["export"] = str(out)
        summary["export_mb"] = round((out / "model.safetensors").stat().st_size / 1e6, 1)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
