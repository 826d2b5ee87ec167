"""Evaluate a LeRobot checkpoint on the MuJoCo pick-and-place task two ways, same seeds, or on
the real arm with an operator (--hardware real):

* ros:    the sim node and the policy node as separate processes over real DDS (sim time);
          per episode: policy ~/enable false, sim ~/reset, policy ~/enable true, watch
          sim/task_success for up to `episode_s` of sim time.
* direct: no ROS: the plain-Python sim (`ArmSim`, same scene, same seed, same reset sequence)
          and the checkpoint through the policy node's own backend and observation code,
          LeRobot-style synchronous rollout: one chunk of n_action_steps actions, each held
          1/fps of sim time, then the next observation.

* real:   the policy node over the arm's driver; per episode the operator resets the scene and
          presses Enter, the policy runs for `episode_s` (wall time), and the operator marks it
          y (success) or n (failure), or r to run it again. With --policy the command starts the
          policy node itself; without, it uses the running one (--policy-node).

Each prints a success rate with its Wilson 95 % interval; the sim modes side by side (goal:
ros >= 0.95 x direct).

    python -m so100_bringup.learning.evaluate --policy models/act_so101_pick_place --episodes 50 --seed 100
    python -m so100_bringup.learning.evaluate --hardware real --episodes 20 --episode-s 30
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from so100_bringup.learning.keys import KeySource
from so100_bringup.processes import Children, child_env, node_command, stop_on_signals
from so100_bringup.viewer.child import add_viewer_argument, viewer_command


@dataclass
class EvalSettings:
    policy: Path | None  # None: --hardware real with the running policy node
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
    policy_node: str = "/vla_policy_node"  # real: the policy node to switch on and off
    viewer: str | None = None  # ros mode and real: the Rerun viewer node (window, serve or FILE.rrd)


@dataclass
class EvalResult:
    mode: str
    successes: list[bool] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return float(np.mean(self.successes)) if self.successes else 0.0

    @property
    def ci95(self) -> tuple[float, float]:
        return wilson_interval(sum(self.successes), len(self.successes))


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a success rate (95 % by default): unlike rate +- z*se it stays
    inside [0, 1] and is not empty at 0 or n successes, which small evaluations often have."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


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
    from so100_bringup.demo_video import VideoWriter

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


class RosEpisodes:
    """The sim node and the policy node as processes over real DDS (sim time), driven one
    episode at a time through their services. A context manager: the processes stop on leaving.
    `children` and `client` are open to callers (the soak reads their processes and diagnostics)."""

    def __init__(self, s: EvalSettings, log_dir: Path, progress=print):
        self.s, self.log_dir, self.progress = s, log_dir, progress
        self.children: Children | None = None
        self.client = None
        self._state = {"success": False, "armed": False}

    def __enter__(self) -> "RosEpisodes":
        from std_msgs.msg import Bool

        from so100_bringup.ros_client import RosClient
        from so100_common.ros_node import LATCHED_QOS
        from vla_policy_node.backends.base import read_spec_from_config

        s = self.s
        self.log_dir.mkdir(parents=True, exist_ok=True)
        cameras = read_spec_from_config(Path(s.policy)).camera_names
        self.children = Children(self.log_dir, child_env(), say=self.progress)
        try:
            self.children.start("sim", sim_command(s, cameras))
            self.children.start("policy", policy_command(s))
            if s.viewer:
                self.children.start("viewer", viewer_command(s.viewer, cameras=cameras))
            self.client = RosClient("evaluator", timeout_s=120.0, use_sim_time=True, check=self.children.check)

            def on_success(msg: Bool) -> None:
                if self._state["armed"] and msg.data:
                    self._state["success"] = True

            self.client.node.create_subscription(Bool, "/sim/task_success", on_success, LATCHED_QOS)
            self._enable(False)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.children is not None:
            self.children.stop()

    def _call(self, service: str, srv_type, request):
        from so100_bringup.ros_client import NodeUnavailable

        try:
            return self.client.call(srv_type, service, request)
        except NodeUnavailable as exc:
            raise RuntimeError(f"{exc} (see logs in {self.log_dir})") from None

    def _enable(self, on: bool):
        from std_srvs.srv import SetBool

        return self._call("/vla_policy_node/enable", SetBool, SetBool.Request(data=on))

    def run(self) -> bool:
        """One episode: policy off, sim reset, policy on, wait for success or `episode_s` of sim time."""
        from std_srvs.srv import Trigger

        client, state = self.client, self._state
        self._enable(False)
        state["armed"], state["success"] = False, False
        reply = self._call("/mujoco_sim/reset", Trigger, Trigger.Request())
        if not reply.success:
            raise RuntimeError(f"sim reset failed: {reply.message}")
        time.sleep(0.2)  # the latched success=False of the reset arrives first
        state["armed"] = True
        start = client.now()
        reply = self._enable(True)
        if not reply.success:
            raise RuntimeError(f"policy node refused to start: {reply.message}")
        client.wait_until(lambda: state["success"] or client.now() - start >= self.s.episode_s, math.inf)
        self._enable(False)
        return bool(state["success"])


def evaluate_ros(s: EvalSettings, log_dir: Path, progress=print) -> EvalResult:
    t0 = time.monotonic()
    result = EvalResult("ros")
    with RosEpisodes(s, log_dir, progress) as episodes:
        for ep in range(s.episodes):
            result.successes.append(episodes.run())
            progress(f"[ros] episode {ep + 1}/{s.episodes}: {'success' if result.successes[-1] else 'fail'}")
    result.seconds = time.monotonic() - t0
    return result


# --------------------------------------------------------------------------------------------
# real arm, with an operator at the keyboard
# --------------------------------------------------------------------------------------------
# No letter starts the arm: a mark typed twice must not start the next episode.
START_KEYS = {"enter": "start", "right": "start", "esc": "stop", "q": "stop"}
RUN_KEYS = {"enter": "end", "right": "end", "y": "y", "n": "n", "r": "redo", "left": "redo", "esc": "stop", "q": "stop"}
MARK_KEYS = {"y": "y", "n": "n", "r": "redo", "left": "redo", "esc": "stop", "q": "stop"}


class PolicySwitch(Protocol):
    def enable(self, on: bool) -> str:
        """Switch the policy on or off; the node's message, RuntimeError when it refuses."""


