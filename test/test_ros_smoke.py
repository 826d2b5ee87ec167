"""Smoke test of the pip-installed ROS 2 stack: two processes talk sensor_msgs/JointState over real
DDS (the rmw the wheels ship), with the per-session ROS_DOMAIN_ID from conftest."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from so100_description import JOINT_NAMES

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (make setup installs the ROS 2 Jazzy wheels)")
from sensor_msgs.msg import JointState  # noqa: E402

from support.ros import spin_until, stop_process  # noqa: E402

pytestmark = pytest.mark.ros

# The peer process: publishes /smoke/joint_states at 20 Hz and echoes /smoke/ping to /smoke/pong.
PEER = r"""
import sys
import rclpy
from rclpy.executors import ExternalShutdownException
from sensor_msgs.msg import JointState

names = sys.argv[1].split(",")
rclpy.init()
node = rclpy.create_node("smoke_peer")
states = node.create_publisher(JointState, "/smoke/joint_states", 10)
pong = node.create_publisher(JointState, "/smoke/pong", 10)
node.create_subscription(JointState, "/smoke/ping", pong.publish, 10)
count = [0]

def tick():
    msg = JointState()
    msg.header.stamp = node.get_clock().now().to_msg()
    msg.header.frame_id = "base_link"
    msg.name = names
    msg.position = [0.1 * (i + 1) for i in range(len(names))]
    msg.velocity = [0.0] * len(names)
    msg.effort = [float(count[0])] * len(names)
    count[0] += 1
    states.publish(msg)

node.create_timer(0.05, tick)
print("ready", flush=True)
try:
    rclpy.spin(node)
except (KeyboardInterrupt, ExternalShutdownException):
    pass
"""

WAIT_S = 60.0  # generous: discovery on a loaded 2-core CI machine; not a performance assertion


@pytest.fixture(scope="module")
def peer(tmp_path_factory):
    log = tmp_path_factory.mktemp("smoke") / "peer.stderr"
    with open(log, "w") as stderr:  # a file, not a pipe: a chatty peer can never block on it
        proc = subprocess.Popen([sys.executable, "-c", PEER, ",".join(JOINT_NAMES)],
                                env=os.environ.copy(), stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        line = proc.stdout.readline()
        if line.strip() != "ready":
            proc.kill()
            pytest.fail(f"peer process did not start: {line!r} {log.read_text()}")
        yield proc
    finally:
        stop_process(proc)


def test_joint_state_from_another_process_arrives(peer, rclpy_context):
    node = rclpy.create_node("smoke_listener", context=rclpy_context)
    received: list[JointState] = []
    node.create_subscription(JointState, "/smoke/joint_states", received.append, 10)
    try:
        assert spin_until(node, lambda: len(received) >= 3, WAIT_S, step=0.1), \
            f"no JointState from the peer process within {WAIT_S} s (peer alive: {peer.poll() is None})"
        # the graph (node names) is discovered separately from the topic's data: it may lag
        assert spin_until(node, lambda: "smoke_peer" in node.get_node_names(), WAIT_S, step=0.1), \
            node.get_node_names()
    finally:
        node.destroy_node()
    msg = received[-1]
    assert list(msg.name) == list(JOINT_NAMES)
    assert list(msg.position) == pytest.approx([0.1 * (i + 1) for i in range(6)])
    assert msg.header.frame_id == "base_link"
    assert msg.header.stamp.sec > 0
    counts = [m.effort[0] for m in received]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)  # a live stream, in order


def test_joint_state_round_trip_through_another_process(peer, rclpy_context):
    node = rclpy.create_node("smoke_pinger", context=rclpy_context)
    echoed: list[JointState] = []
    node.create_subscription(JointState, "/smoke/pong", echoed.append, 10)
    ping = node.create_publisher(JointState, "/smoke/ping", 10)
    sent = JointState(name=["gripper"], position=[1.25], velocity=[-0.5], effort=[0.0])

    def republished() -> bool:
        if not echoed:
            ping.publish(sent)  # resend until discovery completes and the echo comes back
        return bool(echoed)

    try:
        assert spin_until(node, republished, WAIT_S, step=0.1), f"no echo within {WAIT_S} s"
    finally:
        node.destroy_node()
    assert list(echoed[0].name) == ["gripper"]
    assert list(echoed[0].position) == [1.25] and list(echoed[0].velocity) == [-0.5]
