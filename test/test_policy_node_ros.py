"""The policy node over real DDS: node in its own process, fake cameras/joint states here.

Policies are small random-initialised ACTs saved to a temp dir and loaded by path. The "known
answer" policy has its action std set to ~0, so whatever it sees it outputs the saved mean
(LeRobot degrees / gripper percent): the trajectories must converge to exactly that, in radians.
"""
from __future__ import annotations

import math
import subprocess
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (make setup installs the ROS 2 Jazzy wheels)")
pytest.importorskip("torch", reason="torch is not installed (pip install so100_vla[policy])")
pytest.importorskip("lerobot", reason="lerobot is not installed (pip install so100_vla[policy])")

from std_srvs.srv import SetBool, Trigger  # noqa: E402

from so100_description.joints import ARM_JOINTS, joint_limits  # noqa: E402
from support.ros import (Spinner, call_service, make_fake_io_node, start_policy_node,  # noqa: E402
                                     stop_process, wait_for)
from so100_bringup.learning.random_act import make_random_act, override_action_stats  # noqa: E402

pytestmark = pytest.mark.ros
HW = (48, 64)
FPS = 30.0
TARGET = [30.0, -20.0, 10.0, 0.0, 45.0, 50.0]  # LeRobot degrees x5, gripper percent


def _expected_radians():
    lim = joint_limits()["gripper"]
    return [math.radians(v) for v in TARGET[:5]] + [lim.lower + 0.5 * (lim.upper - lim.lower)]


@pytest.fixture(scope="module")
def known_policy(tmp_path_factory):
    path = make_random_act(tmp_path_factory.mktemp("act") / "known", cameras=("front", "wrist"), image_hw=HW,
                           chunk_size=15, seed=1)
    override_action_stats(path, mean=TARGET, std=[1e-6] * 6)
    return path


@pytest.fixture(scope="module")
def nan_policy(tmp_path_factory):
    path = make_random_act(tmp_path_factory.mktemp("act") / "nan", cameras=("front",), image_hw=HW,
                           chunk_size=15, seed=2)
    override_action_stats(path, mean=[float("nan")] * 6, std=[1.0] * 6)
    return path


@pytest.fixture()
def ros(rclpy_context, tmp_path):
    procs: list[subprocess.Popen] = []
    spinners: list[Spinner] = []

    class Env:
        context = rclpy_context
        logs = tmp_path

        def node(self, params, name="node"):
            base = {"torch_threads": 1, "fps": FPS, "diagnostics_period": 0.2}
            base.update(params)
            proc = start_policy_node(base, log_path=str(tmp_path / f"{name}.log"))
            procs.append(proc)
            return proc

        def io(self, cameras, **kw):
            io = make_fake_io_node(cameras, context=rclpy_context, **kw)
            spinners.append(Spinner([io], rclpy_context))
            return io

        def log(self, name="node"):
            return (tmp_path / f"{name}.log").read_text()

    yield Env()
    for proc in procs:
        stop_process(proc)
    for sp in spinners:
        sp.stop()
        for node in sp.nodes:
            node.destroy_node()


CAMS = {"front": ("/camera/front/image_raw", HW, "rgb8"),
        "wrist": ("/camera/wrist/image_raw", (120, 160), "bgr8")}  # other size: resized in the node


def _diag(io):
    if not io.recorder.diagnostics:
        return None
    status = io.recorder.diagnostics[-1].status[0]
    return status.level[0] if isinstance(status.level, bytes) else status.level, status.message, \
        {kv.key: kv.value for kv in status.values}


def _count(io):
    with io.lock:
        return len(io.recorder.arm)


