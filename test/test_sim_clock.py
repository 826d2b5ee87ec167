"""The sim node on sim time and in hardware mode, each in its own process over real DDS.

Separate from test_sim_ros.py so that its module-scoped sim (which also publishes /clock and
/joint_states) has stopped before these start.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("mujoco", reason="mujoco not installed (make setup installs the sim extra)")
pytest.importorskip("rclpy", reason="rclpy not installed (make setup installs the ROS 2 Jazzy wheels)")

from sensor_msgs.msg import JointState  # noqa: E402

from so100_description.joints import JOINT_NAMES  # noqa: E402
from test_sim_ros import Client, ros_context, start_sim  # noqa: E402,F401
from support.ros import stop_process as stop  # noqa: E402

pytestmark = pytest.mark.ros


@pytest.mark.slow
def test_closed_loop_on_sim_time_when_the_sim_is_slower_than_real_time(ros_context):
    """At RTF 0.25 a 1 s trajectory takes 4 s of wall time; clocks and stamps stay in sim time."""
    proc = start_sim({"real_time_factor": 0.25, "cameras": "['front']", "image_width": 160,
                      "image_height": 120}, "slow")
    node = Client("slow_sim_client", ros_context, use_sim_time=True)
    try:
        node.spin_until(lambda: len(node.joint_states) > 5 and len(node.clock) > 5, 60, "the slow sim")
        # The client's clock is the sim's /clock, not the wall clock.
        sim_clock = node.get_clock().now().nanoseconds * 1e-9
        assert sim_clock == pytest.approx(node.clock[-1], abs=0.1)
        assert sim_clock < 1e6  # not wall time since 1970
        wall0, sim0 = time.monotonic(), node.clock[-1]
        # Stamped with the client's (sim) clock, as a policy node with use_sim_time does.
        node.send(["shoulder_pan"], [0.8], 1.0, stamp=sim_clock)
        node.spin_until(lambda: node.sim_now() > sim_clock + 0.5, 60, "0.5 s of sim time")
        mid = node.position(node.joint_states[-1], "shoulder_pan")
        node.spin_until(lambda: node.sim_now() > sim_clock + 1.6, 60, "1.6 s of sim time")
        rtf = (node.clock[-1] - sim0) / (time.monotonic() - wall0)
        assert rtf < 0.5  # the sim really ran slower than real time
        assert 0.2 < mid < 0.6  # halfway in sim time (a wall-clock follower would be done)
        assert node.position(node.joint_states[-1], "shoulder_pan") == pytest.approx(0.8, abs=0.05)
        assert np.all(np.diff(node.clock) >= 0)  # the clock never goes back
    finally:
        node.destroy_node()
        stop(proc)


def test_hardware_mode_is_the_far_side_of_the_topic_hardware_interface(ros_context):
    proc = start_sim({"mode": "hardware", "cameras": "[]"}, "hardware")
    node = Client("hw_sim_client", ros_context, hardware=True)
    try:
        node.spin_until(lambda: len(node.joint_states) > 5, 60, "hw/joint_states")
        cmd = JointState(name=list(JOINT_NAMES), position=[0.4, 0.0, 0.0, 0.0, 0.3, 0.5])
        bad = JointState(name=["shoulder_pan"], position=[float("nan")])
        t0 = node.sim_now()
        while node.sim_now() < t0 + 1.5:  # commands stream every cycle, like the controller manager
            node.hw_pub.publish(bad)
            node.hw_pub.publish(cmd)
            node.spin_until(lambda: True, 1, "a cycle")
        state = node.joint_states[-1]
        assert node.position(state, "shoulder_pan") == pytest.approx(0.4, abs=0.05)
        assert node.position(state, "gripper") == pytest.approx(0.5, abs=0.05)
        assert node.plain_joint_states == []  # /joint_states belongs to joint_state_broadcaster
    finally:
        node.destroy_node()
        stop(proc)


def test_a_namespace_moves_every_topic_and_service_except_clock(ros_context):
    proc = start_sim({"cameras": "['front']", "image_width": 160, "image_height": 120},
                     "namespaced", extra=["-r", "__ns:=/robot1"])
    node = Client("ns_sim_client", ros_context)
    try:
        node.spin_until(lambda: len(node.clock) > 5, 60, "/clock from the namespaced sim")
        expected = {"/robot1/joint_states", "/robot1/camera/front/image_raw",
                    "/robot1/camera/front/camera_info", "/robot1/sim/task_success"}

        def topics() -> set[str]:
            return {name for name, _ in node.get_topic_names_and_types()}

        node.spin_until(lambda: expected <= topics(), 30, f"topics {sorted(expected)}")
        assert "/joint_states" not in {n for n, _ in node.get_publisher_names_and_types_by_node(
            "mujoco_sim", "/robot1")}
        assert ("/robot1/mujoco_sim/reset", ["std_srvs/srv/Trigger"]) in node.get_service_names_and_types()
    finally:
        node.destroy_node()
        stop(proc)
