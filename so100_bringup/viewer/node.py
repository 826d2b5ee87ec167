"""so100_viewer: the arm's cameras, joints, action chunks and latencies, live in Rerun.

Subscribes (relative names, so a namespace and remapping apply):
  camera/<name>/image_raw (sensor_msgs/Image), joint_states (sensor_msgs/JointState),
  arm_controller/joint_trajectory and gripper_controller/joint_trajectory (trajectory_msgs/JointTrajectory),
  vla/instruction (std_msgs/String), /diagnostics (diagnostic_msgs/DiagnosticArray)
and logs them with `so100_bringup.viewer.log.ViewerLog` to any of: a Rerun viewer window it
spawns (`spawn`), a viewer or server already running (`connect_url`), a gRPC server with a web
viewer it starts (`serve`: `rerun --serve-web`, for a browser or another machine), an .rrd file
(`save_path`; open it later with `rerun <file>`).

The timeline is the messages' header stamps (sim time or wall time, told apart by their value:
see `log`), so the node needs no use_sim_time.

    python -m so100_bringup.viewer.node --ros-args --params-file config/viewer.yaml -p spawn:=true
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from so100_bringup.viewer.log import ArmKinematics, ViewerLog, blueprint
from so100_common.images import ImageConversionError
from so100_common.params import Param, ParameterError, schema
from so100_common.ros_images import ros_image_to_rgb
from so100_common.ros_node import COMMAND_QOS, IMAGE_QOS, STATE_QOS, declare_params, spin_node_main
from so100_description.joints import VARIANTS

APPLICATION_ID = "so100_vla"

PARAMS = schema("so100_viewer", [
    Param("spawn", False, "Open a Rerun viewer window (the rerun app of rerun-sdk) and stream to it; it stays "
          "open after the node ends. Needs a display"),
    Param("connect_url", "", "Stream to a Rerun viewer or server already running there, e.g. "
          "rerun+http://192.168.1.20:9876/proxy (start one with `rerun`); empty: none"),
    Param("serve", False, "Start a Rerun gRPC server and web viewer (rerun --serve-web) for a browser or a "
          "viewer on another machine; it ends with the node"),
    Param("grpc_port", 9876, "Port of the spawned viewer or of the served gRPC server", min=1, max=65535),
    Param("web_port", 9090, "Port of the served web viewer (serve)", min=1, max=65535),
    Param("save_path", "", "Write the recording to this .rrd file (open it later: rerun <file>); empty: none"),
    Param("cameras", ["front", "wrist"], "Cameras shown, on camera/<name>/image_raw ([] = none)",
          dynamic_typing=True),
    Param("image_rate_hz", 15.0, "Images logged per camera per second of stamp time; 0 = every frame",
          min=0.0, unit="Hz"),
    Param("jpeg_quality", 75, "JPEG quality of the logged images (a 320x240 sim frame: 4-8 kB instead of 230 kB); "
          "0 = raw RGB", min=0, max=100),
    Param("update_rate_hz", 30.0, "Joint plots, 3D arm and executed path updates per second of stamp time; "
          "0 = every joint state", min=0.0, unit="Hz"),
    Param("trail_s", 3.0, "Seconds of executed tool path drawn", min=0.0, unit="s"),
    Param("variant", "so101", "Arm variant of the URDF used for the 3D view", choices=VARIANTS),
    Param("joint_prefix", "", "Prefix of the joint names on the topics (e.g. left_)"),
    Param("joint_states_topic", "joint_states", "sensor_msgs/JointState: measured positions"),
    Param("arm_trajectory_topic", "arm_controller/joint_trajectory", "the policy's arm JointTrajectory (chunks)"),
    Param("gripper_trajectory_topic", "gripper_controller/joint_trajectory", "the policy's gripper JointTrajectory"),
    Param("instruction_topic", "vla/instruction", "std_msgs/String task instruction; empty: no subscription"),
], title="so100_viewer: the arm live in Rerun: cameras, joints measured vs commanded, action chunks as tool "
         "paths, latencies and rates (node name so100_viewer)")


class ViewerUnavailable(RuntimeError):
    """No output the node can write to; the text says how to get one."""


def rerun_executable() -> str:
    """The `rerun` app installed with rerun-sdk next to this interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "rerun"
    found = str(beside) if beside.is_file() else shutil.which("rerun")
    if not found:
        raise ViewerUnavailable("no `rerun` executable: install the viewer extra (pip install -e '.[viewer]')")
    return found