@pytest.mark.slow  # ~15-20 s on a loaded 2-core machine
def test_node_runs_policy_and_obeys_start_stop_estop(ros, known_policy):
    io = ros.io(CAMS)
    ros.node({"policy_path": str(known_policy), "autostart": False})
    assert wait_for(lambda: _diag(io) is not None, 60), ros.log()
    assert wait_for(lambda: "stopped" in _diag(io)[1], 10)
    time.sleep(0.5)
    assert _count(io) == 0  # nothing moves before ~/enable

    resp = call_service(io, SetBool, "/vla_policy_node/enable", SetBool.Request(data=True))
    assert resp.success, resp.message
    assert wait_for(lambda: _count(io) >= 8, 30), ros.log()
    with io.lock:
        arm, grip = list(io.recorder.arm), list(io.recorder.gripper)
    assert arm[0].joint_names == list(ARM_JOINTS) and grip[0].joint_names == ["gripper"]
    dt = 1.0 / FPS
    for traj in arm:
        # time_from_start at the policy's fps: dt, 2dt, ...
        assert traj.times == pytest.approx(dt * np.arange(1, len(traj.times) + 1), abs=1e-6)
        # and the first knot is not in the past when it arrives (past actions were dropped)
        assert traj.stamp + traj.times[0] >= traj.received - 0.25  # (slack: DDS delivery on a loaded CI)
        assert traj.velocities.shape == traj.positions.shape
    # splices: each new trajectory starts on the previous one (no jump)
    for prev, new in zip(arm, arm[1:]):
        t_new = new.stamp + new.times[0]
        t_prev = prev.stamp + prev.times
        if t_prev[0] <= t_new <= t_prev[-1]:
            expected = np.array([np.interp(t_new, t_prev, prev.positions[:, j]) for j in range(5)])
            assert new.positions[0] == pytest.approx(expected, abs=0.02)
    # units: the known-answer policy's LeRobot degrees/percent arrive as radians
    assert wait_for(lambda: np.allclose(io.recorder.arm[-1].positions[-1], _expected_radians()[:5], atol=1e-3), 15)
    assert io.recorder.gripper[-1].positions[-1][0] == pytest.approx(_expected_radians()[5], abs=1e-3)
    level, message, values = _diag(io)
    assert message == "running" and float(values["inference_latency_ms"]) > 0

    # task instruction over /vla/instruction reaches the node
    from std_msgs.msg import String
    pub = io.create_publisher(String, "/vla/instruction", 10)
    assert wait_for(lambda: (pub.publish(String(data="stack the cubes")) or
                             _diag(io)[2].get("task") == "stack the cubes"), 10)

    # stop = hold: one single-point trajectory at the current setpoint, then silence
    resp = call_service(io, SetBool, "/vla_policy_node/enable", SetBool.Request(data=False))
    assert resp.success
    assert wait_for(lambda: len(io.recorder.arm[-1].positions) == 1, 5)
    hold = io.recorder.arm[-1]
    assert np.all(hold.velocities == 0) and np.all(np.isfinite(hold.positions))
    n = _count(io)
    time.sleep(0.6)
    assert _count(io) == n

    # resume, then e-stop
    call_service(io, SetBool, "/vla_policy_node/enable", SetBool.Request(data=True))
    assert wait_for(lambda: _count(io) >= n + 3, 20)
    resp = call_service(io, Trigger, "/vla_policy_node/estop", Trigger.Request())
    assert resp.success
    assert wait_for(lambda: "e-stop" in _diag(io)[1], 5)
    assert wait_for(lambda: len(io.recorder.arm[-1].positions) == 1, 5)
    n = _count(io)
    time.sleep(0.6)
    assert _count(io) == n


@pytest.mark.slow
def test_node_survives_bad_inputs_and_waits_on_stale_ones(ros, known_policy):
    # the wrist camera arrives as a JPEG CompressedImage, the front one as raw rgb8
    io = ros.io({"front": CAMS["front"], "wrist": ("/camera/wrist/image_raw/compressed", (120, 160), "jpeg")})
    ros.node({"policy_path": str(known_policy), "autostart": True, "max_image_age": 0.3,
              "cameras": "front,wrist=/camera/wrist/image_raw/compressed"})
    assert wait_for(lambda: _count(io) >= 3, 60), ros.log()

    from sensor_msgs.msg import Image, JointState
    from so100_common.ros_node import IMAGE_QOS
    bad_img = io.create_publisher(Image, "/camera/front/image_raw", IMAGE_QOS)
    bad_state = io.create_publisher(JointState, "/joint_states", 10)
    assert wait_for(lambda: bad_img.get_subscription_count() >= 1 and bad_state.get_subscription_count() >= 1, 10)
    for _ in range(5):
        bad_img.publish(Image(height=4, width=4, encoding="yuv422", step=8, data=bytes(32)))
        bad_img.publish(Image(height=4, width=4, encoding="rgb8", step=12, data=bytes(7)))  # truncated
        bad_state.publish(JointState(name=["shoulder_pan"], position=[0.0]))  # missing joints
        bad_state.publish(JointState(name=["a", "b"], position=[0.0]))  # size mismatch
        time.sleep(0.05)
    assert wait_for(lambda: int(_diag(io)[2]["image_errors"]) >= 5
                    and int(_diag(io)[2]["rejected_joint_states"]) >= 5, 10), _diag(io)
    with io.lock:
        assert all(np.all(np.isfinite(t.positions)) for t in io.recorder.arm)
    assert _diag(io)[1] == "running"  # good inputs keep flowing: still running

    # cameras go silent: frames become stale, inference stops, diagnostics say why
    io.publish_images = False
    assert wait_for(lambda: "stale" in _diag(io)[1], 10), _diag(io)
    time.sleep(0.5)
    n = _count(io)
    time.sleep(0.8)
    assert _count(io) == n
    io.publish_images = True  # and it resumes on fresh frames
    assert wait_for(lambda: _count(io) > n, 20)


