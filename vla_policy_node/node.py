"""vla_policy_node: cameras + /joint_states -> LeRobot policy -> JointTrajectory chunks.

A thin rclpy shell over PolicyRunner (runner.py): it declares the parameters of its `PARAMS`
schema (typed, with ranges and choices; config/policy.yaml is generated from it by
`python -m so100_bringup.node_params --write`), converts messages, publishes trajectories and diagnostics and
offers ~/enable (std_srvs/SetBool: true = run, false = stop and hold) and ~/estop
(std_srvs/Trigger: hold and latch until the next enable).
"""
from __future__ import annotations

import sys
import time
from array import array
from typing import Any

import numpy as np
from builtin_interfaces.msg import Duration as DurationMsg
from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from so100_common.params import Param, schema
from so100_common.ros_node import (COMMAND_QOS, ERROR, IMAGE_QOS, OK, WARN, declare_params,
                                   diagnostic_array, diagnostic_status, now_seconds, spin_node_main)
from so100_description.calibration import (ArmUnits, JointUnitConverter, load_calibration, nominal_calibration,
                                           resolve_calibration_path)
from so100_description.joints import ARM_JOINTS, GRIPPER_JOINTS, JOINT_NAMES, VARIANTS

from .actions import ACTION_SPACES, make_action_mapper
from .backends import CheckpointError, check_compatibility, make_backend, read_spec_from_config
from .backends.base import IMAGE_PREFIX
from .backends.local import _DTYPES as LOCAL_DTYPES
from .chunking import ChunkScheduler, Segment
from so100_common.images import RESIZE_MODES, ImageConversionError, compressed_msg_to_rgb
from so100_common.ros_images import ros_image_to_rgb
from .observation import JointStateError, ObservationBuilder
from .runner import PolicyRunner
from .safety import JointLimiter, LimitArrays

# ee_actions' GRIPPER_UNITS and ORIENTATION_MODES, spelled out: that module (IK) is imported only
# for an end-effector action space (test_node_params checks that the lists agree).
EE_GRIPPER_UNITS = ("rad", "fraction")
EE_ORIENTATION_MODES = ("full", "approach", "none")

