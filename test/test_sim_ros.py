"""The sim node over real DDS: it runs in its own process, the test talks to it as a client."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

pytest.importorskip("mujoco", reason="mujoco not installed (make setup installs the sim extra)")
rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (make setup installs the ROS 2 Jazzy wheels)")

from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState  # noqa: E402
from std_msgs.msg import Bool  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

from so100_common.ros_node import HW_STATE_QOS, IMAGE_QOS, LATCHED_QOS, STATE_QOS  # noqa: E402
from so100_description.joints import ARM_JOINTS, JOINT_NAMES  # noqa: E402
from support.ros import initialized_context, spin_until, start_node_process, stop_process  # noqa: E402

pytestmark = pytest.mark.ros
ARM_TARGET = [0.5, -0.3, 0.4, 0.2, -0.6]


def start_sim(params: dict, tag: str, extra: tuple[str, ...] | list[str] = ()):
    """The sim node in its own process; `extra`: more --ros-args (remaps, namespace)."""
    return start_node_process("so100_bringup.sim.node", params, ros_args=list(extra),
                              log_path=Path(os.environ["ROS_LOG_DIR"]).parent / f"sim_{tag}.log")


def stamp_s(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class Client(Node):
    """Collects what the sim publishes."""

    def __init__(self, name: str, context, use_sim_time: bool = False, hardware: bool = False):
        super().__init__(name, context=context,
                         parameter_overrides=[Parameter("use_sim_time", value=use_sim_time)])
        self.joint_states: list[JointState] = []
        self.images: dict[str, list[Image]] = {"front": [], "wrist": []}
        self.infos: dict[str, list[CameraInfo]] = {"front": [], "wrist": []}
        self.clock: list[float] = []
        self.success: list[bool] = []
        js_topic, js_qos = ("/hw/joint_states", HW_STATE_QOS) if hardware else ("/joint_states", STATE_QOS)
        self.create_subscription(JointState, js_topic, self.joint_states.append, js_qos)
        self.plain_joint_states: list[JointState] = []
        if hardware:
            self.create_subscription(JointState, "/joint_states", self.plain_joint_states.append, STATE_QOS)
        for cam in self.images:
            self.create_subscription(Image, f"/camera/{cam}/image_raw", self.images[cam].append, IMAGE_QOS)
            self.create_subscription(CameraInfo, f"/camera/{cam}/camera_info", self.infos[cam].append, IMAGE_QOS)
        self.create_subscription(Clock, "/clock", lambda m: self.clock.append(stamp_s(m.clock)), 10)
        self.create_subscription(Bool, "/sim/task_success", lambda m: self.success.append(m.data), LATCHED_QOS)
        self.arm_pub = self.create_publisher(JointTrajectory, "/arm_controller/joint_trajectory", 10)
        self.gripper_pub = self.create_publisher(JointTrajectory, "/gripper_controller/joint_trajectory", 10)
        self.hw_pub = self.create_publisher(JointState, "/hw/joint_commands", 1)

    def spin_until(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        if not spin_until(self, cond, timeout):
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    def sim_now(self) -> float:
        return stamp_s(self.joint_states[-1].header.stamp)

    def position(self, msg: JointState, joint: str) -> float:
        return msg.position[list(msg.name).index(joint)]

    def send(self, joints, positions, t_from_start: float, stamp: float | None = None) -> None:
        msg = JointTrajectory()
        msg.joint_names = list(joints)
        if stamp is not None:
            msg.header.stamp.sec = int(stamp)
            msg.header.stamp.nanosec = int((stamp - int(stamp)) * 1e9)
        point = JointTrajectoryPoint(positions=[float(p) for p in positions])
        point.time_from_start.sec = int(t_from_start)
        point.time_from_start.nanosec = int((t_from_start - int(t_from_start)) * 1e9)
        msg.points = [point]
        (self.gripper_pub if list(joints) == ["gripper"] else self.arm_pub).publish(msg)


@pytest.fixture(scope="module")
def ros_context():
    with initialized_context() as context:
        yield context


@pytest.fixture(scope="module")
def standalone_sim():
    proc = start_sim({"camera_rate_hz": 20.0, "image_width": 160, "image_height": 120,
                      "real_time_factor": 1.0, "seed": 4}, "standalone")
    yield proc
    stop_process(proc)


@pytest.fixture(scope="module")
def client(ros_context, standalone_sim):
    node = Client("sim_test_client", ros_context)
    try:
        node.spin_until(lambda: len(node.joint_states) > 5 or standalone_sim.poll() is not None, 60,
                        "the sim's first joint states")
        assert standalone_sim.poll() is None, "the sim process exited"
        yield node
    finally:
        node.destroy_node()


def test_a_trajectory_moves_the_simulated_joints_to_the_target(client):
    assert list(client.joint_states[-1].name) == list(JOINT_NAMES)
    client.send(ARM_JOINTS, ARM_TARGET, 1.0)
    client.send(["gripper"], [1.0], 0.5)
    t0 = client.sim_now()
    client.spin_until(lambda: client.sim_now() > t0 + 0.5, 30, "0.5 s of sim time")
    mid = client.joint_states[-1]
    client.spin_until(lambda: client.sim_now() > t0 + 2.0, 30, "2 s of sim time")
    final = client.joint_states[-1]
    for joint, target in zip(ARM_JOINTS, ARM_TARGET):
        assert client.position(final, joint) == pytest.approx(target, abs=0.05), joint
    assert client.position(final, "gripper") == pytest.approx(1.0, abs=0.05)
    # Followed over time (interpolated), not jumped to: halfway the pan joint is on its way.
    assert abs(client.position(mid, "shoulder_pan") - ARM_TARGET[0]) > 0.1


def test_a_trajectory_outside_the_limits_is_clamped(client):
    client.send(["shoulder_pan"], [5.0], 0.3)
    t0 = client.sim_now()
    client.spin_until(lambda: client.sim_now() > t0 + 1.5, 30, "1.5 s of sim time")
    assert client.position(client.joint_states[-1], "shoulder_pan") < 1.91986 + 0.02


def test_images_arrive_at_the_configured_rate_in_sim_time(client):
    client.images["front"].clear()
    client.images["wrist"].clear()
    client.spin_until(lambda: min(len(v) for v in client.images.values()) >= 25, 30, "25 frames per camera")
    for cam, frames in client.images.items():
        img = frames[-1]
        assert (img.width, img.height, img.encoding, img.step) == (160, 120, "rgb8", 480)
        assert len(img.data) == 160 * 120 * 3
        assert img.header.frame_id == f"{cam}_optical_frame"
        pixels = np.frombuffer(bytes(img.data), np.uint8)
        assert pixels.std() > 5
        stamps = np.array([stamp_s(f.header.stamp) for f in frames])
        assert np.median(np.diff(stamps)) == pytest.approx(1 / 20, abs=0.003)
        info = client.infos[cam][-1]
        assert (info.width, info.height) == (160, 120) and info.k[2] == pytest.approx(79.5)


def test_reset_homes_the_arm_and_republishes_task_state(client):
    client.send(ARM_JOINTS, ARM_TARGET, 0.3)
    t0 = client.sim_now()
    client.spin_until(lambda: client.sim_now() > t0 + 1.0, 30, "the arm to move")
    assert abs(client.position(client.joint_states[-1], "shoulder_pan")) > 0.3
    cli = client.create_client(Trigger, "/mujoco_sim/reset")
    assert cli.wait_for_service(timeout_sec=10)
    future = cli.call_async(Trigger.Request())
    client.spin_until(future.done, 30, "the reset service")
    response = future.result()
    assert response.success and "cube at" in response.message
    t_reset = client.sim_now()
    client.spin_until(lambda: client.sim_now() > t_reset + 0.5, 30, "0.5 s after reset")
    state = client.joint_states[-1]
    for joint in ARM_JOINTS:
        assert client.position(state, joint) == pytest.approx(0.0, abs=0.06), joint
    assert stamp_s(state.header.stamp) >= t0  # sim time kept running through the reset
    assert client.success and client.success[-1] is False
