"""Train a LeRobot policy (ACT by default; diffusion, SmolVLA, pi0, ... any type LeRobot's
trainer knows) on a recorded LeRobot dataset, with lerobot's own trainer.

No fork: this builds a `TrainPipelineConfig` (dataset, policy config, schedule) and calls
`lerobot.scripts.lerobot_train.train` with it; lerobot shows its tqdm progress bar and logs
metrics every `--log-freq` steps. Around it this command adds what the learning loop needs:
a thread limit (a shared 2-core machine), offline settings (no hub, no ImageNet download: a
ResNet backbone starts from random weights), a loss plot (PNG, drawn with OpenCV) from the
logged losses, and an export of the final checkpoint as fp16/bf16 safetensors that the policy
node loads like any LeRobot checkpoint.

    python -m so100_bringup.learning.train --dataset-root data/so101_pick_place \
        --output-dir outputs/act_so101_pick_place --steps 3000 --export models/act_so101_pick_place
    python -m so100_bringup.learning.train --policy-type diffusion --device auto \
        --dataset-root data/so101_pick_place --output-dir outputs/diffusion_so101 \
        --policy-option down_dims='[128,256]'
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
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Sequence

log = logging.getLogger("so100_vla.train")

_LOSS_RE = re.compile(r"\bloss:([0-9.eE+-]+)")


# This project's ACT, sized for a CPU and for scripted demonstrations; explicit options win.
# The scripted expert is deterministic (one way to do each layout): ACT's VAE, there to model
# several ways of doing the same thing, only adds cost and noise.
ACT_DEFAULTS: dict[str, Any] = {"chunk_size": 30, "n_action_steps": 30, "dim_model": 256, "dim_feedforward": 1024,
                                "n_heads": 8, "n_encoder_layers": 2, "n_decoder_layers": 1, "use_vae": False,
                                "kl_weight": 10.0}
DEVICES = ("auto", "cpu", "cuda", "mps", "xpu")


@dataclass
class TrainSettings:
    dataset_root: Path
    output_dir: Path
    policy_type: str | None = None  # a type of LeRobot's policy registry; None: init_from's, else "act"
    device: str = "auto"  # see resolve_device
    init_from: str | None = None  # a pretrained_model directory (or hub id) to start from
    # Fields of the policy's config (e.g. {"chunk_size": 20}); over ACT_DEFAULTS for ACT.
    policy_options: dict[str, Any] = field(default_factory=dict)
    repo_id: str = "local/so101_recording"
    steps: int = 3000
    batch_size: int = 8
    lr: float = 2e-4
    # "cosine": linear warm-up then cosine decay to lr * min_lr_ratio (lerobot's
    # CosineDecayWithWarmupSchedulerConfig); "constant": the policy's own preset at this lr.
    lr_schedule: str = "cosine"
    warmup_steps: int = 200
    min_lr_ratio: float = 0.1
    weight_decay: float = 1e-4
    grad_clip_norm: float = 10.0
    log_freq: int = 50
    save_freq: int = 1000
    seed: int = 1000
    threads: int = 1
    num_workers: int = 0
    video_backend: str = "pyav"
    episodes: list[int] | None = None
    cameras: list[str] | None = None  # the dataset's cameras the policy sees (None: all of them)


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


def policy_types() -> list[str]:
    """The policy types of LeRobot's registry (importing lerobot.policies registers them all)."""
    import lerobot.policies  # noqa: F401  (registers every policy config)
    from lerobot.configs.policies import PreTrainedConfig

    return sorted(PreTrainedConfig.get_known_choices())


def check_policy_type(policy_type: str) -> str:
    known = policy_types()
    if policy_type not in known:
        import lerobot

        raise SystemExit(f"train: unknown --policy-type {policy_type!r}; LeRobot {lerobot.__version__} "
                         f"trains: {', '.join(known)}")
    return policy_type


def resolve_device(device: str) -> str:
    """'auto': lerobot's choice (cuda, then mps, then xpu, then cpu); otherwise the named device,
    which must be available here."""
    from lerobot.utils.device_utils import is_torch_device_available

    if device == "auto":
        # lerobot's auto_select_torch_device order, without its warning on every CPU run (the CPU
        # is a normal training device here; the log says which device trains)
        return next(d for d in ("cuda", "mps", "xpu", "cpu") if is_torch_device_available(d))
    if device not in DEVICES:
        raise SystemExit(f"train: --device must be one of {DEVICES}, got {device!r}")
    if not is_torch_device_available(device):
        raise SystemExit(f"train: --device {device} is not available on this machine (torch sees no {device}); "
                         "use --device auto or --device cpu")
    return device