PARAMS = schema("vla_policy_node", [
    # policy
    Param("backend", "local", "local: run the checkpoint in this process; remote: LeRobot's async-inference "
          "PolicyServer (python -m lerobot.async_inference.policy_server)", choices=("local", "remote")),
    Param("policy_path", "", "LeRobot checkpoint folder (config.json, model.safetensors, "
          "policy_preprocessor.json, policy_postprocessor.json); for remote, the path or hub id as the SERVER "
          "sees it. Required"),
    Param("device", "cpu", "torch device for inference: cpu, cuda, cuda:N, mps or auto (local backend; for "
          "remote, the server's device)"),
    Param("dtype", "float32", "model dtype of the local backend", choices=tuple(LOCAL_DTYPES)),
    Param("torch_threads", 0, "torch CPU threads; 0 = torch's default", min=0),
    Param("server_address", "127.0.0.1:8080", "host:port of the PolicyServer (backend remote)"),
    Param("remote_policy_type", "", "policy type for the server (act, smolvla, pi0, pi05, diffusion, ...); "
          "empty = read from the local config.json"),
    Param("actions_per_chunk", 0, "actions used from each chunk; 0 = the checkpoint's n_action_steps", min=0),
    # inputs
    Param("cameras", "", "comma-separated name=topic (or just name for camera/<name>/image_raw); name is the "
          "policy's observation.images.<name>; topics ending in /compressed are sensor_msgs/CompressedImage. "
          "Empty = every camera of the checkpoint on camera/<name>/image_raw"),
    Param("image_qos", "reliable", "camera subscription reliability (match your camera driver)",
          choices=("reliable", "best_effort")),
    Param("image_resize", "resize", "fit frames to the policy's image size: resize, or crop (centre crop to "
          "the policy's aspect ratio, then resize)", choices=tuple(RESIZE_MODES)),
    Param("max_image_age", 0.5, "frames older than this since receipt are not used (the node waits and says "
          "so)", min=0.0, min_exclusive=True, unit="s"),
    Param("max_state_age", 0.5, "joint states older than this since receipt are not used",
          min=0.0, min_exclusive=True, unit="s"),
    Param("joint_states_topic", "joint_states", "sensor_msgs/JointState input (relative: follows the namespace)"),
    Param("joint_prefix", "", "prefix of the joint names on the topics (e.g. left_)"),
    Param("instruction_topic", "vla/instruction", "std_msgs/String task instruction input at run time"),
    Param("task", "", "task instruction for language-conditioned policies", read_only=False),
    # robot and units
    Param("variant", "so101", "arm variant: joint limits from so100_description", choices=VARIANTS),
    Param("calibration_file", "", "LeRobot calibration JSON of the follower arm (the driver's); empty: see "
          "robot_id"),
    Param("robot_id", "", "LeRobot robot id: with calibration_file empty, read $HF_LEROBOT_CALIBRATION/robots/"
          "so_follower/<id>.json, as the driver does; both empty = the nominal calibration (sim)"),
    Param("arm_units", "degrees", "LeRobot units the policy's arm joints were trained in (degrees is "
          "LeRobot's default)", choices=tuple(u.value for u in ArmUnits)),
    Param("action_space", "joint", "policy action space: joint, or end-effector ee_absolute / ee_delta "
          "(T x 7: x, y, z, roll, pitch, yaw, gripper)", choices=tuple(ACTION_SPACES)),
    Param("ee_frame", "base_link", "frame of end-effector actions"),
    Param("ee_gripper_unit", "rad", "end-effector actions' gripper column: rad (URDF joint angle) or fraction "
          "(0 closed .. 1 open)", choices=EE_GRIPPER_UNITS),
    Param("ee_orientation", "full", "end-effector orientation tracking of the 5-DOF arm: full, approach "
          "(roll free) or none", choices=EE_ORIENTATION_MODES),
    # outputs and timing
    Param("arm_trajectory_topic", "arm_controller/joint_trajectory", "JointTrajectory output for the arm joints"),
    Param("gripper_trajectory_topic", "gripper_controller/joint_trajectory", "JointTrajectory output for the "
          "gripper"),
    Param("use_follow_joint_trajectory", False, "also send each chunk as a FollowJointTrajectory goal (needs "
          "control_msgs)"),
    Param("fps", 30.0, "the policy's control rate: time between consecutive actions of a chunk",
          min=0.0, min_exclusive=True, unit="Hz"),
    Param("trigger_fraction", 0.5, "start the next inference when this fraction of the current chunk is left "
          "(earlier if the measured latency needs it, so the arm never waits)", min=0.0, max=1.0),
    Param("lead_time", 0.03, "actions due sooner than this after a chunk arrives are dropped "
          "(transport/controller latency)", min=0.0, unit="s"),
    Param("blend_steps", 4, "minimum crossfade length (actions) when splicing a new chunk into the current one",
          min=1),
    Param("blend_max_steps", 30, "maximum crossfade length (actions); longer fades when chunks disagree more",
          min=1),
    # safety
    Param("velocity_scale", 1.0, "fraction of the URDF velocity limits the commands may use",
          min=0.0, max=1.0, min_exclusive=True),
    Param("acceleration_scale", 1.0, "fraction of the configured acceleration limits the commands may use",
          min=0.0, max=1.0, min_exclusive=True),
    Param("autostart", False, "run the policy at startup; otherwise call ~/enable (std_srvs/SetBool) with "
          "true, e.g. `so100_ctl enable`"),
    Param("diagnostics_period", 1.0, "time between /diagnostics messages", min=0.0, min_exclusive=True, unit="s"),
], title="Parameters of vla_policy_node (vla_policy_node/node.py, console script vla_policy_node)")


def _ik_solver(variant: str):
    """MoveIt's IK when moveit_py imports (a full ROS install), else pinocchio's."""
    try:
        from so100_description.moveit.ik import make_ik_solver

        return make_ik_solver(variant)
    except ImportError as exc:
        raise RuntimeError(f"end-effector action spaces need the IK stack (pip extra `kinematics`): {exc}") from None


def _parse_cameras(text: str, policy_cameras: list[str]) -> dict[str, str]:
    """'front=/a,wrist' -> {'front': '/a', 'wrist': 'camera/wrist/image_raw'}."""
    entries = [e.strip() for e in text.split(",") if e.strip()]
    if not entries:
        return {name: f"camera/{name}/image_raw" for name in policy_cameras}
    mapping: dict[str, str] = {}
    for entry in entries:
        name, _, topic = entry.partition("=")
        name, topic = name.strip(), topic.strip()
        if name in mapping:
            raise ValueError(f"camera {name!r} is mapped twice in 'cameras'")
        mapping[name] = topic or f"camera/{name}/image_raw"
    return mapping


