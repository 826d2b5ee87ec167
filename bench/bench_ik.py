"""IK benchmark: success and solve time of the pinocchio IK on the project's URDF, with the
closed-form (geometric) start against the original seeded scheme as the baseline, both run in
this process on the same targets.

Cases (random reachable targets: FK of random joint configurations within the limits):
  cold approach   position + approach targets from the zero configuration (no hint)
  cold pose       full-pose targets (the roll comes from the rotation) from zero
  cold position   position-only targets from zero
  warm            full-pose targets along joint-space motions, seeded from the previous solution
                  with a per-step bound (what the policy node does for every end-effector chunk;
                  both schemes start from the seed there)
  far             a 50-target chunk 0.8 m outside the workspace (best reachable, step-bounded)
Success: within 1 mm (and 1 deg of approach where one is asked). Times per solve in ms, as
thread CPU time (what the solver costs; the machine is shared, so wall time includes waiting
for a core) and wall time; "ratio" = geometric / baseline in this run.

    .venv/bin/python bench/bench_ik.py [--n 200] [--variant so101]
"""
from __future__ import annotations

import argparse
import logging
import time
from typing import Callable

import numpy as np

from so100_description import robot_description
from so100_description.ik import IKResult, IKTarget, PinocchioIK, SolverSettings


def _timed(fn: Callable[[], IKResult]) -> tuple[IKResult, float, float]:
    w0, c0 = time.perf_counter(), time.thread_time()
    res = fn()
    return res, time.thread_time() - c0, time.perf_counter() - w0


def _ok(ik: PinocchioIK, res: IKResult, target: IKTarget) -> bool:
    pose = ik.fk(res.q)
    if np.linalg.norm(pose[:3, 3] - target.position) > 1e-3:
        return False
    want = target.approach if target.approach is not None else (
        target.rotation @ ik.approach_axis if target.rotation is not None else None)
    if want is None:
        return True
    return bool(np.arccos(np.clip(pose[:3, :3] @ ik.approach_axis @ want, -1, 1)) <= np.radians(1.0))


def _stats(cpu: list[float], wall: list[float]) -> dict[str, float]:
    c, w = np.array(cpu) * 1e3, np.array(wall) * 1e3
    return {"median": float(np.median(c)), "p95": float(np.percentile(c, 95)), "mean": float(c.mean()),
            "max": float(c.max()), "wall_median": float(np.median(w)), "wall_p95": float(np.percentile(w, 95))}


def _cold(ik: PinocchioIK, targets: list[IKTarget]) -> tuple[int, dict[str, float], float]:
    ok, cpu, wall, its = 0, [], [], []
    for target in targets:
        res, c, w = _timed(lambda: ik.solve(target, np.zeros(5), warn=False))
        ok += _ok(ik, res, target)
        cpu.append(c)
        wall.append(w)
        its.append(res.iterations)
    return ok, _stats(cpu, wall), float(np.mean(its))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--variant", default="so101", choices=["so101", "so100"])
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    urdf = robot_description(args.variant, "mock")
    geo = PinocchioIK(urdf, variant=args.variant)
    base = PinocchioIK(urdf, variant=args.variant, settings=SolverSettings(initial_guess="seed"))
    rng = np.random.default_rng(0)
    configs = [rng.uniform(geo.lower, geo.upper) for _ in range(args.n)]

    c0 = time.thread_time()
    for q in configs:
        geo.fk(q)
    fk_us = (time.thread_time() - c0) / len(configs) * 1e6
    print(f"{args.variant}, {args.n} targets; FK call {fk_us:.1f} us CPU; times in ms per solve "
          f"(CPU median / p95 / mean / max | wall median / p95)")

    poses = [geo.fk(q) for q in configs]
    cases = {
        "cold approach": [IKTarget(p[:3, 3], approach=p[:3, :3] @ geo.approach_axis) for p in poses],
        "cold pose": [IKTarget(p[:3, 3], rotation=p[:3, :3]) for p in poses],
        "cold position": [IKTarget(p[:3, 3]) for p in poses],
    }
    for name, targets in cases.items():
        rows = {}
        for label, ik in (("geometric", geo), ("baseline", base)):
            rows[label] = _cold(ik, targets)
            ok, st, its = rows[label]
            print(f"{name:14s} {label:9s} success {ok}/{len(targets)} = {ok / len(targets):.3f}, "
                  f"{st['median']:.3f} / {st['p95']:.3f} / {st['mean']:.3f} / {st['max']:.2f} | "
                  f"{st['wall_median']:.3f} / {st['wall_p95']:.3f}, mean iterations {its:.1f}")
        g, b = rows["geometric"][1], rows["baseline"][1]
        print(f"{name:14s} ratio     CPU median {g['median'] / b['median']:.3f}, "
              f"p95 {g['p95'] / b['p95']:.3f}, mean {g['mean'] / b['mean']:.3f}; "
              f"wall median {g['wall_median'] / b['wall_median']:.3f}, "
              f"p95 {g['wall_p95'] / b['wall_p95']:.3f}")

    # warm: chunks along joint-space motions, step-bounded (4.7 rad/s at 30 Hz)
    chunks = []
    for q0 in configs[: max(1, args.n // 20)]:
        q1 = np.clip(q0 + rng.uniform(-0.8, 0.8, 5), geo.lower, geo.upper)
        path = [q0 + (q1 - q0) * s for s in np.linspace(0, 1, 20)]
        chunks.append((q0, [IKTarget(geo.fk(q)[:3, 3], rotation=geo.fk(q)[:3, :3]) for q in path]))
    warm = {}
    for label, ik in (("geometric", geo), ("baseline", base)):
        ok = n = 0
        cpu, wall = [], []
        for q0, targets in chunks:
            seed = q0
            for target in targets:
                res, c, w = _timed(lambda: ik.solve(target, seed, max_step=0.157, warn=False))
                cpu.append(c)
                wall.append(w)
                ok += res.reached
                n += 1
                seed = res.q
        warm[label] = _stats(cpu, wall)
        print(f"{'warm chunk':14s} {label:9s} success {ok}/{n} = {ok / n:.3f}, "
              f"{warm[label]['median']:.3f} / {warm[label]['p95']:.3f} / {warm[label]['mean']:.3f} / "
              f"{warm[label]['max']:.2f} | {warm[label]['wall_median']:.3f} / {warm[label]['wall_p95']:.3f}")
    ratio = warm["geometric"]["median"] / warm["baseline"]["median"]
    print(f"{'warm chunk':14s} ratio     CPU median {ratio:.3f}")

    # far: 50 targets 0.8 m beyond the workspace, step-bounded from a pose
    far_q = np.array([0.1, -0.5, 0.6, 0.4, 0.2])
    far_pose = geo.fk(far_q)
    far_targets = [IKTarget(far_pose[:3, 3] + [0.8, 0.0, 0.0], rotation=far_pose[:3, :3])] * 50
    far = {}
    for label, ik in (("geometric", geo), ("baseline", base)):
        c0 = time.thread_time()
        ik.solve_path(far_targets, far_q, max_step=0.157)
        far[label] = (time.thread_time() - c0) / len(far_targets) * 1e3
        print(f"{'far chunk':14s} {label:9s} {far[label]:.3f} ms CPU per target")
    print(f"{'far chunk':14s} ratio     {far['geometric'] / far['baseline']:.3f}")


if __name__ == "__main__":
    main()