def parse_policy_option(text: str) -> tuple[str, Any]:
    """'name=value' with a JSON value (numbers, true/false, lists), else the plain string."""
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (a field of the policy config), got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return name.strip(), value


def _init_config(init_from: str):
    from lerobot.configs.policies import PreTrainedConfig

    try:
        return PreTrainedConfig.from_pretrained(init_from)
    except Exception as exc:
        raise SystemExit(f"train: --init-from {init_from}: not a LeRobot checkpoint ({exc})") from exc


def resolve_policy_type(s: TrainSettings) -> str:
    """--policy-type, else the --init-from checkpoint's type, else act."""
    if s.policy_type:
        return s.policy_type
    return _init_config(s.init_from).type if s.init_from else "act"


def policy_config(s: TrainSettings, device: str):
    """The LeRobot policy config: `init_from`'s config, or a fresh one of `policy_type`, with
    the options, the device, no hub push and (offline) no pretrained ResNet download."""
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.policies.factory import make_policy_config

    base = _init_config(s.init_from) if s.init_from else None
    policy_type = resolve_policy_type(s)
    if base is not None and base.type != policy_type:
        raise SystemExit(f"train: --init-from {s.init_from} is a {base.type} checkpoint, not "
                         f"--policy-type {policy_type}")
    config_class = PreTrainedConfig.get_choice_class(check_policy_type(policy_type))
    names = {f.name for f in fields(config_class)}
    options = {**(ACT_DEFAULTS if policy_type == "act" and base is None else {}), **s.policy_options}
    unknown = sorted(set(options) - names)
    if unknown:
        raise SystemExit(f"train: {policy_type} has no option(s) {unknown}; its config fields: "
                         f"{', '.join(sorted(names))}")
    defaults = {f.name: f.default for f in fields(config_class)}
    options = {k: tuple(v) if isinstance(v, list) and isinstance(defaults.get(k), tuple) else v
               for k, v in options.items()}
    fixed: dict[str, Any] = {"device": device, "push_to_hub": False}
    if "pretrained_backbone_weights" in names:
        fixed["pretrained_backbone_weights"] = None  # offline: the vision backbone starts random
    if s.lr_schedule == "constant":  # the policy's preset, at our learning rate and weight decay
        for name, value in (("optimizer_lr", s.lr), ("optimizer_lr_backbone", s.lr),
                            ("optimizer_weight_decay", s.weight_decay)):
            if name in names:
                fixed[name] = value
    try:
        if base is not None:  # lerobot's trainer then loads the weights from pretrained_path
            return replace(base, **options, **fixed, pretrained_path=Path(s.init_from))
        return make_policy_config(policy_type, **options, **fixed)
    except (ValueError, TypeError) as exc:
        raise SystemExit(f"train: {policy_type} config: {exc}") from exc


def _optimizer_and_schedule(s: TrainSettings) -> dict:
    """TrainPipelineConfig arguments for the learning-rate schedule."""
    if s.lr_schedule == "constant":
        return {}  # the policy's preset optimizer and scheduler (policy_config sets its lr)
    if s.lr_schedule != "cosine":
        raise SystemExit(f"train: lr schedule must be one of {LR_SCHEDULES}, got {s.lr_schedule!r}")
    from lerobot.optim.optimizers import AdamWConfig
    from lerobot.optim.schedulers import CosineDecayWithWarmupSchedulerConfig

    return {"use_policy_training_preset": False,
            "optimizer": AdamWConfig(lr=s.lr, weight_decay=s.weight_decay, grad_clip_norm=s.grad_clip_norm),
            "scheduler": CosineDecayWithWarmupSchedulerConfig(
                num_warmup_steps=min(s.warmup_steps, s.steps), num_decay_steps=s.steps, peak_lr=s.lr,
                decay_lr=s.lr * s.min_lr_ratio)}


def build_config(s: TrainSettings, device: str | None = None):
    """lerobot's TrainPipelineConfig for these settings (`device`: resolved from s.device)."""
    from lerobot.configs.default import DatasetConfig, WandBConfig
    from lerobot.configs.train import TrainPipelineConfig

    if s.cameras:
        s = TrainSettings(**{**vars(s), "policy_options": {
            **s.policy_options, "input_features": input_features(s.dataset_root, s.cameras)}})
    policy = policy_config(s, device or resolve_device(s.device))
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
    log.info("training %s on %s", cfg.policy.type, cfg.policy.device)
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


def plot_losses(points: Sequence[tuple[int, float]], path: Path, title: str = "training loss") -> Path:
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


ACT_FLAGS = ("chunk_size", "n_action_steps", "dim_model", "dim_feedforward", "n_heads", "n_encoder_layers",
             "n_decoder_layers")