def _operator_choice(keys: KeySource, choices: dict[str, str], seconds: float | None = None,
                     clock: Callable[[], float] = time.monotonic) -> str | None:
    """The choice of the first key in `choices` within `seconds` (None: no limit); None at the
    time limit or when the keys ran out (stdin closed)."""
    deadline = None if seconds is None else clock() + seconds
    while True:
        remaining = 1.0 if deadline is None else deadline - clock()
        if remaining <= 0:
            return None
        key = keys.get(min(remaining, 1.0))
        if key in choices:
            return choices[key]
        if key is None and keys.closed:
            return None


def evaluate_with_operator(policy: PolicySwitch, keys: KeySource, episodes: int, episode_s: float,
                           clock: Callable[[], float] = time.monotonic, progress=print) -> EvalResult:
    """Per episode: the operator resets the scene and starts it, the policy runs for
    `episode_s` (Enter or right arrow ends it early; y / n end it and mark it; r / left arrow
    end it to run it again), then the operator marks it y / n, or r to run it again. Esc / q
    stops: the episode in progress is not counted. The policy is off whenever the operator
    handles the scene."""
    go, stop = "Enter", "Esc" if getattr(keys, "is_tty", True) else "q"
    result = EvalResult("real")
    t0 = clock()
    running = False
    try:
        while len(result.successes) < episodes:
            k = len(result.successes) + 1
            progress(f"[real] reset the scene for episode {k}/{episodes}, then press {go} to start ({stop} stops)")
            if _operator_choice(keys, START_KEYS, clock=clock) != "start":
                break
            progress(f"[real] episode {k}/{episodes}: policy on for {episode_s:g} s ({go} ends it early, "
                     f"y / n end and mark it, r runs it again, {stop} stops)")
            policy.enable(True)
            running = True
            choice = _operator_choice(keys, RUN_KEYS, episode_s, clock)
            policy.enable(False)
            running = False
            if choice == "stop":
                break
            if choice in (None, "end"):
                progress(f"[real] episode {k}/{episodes}: policy off; success? y / n (r runs it again, {stop} stops)")
                choice = _operator_choice(keys, MARK_KEYS, clock=clock)
            if choice == "redo":
                progress(f"[real] episode {k}/{episodes}: not counted, running it again")
                continue
            if choice not in ("y", "n"):
                break
            result.successes.append(choice == "y")
            progress(f"[real] episode {k}/{episodes}: {'success' if choice == 'y' else 'fail'}")
    finally:
        if running:  # Ctrl-C or an error while the policy drove the arm
            try:
                policy.enable(False)
            except Exception as exc:  # report; the original error is the one that matters
                progress(f"[real] could not switch the policy off: {exc}")
    if len(result.successes) < episodes:
        progress(f"[real] stopped after {len(result.successes)} of {episodes} episodes")
    result.seconds = clock() - t0
    return result


