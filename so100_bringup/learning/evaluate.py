"""Evaluate a LeRobot checkpoint on the MuJoCo pick-and-place task two ways, same seeds:

* ros:    the sim node and the policy node as separate processes over real DDS (sim time);
          per episode: policy ~/enable false, sim ~/reset, policy ~/enable true, watch
          sim/task_success for up to `episode_s` of sim time.
* direct: no ROS: the plain-Python sim (`ArmSim`, same scene, same seed, same reset sequence)
          and the checkpoint through the policy node's own backend and observation code,
          LeRobot-style synchronous rollout: one chunk of n_action_steps actions, each held
          1/fps of sim time, then the next observation.

Both print a success rate; the command prints them side by side (goal: ros >= 0.95 x direct).

    python -m so100_bringup.learning.evaluate --policy models/act_so101_pick_place --episodes 50 --seed 100
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from so100_bringup.processes import Children, child_env, node_command, stop_on_signals


@dataclass
class EvalSettings:
    policy: Path
    episodes: int = 10
    seed: int = 100
    episode_s: float = 20.0  # sim seconds per episode
    task: str = "place"  # the sim's success criterion (lift or place)
    instruction: str = "pick the cube and place it in the target area"
    fps: float = 30.0  # policy control rate (the dataset's fps)
    image_width: int = 320
    image_height: int = 240
    torch_threads: int = 1
    real_time_factor: float = 1.0  # ros mode: sim pacing (the policy node runs on wall time too)
    arm_source: str = "urdf"  # scene arm model (the sim node's arm_source)
    actions_per_chunk: int = 0  # actions used from each chunk; 0 = the checkpoint's n_action_steps
    video_dir: Path | None = None  # direct mode: one front-camera mp4 per episode here
    node_params: dict = field(default_factory=dict)  # ros mode: more policy-node parameters


@dataclass
class EvalResult:
    mode: str
    successes: list[bool] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return float(np.mean(self.successes)) if self.successes else 0.0


# --------------------------------------------------------------------------------------------
# direct (no ROS)
# --------------------------------------------------------------------------------------------
def evaluate_direct(s: EvalSettings, progress=print) -> EvalResult:
    from so100_bringup.sim.gl import ensure_gl_backend

    ensure_gl_backend()
    from so100_description.calibration import JointUnitConverter, nominal_calibration
    from so100_bringup.sim.physics import ArmSim
    from so100_bringup.sim.render import CameraRenderer
    from so100_bringup.sim.scene import SceneConfig, build_scene
    from vla_policy_node.backends.base import IMAGE_PREFIX, PolicyInput
    from vla_policy_node.backends.local import LocalLeRobotBackend
    from so100_common.images import fit_image

    t0 = time.monotonic()
    backend = LocalLeRobotBackend(s.policy, torch_threads=s.torch_threads)
    spec = backend.spec
    n_actions = s.actions_per_chunk or int(getattr(backend.config, "n_action_steps", spec.chunk_size)
                                           or spec.chunk_size)
    cfg = SceneConfig(image_width=s.image_width, image_height=s.image_height, arm_source=s.arm_source)
    model, names = build_scene(cfg)
    sim = ArmSim(model, names, cfg, task=s.task, seed=s.seed)
    cameras = spec.camera_names
    renderer = CameraRenderer(model, cameras, cfg.image_width, cfg.image_height) if cameras else None
    converter = JointUnitConverter(nominal_calibration(cfg.variant))
    steps_per_action = max(1, int(round(1.0 / (s.fps * sim.timestep))))
    filming = CameraRenderer(model, ["front"], cfg.image_width, cfg.image_height) if s.video_dir else None
    result = EvalResult("direct")
    try:
        for ep in range(s.episodes):
            sim.reset()  # the sim node's ~/reset: the next layout of the seeded sequence
            backend.reset()
            start, success, top = sim.time, False, 0.0
            video = _episode_video(s.video_dir, ep, s.fps) if filming else None
            while sim.time - start < s.episode_s and not success:
                state = converter.state_vector(dict(zip(sim.joint_names, sim.joint_positions())))
                images = {IMAGE_PREFIX + c: fit_image(renderer.render(sim.data, c), spec.image_hw(IMAGE_PREFIX + c))
                          for c in cameras}
                chunk = backend.predict_chunk(PolicyInput(state=state.astype(np.float32), images=images,
                                                          task=s.instruction))
                for action in chunk[:n_actions]:
                    target = converter.positions_from_action(action)
                    sim.set_targets([target[j] for j in sim.joint_names])
                    for _ in range(steps_per_action):
                        sim.step()
                        success = success or sim.task_success()
                    top = max(top, float(sim.cube_position()[2]))
                    if video is not None:
                        video.add(filming.render(sim.data, "front"))
                    if success or sim.time - start >= s.episode_s:
                        break
            if video is not None:
                video.close()
            result.successes.append(success)
            lifted = top > cfg.cube_size_m / 2 + 0.03
            progress(f"[direct] episode {ep + 1}/{s.episodes}: {'success' if success else 'fail'}"
                     f"{'' if success else (' (cube lifted)' if lifted else ' (cube not lifted)')}")
    finally:
        for r in (renderer, filming):
            if r is not None:
                r.close()
    result.seconds = time.monotonic() - t0
    return result


def _episode_video(video_dir: Path, episode: int, fps: float):
    from so100_bringup.demo import VideoWriter

    Path(video_dir).mkdir(parents=True, exist_ok=True)
    return VideoWriter(Path(video_dir) / f"direct_episode_{episode:03d}", fps=fps)


# --------------------------------------------------------------------------------------------
# over ROS (separate processes, real DDS)
# --------------------------------------------------------------------------------------------
def sim_command(s: EvalSettings, cameras: Sequence[str]) -> list[str]:
    return node_command("so100_bringup.sim.node", "sim.yaml", {
        "task": s.task, "seed": s.seed, "cameras": list(cameras), "image_width": s.image_width,
        "image_height": s.image_height, "real_time_factor": s.real_time_factor, "arm_source": s.arm_source})


def policy_command(s: EvalSettings) -> list[str]:
    return node_command("vla_policy_node.node", "policy.yaml", {
        "policy_path": str(s.policy), "use_sim_time": True, "fps": s.fps, "task": s.instruction,
        "torch_threads": s.torch_threads, "autostart": False, "actions_per_chunk": s.actions_per_chunk,
        **s.node_params})


def evaluate_ros(s: EvalSettings, log_dir: Path, progress=print) -> EvalResult:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from std_msgs.msg import Bool
    from std_srvs.srv import SetBool, Trigger

    from so100_common.ros_node import LATCHED_QOS
    from vla_policy_node.backends.base import read_spec_from_config

    t0 = time.monotonic()
    log_dir.mkdir(parents=True, exist_ok=True)
    cameras = read_spec_from_config(Path(s.policy)).camera_names
    children = Children(log_dir, child_env(), say=progress)
    children.start("sim", sim_command(s, cameras))
    children.start("policy", policy_command(s))
    context = rclpy.Context()
    # no rclpy signal handler: Ctrl-C is a KeyboardInterrupt here, which stops the children below
    rclpy.init(context=context, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    node = rclpy.create_node("evaluator", context=context,
                             parameter_overrides=[Parameter("use_sim_time", value=True)])
    state = {"success": False, "armed": False}

    def on_success(msg: Bool) -> None:
        if state["armed"] and msg.data:
            state["success"] = True

    node.create_subscription(Bool, "/sim/task_success", on_success, LATCHED_QOS)
    reset = node.create_client(Trigger, "/mujoco_sim/reset")
    enable = node.create_client(SetBool, "/vla_policy_node/enable")
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()

    def call(client, request, timeout=120.0):
        if not client.wait_for_service(timeout_sec=timeout):
            raise RuntimeError(f"{client.srv_name} not available (see logs in {log_dir})")
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done():
            children.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{client.srv_name} did not answer (see logs in {log_dir})")
            time.sleep(0.01)
        return future.result()

    def sim_now() -> float:
        return node.get_clock().now().nanoseconds * 1e-9

    result = EvalResult("ros")
    try:
        call(enable, SetBool.Request(data=False))
        for ep in range(s.episodes):
            call(enable, SetBool.Request(data=False))
            state["armed"], state["success"] = False, False
            reply = call(reset, Trigger.Request())
            if not reply.success:
                raise RuntimeError(f"sim reset failed: {reply.message}")
            time.sleep(0.2)  # the latched success=False of the reset arrives first
            state["armed"] = True
            start = sim_now()
            reply = call(enable, SetBool.Request(data=True))
            if not reply.success:
                raise RuntimeError(f"policy node refused to start: {reply.message}")
            while sim_now() - start < s.episode_s and not state["success"]:
                children.check()
                time.sleep(0.02)
            call(enable, SetBool.Request(data=False))
            result.successes.append(bool(state["success"]))
            progress(f"[ros] episode {ep + 1}/{s.episodes}: {'success' if state['success'] else 'fail'}")
    finally:
        children.stop()  # first, whatever happens below
        executor.shutdown(timeout_sec=5.0)
        spin.join(timeout=5.0)  # a spinning thread left at exit aborts the interpreter
        node.destroy_node()
        rclpy.shutdown(context=context)
    result.seconds = time.monotonic() - t0
    return result


def table(results: Sequence[EvalResult]) -> str:
    lines = [f"{'mode':<8} {'success':>8} {'rate':>6} {'time':>8}"]
    for r in results:
        lines.append(f"{r.mode:<8} {sum(r.successes):>3}/{len(r.successes):<4} {r.rate:>6.2f} {r.seconds:>7.0f}s")
    by = {r.mode: r for r in results}
    if "ros" in by and "direct" in by:
        d = by["direct"].rate
        ratio = by["ros"].rate / d if d > 0 else float("nan")
        lines.append(f"ros / direct = {ratio:.2f} (goal >= 0.95)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    d = EvalSettings(Path("."))
    ap.add_argument("--policy", type=Path, required=True, help="LeRobot checkpoint folder")
    ap.add_argument("--episodes", type=int, default=d.episodes)
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--episode-s", type=float, default=d.episode_s)
    ap.add_argument("--task", default=d.task, choices=("lift", "place"))
    ap.add_argument("--instruction", default=d.instruction)
    ap.add_argument("--fps", type=float, default=d.fps)
    ap.add_argument("--torch-threads", type=int, default=d.torch_threads)
    ap.add_argument("--real-time-factor", type=float, default=d.real_time_factor)
    ap.add_argument("--arm-source", default=d.arm_source, choices=("urdf", "official_mjcf"))
    ap.add_argument("--actions-per-chunk", type=int, default=d.actions_per_chunk,
                    help="actions used from each chunk (both modes); 0 = the checkpoint's n_action_steps")
    ap.add_argument("--modes", nargs="+", default=["ros", "direct"], choices=("ros", "direct"))
    ap.add_argument("--log-dir", type=Path, default=Path("outputs/eval_logs"))
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--video-dir", type=Path, help="direct mode: write one front-camera mp4 per episode here")
    ap.add_argument("--node-param", action="append", default=[], metavar="NAME=VALUE",
                    help="ros mode: another vla_policy_node parameter (config/policy.yaml), repeatable")
    a = ap.parse_args(argv)
    bad = [p for p in a.node_param if "=" not in p]
    if bad:
        ap.error(f"--node-param takes NAME=VALUE, got {bad}")
    if not (a.policy / "config.json").is_file():
        print(f"evaluate: {a.policy} is not a LeRobot checkpoint (no config.json)", file=sys.stderr)
        return 2
    s = EvalSettings(policy=a.policy, episodes=a.episodes, seed=a.seed, episode_s=a.episode_s, task=a.task,
                     instruction=a.instruction, fps=a.fps, torch_threads=a.torch_threads,
                     real_time_factor=a.real_time_factor, arm_source=a.arm_source,
                     actions_per_chunk=a.actions_per_chunk, video_dir=a.video_dir,
                     node_params=dict(p.split("=", 1) for p in a.node_param))
    results = []
    try:
        with stop_on_signals():
            for mode in a.modes:
                results.append(evaluate_ros(s, a.log_dir) if mode == "ros" else evaluate_direct(s))
    except KeyboardInterrupt:
        print("evaluate: interrupted; the nodes were stopped", file=sys.stderr)
        return 130
    print(table(results))
    if a.json:
        a.json.write_text(json.dumps({"settings": {k: str(v) for k, v in asdict(s).items()},
                                      "results": [{"mode": r.mode, "rate": r.rate, "successes": r.successes,
                                                   "seconds": r.seconds} for r in results]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