def wait_for_port(port: int, server: subprocess.Popen, timeout_s: float = 20.0) -> bool:
    """True once something accepts TCP connections on localhost:port; False when `server` exits
    first or after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and server.poll() is None:
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return server.poll() is None
        time.sleep(0.1)
    return False


def has_display() -> bool:
    return sys.platform != "linux" or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class ViewerNode(Node):
    def __init__(self, **kwargs):
        super().__init__("so100_viewer", **kwargs)
        p = self.p = declare_params(self, PARAMS)
        try:
            import rerun as rr
        except ImportError:
            raise ViewerUnavailable("rerun-sdk is not installed: pip install -e '.[viewer]' (or make setup)") from None
        self.rr = rr
        self.server: subprocess.Popen | None = None
        try:
            kinematics = ArmKinematics(p["variant"])
            self.rec = rr.RecordingStream(APPLICATION_ID)
            self._connect(p)
            self.log = ViewerLog(self.rec, kinematics, joint_prefix=p["joint_prefix"],
                                 image_rate_hz=p["image_rate_hz"], jpeg_quality=p["jpeg_quality"],
                                 update_rate_hz=p["update_rate_hz"], trail_s=p["trail_s"])
            self._warned: dict[str, float] = {}
            for camera in p["cameras"]:
                self.create_subscription(Image, f"camera/{camera}/image_raw",
                                         lambda msg, c=camera: self._on_image(c, msg), IMAGE_QOS)
            self.create_subscription(JointState, p["joint_states_topic"], self._on_joint_state, STATE_QOS)
            for topic in (p["arm_trajectory_topic"], p["gripper_trajectory_topic"]):
                self.create_subscription(JointTrajectory, topic, self._on_trajectory, COMMAND_QOS)
            self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
            if p["instruction_topic"]:
                self.create_subscription(String, p["instruction_topic"], self._on_instruction, 10)
            self.get_logger().info(f"logging to Rerun: {', '.join(self.outputs)}")
        except BaseException:  # an error, or a stop signal while building: no server left behind
            self._stop_server()
            raise

    # -- outputs ---------------------------------------------------------------------------------
    def _connect(self, p: dict) -> None:
        rr = self.rr
        if p["spawn"] and p["serve"]:
            raise ParameterError("so100_viewer: spawn and serve both use grpc_port; choose one (a browser or a "
                                 "viewer connects to the served stream)")
        sinks, self.outputs = [], []
        spawn = p["spawn"]
        if spawn and not has_display():
            self.get_logger().warn("spawn: no display (DISPLAY is not set); no viewer window. Use serve:=true "
                                   "and a browser, or save_path and `rerun <file>` later")
            spawn = False
        if spawn:
            # a viewer already listening on grpc_port is reused (rerun's spawn)
            rr.spawn(port=p["grpc_port"], connect=False, executable_path=rerun_executable(), memory_limit="25%")
            sinks.append(rr.GrpcSink(f"rerun+http://127.0.0.1:{p['grpc_port']}/proxy"))
            self.outputs.append(f"viewer window (port {p['grpc_port']})")
        if p["serve"]:
            # its own session: a Ctrl-C on the terminal reaches only the node, which flushes to the
            # server before it stops it (close)
            self.server = subprocess.Popen(
                [rerun_executable(), "--serve-web", "--port", str(p["grpc_port"]), "--web-viewer-port",
                 str(p["web_port"]), "--server-memory-limit", "25%"], stdin=subprocess.DEVNULL,
                start_new_session=True)
            if not wait_for_port(p["grpc_port"], self.server):
                raise ViewerUnavailable(f"so100_viewer: rerun --serve-web did not start (exit code "
                                        f"{self.server.poll()}); is port {p['grpc_port']} or {p['web_port']} in "
                                        "use? Set grpc_port / web_port")
            sinks.append(rr.GrpcSink(f"rerun+http://127.0.0.1:{p['grpc_port']}/proxy"))
            self.outputs.append(f"web viewer http://<this host>:{p['web_port']} (gRPC "
                                f"rerun+http://<this host>:{p['grpc_port']}/proxy)")
        if p["connect_url"]:
            sinks.append(rr.GrpcSink(p["connect_url"]))
            self.outputs.append(p["connect_url"])
        if p["save_path"]:
            path = Path(p["save_path"]).expanduser().resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            sinks.append(rr.FileSink(str(path)))
            self.outputs.append(str(path))
        if not sinks:
            raise ViewerUnavailable("so100_viewer: nothing to show the data on: set spawn:=true (a window), "
                                    "serve:=true (a browser), connect_url or save_path")
        self.rec.set_sinks(*sinks, default_blueprint=blueprint(p["cameras"]))

    def close(self) -> None:
        """Write out what is buffered (the .rrd file's end) and stop the served viewer."""
        try:
            self.rec.flush(timeout_sec=10.0)
            self.rec.disconnect()
        finally:
            self._stop_server()

    def _stop_server(self) -> None:
        """The server's whole process group: .venv/bin/rerun is a Python wrapper around the app."""
        if self.server is None or self.server.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.server.pid, sig)
            try:
                self.server.wait(timeout=5.0)
                return
            except subprocess.TimeoutExpired:
                pass

    # -- inputs ----------------------------------------------------------------------------------
    @staticmethod
    def _stamp(stamp) -> float | None:
        """A header stamp in s; None when unstamped (0): the log takes the latest stamp seen."""
        t = stamp.sec + stamp.nanosec * 1e-9
        return t if t > 0 else None

    def _on_image(self, camera: str, msg: Image) -> None:
        try:
            self.log.image(camera, self._stamp(msg.header.stamp), lambda: ros_image_to_rgb(msg))
        except (ImageConversionError, ValueError) as exc:
            self._warn(f"camera {camera}: {exc}")

    def _on_joint_state(self, msg: JointState) -> None:
        try:
            self.log.joint_state(self._stamp(msg.header.stamp), list(msg.name), list(msg.position))
        except ValueError as exc:
            self._warn(str(exc))

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
        positions = [list(p.positions) for p in msg.points]
        try:
            self.log.trajectory(self._stamp(msg.header.stamp), list(msg.joint_names), times, positions)
        except ValueError as exc:
            self._warn(str(exc))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        statuses = [(s.name, s.level[0] if isinstance(s.level, bytes) else int(s.level), s.message,
                     {kv.key: kv.value for kv in s.values}) for s in msg.status]
        self.log.diagnostics(self._stamp(msg.header.stamp), statuses)

    def _on_instruction(self, msg: String) -> None:
        self.log.instruction(None, msg.data)

    def _warn(self, text: str) -> None:
        """A bad message is skipped; said at most every 5 s per kind."""
        now = time.monotonic()
        if now - self._warned.get(text[:40], -1e9) >= 5.0:
            self._warned[text[:40]] = now
            self.get_logger().warn(f"skipped: {text}")


def main(argv: Sequence[str] | None = None) -> int:
    return spin_node_main(argv, ViewerNode, "so100_viewer", (ViewerUnavailable, OSError),
                          close=lambda node: node.close())


if __name__ == "__main__":
    sys.exit(main())