class RosPolicySwitch:
    """The policy node's ~/enable (std_srvs/SetBool) through a RosClient (whose `check` reports a
    started policy node that died, with its log)."""

    def __init__(self, client, node: str):
        self.client, self.node = client, node.rstrip("/")

    def enable(self, on: bool) -> str:
        from std_srvs.srv import SetBool

        self.client.check()
        reply = self.client.call(SetBool, f"{self.node}/enable", SetBool.Request(data=on))
        if not reply.success:
            raise RuntimeError(f"{self.node} refused to switch {'on' if on else 'off'}: {reply.message}")
        return reply.message


def real_policy_command(s: EvalSettings) -> list[str]:
    """The policy node for the real arm: wall time, off until the operator starts an episode."""
    params = {"policy_path": str(s.policy), "fps": s.fps, "torch_threads": s.torch_threads, "autostart": False,
              "actions_per_chunk": s.actions_per_chunk, **s.node_params}
    if s.instruction:
        params["task"] = s.instruction
    name = s.policy_node.strip("/").rsplit("/", 1)
    return node_command("vla_policy_node.node", "policy.yaml", params, name=name[-1],
                        namespace=name[0] if len(name) == 2 else "")


def evaluate_real(s: EvalSettings, log_dir: Path, keys: KeySource, progress=print,
                  clock: Callable[[], float] = time.monotonic, timeout_s: float = 120.0) -> EvalResult:
    """The operator loop over the running driver and the policy node (started here with
    --policy, else the running --policy-node)."""
    from so100_bringup.ros_client import NodeUnavailable, RosClient

    children = Children(log_dir, child_env(), say=progress)
    try:
        if s.policy is not None:
            children.start("policy", real_policy_command(s))
        if s.viewer:
            children.start("viewer", viewer_command(s.viewer))
        with RosClient("evaluator", timeout_s=timeout_s, check=children.check) as client:
            policy = RosPolicySwitch(client, s.policy_node)
            try:
                policy.enable(False)  # waits for the node (a started one loads its checkpoint first)
                if s.policy is None and s.instruction:
                    client.set_parameters(s.policy_node, {"task": s.instruction})
            except NodeUnavailable as exc:
                hint = (f"see {children.log_path('policy')}" if s.policy is not None else
                        "start it (vla_policy_node --ros-args -p policy_path:=<checkpoint> ...) or pass --policy")
                raise RuntimeError(f"no policy node: {exc}; {hint}") from None
            return evaluate_with_operator(policy, keys, s.episodes, s.episode_s, clock, progress)
    finally:
        children.stop()


