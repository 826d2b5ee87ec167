"""IK benchmark: success ratio and solve time of the pinocchio IK on the project's SO-101 URDF.

Prints, for 200 random reachable targets (FK of random joint configurations within limits):
  cold   position + approach targets from the zero configuration (worst case: no hint)
  warm   full-pose targets along joint-space motions, seeded from the previous solution with a
         per-step bound (what the policy node does for every end-effector chunk)
  far    a 50-target chunk 0.8 m outside the workspace (best reachable poses, step-bounded)
  base   the baseline measured in the same run: one plain damped-least-squares pass (the
         textbook CLIK loop, no restarts, no approach handling) on the same cold targets
Times are medians (ms) and ratios against one forward-kinematics call and against the baseline.

    .venv/bin/python bench/bench_ik.py [--n 200]
"""
from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from so100_description import robot_description
from vla_policy_node.ik import IKTarget, PinocchioIK


def plain_dls(ik: PinocchioIK, target: IKTarget, seed: np.ndarray, iters: int = 200) -> np.ndarray:
    """Baseline: damped least squares on position + approach with joint clipping."""
    q = seed.copy()
    for _ in range(iters):
        pose, jac = ik._jacobians(q)
        a = pose.rotation @ ik.approach_axis
        err = np.concatenate([target.position - pose.translation, 0.1 * np.cross(a, target.approach)])
        if np.linalg.norm(err) < 1e-6:
            break
        j = np.vstack([jac[:3], 0.1 * jac[3:]])
        q = np.clip(q + j.T @ np.linalg.solve(j @ j.T + 1e-4 * np.eye(6), err), ik.lower, ik.upper)
    return q


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    ik = PinocchioIK(robot_description("so101", "mock"))
    rng = np.random.default_rng(0)
    configs = [rng.uniform(ik.lower, ik.upper) for _ in range(args.n)]

    t0 = time.perf_counter()
    for q in configs:
        ik.fk(q)
    fk_time = (time.perf_counter() - t0) / len(configs)

    def ok(q: np.ndarray, target: IKTarget) -> bool:
        pose = ik.fk(q)
        a = pose[:3, :3] @ ik.approach_axis
        return (np.linalg.norm(pose[:3, 3] - target.position) <= 1e-3
                and np.arccos(np.clip(a @ target.approach, -1, 1)) <= np.radians(1.0))

    cold_t, cold_ok, base_t, base_ok = [], 0, [], 0
    for q in configs:
        pose = ik.fk(q)
        target = IKTarget(pose[:3, 3], approach=pose[:3, :3] @ ik.approach_axis)
        t0 = time.perf_counter()
        res = ik.solve(target, np.zeros(5), warn=False)
        cold_t.append(time.perf_counter() - t0)
        cold_ok += ok(res.q, target)
        t0 = time.perf_counter()
        qb = plain_dls(ik, target, np.zeros(5))
        base_t.append(time.perf_counter() - t0)
        base_ok += ok(qb, target)

    warm_t, warm_ok, warm_n = [], 0, 0
    for q0 in configs[: max(1, args.n // 20)]:
        q1 = np.clip(q0 + rng.uniform(-0.8, 0.8, 5), ik.lower, ik.upper)
        path = [q0 + (q1 - q0) * s for s in np.linspace(0, 1, 20)]
        seed = q0
        for q in path:
            pose = ik.fk(q)
            target = IKTarget(pose[:3, 3], rotation=pose[:3, :3])
            t0 = time.perf_counter()
            res = ik.solve(target, seed, max_step=0.157, warn=False)  # 4.7 rad/s at 30 Hz
            warm_t.append(time.perf_counter() - t0)
            warm_ok += res.reached
            warm_n += 1
            seed = res.q

    # a chunk of 50 targets 0.8 m beyond the workspace: best reachable poses, bounded steps
    far_q = np.array([0.1, -0.5, 0.6, 0.4, 0.2])
    far_pose = ik.fk(far_q)
    far_targets = [IKTarget(far_pose[:3, 3] + [0.8, 0.0, 0.0], rotation=far_pose[:3, :3])] * 50
    t0 = time.perf_counter()
    ik.solve_path(far_targets, far_q, max_step=0.157)
    far_t = (time.perf_counter() - t0) / len(far_targets)

    med = lambda xs: float(np.median(xs)) * 1e3  # noqa: E731
    print(f"FK call: {fk_time * 1e6:.1f} us")
    print(f"cold  position+approach: success {cold_ok}/{len(configs)} = {cold_ok / len(configs):.3f}, "
          f"median {med(cold_t):.2f} ms (= {np.median(cold_t) / fk_time:.0f} FK), "
          f"mean {np.mean(cold_t) * 1e3:.2f} ms, p95 {np.percentile(cold_t, 95) * 1e3:.2f} ms")
    print(f"warm  full pose, chunk:  success {warm_ok}/{warm_n} = {warm_ok / warm_n:.3f}, "
          f"median {med(warm_t):.2f} ms (= {np.median(warm_t) / fk_time:.0f} FK)")
    print(f"far   unreachable chunk: {far_t * 1e3:.2f} ms per target (= {far_t / fk_time:.0f} FK)")
    print(f"base  plain DLS (cold):  success {base_ok}/{len(configs)} = {base_ok / len(configs):.3f}, "
          f"median {med(base_t):.2f} ms")
    print(f"ratios: cold success / baseline success = {cold_ok / max(base_ok, 1):.2f}; "
          f"cold median time / baseline median time = {np.median(cold_t) / np.median(base_t):.2f}; "
          f"warm median time / baseline median time = {np.median(warm_t) / np.median(base_t):.2f}")


if __name__ == "__main__":
    main()
