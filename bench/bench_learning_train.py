"""Training speed of the default small ACT on one CPU core (goal: well under an hour).

Records a synthetic dataset with the recorder core (2 cameras, default 96x128 as the
documented recording setting, MP4 video, 30 fps),
then times lerobot's trainer through `so100_bringup.learning.train` for a few steps. Baseline
measured in the same run: the same policy's bare forward+backward+step on a ready batch
(no data loading, no video decoding), so the ratio shows what the data pipeline adds.
Prints seconds per step and the projected minutes for the documented 3000 steps.

    .venv/bin/python bench/bench_learning_train.py [--steps 20]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def make_dataset(root: Path, hw: tuple[int, int], episodes: int = 2, frames: int = 90) -> None:
    from so100_description.calibration import JointUnitConverter, nominal_calibration
    from so100_bringup.recorder.core import DatasetSession, FrameBuilder, dataset_features
    from so100_description.joints import JOINT_NAMES

    cams = {"front": hw, "wrist": hw}
    builder = FrameBuilder(JointUnitConverter(nominal_calibration()), cams)
    session = DatasetSession(root, "local/so101_recording", 30, dataset_features(cams, use_videos=True))
    session.open()
    rng = np.random.default_rng(0)
    base = (rng.random((hw[0], hw[1], 3)) * 255).astype(np.uint8)
    for _ in range(episodes):
        session.start("pick the cube and place it in the target area")
        for i in range(frames):
            q = {j: 0.3 * np.sin(0.05 * i + k) for k, j in enumerate(JOINT_NAMES)}
            img = np.roll(base, i, axis=1)
            session.add(builder.build(q, q, {"front": img, "wrist": img[::-1]}, session.task))
        session.save()
    session.close()


def bare_step_seconds(pretrained: Path, steps: int, hw: tuple[int, int]) -> float:
    import torch
    from lerobot.policies.act.modeling_act import ACTPolicy

    policy = ACTPolicy.from_pretrained(str(pretrained))
    policy.train()
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    cfg = policy.config
    b = 8
    batch = {"observation.state": torch.randn(b, 6), "action": torch.randn(b, cfg.chunk_size, 6),
             "action_is_pad": torch.zeros(b, cfg.chunk_size, dtype=torch.bool)}
    for key in cfg.image_features:
        batch[key] = torch.rand(b, 3, hw[0], hw[1])
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        loss, _ = policy.forward(batch)
        loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t)
    return float(np.median(times[1:] if len(times) > 2 else times))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--height", type=int, default=96, help="stored image height (recorder image_height)")
    ap.add_argument("--width", type=int, default=128)
    a = ap.parse_args()
    hw = (a.height, a.width)
    from so100_bringup.learning import train as T

    tmp = Path(tempfile.mkdtemp(prefix="bench_train_"))
    make_dataset(tmp / "ds", hw)
    s = T.TrainSettings(dataset_root=tmp / "ds", output_dir=tmp / "run", steps=a.steps, log_freq=a.steps,
                        save_freq=a.steps)
    t0 = time.monotonic()
    last, _ = T.train(s)
    train_total = time.monotonic() - t0
    per_step = train_total / a.steps  # includes dataset/policy setup: an upper bound
    bare = bare_step_seconds(last, max(5, a.steps // 2), hw)
    print(json.dumps({
        "image_hw": list(hw), "cameras": 2, "threads": s.threads, "batch_size": s.batch_size, "steps_timed": a.steps,
        "train_s_per_step_incl_setup": round(per_step, 3),
        "bare_s_per_step": round(bare, 3),
        "ratio_train_vs_bare": round(per_step / bare, 2),
        "projected_minutes_3000_steps": round(3000 * per_step / 60.0, 1),
    }, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
