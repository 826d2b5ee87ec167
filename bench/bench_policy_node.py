"""Policy node benchmarks, printed as ratios against baselines measured in the same run.

P1  node overhead: (image message arrival in the node -> trajectory publish) / (bare policy call:
    LeRobot preprocess + predict_action_chunk + postprocess on the same input), random ACT,
    640x480 camera, goal <= 1.05. Also the end-to-end figure across processes (camera publisher
    -> node process -> trajectory received) against the same bare call.
P2  arm idle fraction over a rollout with ~100 ms inference: this node's asynchronous runner vs a
    LeRobot-style synchronous loop (infer when the action queue is empty, then execute) run
    alongside. Goal 0 %.
P3  max joint acceleration at chunk splices / max inside chunks, goal <= 1.2, for the crossfade
    splice and for naive replace (the baseline).

Run: .venv/bin/python bench/bench_policy_node.py [--quick]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ROS_DOMAIN_ID", str(50 + os.getpid() % 40))
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "test"))  # support: the test helpers (fake robot I/O, node processes)

from so100_description.calibration import JointUnitConverter, nominal_calibration  # noqa: E402
from so100_bringup.control.follower import TrajectoryFollower, TrajectoryPoint  # noqa: E402
from so100_description.joints import JOINT_NAMES  # noqa: E402
from vla_policy_node.actions import JointActionMapper  # noqa: E402
from vla_policy_node.backends.base import PolicyBackend, PolicyInput, PolicySpec  # noqa: E402
from vla_policy_node.chunking import ChunkScheduler  # noqa: E402
from vla_policy_node.observation import ObservationBuilder  # noqa: E402
from vla_policy_node.runner import PolicyRunner  # noqa: E402
from vla_policy_node.safety import JointLimiter, LimitArrays  # noqa: E402

FPS = 30.0
DT = 1.0 / FPS


def settle(node, quiet: float = 2.0) -> None:
    """Wait until the node has published nothing for `quiet` s (warm-up frames all processed)."""
    last, since = node.runner.status.published, time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.1)
        if node.runner.status.published != last:
            last, since = node.runner.status.published, time.monotonic()


# ------------------------------------------------------------------------------------------
# P1: overhead of the node around a real LeRobot policy
# ------------------------------------------------------------------------------------------
def bench_p1(policy_dir: Path, rounds: int) -> None:
    import rclpy
    from rclpy.parameter import Parameter

    from vla_policy_node.node import PolicyNode
    from support.ros import Spinner, make_fake_io_node, start_policy_node, stop_process, wait_for

    h, w = 480, 640
    cams = {"front": ("/camera/front/image_raw", (h, w), "rgb8")}
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    params = {"policy_path": str(policy_dir), "autostart": True, "trigger_fraction": 1.0, "fps": FPS,
              "torch_threads": 1, "max_image_age": 2.0, "max_state_age": 2.0}
    node = PolicyNode(context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    io = make_fake_io_node(cams, rate=30.0, context=ctx, publish_images=False)
    spin = Spinner([node, io], ctx)
    try:
        deadline = time.monotonic() + 90  # warm-up: the first inferences are slow (chunks may come too late)
        while not io.recorder.arm and time.monotonic() < deadline:
            io.publish_frame("front")
            time.sleep(0.5)
        assert io.recorder.arm, "node produced no trajectory"
        settle(node)
        node_times, bare_times, infer_times = [], [], []
        backend = node.backend
        rgb = io.image("front")
        batch_input = PolicyInput(state=np.zeros(6, np.float32), images={"observation.images.front": rgb})
        for i in range(rounds + 1):  # round 0 is a warm-up, not recorded
            # lockstep: one frame -> wait for its trajectory (the node is always due)
            n = node.runner.status.published
            io.publish_frame("front")
            if not wait_for(lambda: node.runner.status.published > n, 30):
                continue  # (a chunk that came too late on a loaded machine is not published)
            if i == 0:
                continue
            node_times.append(node.runner.status.last_image_to_publish_s)
            infer_times.append(node.runner.status.last_inference_s)
            # the bare call: same process, same input size, while the node waits for its next
            # frame (it never infers twice on one frame, so it is idle now)
            spin.pause()  # no ROS callbacks meanwhile: the baseline gets a quiet process
            t0 = time.perf_counter()
            backend.infer_batch(backend.to_batch(batch_input))
            bare_times.append(time.perf_counter() - t0)
            spin.resume()
        node_med, bare_med = statistics.median(node_times), statistics.median(bare_times)
        if os.environ.get("BENCH_VERBOSE"):
            print("node image->publish", [round(x * 1e3) for x in node_times])
            print("node backend call  ", [round(x * 1e3) for x in infer_times])
            print("bare call          ", [round(x * 1e3) for x in bare_times])
        print(f"P1 node overhead at {w}x{h}: image->publish {node_med * 1e3:.1f} ms / bare policy call "
              f"{bare_med * 1e3:.1f} ms = {node_med / bare_med:.3f} (goal <= 1.05; medians of {rounds}, "
              "bare calls interleaved with the node's in the same process)")
        paired = statistics.median(a / b for a, b in zip(node_times, infer_times))
        print(f"P1 node overhead, paired per chunk: image->publish / the same chunk's policy call = {paired:.3f} "
              f"(median overhead {statistics.median(a - b for a, b in zip(node_times, infer_times)) * 1e3:.1f} ms)")
    finally:
        spin.stop()
        node.destroy_node()
        io.destroy_node()
        rclpy.shutdown(context=ctx)

    # end to end across processes: camera here, node in its own process, trajectory back here
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    io = make_fake_io_node(cams, rate=30.0, context=ctx, publish_images=False)
    spin = Spinner([io], ctx)
    proc = start_policy_node(params)
    try:
        deadline = time.monotonic() + 90
        while not io.recorder.arm and time.monotonic() < deadline:
            io.publish_frame("front")
            time.sleep(0.5)
        e2e = []
        for _ in range(rounds):
            n = len(io.recorder.arm)
            t0 = time.perf_counter()
            io.publish_frame("front")
            if not wait_for(lambda: len(io.recorder.arm) > n, 30, poll=0.001):
                continue
            e2e.append(time.perf_counter() - t0)
            time.sleep(0.05)
        e2e_med = statistics.median(e2e)
        print(f"P1 end to end across processes: frame publish -> trajectory received {e2e_med * 1e3:.1f} ms "
              f"/ bare policy call {bare_med * 1e3:.1f} ms = {e2e_med / bare_med:.3f}")
    finally:
        stop_process(proc)
        spin.stop()
        io.destroy_node()
        rclpy.shutdown(context=ctx)


# ------------------------------------------------------------------------------------------
# P2 / P3: scheduling with a ~100 ms policy
# ------------------------------------------------------------------------------------------
class SmoothPolicy(PolicyBackend):
    """A fake policy with LeRobot-degree output: a smooth motion of absolute time (what a good
    policy would do) plus a per-inference offset (models disagree between chunks), ~latency s."""

    def __init__(self, latency: float, chunk: int, seed: int, clock):
        self.spec = PolicySpec("fake", 6, 6, {"observation.images.front": (3, 24, 32)}, chunk)
        self.latency, self.chunk, self.clock = latency, chunk, clock
        self.rng = np.random.default_rng(seed)
        self.t0 = clock()

    def motion(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t)[:, None] - self.t0
        base = 25.0 * np.sin(2 * np.pi * 0.4 * t + np.arange(6)) * np.minimum(1.0, t / 1.0)
        base[:, 5] = 40.0 + 20.0 * np.sin(2 * np.pi * 0.3 * t[:, 0])
        return base

    def predict_chunk(self, obs: PolicyInput) -> np.ndarray:
        t_obs = self.clock()
        time.sleep(self.latency)
        offset = self.rng.normal(0.0, 1.5, size=6)  # degrees of disagreement between chunks
        return self.motion(t_obs + DT * np.arange(self.chunk)) + offset


def run_async(latency: float, chunk: int, duration: float, blend: bool, limit: bool, seed: int):
    clock = time.monotonic
    conv = JointUnitConverter(nominal_calibration(), "degrees")
    builder = ObservationBuilder({"observation.images.front": (3, 24, 32)}, conv, max_image_age=1.0,
                                 max_state_age=1.0)
    limiter = JointLimiter(LimitArrays.for_joints(JOINT_NAMES)) if limit else None
    sched = ChunkScheduler(6, DT, trigger_fraction=0.5, lead_time=0.02, limiter=limiter, blend=blend)
    follower = TrajectoryFollower(JOINT_NAMES, np.zeros(6))
    segments = []

    def publish(seg):
        now = clock()
        points = [TrajectoryPoint(t - now, p, v) for t, p, v in zip(seg.times, seg.positions, seg.velocities)]
        follower.set_trajectory(JOINT_NAMES, points, None, now)
        segments.append(seg)

    backend = SmoothPolicy(latency, chunk, seed, clock)
    runner = PolicyRunner(backend, builder, sched, JointActionMapper(conv), publish, lambda p: None, clock, 6)
    stop = threading.Event()

    def inputs():
        while not stop.is_set():
            now = clock()
            pos, _ = follower.sample(now)
            builder.update_joint_state(JOINT_NAMES, pos, now)
            builder.update_image("observation.images.front", np.zeros((24, 32, 3), np.uint8), now, time.perf_counter())
            runner.notify()
            stop.wait(DT)

    feeder = threading.Thread(target=inputs, daemon=True)
    feeder.start()
    runner.start()
    runner.enable(True)
    while not segments:
        time.sleep(0.005)
    t_start = clock()
    idle = samples = 0
    while clock() - t_start < duration:
        follower.sample(clock())
        idle += not follower.active
        samples += 1
        time.sleep(0.005)
    stop.set()
    runner.shutdown()
    feeder.join(2)
    return idle / samples, segments, sched


def run_sync(latency: float, chunk: int, duration: float, seed: int) -> float:
    """LeRobot's synchronous loop: when the action queue is empty, infer (blocking), then send
    one action per control tick. Idle = control time in which no action was sent."""
    clock = time.monotonic
    backend = SmoothPolicy(latency, chunk, seed, clock)
    obs = PolicyInput(state=np.zeros(6, np.float32), images={})
    queue: list = []
    t_start = clock()
    sent = []
    next_tick = t_start
    while clock() - t_start < duration:
        if not queue:
            queue = list(backend.predict_chunk(obs))
            next_tick = max(next_tick, clock())
        queue.pop(0)
        sent.append(clock())
        next_tick += DT
        time.sleep(max(0.0, next_tick - clock()))
    gaps = np.diff(np.array(sent))
    return float(np.sum(np.maximum(0.0, gaps - DT)) / (sent[-1] - sent[0]))


def executed_knots(segments) -> tuple[np.ndarray, list[int]]:
    """The knot sequence the arm executes (each segment until the next one's first knot) and the
    indices where a splice happened."""
    rows, splices = [], []
    segments = segments[2:]  # start-up (first chunk from rest, limiter catching up): not splices
    for i, seg in enumerate(segments):
        end = segments[i + 1].times[0] if i + 1 < len(segments) else np.inf
        keep = seg.times < end - 1e-9
        if i > 0:
            splices.append(len(rows))
        rows.extend(seg.positions[keep])
    return np.array(rows), splices


SPLICE_WINDOW = 3  # knots after a splice counted as "at the splice" (a naive replace jumps there)


def splice_ratio(segments) -> tuple[float, float, float]:
    q, splices = executed_knots(segments)
    acc = np.abs(np.diff(q, 2, axis=0)).max(axis=1) / DT**2  # acc[i] is centred on knot i+1
    near = np.zeros(len(acc), dtype=bool)
    for s in splices:
        near[max(0, s - 2): min(len(acc), s + SPLICE_WINDOW)] = True
    at_splice, inside = acc[near].max(), acc[~near].max()
    return at_splice / inside, at_splice, inside


def bench_p2_p3(duration: float) -> None:
    latency, chunk = 0.1, 30
    result = {}

    def sync_job():
        result["sync"] = run_sync(latency, chunk, duration, seed=1)

    sync_thread = threading.Thread(target=sync_job)
    sync_thread.start()  # run alongside the asynchronous rollout
    idle_async, segments, sched = run_async(latency, chunk, duration, blend=True, limit=True, seed=1)
    sync_thread.join()
    print(f"P2 arm idle fraction, ~{latency * 1e3:.0f} ms inference, {chunk}-action chunks at {FPS:.0f} Hz, "
          f"{duration:.0f} s: async node {idle_async * 100:.1f} % vs LeRobot-style synchronous loop "
          f"{result['sync'] * 100:.1f} % (goal 0 %); chunks {sched.stats.chunks}, dropped actions "
          f"{sched.stats.dropped_actions}")
    ours, a_s, a_i = splice_ratio(segments)
    print(f"P3 splice/inside max joint acceleration, crossfade + limits: {ours:.2f} "
          f"({a_s:.2f} / {a_i:.2f} rad/s^2; goal <= 1.2)")
    _, seg_naive, _ = run_async(latency, chunk, duration, blend=False, limit=False, seed=1)
    naive, n_s, n_i = splice_ratio(seg_naive)
    print(f"P3 baseline naive replace: {naive:.2f} ({n_s:.2f} / {n_i:.2f} rad/s^2); "
          f"crossfade / naive = {ours / naive:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter rollouts")
    parser.add_argument("--skip-p1", action="store_true", help="no torch/ROS part")
    args = parser.parse_args()
    rounds, duration = (5, 4.0) if args.quick else (15, 8.0)
    bench_p2_p3(duration)
    if not args.skip_p1:
        import torch

        torch.set_num_threads(1)
        from so100_bringup.learning.random_act import make_random_act

        with tempfile.TemporaryDirectory() as tmp:
            policy = make_random_act(Path(tmp) / "act", cameras=("front",), image_hw=(480, 640), chunk_size=100)
            bench_p1(policy, rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
