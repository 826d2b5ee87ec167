"""Helpers for tests and benchmarks: fake cameras/joint states, a recorder, node subprocesses.

Test support only (no node imports it). Needs rclpy for the ROS helpers, imported lazily so
plain-Python tests can use the others (wait_for, node processes).
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from so100_description.joints import JOINT_NAMES


def start_node_process(module: str, params: Mapping[str, Any] | None = None, ros_args: Sequence[str] = (),
                       env: Mapping[str, str] | None = None, log_path: str | os.PathLike | None = None,
                       capture_output: bool = False) -> subprocess.Popen:
    """`python -m <module> --ros-args <ros_args> -p name:=value...` in its own process, with this
    process's environment plus `env`. Output (stdout and stderr) goes into the file `log_path`,
    else into an anonymous temporary file that stop_process returns when `capture_output` is
    set. Never a pipe: a chatty node must not block on a full pipe nobody reads."""
    full_env = os.environ.copy()
    full_env.update(env or {})
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    from so100_bringup.processes import node_command, ros_param_args

    argv = [*node_command(module), *ros_args, *ros_param_args(params or {})]
    if log_path:
        with open(log_path, "w") as out:  # the child keeps its own handle
            return subprocess.Popen(argv, env=full_env, stdout=out, stderr=subprocess.STDOUT, text=True)
    if not capture_output:
        return subprocess.Popen(argv, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    output = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(argv, env=full_env, stdout=output, stderr=subprocess.STDOUT, text=True)
    proc.captured_output = output  # type: ignore[attr-defined]  # read by stop_process
    return proc


def start_policy_node(params: Mapping[str, Any], env: Mapping[str, str] | None = None,
                      log_path: str | None = None, capture_output: bool = False) -> subprocess.Popen:
    """`python -m vla_policy_node.node` in its own process with `params`, sharing this env."""
    return start_node_process("vla_policy_node.node", params, env=env, log_path=log_path,
                              capture_output=capture_output)


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> str:
    """Terminate `proc` (kill it if it does not exit within `timeout` s); its captured output
    (start_node_process(capture_output=True)) or what is left in its stdout pipe, else ""."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    captured = getattr(proc, "captured_output", None)
    if captured is not None and not captured.closed:
        captured.seek(0)
        text = captured.read()
        captured.close()
        return text
    if proc.stdout is None or proc.stdout.closed:
        return ""
    return proc.stdout.read()


def interrupt_launcher(proc: subprocess.Popen, ready: str, timeout: float = 300.0) -> tuple[list[int], str]:
    """Read a launcher's text stdout (so100_demo, so100_evaluate: they print "(pid N)" for
    every child) until a line contains `ready`, send it SIGINT and wait for it to exit.
    Returns (child pids, everything it printed)."""
    import re
    import signal

    lines: list[str] = []
    seen_ready = threading.Event()

    def read() -> None:  # in a thread, so waiting for `ready` has a deadline even in silence
        for line in proc.stdout:
            lines.append(line)
            if ready in line:
                seen_ready.set()
        seen_ready.set()  # EOF

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        seen_ready.wait(timeout)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        reader.join(timeout=5)
    finally:
        if proc.poll() is None:
            stop_process(proc)
    text = "".join(lines)
    return [int(p) for p in re.findall(r"\(pid (\d+)\)", text)], text


@dataclass
class ReceivedTrajectory:
    received: float  # receiver's clock, s
    stamp: float
    joint_names: list[str]
    times: np.ndarray  # time_from_start, s
    positions: np.ndarray  # (K, n)
    velocities: np.ndarray  # (K, n) or (0,)


@dataclass
class Recorder:
    arm: list[ReceivedTrajectory] = field(default_factory=list)
    gripper: list[ReceivedTrajectory] = field(default_factory=list)
    diagnostics: list[Any] = field(default_factory=list)