def table(results: Sequence[EvalResult]) -> str:
    lines = [f"{'mode':<8} {'success':>8} {'rate':>6} {'95% CI':>13} {'time':>8}"]
    for r in results:
        lo, hi = r.ci95
        lines.append(f"{r.mode:<8} {sum(r.successes):>3}/{len(r.successes):<4} {r.rate:>6.2f} "
                     f"[{lo:.2f}, {hi:.2f}] {r.seconds:>7.0f}s")
    by = {r.mode: r for r in results}
    if "ros" in by and "direct" in by:
        d = by["direct"].rate
        ratio = by["ros"].rate / d if d > 0 else float("nan")
        lines.append(f"ros / direct = {ratio:.2f} (goal >= 0.95)")
    return "\n".join(lines)


def write_json(path: Path, s: EvalSettings, results: Sequence[EvalResult]) -> None:
    path.write_text(json.dumps({"settings": {k: str(v) for k, v in asdict(s).items()},
                                "results": [{"mode": r.mode, "rate": r.rate, "ci95": list(r.ci95),
                                             "successes": r.successes, "seconds": r.seconds} for r in results]},
                               indent=1))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    d = EvalSettings(Path("."))
    ap.add_argument("--hardware", default="sim", choices=("sim", "real"),
                    help="sim: the MuJoCo task (--modes); real: the arm, with an operator at the keyboard")
    ap.add_argument("--policy", type=Path, help="LeRobot checkpoint folder (real: start the policy node with it; "
                                                "without, the running --policy-node is used)")
    ap.add_argument("--policy-node", default=d.policy_node, help="real: the policy node")
    ap.add_argument("--episodes", type=int, default=d.episodes)
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--episode-s", type=float, default=d.episode_s, help="episode length (sim: sim time)")
    ap.add_argument("--task", default=d.task, choices=("lift", "place"))
    ap.add_argument("--instruction", help=f"task instruction of the policy (sim default: {d.instruction!r}; "
                                          "real: the node's own when not given)")
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
                    help="ros mode and real: another vla_policy_node parameter (config/policy.yaml), repeatable")
    add_viewer_argument(ap)
    a = ap.parse_args(argv)
    bad = [p for p in a.node_param if "=" not in p]
    if bad:
        ap.error(f"--node-param takes NAME=VALUE, got {bad}")
    if a.policy is None and a.hardware == "sim":
        ap.error("--policy is required in the sim")
    if a.policy is not None and not (a.policy / "config.json").is_file():
        print(f"evaluate: {a.policy} is not a LeRobot checkpoint (no config.json)", file=sys.stderr)
        return 2
    instruction = a.instruction if a.instruction is not None or a.hardware == "real" else d.instruction
    s = EvalSettings(policy=a.policy, episodes=a.episodes, seed=a.seed, episode_s=a.episode_s, task=a.task,
                     instruction=instruction or "", fps=a.fps, torch_threads=a.torch_threads,
                     real_time_factor=a.real_time_factor, arm_source=a.arm_source,
                     actions_per_chunk=a.actions_per_chunk, video_dir=a.video_dir,
                     node_params=dict(p.split("=", 1) for p in a.node_param), policy_node=a.policy_node,
                     viewer=a.viewer)
    results = []
    try:
        with stop_on_signals():
            if a.hardware == "real":
                from so100_bringup.learning.keys import TerminalKeys

                with TerminalKeys() as keys:
                    results.append(evaluate_real(s, a.log_dir, keys))
            else:
                for mode in a.modes:
                    results.append(evaluate_ros(s, a.log_dir) if mode == "ros" else evaluate_direct(s))
    except KeyboardInterrupt:
        print("evaluate: interrupted; the nodes were stopped", file=sys.stderr)
        return 130
    except RuntimeError as exc:  # a node that is not there, died or refused
        print(f"evaluate: {exc}", file=sys.stderr)
        return 1
    print(table(results))
    if a.json:
        write_json(a.json, s, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
