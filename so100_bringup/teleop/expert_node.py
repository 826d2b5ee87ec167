"""Scripted-expert node: solves the MuJoCo pick-and-place task N times over ROS, optionally
driving the recorder so every successful demonstration becomes a dataset episode.

Per episode: ~/reset of the sim node (its reply names the new cube and target positions),
wait for fresh /joint_states, plan with `PickPlaceExpert`, ~/start_episode of the recorder,
publish the plan on /arm_controller/joint_trajectory + /gripper_controller/joint_trajectory
(exactly what a policy publishes), wait for it to run out (node clock: run with
use_sim_time:=true next to the sim), read sim/task_success, then ~/stop_episode (kept) or
~/discard_episode (failed, unless keep_failed).

    python -m so100_bringup.teleop.expert_node --ros-args -p use_sim_time:=true -p episodes:=50
"""
from __future__ import annotations

import re
import sys
import threading
import time
from typing import Sequence

import numpy as np
import rclpy
from builtin_interfaces.msg import Duration
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from so100_bringup.control.follower import TrajectoryPoint
from so100_common.params import Param, schema
from so100_common.ros_node import COMMAND_QOS, LATCHED_QOS, STATE_QOS, declare_params, now_seconds, spin_node_main, spinning
from so100_bringup.teleop.expert import ExpertSettings, PickPlaceExpert, PlanningError, plan_duration
from so100_description.joints import ARM_JOINTS, GRIPPER_JOINTS, JOINT_NAMES, VARIANTS, strip_prefix

# The sim node's ~/reset reply, e.g. "episode 3: cube at (0.266, -0.046), target at (0.156, -0.174)"
_LAYOUT_RE = re.compile(r"cube at \(\s*([-0-9.eE+]+),\s*([-0-9.eE+]+)\).*?target at \(\s*([-0-9.eE+]+),"
                        r"\s*([-0-9.eE+]+)\)")

PARAMS = schema("scripted_expert", [
    Param("episodes", 10, "number of demonstrations to run", min=1),
    Param("reset_service", "mujoco_sim/reset", "sim reset service (std_srvs/Trigger)"),
    Param("recorder", "recorder", "recorder node whose ~/start_episode, ~/stop_episode and ~/discard_episode "
          "are called; empty = do not record"),
    Param("task_success_topic", "sim/task_success", "std_msgs/Bool from the sim"),
    Param("joint_states_topic", "joint_states", "arm state"),
    Param("arm_trajectory_topic", "arm_controller/joint_trajectory", "arm JointTrajectory"),
    Param("gripper_trajectory_topic", "gripper_controller/joint_trajectory", "gripper JointTrajectory"),
    Param("joint_prefix", "", "prefix of the joint names on the topics"),
    Param("variant", "so101", "arm variant (IK model, limits)", choices=VARIANTS),
    Param("cube_size_m", 0.03, "edge of the sim cube", min=0.0, min_exclusive=True, unit="m"),
    Param("keep_failed", False, "also save episodes in which the task did not succeed"),
    Param("settle_s", 0.5, "wait after a reset before planning (node clock)", min=0.0, unit="s"),
    Param("extra_s", 1.0, "wait after the plan's last point before judging success (node clock)", min=0.0,
          unit="s"),
    Param("service_timeout_s", 60.0, "timeout of each service call (wall clock)", min=0.0, min_exclusive=True,
          unit="s"),
], title="Scripted expert (so100_bringup.teleop.expert_node, console script so100_expert)")