def make_fake_io_node(cameras: Mapping[str, tuple[str, tuple[int, int], str]], rate: float = 30.0,
                      joint_positions: Sequence[float] | None = None, joint_names: Sequence[str] = JOINT_NAMES,
                      joint_topic: str = "/joint_states", context=None, name: str = "fake_robot_io",
                      image_fn: Callable[[str, int], np.ndarray] | None = None, publish_images: bool = True):
    """A node that publishes camera frames {name: (topic, (h, w), encoding)} and joint states
    at `rate` Hz and records the policy node's trajectories and diagnostics."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.node import Node
    from sensor_msgs.msg import CompressedImage, Image, JointState
    from trajectory_msgs.msg import JointTrajectory

    from so100_common.ros_node import COMMAND_QOS, IMAGE_QOS
    from so100_common.images import rgb_to_compressed_bytes, rgb_to_image_fields

    class FakeRobotIO(Node):
        def __init__(self):
            super().__init__(name, context=context)
            self.recorder = Recorder()
            self.lock = threading.Lock()
            self.joint_names = list(joint_names)
            self.positions = np.array(joint_positions if joint_positions is not None
                                      else np.zeros(len(self.joint_names)), dtype=float)
            self.publish_images = publish_images
            self.publish_states = True
            self.frame = 0
            self.cameras = dict(cameras)
            self.image_pubs = {}
            for cam, (topic, _hw, enc) in self.cameras.items():
                msg_type = CompressedImage if topic.endswith("/compressed") else Image
                self.image_pubs[cam] = self.create_publisher(msg_type, topic, IMAGE_QOS)
            self.state_pub = self.create_publisher(JointState, joint_topic, 10)
            self.create_subscription(JointTrajectory, "/arm_controller/joint_trajectory",
                                     lambda m: self._record(self.recorder.arm, m), COMMAND_QOS)
            self.create_subscription(JointTrajectory, "/gripper_controller/joint_trajectory",
                                     lambda m: self._record(self.recorder.gripper, m), COMMAND_QOS)
            self.create_subscription(DiagnosticArray, "/diagnostics",
                                     lambda m: self.recorder.diagnostics.append(m), 10)
            self.create_timer(1.0 / rate, self.tick)

        def image(self, cam: str) -> np.ndarray:
            _topic, (h, w), _enc = self.cameras[cam]
            if image_fn is not None:
                return image_fn(cam, self.frame)
            rgb = np.zeros((h, w, 3), dtype=np.uint8)
            rgb[..., 0] = (self.frame * 7) % 256
            rgb[:, : w // 2, 1] = 200
            return rgb

        def publish_frame(self, cam: str, rgb: np.ndarray | None = None) -> None:
            topic, _hw, enc = self.cameras[cam]
            rgb = self.image(cam) if rgb is None else rgb
            stamp = self.get_clock().now().to_msg()
            if topic.endswith("/compressed"):
                msg = CompressedImage(format="jpeg", data=rgb_to_compressed_bytes(rgb))
            else:
                msg = Image(**rgb_to_image_fields(rgb, enc))
            msg.header.stamp = stamp
            msg.header.frame_id = f"{cam}_optical_frame"
            self.image_pubs[cam].publish(msg)

        def publish_state(self) -> None:
            msg = JointState()
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.name = list(self.joint_names)
            msg.position = [float(x) for x in self.positions]
            self.state_pub.publish(msg)

        def tick(self) -> None:
            self.frame += 1
            if self.publish_states:
                self.publish_state()
            if self.publish_images:
                for cam in self.cameras:
                    self.publish_frame(cam)

        def _record(self, store: list, msg) -> None:
            recv = self.get_clock().now().nanoseconds * 1e-9
            times = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
            pos = np.array([list(p.positions) for p in msg.points], dtype=float)
            vel = np.array([list(p.velocities) for p in msg.points], dtype=float)
            stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            with self.lock:
                store.append(ReceivedTrajectory(recv, stamp, list(msg.joint_names), times, pos, vel))

    return FakeRobotIO()


class Spinner:
    """Spin nodes of one context in a background thread (tests)."""

    def __init__(self, nodes, context=None):
        from rclpy.executors import SingleThreadedExecutor

        self.nodes = list(nodes)
        self.executor = SingleThreadedExecutor(context=context)
        for node in nodes:
            self.executor.add_node(node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self._stop = False
        self._running = threading.Event()
        self._running.set()
        self._idle = threading.Event()
        self.thread.start()

    def pause(self) -> None:
        """Stop spinning until resume() (benchmarks: a quiet process for a baseline)."""
        self._running.clear()
        self._idle.wait(2)

    def resume(self) -> None:
        self._idle.clear()
        self._running.set()

    def _spin(self) -> None:
        while not self._stop:
            if not self._running.is_set():
                self._idle.set()
                self._running.wait(0.1)
                continue
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:
                if self._stop:
                    break
                raise

    def stop(self) -> None:
        self._stop = True
        self.thread.join(5)
        self.executor.shutdown()


@contextlib.contextmanager
def initialized_context() -> Iterator[Any]:
    """A fresh rclpy Context, initialised for the `with` block and shut down after it."""
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.try_shutdown(context=context)


def wait_for(predicate: Callable[[], bool], timeout: float, poll: float = 0.02,
             ignore: tuple[type[BaseException], ...] = ()) -> bool:
    """Poll `predicate` until it holds or `timeout` s pass; the exceptions in `ignore` count as
    "not yet" (e.g. a message that has not arrived)."""
    def holds() -> bool:
        try:
            return bool(predicate())
        except ignore:
            return False

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if holds():
            return True
        time.sleep(poll)
    return holds()


def spin_until(node, predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    """Spin `node` in this thread (callbacks run here) until `predicate` holds or `timeout` s pass.
    Spins at least once, so `spin_until(node, lambda: True, t)` processes pending callbacks."""
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        end = time.monotonic() + timeout
        executor.spin_once(timeout_sec=step)
        while not predicate() and time.monotonic() < end:
            executor.spin_once(timeout_sec=step)
    finally:
        executor.remove_node(node)
        executor.shutdown()
    return predicate()


def call_service(node, srv_type, name: str, request, timeout: float = 10.0):
    # the client lives as long as the node: destroying it while the executor still holds its
    # task makes rclpy print "exception never retrieved"
    client = node.create_client(srv_type, name)
    if not client.wait_for_service(timeout_sec=timeout):
        raise TimeoutError(f"service {name} not available")
    future = client.call_async(request)
    if not wait_for(future.done, timeout):
        raise TimeoutError(f"service {name} did not answer")
    return future.result()
