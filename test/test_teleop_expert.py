"""Scripted expert: its plan (IK on the project's URDF) and the expert node driving a sim and a
recorder over real DDS (fake sim and recorder services in this process, expert in its own)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

pytest.importorskip("pinocchio", reason="pin (pinocchio) not installed (make setup)")

from so100_bringup.teleop.expert import ExpertSettings, PickPlaceExpert, PlanningError  # noqa: E402
from so100_description.joints import JOINT_NAMES, joint_limits  # noqa: E402


@pytest.fixture(scope="module")
def expert():
    return PickPlaceExpert()


def test_plan_reaches_cube_and_target_within_limits(expert):
    cube, target = (0.25, 0.05, 0.015), (0.18, -0.12)
    points = expert.plan(np.zeros(6), cube, target)
    times = [p.time_from_start for p in points]
    assert times == sorted(times) and times[0] > 0
    lims = joint_limits()
    for p in points:
        for j, v in zip(JOINT_NAMES, p.positions):
            assert lims[j].lower <= v <= lims[j].upper
    grip = [p.positions[5] for p in points]
    s = ExpertSettings()
    assert grip[0] == s.gripper_open and s.gripper_closed in grip  # opens, closes on the cube, ...
    assert grip[grip.index(s.gripper_closed):].count(s.gripper_open) > 0  # ... and releases it
    tcp = [expert.ik.fk(p.positions[:5])[:3, 3] for p in points]
    grasp = tcp[1]
    # the fixed jaw (tcp) stops beside the cube, one half cube + clearance away, at cube height
    assert abs(grasp[2] - cube[2]) < 0.005
    assert 0.015 < np.linalg.norm(grasp[:2] - cube[:2]) < 0.03
    lower = tcp[5]
    assert np.linalg.norm(lower[:2] - np.array(target)) < 0.02 and lower[2] < 0.03
    approach = expert.ik.fk(points[1].positions[:5])[:3, :3] @ expert.ik.approach_axis
    assert approach[2] < -0.99  # jaws point down


def test_the_lift_starts_as_the_jaws_close(expert):
    """No waypoint holds the arm still with the jaws closed: a policy cannot tell the moments of
    such a pause apart (same image, same state) and, re-planning often, waits there for ever."""
    points = expert.plan(np.zeros(6), (0.25, 0.05, 0.015), (0.18, -0.12))
    closed = [p.positions[5] for p in points].index(ExpertSettings().gripper_closed)
    grasp, lift = points[closed].positions[:5], points[closed + 1].positions[:5]
    assert np.array_equal(grasp, points[closed - 1].positions[:5])  # closing with the arm still ...
    assert np.abs(lift - grasp).max() > 0.05  # ... then straight into the lift
    assert expert.ik.fk(lift)[2, 3] > expert.ik.fk(grasp)[2, 3] + 0.05


def test_unreachable_cube_raises(expert):
    with pytest.raises(PlanningError, match="out of reach"):
        expert.plan(np.zeros(6), (0.9, 0.0, 0.015), (0.2, 0.1))
    with pytest.raises(ValueError):
        expert.plan(np.full(6, np.nan), (0.25, 0.0, 0.015), (0.2, 0.1))


def test_layout_parsing_and_messages(expert):
    from so100_bringup.teleop.expert_node import parse_layout, trajectory_msgs

    assert parse_layout("episode 3: cube at (0.266, -0.046), target at (0.156, -0.174)") == \
        ((0.266, -0.046), (0.156, -0.174))
    with pytest.raises(ValueError):
        parse_layout("reset done")
    points = expert.plan(np.zeros(6), (0.25, 0.0, 0.015), (0.2, 0.12))
    arm, grip = trajectory_msgs(points, prefix="left_")
    assert arm.joint_names == [f"left_{j}" for j in JOINT_NAMES[:5]] and grip.joint_names == ["left_gripper"]
    assert len(arm.points) == len(grip.points) == len(points)
    last = arm.points[-1].time_from_start
    assert abs(last.sec + last.nanosec * 1e-9 - points[-1].time_from_start) < 1e-6
    np.testing.assert_allclose(grip.points[2].positions, [points[2].positions[5]])


@pytest.mark.ros
@pytest.mark.slow
def test_expert_node_drives_sim_and_recorder(rclpy_context):
    """Fake sim: ~/reset with a layout, /joint_states, sim/task_success that succeeds on odd
    episodes. Fake recorder: counts its service calls. The expert must keep the successes and
    discard the failures, and publish its plan on both trajectory topics."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Bool
    from std_srvs.srv import Trigger
    from trajectory_msgs.msg import JointTrajectory

    from so100_common.ros_node import LATCHED_QOS

    node = rclpy.create_node("fake_world", context=rclpy_context)
    calls: list[str] = []
    trajectories: dict[str, list] = {"arm": [], "gripper": []}
    episode = {"n": 0}
    success_pub = node.create_publisher(Bool, "/sim/task_success", LATCHED_QOS)
    js_pub = node.create_publisher(JointState, "/joint_states", 10)

    def reset(_req, resp):
        episode["n"] += 1
        success_pub.publish(Bool(data=False))
        resp.success, resp.message = True, f"episode {episode['n']}: cube at (0.250, 0.050), target at (0.180, -0.120)"
        calls.append("reset")
        return resp

    def recorder(name):
        def handler(_req, resp):
            calls.append(name)
            resp.success, resp.message = True, name
            return resp
        return handler

    node.create_service(Trigger, "/mujoco_sim/reset", reset)
    for name in ("start_episode", "stop_episode", "discard_episode"):
        node.create_service(Trigger, f"/recorder/{name}", recorder(name))

    def on_traj(kind):
        def cb(msg):
            trajectories[kind].append(msg)
            success_pub.publish(Bool(data=episode["n"] % 2 == 1))  # odd episodes succeed
        return cb

    node.create_subscription(JointTrajectory, "/arm_controller/joint_trajectory", on_traj("arm"), 10)
    node.create_subscription(JointTrajectory, "/gripper_controller/joint_trajectory", on_traj("gripper"), 10)

    def publish_state():
        msg = JointState(name=list(JOINT_NAMES), position=[0.0] * 6)
        msg.header.stamp = node.get_clock().now().to_msg()
        js_pub.publish(msg)

    node.create_timer(0.02, publish_state)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    # Short plan timing so the test is quick: the node's settings are the defaults, but extra
    # waits are cut.
    args = [sys.executable, "-m", "so100_bringup.teleop.expert_node", "--ros-args", "-p", "episodes:=2",
            "-p", "settle_s:=0.1", "-p", "extra_s:=0.2"]
    proc = subprocess.Popen(args, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        executor.shutdown()
        node.destroy_node()
    assert proc.returncode == 0, out
    assert calls == ["reset", "start_episode", "stop_episode", "reset", "start_episode", "discard_episode"], out
    assert len(trajectories["arm"]) == 2 and len(trajectories["gripper"]) == 2
    assert trajectories["arm"][0].joint_names == list(JOINT_NAMES[:5])
    assert "1/2 successful, 1 episodes recorded" in out