def parse_layout(message: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """(cube_xy, target_xy) from the sim's reset reply; ValueError when the reply has no layout."""
    match = _LAYOUT_RE.search(message)
    if not match:
        raise ValueError(f"the sim's reset reply has no cube/target layout: {message!r}")
    x, y, tx, ty = (float(g) for g in match.groups())
    return (x, y), (tx, ty)


def trajectory_msgs(points: Sequence[TrajectoryPoint], prefix: str = "") -> tuple[JointTrajectory, JointTrajectory]:
    """(arm, gripper) JointTrajectory messages of a JOINT_NAMES-ordered plan, stamp 0 = start now."""
    out = []
    for joints in (ARM_JOINTS, GRIPPER_JOINTS):
        cols = [JOINT_NAMES.index(j) for j in joints]
        msg = JointTrajectory()
        msg.joint_names = [prefix + j for j in joints]
        for p in points:
            t = float(p.time_from_start)
            pt = JointTrajectoryPoint(positions=[float(p.positions[c]) for c in cols])
            pt.time_from_start = Duration(sec=int(t), nanosec=int(round((t - int(t)) * 1e9)) % 1_000_000_000)
            msg.points.append(pt)
        out.append(msg)
    return out[0], out[1]


class ExpertNode(Node):
    def __init__(self, **kwargs):
        super().__init__("scripted_expert", **kwargs)
        self.p = declare_params(self, PARAMS)  # first: a bad value stops here
        self.prefix = self.p["joint_prefix"]
        self.expert = PickPlaceExpert(settings=ExpertSettings(), variant=self.p["variant"],
                                      cube_size_m=float(self.p["cube_size_m"]))
        self._lock = threading.Lock()
        self._q: dict[str, float] = {}
        self._q_stamp = -1.0
        self._success = False
        self.create_subscription(JointState, self.p["joint_states_topic"], self._on_state, STATE_QOS)
        self.create_subscription(Bool, self.p["task_success_topic"], self._on_success, LATCHED_QOS)
        self.arm_pub = self.create_publisher(JointTrajectory, self.p["arm_trajectory_topic"], COMMAND_QOS)
        self.grip_pub = self.create_publisher(JointTrajectory, self.p["gripper_trajectory_topic"], COMMAND_QOS)
        self.reset_client = self.create_client(Trigger, self.p["reset_service"])
        rec = self.p["recorder"].rstrip("/")
        self.rec = {name: self.create_client(Trigger, f"{rec}/{name}") for name in
                    ("start_episode", "stop_episode", "discard_episode")} if rec else {}
        self.kept = 0
        self.succeeded = 0
        self.failed: list[str] = []

    def _on_state(self, msg: JointState) -> None:
        if len(msg.name) != len(msg.position):
            return
        with self._lock:
            self._q.update({strip_prefix(n, self.prefix): float(x) for n, x in zip(msg.name, msg.position)})
            self._q_stamp = time.monotonic()

    def _on_success(self, msg: Bool) -> None:
        self._success = bool(msg.data)

    # -- helpers (worker thread) -------------------------------------------------------------
    def _call(self, client, what: str) -> Trigger.Response:
        timeout = float(self.p["service_timeout_s"])
        if not client.wait_for_service(timeout_sec=timeout):
            raise RuntimeError(f"service {client.srv_name} ({what}) is not available")
        future = client.call_async(Trigger.Request())
        deadline = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > deadline:
                raise RuntimeError(f"service {client.srv_name} ({what}) did not answer in {timeout:.0f} s")
            time.sleep(0.01)
        return future.result()

    def _sleep_node_time(self, seconds: float) -> None:
        """Sleep `seconds` of node time (sim time with use_sim_time; the sim may be slower)."""
        end = now_seconds(self) + seconds
        while rclpy.ok(context=self.context) and now_seconds(self) < end:
            time.sleep(0.01)

    def _current_q(self, newer_than: float) -> np.ndarray:
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            with self._lock:
                if self._q_stamp > newer_than and all(j in self._q for j in JOINT_NAMES):
                    return np.array([self._q[j] for j in JOINT_NAMES])
            time.sleep(0.01)
        raise RuntimeError(f"no complete {self.p['joint_states_topic']} within 10 s")

    def run_episode(self, index: int) -> bool:
        reply = self._call(self.reset_client, "sim reset")
        if not reply.success:
            raise RuntimeError(f"sim reset failed: {reply.message}")
        cube_xy, target_xy = parse_layout(reply.message)
        asked = time.monotonic()
        self._sleep_node_time(float(self.p["settle_s"]))
        q = self._current_q(asked)
        cube = (cube_xy[0], cube_xy[1], float(self.p["cube_size_m"]) / 2)
        points = self.expert.plan(q, cube, target_xy)
        if self.rec:
            started = self._call(self.rec["start_episode"], "start recording")
            if not started.success:
                raise RuntimeError(f"recorder refused to start: {started.message}")
        arm, grip = trajectory_msgs(points, self.prefix)
        self._success = False
        self.arm_pub.publish(arm)
        self.grip_pub.publish(grip)
        self._sleep_node_time(plan_duration(points) + float(self.p["extra_s"]))
        success = self._success
        self.succeeded += int(success)
        keep = success or bool(self.p["keep_failed"])
        if self.rec:
            done = self._call(self.rec["stop_episode" if keep else "discard_episode"], "finish recording")
            if not done.success:
                raise RuntimeError(f"recorder could not finish the episode: {done.message}")
            self.kept += int(keep)
        self.get_logger().info(f"episode {index + 1}/{self.p['episodes']}: cube {np.round(cube_xy, 3).tolist()} -> "
                               f"target {np.round(target_xy, 3).tolist()}: "
                               f"{'success' if success else 'failed'}{', kept' if keep and self.rec else ''}")
        return success

    def run(self) -> int:
        n = int(self.p["episodes"])
        self.get_logger().info(f"running {n} episodes: sim reset {self.reset_client.srv_name}, recorder "
                               f"{self.p['recorder'] or '(none)'}")
        for i in range(n):
            if not rclpy.ok(context=self.context):
                break
            try:
                self.run_episode(i)
            except PlanningError as exc:  # this layout is out of reach: next one
                self.failed.append(str(exc))
                self.get_logger().warn(f"episode {i + 1}: {exc}")  # planned before recording starts
        self.get_logger().info(f"done: {self.succeeded}/{n} successful"
                               + (f", {self.kept} episodes recorded" if self.rec else ""))
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    def run(node: ExpertNode) -> int:
        with spinning(node, MultiThreadedExecutor(num_threads=2, context=node.context)):
            return node.run()  # the episodes, in this (the main) thread

    return spin_node_main(argv, ExpertNode, "scripted_expert", failures=(RuntimeError, ValueError), run=run)


if __name__ == "__main__":
    sys.exit(main())