def _time_msg(seconds: float) -> TimeMsg:
    sec = int(np.floor(seconds))
    return TimeMsg(sec=sec, nanosec=int(round((seconds - sec) * 1e9)) % 1_000_000_000)


def _duration_msg(seconds: float) -> DurationMsg:
    sec = int(np.floor(seconds))
    return DurationMsg(sec=sec, nanosec=min(int(round((seconds - sec) * 1e9)), 999_999_999))


class PolicyNode(Node):
    def __init__(self, **kwargs):
        super().__init__("vla_policy_node", **kwargs)
        self._last_log: dict[str, float] = {}
        self.builder: ObservationBuilder | None = None
        p = declare_params(self, PARAMS, on_change=self._on_params)  # first: a bad value stops here
        self.params = p
        if p["use_follow_joint_trajectory"]:
            try:
                import control_msgs.action  # noqa: F401  # type: ignore
            except ImportError as exc:
                raise RuntimeError(f"use_follow_joint_trajectory needs control_msgs: {exc}") from None
        if not p["policy_path"]:
            raise CheckpointError("parameter 'policy_path' is empty: give a LeRobot checkpoint folder")
        prefix = p["joint_prefix"]
        self.arm_joints = [prefix + j for j in ARM_JOINTS]
        self.gripper_joints = [prefix + j for j in GRIPPER_JOINTS]

        path = resolve_calibration_path(p["calibration_file"], p["robot_id"])
        calibration = load_calibration(path) if path is not None else nominal_calibration(p["variant"])
        self.converter = JointUnitConverter(calibration, p["arm_units"], p["variant"])
        ee_options = {} if p["action_space"] == "joint" else dict(
            fps=float(p["fps"]), velocity_scale=float(p["velocity_scale"]),
            gripper_unit=p["ee_gripper_unit"], orientation=p["ee_orientation"],
            solver=_ik_solver(p["variant"]))
        mapper, action_dim = make_action_mapper(p["action_space"], self.converter, p["variant"], p["ee_frame"],
                                                **ee_options)

        backend_kwargs: dict[str, Any]
        if p["backend"] == "local":
            backend_kwargs = dict(path=p["policy_path"], device=p["device"], dtype=p["dtype"],
                                  torch_threads=int(p["torch_threads"]))
        else:
            backend_kwargs = dict(server_address=p["server_address"], policy_path=p["policy_path"],
                                  policy_type=p["remote_policy_type"], device=p["device"],
                                  actions_per_chunk=int(p["actions_per_chunk"]),
                                  cameras=tuple(_parse_cameras(p["cameras"], [])))
        if p["backend"] == "local":  # check the setup against config.json before loading weights
            spec = read_spec_from_config(p["policy_path"])
            check_compatibility(spec, list(_parse_cameras(p["cameras"], spec.camera_names)),
                                len(JOINT_NAMES), action_dim)
        self.get_logger().info(f"loading policy {p['policy_path']} ({p['backend']})")
        self.backend = make_backend(p["backend"], **backend_kwargs)
        spec = self.backend.spec
        self.camera_topics = _parse_cameras(p["cameras"], spec.camera_names)
        check_compatibility(spec, list(self.camera_topics), len(JOINT_NAMES), action_dim)

        self.builder = ObservationBuilder(
            spec.image_shapes, self.converter, JOINT_NAMES, prefix, p["max_image_age"], p["max_state_age"],
            p["image_resize"], p["task"])
        limits = LimitArrays.for_joints(JOINT_NAMES, p["variant"], "", p["velocity_scale"], p["acceleration_scale"])
        self.limiter = JointLimiter(limits)
        self.dt = 1.0 / float(p["fps"])
        self.scheduler = ChunkScheduler(
            len(JOINT_NAMES), self.dt, trigger_fraction=p["trigger_fraction"], lead_time=p["lead_time"],
            blend_steps=p["blend_steps"], blend_max_steps=p["blend_max_steps"],
            chunk_horizon=int(p["actions_per_chunk"]) or spec.chunk_size, limiter=self.limiter)
        self.runner = PolicyRunner(self.backend, self.builder, self.scheduler, mapper, self._publish_segment,
                                   self._publish_hold, lambda: now_seconds(self), action_dim, log=self._log)

        self.arm_pub = self.create_publisher(JointTrajectory, p["arm_trajectory_topic"], COMMAND_QOS)
        self.gripper_pub = self.create_publisher(JointTrajectory, p["gripper_trajectory_topic"], COMMAND_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._action_clients = self._make_action_clients() if p["use_follow_joint_trajectory"] else None

        image_qos = IMAGE_QOS if p["image_qos"] == "reliable" else QoSProfile(
            depth=2, reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST)
        self._subs = []
        self.image_errors = 0
        for name, topic in self.camera_topics.items():
            key = IMAGE_PREFIX + name
            compressed = topic.rstrip("/").endswith("/compressed")
            self._subs.append(self.create_subscription(
                CompressedImage if compressed else Image, topic,
                lambda msg, key=key, compressed=compressed: self._on_image(msg, key, compressed), image_qos))
        state_qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST)
        self._subs.append(self.create_subscription(JointState, p["joint_states_topic"], self._on_joint_state, state_qos))
        self._subs.append(self.create_subscription(String, p["instruction_topic"], self._on_instruction, 10))
        self.create_service(SetBool, "~/enable", self._on_enable)
        self.create_service(Trigger, "~/estop", self._on_estop)
        self.create_timer(float(p["diagnostics_period"]), self._publish_diagnostics)

        self.runner.start()
        if p["autostart"]:
            self.runner.enable(True)
        self.get_logger().info(
            f"policy {spec.policy_type} ready: cameras {self.camera_topics}, chunk {spec.chunk_size} at "
            f"{p['fps']} Hz, action space {p['action_space']}; "
            + ("running" if p["autostart"] else "start it with `so100_ctl enable` (service ~/enable)"))

    # -- inputs ----------------------------------------------------------------------------
    def _on_image(self, msg, key: str, compressed: bool) -> None:
        arrival = time.perf_counter()
        try:
            rgb = compressed_msg_to_rgb(msg) if compressed else ros_image_to_rgb(msg)
        except ImageConversionError as exc:
            self.image_errors += 1
            self._log("error", f"{key}: {exc}", throttle=2.0)
            return
        self.builder.update_image(key, rgb, now_seconds(self), arrival)
        self.runner.notify()

    def _on_joint_state(self, msg: JointState) -> None:
        try:
            self.builder.update_joint_state(msg.name, msg.position, now_seconds(self))
        except JointStateError as exc:
            self._log("error", f"/joint_states ignored: {exc}", throttle=2.0)

    def _on_instruction(self, msg: String) -> None:
        self.builder.set_task(msg.data)
        self.get_logger().info(f"task instruction: {msg.data!r}")

    def _on_params(self, changed: dict[str, Any]) -> None:
        """A run-time parameter set the schema accepted (only `task` is not read-only)."""
        if "task" in changed and self.builder is not None:
            self.builder.set_task(changed["task"])
            self.get_logger().info(f"task instruction: {changed['task']!r}")

    # -- services --------------------------------------------------------------------------
    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        response.message = self.runner.enable(bool(request.data))
        response.success = self.runner.status.enabled == bool(request.data)
        self.get_logger().info(response.message)
        return response

    def _on_estop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.message = self.runner.estop()
        response.success = True
        self.get_logger().warn(response.message)
        return response

    # -- outputs ---------------------------------------------------------------------------
    def _trajectories(self, stamp: float, times: np.ndarray, positions: np.ndarray,
                      velocities: np.ndarray | None) -> tuple[JointTrajectory, JointTrajectory]:
        msgs = []
        for names, cols in ((self.arm_joints, slice(0, len(ARM_JOINTS))),
                            (self.gripper_joints, slice(len(ARM_JOINTS), len(JOINT_NAMES)))):
            msg = JointTrajectory()
            msg.header.stamp = _time_msg(stamp)
            msg.joint_names = list(names)
            pos = np.ascontiguousarray(positions[:, cols], dtype=np.float64)
            vel = None if velocities is None else np.ascontiguousarray(velocities[:, cols], dtype=np.float64)
            points = []
            for k, t in enumerate(times):
                # array('d') fields skip rclpy's per-element checks: ~8x faster for 100-point chunks
                point = JointTrajectoryPoint(positions=array("d", pos[k].tobytes()),
                                             time_from_start=_duration_msg(float(t)))
                if vel is not None:
                    point.velocities = array("d", vel[k].tobytes())
                points.append(point)
            msg.points = points
            msgs.append(msg)
        return msgs[0], msgs[1]

    def _publish_segment(self, segment: Segment) -> None:
        # stamped one step before the first knot, so time_from_start runs dt, 2dt, ... (policy fps)
        stamp = float(segment.times[0]) - self.dt
        arm, gripper = self._trajectories(stamp, segment.times - stamp, segment.positions, segment.velocities)
        self.arm_pub.publish(arm)
        self.gripper_pub.publish(gripper)
        if self._action_clients:
            self._send_goals(arm, gripper)

    def _publish_hold(self, position: np.ndarray) -> None:
        pos = np.asarray(position, dtype=float).reshape(1, -1)
        arm, gripper = self._trajectories(0.0, np.array([self.dt]), pos, np.zeros_like(pos))
        self.arm_pub.publish(arm)  # stamp 0: "now" for the controller
        self.gripper_pub.publish(gripper)

    def _make_action_clients(self):
        try:
            from control_msgs.action import FollowJointTrajectory  # type: ignore
            from rclpy.action import ActionClient
        except ImportError as exc:
            raise RuntimeError(f"use_follow_joint_trajectory needs control_msgs: {exc}") from None
        arm_ns = self.params["arm_trajectory_topic"].rsplit("/", 1)[0]
        grip_ns = self.params["gripper_trajectory_topic"].rsplit("/", 1)[0]
        self._fjt = FollowJointTrajectory
        return [ActionClient(self, FollowJointTrajectory, f"{arm_ns}/follow_joint_trajectory"),
                ActionClient(self, FollowJointTrajectory, f"{grip_ns}/follow_joint_trajectory")]

    def _send_goals(self, arm: JointTrajectory, gripper: JointTrajectory) -> None:
        for client, traj in zip(self._action_clients, (arm, gripper)):
            if client.server_is_ready():
                goal = self._fjt.Goal()
                goal.trajectory = traj
                client.send_goal_async(goal)

    def _publish_diagnostics(self) -> None:
        s = self.runner.status
        now = now_seconds(self)
        if s.fault:
            level, message = ERROR, f"fault: {s.fault}"
        elif s.estopped:
            level, message = WARN, "e-stop active (holding)"
        elif not s.enabled:
            level, message = OK, "stopped (holding); call ~/enable"
        elif s.waiting:
            level, message = WARN, f"waiting: {s.waiting}"
        else:
            level, message = OK, "running"
        st = self.scheduler.stats
        values = {
            "enabled": s.enabled, "estop": s.estopped, "policy": self.backend.spec.policy_type,
            "backend": self.params["backend"], "inferences": s.inferences, "chunks_published": s.published,
            "inference_latency_ms": s.last_inference_s * 1e3,
            "image_to_publish_ms": s.last_image_to_publish_s * 1e3,
            "latency_estimate_ms": self.scheduler.latency_estimate * 1e3,
            "dropped_actions": st.dropped_actions, "stale_chunks": st.stale_chunks,
            "plan_remaining_s": self.scheduler.remaining_time(now),
            "limited_knots": self.limiter.clamped_knots, "rejected_joint_states": self.builder.rejected_states,
            "stalls": s.stalls, "image_stalls": s.image_stalls,
            "image_errors": self.image_errors, "task": self.builder.task, "fault": s.fault,
        }
        status = diagnostic_status(f"{self.get_name()}: policy", level, message, values)
        self.diag_pub.publish(diagnostic_array(self, [status]))

    def _log(self, level: str, text: str, throttle: float = 0.0) -> None:
        now = time.monotonic()
        if throttle and now - self._last_log.get(text[:40], -1e9) < throttle:
            return
        self._last_log[text[:40]] = now
        logger = self.get_logger()  # one call site per severity (rclpy insists)
        if level == "error":
            logger.error(text)
        elif level == "warn":
            logger.warning(text)
        else:
            logger.info(text)

    def destroy_node(self):
        self.runner.shutdown()
        self.backend.close()
        return super().destroy_node()


def main(args=None) -> int:
    # a checkpoint, camera or calibration the node cannot use: one line, exit 1
    return spin_node_main(args, PolicyNode, "vla_policy_node",
                          failures=(CheckpointError, ValueError, RuntimeError, OSError))


if __name__ == "__main__":
    sys.exit(main())
