"""so100_bag2lerobot: conversion speed against the live recorder's own writing, and dataset size
against bag size.

A bag is made in the MuJoCo sim (scripted expert, front + wrist cameras rendered at 320x240 as
the sim node publishes them, /joint_states at 50 Hz; test/support/sim_bag.py), written as MCAP,
and converted with the recorder's defaults but 128x96 images (the project's recording size).
Baseline, same run: the same frames written through DatasetSession.start/add/save, which is
what the recorder node does per frame and per episode; its cost is the floor of any conversion.
Each is run --repeats times (the first run of either pays lerobot's imports and warm-up) and the
fastest run counts.

    .venv/bin/python bench/bench_bag2lerobot.py [--episodes 3] [--episode-s 5] [--repeats 2]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "test"))  # support: the sim bag writer


def size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--episode-s", type=float, default=5.0)
    ap.add_argument("--video-codec", default="libsvtav1", help="the recorder's default")
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()

    from support.sim_bag import SimBagSpec, simulate, write_bag

    from so100_bringup.recorder.bag_to_dataset import BagOptions, convert_bag
    from so100_bringup.recorder.core import DatasetSession, dataset_features

    work = Path(tempfile.mkdtemp(prefix="bench_bag2lerobot_"))
    try:
        t0 = time.perf_counter()
        rec = simulate(SimBagSpec(episodes=a.episodes, episode_s=a.episode_s, cameras=("front", "wrist"),
                                  width=320, height=240))
        bag = write_bag(rec.messages, work / "bag", "mcap")
        bag_s = sum((b - f) / 1e9 for f, b in rec.episodes)
        print(f"bag: {a.episodes} episodes, {bag_s:.1f} s of recording, {len(rec.messages)} messages, "
              f"{size_mb(bag):.1f} MB (made in {time.perf_counter() - t0:.0f} s)")

        frames: list[tuple[int, dict]] = []  # (episode, frame) as the converter hands them to the session
        add = DatasetSession.add

        def recording_add(self, frame):
            frames.append((self.total_episodes, {k: v.copy() if hasattr(v, "copy") else v for k, v in frame.items()}))
            add(self, frame)

        convert_s = live_s = add_s = float("inf")
        for run in range(a.repeats):
            frames.clear()
            DatasetSession.add = recording_add
            opts = BagOptions(root=work / f"converted{run}", image_width=128, image_height=96,
                              video_codec=a.video_codec)
            t0 = time.perf_counter()
            report = convert_bag(bag, opts, log=lambda _line: None)
            convert_s = min(convert_s, time.perf_counter() - t0)
            DatasetSession.add = add
            n = sum(e.frames for e in report.saved)

            shapes = {"front": (96, 128), "wrist": (96, 128)}
            session = DatasetSession(work / f"live{run}", "local/so101_recording", 30, dataset_features(shapes),
                                     video_codec=a.video_codec)
            session.open()
            t0, adding = time.perf_counter(), 0.0
            for ep in sorted({e for e, _ in frames}):
                session.start(report.saved[0].task)
                t1 = time.perf_counter()
                for _, frame in (f for f in frames if f[0] == ep):
                    session.add(frame)
                adding += time.perf_counter() - t1
                session.save()
            session.close()
            live_s, add_s = min(live_s, time.perf_counter() - t0), min(add_s, adding)

        print(f"converted: {n} frames in {convert_s:.1f} s = {n / convert_s:.0f} frames/s, "
              f"{bag_s / convert_s:.1f} s of bag per s")
        print(f"baseline (DatasetSession start/add/save of the same frames): {n / live_s:.0f} frames/s; "
              f"add alone {n / add_s:.0f} frames/s")
        print(f"ratio conversion / baseline (frames/s): {live_s / convert_s:.2f}")
        print(f"ratio dataset / bag (size): {size_mb(opts.root):.2f} MB / {size_mb(bag):.1f} MB = "
              f"{size_mb(opts.root) / size_mb(bag):.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
