"""so100_demo (`make demo`): one closed-loop episode, MuJoCo sim + policy node over real DDS.

Starts the MuJoCo sim node and the VLA policy node as separate ROS 2 processes (what
launch/sim_mujoco.launch.py does on a full ROS machine), runs one episode on sim time, then
writes under ./out/demo-<time>/:
  demo.mp4 (or .gif without ffmpeg)   front and wrist cameras, scaled up, with instruction, sim time, success
  summary.json                        success, latencies, control and camera rates, RTF
  demo.rrd                            the run in Rerun (`rerun demo.rrd`; --no-rrd: none; docs/viewer.md)
  logs/sim.log, logs/policy.log       the children's output
Without --policy it runs the shipped ACT trained on the sim's pick-and-place task
(models/act_so101_pick_place, see docs/learning_loop.md); `--policy random` runs a
random-initialised small ACT instead (cached under ./out/policies/).

Node graph (default names):
  mujoco_sim --/clock, /joint_states, /camera/{front,wrist}/image_raw(+camera_info)--> vla_policy_node
  vla_policy_node --/arm_controller/joint_trajectory, /gripper_controller/joint_trajectory--> mujoco_sim
  mujoco_sim --/sim/task_success--> so100_demo (recorder: /camera/{front,wrist}/image_raw, /diagnostics)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from so100_bringup.demo_video import DemoVideo
from so100_bringup.processes import Children, child_env, node_command, stop_on_signals
from so100_bringup.viewer.child import add_viewer_argument, recording_path, rerun_installed, viewer_command

PREFIX = "[so100_demo]"


def log(text: str) -> None:
    print(f"{PREFIX} {text}", flush=True)


# --------------------------------------------------------------------------------------------
# Episode statistics (plain Python)
# --------------------------------------------------------------------------------------------
def series_stats(values: Sequence[float]) -> dict[str, float] | None:
    if not len(values):
        return None
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "p50": float(np.percentile(arr, 50)),
            "p95": float(np.percentile(arr, 95)), "max": float(arr.max()), "n": int(arr.size)}


@dataclass
class EpisodeLog:
    """What the recorder saw, all times in sim seconds unless named *_wall."""
    start: float | None = None
    now: float = 0.0
    frames: int = 0
    image_stamps: list[float] = field(default_factory=list)
    image_transport_s: list[float] = field(default_factory=list)  # sim time receipt - stamp
    trajectory_times: list[float] = field(default_factory=list)
    trajectory_points: int = 0
    joint_state_times: list[float] = field(default_factory=list)
    success_at: float | None = None
    inference_ms: list[float] = field(default_factory=list)
    image_to_publish_ms: list[float] = field(default_factory=list)
    sim_rtf: list[float] = field(default_factory=list)
    last_positions: np.ndarray | None = None
    joint_travel_rad: float = 0.0  # summed |change| of all joints: did the policy move the arm?

    def elapsed(self) -> float:
        return 0.0 if self.start is None else self.now - self.start

    def summary(self, wall_s: float) -> dict[str, Any]:
        dur = max(self.elapsed(), 1e-9)

        def rate(times: list[float]) -> float:
            inside = [t for t in times if self.start is not None and t >= self.start]
            return len(inside) / dur

        return {
            "success": self.success_at is not None,
            "success_at_s": None if self.success_at is None else self.success_at - (self.start or 0.0),
            "sim_duration_s": self.elapsed(),
            "wall_duration_s": wall_s,  # of the episode, startup excluded
            "real_time_factor": self.elapsed() / wall_s if wall_s > 0 else None,
            "sim_real_time_factor_reported": series_stats(self.sim_rtf),
            "control": {
                "trajectories": len(self.trajectory_times),
                "trajectory_rate_hz": rate(self.trajectory_times),
                "trajectory_points": self.trajectory_points,
                "joint_state_rate_hz": rate(self.joint_state_times),
                "front_camera_rate_hz": rate(self.image_stamps),
            },
            "latency_ms": {
                "policy_inference": series_stats(self.inference_ms),
                "policy_image_to_publish": series_stats(self.image_to_publish_ms),
                "image_transport_sim_time": series_stats([1e3 * x for x in self.image_transport_s]),
            },
            "joint_travel_rad": self.joint_travel_rad,
            "video_frames": self.frames,
        }

    def add_joint_state(self, stamp: float, positions: Sequence[float]) -> None:
        self.joint_state_times.append(stamp)
        pos = np.asarray(positions, dtype=float)
        if self.last_positions is not None and self.last_positions.shape == pos.shape:
            self.joint_travel_rad += float(np.abs(pos - self.last_positions).sum())
        self.last_positions = pos


RANDOM_POLICY = "random"


def ensure_policy(path: str | None, out_root: Path, width: int, height: int, seed: int) -> tuple[Path, bool]:
    """(checkpoint folder, is_random). No path: the shipped trained ACT; "random": a
    random-initialised ACT, built once and cached under out_root/policies/."""
    if path and path != RANDOM_POLICY:
        folder = Path(path).expanduser()
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"--policy {folder}: no config.json (not a LeRobot checkpoint folder)")
        return folder, False
    if not path:
        from so100_description.paths import model_path

        return model_path(), False
    folder = out_root / "policies" / f"random_act_{width}x{height}_seed{seed}"
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        log(f"building a random-initialised ACT in {folder}")
        from so100_bringup.learning.random_act import make_random_act

        make_random_act(folder, cameras=("front", "wrist"), image_hw=(height, width), seed=seed)
    return folder, True


# --------------------------------------------------------------------------------------------
# The recorder node
# --------------------------------------------------------------------------------------------
def _make_recorder(context, episode: EpisodeLog, video: DemoVideo | None, lock: threading.Lock):
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Bool
    from trajectory_msgs.msg import JointTrajectory

    from so100_common.ros_node import COMMAND_QOS, IMAGE_QOS, LATCHED_QOS, STATE_QOS

    def secs(stamp) -> float:
        return stamp.sec + stamp.nanosec * 1e-9

    class Recorder(Node):
        def __init__(self):
            super().__init__("so100_demo_recorder", context=context,
                             parameter_overrides=[Parameter("use_sim_time", value=True)])
            self.recording = False
            self.create_subscription(Clock, "/clock", self._on_clock, 10)
            self.create_subscription(Image, "/camera/front/image_raw", self._on_image, IMAGE_QOS)
            if video is not None:
                self.create_subscription(Image, "/camera/wrist/image_raw", self._on_wrist_image, IMAGE_QOS)
            self.create_subscription(JointState, "/joint_states", self._on_joint_state, STATE_QOS)
            for topic in ("/arm_controller/joint_trajectory", "/gripper_controller/joint_trajectory"):
                self.create_subscription(JointTrajectory, topic, self._on_trajectory, COMMAND_QOS)
            self.create_subscription(Bool, "/sim/task_success", self._on_success, LATCHED_QOS)
            self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
            self.clock_seen = False

        def _on_clock(self, msg: Clock) -> None:
            self.clock_seen = True
            with lock:
                episode.now = max(episode.now, secs(msg.clock))  # callbacks may run out of order

        def _on_image(self, msg: Image) -> None:
            if not self.recording or msg.encoding != "rgb8":
                return
            frame = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)
            with lock:
                episode.frames += 1
                episode.image_stamps.append(secs(msg.header.stamp))
                episode.image_transport_s.append(max(0.0, episode.now - secs(msg.header.stamp)))
                start, success_at = episode.start, episode.success_at
            if video is not None:
                video.add_front(frame, secs(msg.header.stamp) - start,
                                None if success_at is None else success_at - start)

        def _on_wrist_image(self, msg: Image) -> None:
            if msg.encoding == "rgb8":  # kept before the episode too: the first front frame has a pair
                video.set_wrist(np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3))

        def _on_joint_state(self, msg: JointState) -> None:
            if self.recording:
                with lock:
                    episode.add_joint_state(secs(msg.header.stamp), msg.position)

        def _on_trajectory(self, msg: JointTrajectory) -> None:
            if self.recording:
                with lock:
                    episode.trajectory_times.append(episode.now)
                    episode.trajectory_points += len(msg.points)

        def _on_success(self, msg: Bool) -> None:
            if self.recording and msg.data:
                with lock:
                    if episode.success_at is None:
                        episode.success_at = episode.now

        def _on_diagnostics(self, msg: DiagnosticArray) -> None:
            if not self.recording:
                return
            for status in msg.status:
                values = {kv.key: kv.value for kv in status.values}
                with lock:
                    if "inference_latency_ms" in values and int(values.get("inferences", "0") or 0) > 0:
                        _append_float(episode.inference_ms, values["inference_latency_ms"])
                        _append_float(episode.image_to_publish_ms, values.get("image_to_publish_ms"))
                    if "real_time_factor" in values and "sim_time_s" in values:
                        _append_float(episode.sim_rtf, values["real_time_factor"])

    return Recorder()


def _append_float(target: list[float], text: str | None) -> None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return
    if np.isfinite(value) and value > 0:
        target.append(value)


def _call(node, executor, srv_type, name: str, request, timeout: float, children: Children):
    client = node.create_client(srv_type, name)
    deadline = time.monotonic() + timeout
    while not client.service_is_ready():
        children.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"service {name} not available after {timeout:.0f} s")
        executor.spin_once(timeout_sec=0.2)
    future = client.call_async(request)
    while not future.done():
        children.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"service {name} did not answer within {timeout:.0f} s")
        executor.spin_once(timeout_sec=0.1)
    return future.result()


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="so100_demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", default=os.environ.get("SO100_DEMO_POLICY", ""),
                    help="LeRobot checkpoint folder (default: the shipped ACT trained on the pick-and-place "
                    f"task; '{RANDOM_POLICY}': a random-initialised ACT)")
    ap.add_argument("--duration", type=float, default=15.0, help="episode length, s of sim time")
    ap.add_argument("--out", default="out", help="output root (a demo-<time>/ folder is made inside)")
    ap.add_argument("--seed", type=int, default=100, help="object layout sequence (100: the first layout the shipped "
                    "policy was evaluated on, not one it was trained on) and random-policy seed")
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--rtf", type=float, default=1.0, help="target real-time factor of the sim (0: max)")
    ap.add_argument("--task", default="place", choices=("lift", "place"), help="success criterion")
    ap.add_argument("--instruction", default="pick the cube and place it in the target area",
                    help="task text for VLA policies")
    ap.add_argument("--startup-timeout", type=float, default=240.0, help="s to wait for the nodes")
    ap.add_argument("--no-video", action="store_true")
    ap.add_argument("--no-rrd", action="store_true", help="no Rerun recording (demo.rrd) of the run")
    add_viewer_argument(ap)
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    out_root = Path(args.out).resolve()
    run_dir = out_root / datetime.now().strftime("demo-%Y%m%d-%H%M%S")
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    try:
        with stop_on_signals():  # Ctrl-C and SIGTERM: the same clean shutdown of the children
            return _run(args, out_root, run_dir)
    except KeyboardInterrupt:
        log("interrupted; children stopped")
        return 130
    except Exception as exc:  # noqa: BLE001 - one clear message for the user
        log(f"failed: {exc}")
        log(f"logs: {run_dir / 'logs'}")
        return 1


def _run(args: argparse.Namespace, out_root: Path, run_dir: Path) -> int:
    policy_dir, is_random = ensure_policy(args.policy, out_root, args.width, args.height, args.seed)
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from std_srvs.srv import SetBool, Trigger

    children = Children(run_dir / "logs", child_env(), say=log)
    sim_params = {"image_width": args.width, "image_height": args.height, "seed": args.seed,
                  "real_time_factor": args.rtf, "task": args.task}
    policy_params = {"policy_path": str(policy_dir), "use_sim_time": True, "task": args.instruction,
                     "autostart": False}
    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    episode, lock = EpisodeLog(), threading.Lock()
    video = None if args.no_video else DemoVideo(run_dir / "demo", fps=30.0, instruction=args.instruction)
    recorder = executor = None
    rrd = recording_path(args.viewer, None if args.no_rrd else run_dir / "demo.rrd")
    if rrd is not None and not args.viewer and not rerun_installed():
        log("no demo.rrd: rerun-sdk is not installed (pip install -e '.[viewer]')")
        rrd = None
    wall0 = time.monotonic()
    try:
        log(f"starting the MuJoCo sim and the policy node ({'random ACT' if is_random else policy_dir})")
        children.start("sim", node_command("so100_bringup.sim.node", "sim.yaml", sim_params))
        children.start("policy", node_command("vla_policy_node.node", "policy.yaml", policy_params))
        if rrd is not None or args.viewer:
            children.start("viewer", viewer_command(args.viewer, rrd))
        recorder = _make_recorder(context, episode, video, lock)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(recorder)

        deadline = time.monotonic() + args.startup_timeout
        while not recorder.clock_seen:
            children.check()
            if time.monotonic() > deadline:
                raise TimeoutError("the sim published no /clock")
            executor.spin_once(timeout_sec=0.2)
        log("sim running; waiting for the policy to load")
        reset = _call(recorder, executor, Trigger, "/mujoco_sim/reset", Trigger.Request(),
                      args.startup_timeout, children)
        log(f"reset: {reset.message}")
        enable = _call(recorder, executor, SetBool, "/vla_policy_node/enable", SetBool.Request(data=True),
                       args.startup_timeout, children)
        if not enable.success:
            raise RuntimeError(f"the policy node refused to start: {enable.message}")
        with lock:
            episode.start = episode.now
        recorder.recording = True
        wall0 = time.monotonic()
        log(f"episode running for {args.duration:.1f} s of sim time")
        last_print = 0.0
        while episode.elapsed() < args.duration:
            children.check()
            executor.spin_once(timeout_sec=0.05)
            if time.monotonic() - last_print >= 1.0:
                last_print = time.monotonic()
                with lock:
                    print(f"{PREFIX}   t={episode.elapsed():5.1f}/{args.duration:.1f} s  frames={episode.frames:4d}  "
                          f"trajectories={len(episode.trajectory_times):4d}  "
                          f"success={'yes' if episode.success_at is not None else 'no'}", flush=True)
        recorder.recording = False
        try:
            _call(recorder, executor, SetBool, "/vla_policy_node/enable", SetBool.Request(data=False), 10.0, children)
        except Exception:  # noqa: BLE001 - stopping anyway
            pass
        wall = time.monotonic() - wall0
        summary = episode.summary(wall)
        summary.update(policy={"path": str(policy_dir), "random_init": is_random, "instruction": args.instruction},
                       seed=args.seed, task=args.task, image_size=[args.width, args.height],
                       video=None if video is None else str(video.path), logs=str(run_dir / "logs"),
                       rerun_recording=None if rrd is None else str(rrd))
    finally:
        children.stop()
        if executor is not None:
            executor.shutdown(timeout_sec=1.0)
        if recorder is not None:
            recorder.destroy_node()
        rclpy.try_shutdown(context=context)
        if video is not None:
            video.close()  # last: it raises when writing failed

    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    lat = summary["latency_ms"]["policy_inference"]
    log(f"done: success={summary['success']}, {summary['control']['trajectories']} trajectories "
        f"({summary['control']['trajectory_rate_hz']:.1f}/s), inference "
        f"{'n/a' if lat is None else f'{lat['p50']:.0f} ms p50'}, RTF {summary['real_time_factor']:.2f}")
    if video is not None:
        log(f"video:   {video.path}")
    if rrd is not None:
        log(f"rerun:   {rrd}  (open it: rerun {rrd})")
    log(f"summary: {run_dir / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