def parse_args(argv: Sequence[str] | None = None) -> tuple[TrainSettings, argparse.Namespace]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d = TrainSettings(Path("."), Path("."))
    ap.add_argument("--dataset-root", required=True, type=Path, help="LeRobot dataset directory (recorder root)")
    ap.add_argument("--repo-id", default=d.repo_id)
    ap.add_argument("--output-dir", required=True, type=Path, help="lerobot run directory (must not exist)")
    ap.add_argument("--policy-type", help="a LeRobot policy type: act, diffusion, smolvla, pi0, pi05, ... "
                    "(checked against lerobot's policy registry); default: --init-from's type, else act")
    ap.add_argument("--device", default=d.device, choices=DEVICES,
                    help="auto: cuda, then mps, then xpu, then cpu")
    ap.add_argument("--init-from", help="start from this LeRobot checkpoint (pretrained_model directory or "
                    "hub id, e.g. lerobot/smolvla_base) instead of random weights")
    ap.add_argument("--policy-option", action="append", default=[], type=parse_policy_option,
                    metavar="NAME=VALUE", help="set a field of the policy config (JSON value), repeatable, "
                    "e.g. --policy-option down_dims='[128,256]'")
    for name in ("steps", "batch_size", "log_freq", "save_freq", "seed", "threads", "num_workers"):
        ap.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    for name in ACT_FLAGS:  # shortcuts for --policy-option NAME=N (ACT: over this project's ACT_DEFAULTS)
        ap.add_argument("--" + name.replace("_", "-"), type=int,
                        help=f"policy config {name} (ACT default {ACT_DEFAULTS[name]})")
    ap.add_argument("--lr", type=float, default=d.lr, help="learning rate (peak rate with --lr-schedule cosine)")
    ap.add_argument("--lr-schedule", default=d.lr_schedule, choices=LR_SCHEDULES)
    ap.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    ap.add_argument("--min-lr-ratio", type=float, default=d.min_lr_ratio, help="cosine: final lr / peak lr")
    ap.add_argument("--weight-decay", type=float, default=d.weight_decay)
    ap.add_argument("--cameras", nargs="+", help="train on these dataset cameras only (default: all)")
    ap.add_argument("--kl-weight", type=float, help=f"ACT (default {ACT_DEFAULTS['kl_weight']})")
    ap.add_argument("--vae", action=argparse.BooleanOptionalAction, default=None,
                    help="ACT: train with its VAE encoder (for multimodal human demonstrations; default off)")
    ap.add_argument("--video-backend", default=d.video_backend)
    ap.add_argument("--episodes", type=int, nargs="*", help="train on these episode indices only")
    ap.add_argument("--export", type=Path, help="write the final checkpoint here as reduced-precision "
                    "safetensors (e.g. models/act_so101_pick_place)")
    ap.add_argument("--export-dtype", default="float16", choices=("float16", "bfloat16", "float32"))
    args = ap.parse_args(argv)
    options = {name: getattr(args, name) for name in ACT_FLAGS if getattr(args, name) is not None}
    if args.kl_weight is not None:
        options["kl_weight"] = args.kl_weight
    if args.vae is not None:
        options["use_vae"] = args.vae
    options.update(dict(args.policy_option))
    s = TrainSettings(dataset_root=args.dataset_root, output_dir=args.output_dir, repo_id=args.repo_id,
                      policy_type=args.policy_type, device=args.device, init_from=args.init_from,
                      policy_options=options, lr=args.lr, lr_schedule=args.lr_schedule,
                      warmup_steps=args.warmup_steps, min_lr_ratio=args.min_lr_ratio,
                      weight_decay=args.weight_decay, cameras=args.cameras, video_backend=args.video_backend,
                      episodes=args.episodes,
                      **{k: getattr(args, k) for k in ("steps", "batch_size", "log_freq", "save_freq", "seed",
                                                       "threads", "num_workers")})
    return s, args


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    s, args = parse_args(argv)
    t0 = time.monotonic()
    try:
        last, points = train(s)
    except KeyboardInterrupt:  # LeRobot's trainer has saved its checkpoints so far
        print(f"interrupted: checkpoints saved so far are in {s.output_dir}", file=sys.stderr)
        return 130
    minutes = (time.monotonic() - t0) / 60.0
    policy_type = resolve_policy_type(s)
    plot = plot_losses(points, Path(s.output_dir) / "loss.png", f"{policy_type} training loss")
    summary = {"policy_type": policy_type, "steps": s.steps, "train_minutes": round(minutes, 2), "threads": s.threads,
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