def test_nan_policy_output_holds_and_reports_error(ros, nan_policy):
    io = ros.io({"front": CAMS["front"]}, joint_positions=[0.1, 0.2, 0.3, 0.0, 0.0, 0.5])
    ros.node({"policy_path": str(nan_policy), "autostart": True})
    assert wait_for(lambda: _diag(io) is not None and _diag(io)[0] == 2, 60), ros.log()
    level, message, values = _diag(io)
    assert "non-finite" in message and values["enabled"] == "False"
    assert wait_for(lambda: _count(io) >= 1, 5)
    with io.lock:
        trajs = list(io.recorder.arm)
    assert len(trajs) == 1 and len(trajs[0].positions) == 1  # only the hold, never a NaN chunk
    assert trajs[0].positions[0] == pytest.approx([0.1, 0.2, 0.3, 0.0, 0.0])


@pytest.mark.parametrize("params,match,code", [
    ({"policy_path": "/nonexistent/policy"}, "does not exist", 1),
    ({"cameras": "front,wrist,top"}, r"camera key\(s\) \['top'\] are not inputs", 1),
    ({"cameras": "front"}, r"needs camera\(s\) \['wrist'\]", 1),
    ({"action_space": "ee_delta"}, r"ee_actions|action has 6 dimensions; the node's action space needs 7", 1),
    # refused by the parameter schema (exit 2), before the checkpoint is read
    ({"arm_units": "radians"}, r"parameter arm_units is 'radians'; allowed: one of degrees, range_m100_100", 2),
    ({"action_space": "joint_velocity"}, r"parameter action_space is 'joint_velocity'; allowed: one of joint,", 2),
    ({"image_resize": "stretch"}, r"parameter image_resize is 'stretch'; allowed: one of resize, crop", 2),
])
def test_startup_errors_are_clear(known_policy, params, match, code):
    full = {"policy_path": str(known_policy), **params}
    proc = start_policy_node(full, capture_output=True)
    try:
        proc.wait(timeout=120)
    finally:
        err = stop_process(proc)
    assert proc.returncode == code, err
    import re
    assert re.search(match, err), err


def test_policy_yaml_documents_every_parameter_with_node_defaults():
    import yaml

    from so100_description.paths import SOURCE_ROOT
    from vla_policy_node.node import PARAMS

    params = yaml.safe_load((SOURCE_ROOT / "config" / "policy.yaml").read_text())["vla_policy_node"]["ros__parameters"]
    assert params == PARAMS.defaults()  # the file is generated from the schema (test_node_params)


def test_follow_joint_trajectory_option_needs_control_msgs(known_policy):
    try:
        import control_msgs  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("control_msgs is installed: the option is available (needs a controller to test)")
    proc = start_policy_node({"policy_path": str(known_policy), "use_follow_joint_trajectory": True},
                             capture_output=True)
    try:
        proc.wait(timeout=120)
    finally:
        err = stop_process(proc)
    assert proc.returncode == 1 and "needs control_msgs" in err, err


def test_end_effector_delta_policy_goes_through_ik(ros, tmp_path):
    pytest.importorskip("pinocchio", reason="pin (pinocchio) not installed: no end-effector IK")
    # a 7-D "known answer" policy: zero pose deltas (stay) and the gripper at 0.5 rad
    path = make_random_act(tmp_path / "ee", cameras=("front",), image_hw=HW, chunk_size=15, action_dim=7)
    override_action_stats(path, mean=[0.0] * 6 + [0.5], std=[1e-6] * 7)
    start = [0.1, 0.3, -0.4, 0.2, 0.1, 0.2]
    io = ros.io({"front": CAMS["front"]}, joint_positions=start)
    ros.node({"policy_path": str(path), "autostart": True, "action_space": "ee_delta"})
    assert wait_for(lambda: _count(io) >= 3, 60), ros.log()
    with io.lock:
        arm, grip = io.recorder.arm[-1], io.recorder.gripper[-1]
    assert np.all(np.isfinite(arm.positions))
    assert arm.positions[-1] == pytest.approx(start[:5], abs=0.02)  # zero deltas: the arm stays put
    assert wait_for(lambda: abs(io.recorder.gripper[-1].positions[-1][0] - 0.5) < 1e-3, 10)
