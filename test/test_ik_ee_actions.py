"""End-effector action chunks -> joint chunks (the call the policy node makes for
action_space ee_absolute / ee_delta), including a random-initialised LeRobot policy whose output
is an end-effector pose, saved and loaded through from_pretrained."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pinocchio", reason="pinocchio (PyPI `pin`, extra `kinematics`) not installed")

from so100_description.joints import JOINT_NAMES, joint_limits  # noqa: E402
from vla_policy_node.ee_actions import (EndEffectorActionConverter, matrix_to_rpy,  # noqa: E402
                                        rpy_to_matrix)

LIMITS = joint_limits("so101")
LOWER = np.array([LIMITS[j].lower for j in JOINT_NAMES])
UPPER = np.array([LIMITS[j].upper for j in JOINT_NAMES])
Q0 = np.array([0.1, -0.5, 0.6, 0.4, 0.2, 0.3])


@pytest.fixture(scope="module")
def absolute() -> EndEffectorActionConverter:
    return EndEffectorActionConverter(variant="so101", mode="absolute", frame="base_link")


def _assert_safe(chunk: np.ndarray, start: np.ndarray, conv: EndEffectorActionConverter) -> None:
    assert chunk.shape[1] == 6 and np.all(np.isfinite(chunk))
    assert np.all(chunk >= LOWER - 1e-9) and np.all(chunk <= UPPER + 1e-9)
    steps = np.abs(np.diff(np.vstack([start, chunk]), axis=0))
    bound = np.append(conv.max_step, conv.max_gripper_step)
    assert np.all(steps <= bound + 1e-9), steps.max(axis=0)


def test_rpy_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(50):
        rpy = rng.uniform([-np.pi, -1.5, -np.pi], [np.pi, 1.5, np.pi])
        np.testing.assert_allclose(matrix_to_rpy(rpy_to_matrix(*rpy)), rpy, atol=1e-9)
    # URDF convention: yaw about z turns x towards y
    np.testing.assert_allclose(rpy_to_matrix(0, 0, np.pi / 2) @ [1, 0, 0], [0, 1, 0], atol=1e-12)


def test_absolute_targets_of_a_joint_path_come_back(absolute):
    """Absolute EE actions computed from a joint-space motion convert back to that motion."""
    path = np.array([Q0 + s * np.array([0.3, 0.25, -0.3, 0.2, -0.4, 0.5]) for s in np.linspace(0, 1, 20)])
    ee = np.array([absolute.ee_action_of(q) for q in path])
    joints = absolute.to_joint_chunk(ee, Q0)
    _assert_safe(joints, Q0, absolute)
    assert all(r.reached for r in absolute.last_results)
    np.testing.assert_allclose(joints, path, atol=2e-3)


def test_delta_mode_accumulates_from_the_current_tcp_pose():
    conv = EndEffectorActionConverter(mode="delta", orientation="approach")
    start = conv.tcp_pose(Q0)
    deltas = np.zeros((10, 7))
    deltas[:, 2] = 0.004  # 4 mm up per step
    deltas[:, 6] = Q0[5]
    joints = conv.to_joint_chunk(deltas, Q0)
    _assert_safe(joints, Q0, conv)
    for k, q in enumerate(joints, start=1):
        np.testing.assert_allclose(conv.tcp_pose(q)[:3, 3], start[:3, 3] + [0, 0, 0.004 * k], atol=1e-3)
    # the approach direction is held (rotation deltas are zero)
    a0 = start[:3, :3] @ conv.solver.approach_axis
    a_end = conv.tcp_pose(joints[-1])[:3, :3] @ conv.solver.approach_axis
    assert np.degrees(np.arccos(np.clip(a0 @ a_end, -1, 1))) < 1.0


def test_targets_in_another_frame(absolute):
    conv = EndEffectorActionConverter(mode="absolute", frame="shoulder_link")
    q_goal = Q0 + np.array([0.0, 0.05, -0.05, 0.05, 0.0, 0.0])  # shoulder_pan unchanged: frame fixed
    ee = conv.ee_action_of(q_goal)
    joints = conv.to_joint_chunk(ee[None, :], Q0)
    np.testing.assert_allclose(joints[0], q_goal, atol=2e-3)
    # the same target in base_link coordinates is a different 7-vector
    assert not np.allclose(absolute.ee_action_of(q_goal)[:3], ee[:3])
    with pytest.raises(ValueError, match="frame"):
        EndEffectorActionConverter(frame="camera_that_does_not_exist")


def test_gripper_units():
    rad = EndEffectorActionConverter(gripper_unit="rad", fps=1.0)  # fps 1: steps never bind
    frac = EndEffectorActionConverter(gripper_unit="fraction", fps=1.0)
    ee = rad.ee_action_of(Q0)
    row = np.tile(ee, (3, 1))
    row[:, 6] = [0.5, 5.0, -3.0]  # rad: in range, above and below the limits
    np.testing.assert_allclose(rad.to_joint_chunk(row, Q0)[:, 5], [0.5, UPPER[5], LOWER[5]])
    row[:, 6] = [0.0, 1.0, 0.5]
    np.testing.assert_allclose(frac.to_joint_chunk(row, Q0)[:, 5],
                               [LOWER[5], UPPER[5], (LOWER[5] + UPPER[5]) / 2])


def test_far_target_is_approached_without_jumps(absolute, caplog):
    ee = absolute.ee_action_of(Q0)
    far = np.tile(ee, (30, 1))
    far[:, 0] += 0.8  # outside the workspace
    far[:, 6] = UPPER[5]
    joints = absolute.to_joint_chunk(far, Q0)
    _assert_safe(joints, Q0, absolute)
    assert "unreachable" in caplog.text
    assert not any(r.reached for r in absolute.last_results)
    errors = [r.position_error for r in absolute.last_results]
    assert errors[-1] < errors[0]  # it moved towards the target...
    # ...and settles at the best reachable pose instead of chattering between solutions
    np.testing.assert_allclose(joints[-5:], np.tile(joints[-1], (5, 1)), atol=1e-3)


@pytest.mark.parametrize("bad", [np.zeros((5, 6)), np.zeros((0, 7)), np.full((3, 7), np.nan),
                                 np.zeros((2, 3, 7))])
def test_malformed_chunks_raise(absolute, bad):
    with pytest.raises(ValueError):
        absolute.to_joint_chunk(bad, Q0)


def test_bad_state_and_options_raise(absolute):
    ee = absolute.ee_action_of(Q0)[None, :]
    with pytest.raises(ValueError, match="joint state"):
        absolute.to_joint_chunk(ee, Q0[:5])
    with pytest.raises(ValueError, match="joint state"):
        absolute.to_joint_chunk(ee, np.append(Q0[:5], np.nan))
    with pytest.raises(ValueError, match="mode"):
        EndEffectorActionConverter(mode="relative")
    with pytest.raises(ValueError, match="gripper_unit"):
        EndEffectorActionConverter(gripper_unit="percent")


def test_random_initialised_ee_policy_through_from_pretrained(tmp_path):
    """A LeRobot ACT with a 7-D end-effector action, random weights, saved and loaded by path;
    its chunk (un-normalised with dataset-like stats around a reachable pose) -> joint chunk
    inside the limits, bounded steps, tcp near the targets where they are reachable."""
    torch = pytest.importorskip("torch", reason="torch (extra `policy`) not installed")
    pytest.importorskip("lerobot", reason="lerobot (extra `policy`) not installed")
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy

    torch.manual_seed(0)
    config = ACTConfig(
        input_features={"observation.state": PolicyFeature(type=FeatureType.STATE, shape=(6,)),
                        "observation.environment_state": PolicyFeature(type=FeatureType.ENV, shape=(6,))},
        output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(7,))},
        chunk_size=12, n_action_steps=12, dim_model=32, n_heads=2, dim_feedforward=64,
        n_encoder_layers=1, n_decoder_layers=1, use_vae=False, pretrained_backbone_weights=None,
        device="cpu")
    ACTPolicy(config).save_pretrained(tmp_path)
    policy = ACTPolicy.from_pretrained(tmp_path)
    policy.eval()
    with torch.no_grad():
        raw = policy.predict_action_chunk({"observation.state": torch.zeros(1, 6),
                                           "observation.environment_state": torch.zeros(1, 6)})
    raw = raw[0].numpy().astype(float)
    assert raw.shape == (12, 7)

    conv = EndEffectorActionConverter(mode="absolute", orientation="approach", gripper_unit="fraction")
    mean = conv.ee_action_of(Q0)
    mean[6] = 0.5
    std = np.array([0.01, 0.01, 0.01, 0.05, 0.05, 0.05, 0.2])  # ~1 cm, ~3 deg: a dataset's spread
    ee_chunk = mean + std * np.clip(raw, -3, 3)
    joints = conv.to_joint_chunk(ee_chunk, Q0)
    assert joints.shape == (12, 6)
    _assert_safe(joints, Q0, conv)
    for q, target, res in zip(joints, ee_chunk, conv.last_results):
        err = np.linalg.norm(conv.tcp_pose(q)[:3, 3] - target[:3])
        assert np.isclose(err, res.position_error, atol=1e-6)
        # positions within a few cm of a reachable pose are met; random tilts of the approach
        # direction out of the arm's plane are not reachable by 5 joints (best effort)
        assert err <= 1e-3
