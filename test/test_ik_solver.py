"""IK for the 5-DOF arm on the project's URDF: FK/IK round trips, limits, continuity, bad input."""
from __future__ import annotations

import logging

import numpy as np
import pytest

pytest.importorskip("pinocchio", reason="pinocchio (PyPI `pin`, extra `kinematics`) not installed")

from so100_description import robot_description  # noqa: E402
from so100_description.joints import ARM_JOINTS, limit_arrays  # noqa: E402
from vla_policy_node.ik import (IKTarget, MoveItIK, PinocchioIK, make_ik_solver,  # noqa: E402
                                moveit_available)

N_TARGETS = 200


_SOLVERS: dict[str, PinocchioIK] = {}


def _solver(variant: str) -> PinocchioIK:
    if variant not in _SOLVERS:
        _SOLVERS[variant] = PinocchioIK(robot_description(variant, "mock"), variant=variant)
    return _SOLVERS[variant]


@pytest.fixture(scope="module")
def ik() -> PinocchioIK:
    return _solver("so101")


def _random_configs(ik: PinocchioIK, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(ik.lower, ik.upper) for _ in range(n)]


def _approach(ik: PinocchioIK, pose: np.ndarray) -> np.ndarray:
    return pose[:3, :3] @ ik.approach_axis


def test_limits_come_from_joint_limits_yaml(ik):
    lower, upper = limit_arrays(ARM_JOINTS, "so101")
    assert ik.joint_names == ARM_JOINTS
    np.testing.assert_allclose(ik.lower, lower)
    np.testing.assert_allclose(ik.upper, upper)


def test_approach_axis_points_from_wrist_to_jaws(ik):
    # moving the tcp along its approach axis moves it away from the wrist_roll joint
    pose = ik.fk(np.zeros(5))
    wrist = ik.frame_pose("gripper_link", np.zeros(5))[:3, 3]
    a = _approach(ik, pose)
    assert np.linalg.norm(pose[:3, 3] + 0.01 * a - wrist) > np.linalg.norm(pose[:3, 3] - wrist)
    assert np.isclose(np.linalg.norm(ik.approach_axis), 1.0)


@pytest.mark.parametrize("variant", ["so101", "so100"])
def test_round_trip_position_and_approach_cold_start(variant):
    """>= 99% of random reachable position + approach targets solved to 1 mm / 1 deg from the
    zero configuration (no hint of the answer)."""
    ik = _solver(variant)
    solved = 0
    for q in _random_configs(ik, N_TARGETS, seed=11):
        pose = ik.fk(q)
        target = IKTarget(pose[:3, 3], approach=_approach(ik, pose))
        res = ik.solve(target, np.zeros(5), warn=False)
        assert np.all(res.q >= ik.lower - 1e-9) and np.all(res.q <= ik.upper + 1e-9)
        achieved = ik.fk(res.q)
        # the reported errors are the real ones
        assert np.isclose(res.position_error, np.linalg.norm(achieved[:3, 3] - pose[:3, 3]), atol=1e-9)
        if res.reached:
            assert np.linalg.norm(achieved[:3, 3] - pose[:3, 3]) <= 1e-3
            cos = np.dot(_approach(ik, achieved), target.approach)
            assert np.degrees(np.arccos(np.clip(cos, -1, 1))) <= 1.0 + 1e-6
            solved += 1
    assert solved / N_TARGETS >= 0.99, f"only {solved}/{N_TARGETS} solved"


def test_round_trip_position_only(ik):
    solved = 0
    for q in _random_configs(ik, N_TARGETS, seed=12):
        target = IKTarget(ik.fk(q)[:3, 3])
        res = ik.solve(target, np.zeros(5), warn=False)
        solved += res.reached and np.linalg.norm(ik.fk(res.q)[:3, 3] - target.position) <= 1e-3
    assert solved / N_TARGETS >= 0.99


def test_chunk_is_continuous_and_seeded_from_current_state(ik):
    """A chunk of full-pose targets along a joint-space motion: every point reached, each step
    within max_step of the previous solution, and the first one close to the seed."""
    rng = np.random.default_rng(5)
    max_step = 0.2
    for _ in range(8):
        q0 = rng.uniform(ik.lower * 0.8, ik.upper * 0.8)
        q1 = np.clip(q0 + rng.uniform(-0.8, 0.8, 5), ik.lower * 0.8, ik.upper * 0.8)
        path = [q0 + (q1 - q0) * s for s in np.linspace(0.0, 1.0, 25)]
        targets = [IKTarget(ik.fk(q)[:3, 3], rotation=ik.fk(q)[:3, :3]) for q in path]
        results = ik.solve_path(targets, q0, max_step=max_step)
        prev = q0
        for res, q_true in zip(results, path):
            assert res.reached, res.message
            assert np.max(np.abs(res.q - prev)) <= max_step + 1e-9
            # full pose targets pin down the 5 joints: the solver stays on the generating branch
            np.testing.assert_allclose(res.q, q_true, atol=2e-3)
            prev = res.q


def test_unreachable_target_gives_best_pose_a_warning_and_no_jump(ik, caplog):
    seed = np.array([0.2, -0.4, 0.5, 0.3, 0.0])
    start = ik.fk(seed)[:3, 3]
    far = start + np.array([1.0, 0.5, 0.3])  # a metre outside the workspace
    with caplog.at_level(logging.WARNING, logger="vla_policy_node.ik"):
        res = ik.solve(IKTarget(far), seed, max_step=0.1)
    assert not res.reached
    assert "unreachable" in caplog.text
    assert np.max(np.abs(res.q - seed)) <= 0.1 + 1e-9  # bounded step from the seed
    assert res.step_limited
    # best effort: it moved towards the target
    assert np.linalg.norm(ik.fk(res.q)[:3, 3] - far) < np.linalg.norm(start - far)

    # without a step bound: the best reachable pose (arm stretched towards it), still in limits
    res = ik.solve(IKTarget(far), seed, warn=False)
    assert not res.reached and np.all(res.q >= ik.lower) and np.all(res.q <= ik.upper)
    reach = np.linalg.norm(ik.fk(res.q)[:3, 3] - far)
    assert all(reach <= np.linalg.norm(ik.fk(q)[:3, 3] - far) + 1e-6
               for q in _random_configs(ik, 300, seed=3))


def test_unreachable_orientation_keeps_position_exact(ik):
    """5 DOF: a pose whose approach points sideways to the arm's plane cannot be met; the
    position still is (position first), the approach as closely as possible."""
    q = np.array([0.0, -0.3, 0.6, 0.4, 0.0])
    pose = ik.fk(q)
    sideways = np.cross([0.0, 0.0, 1.0], _approach(ik, pose))
    res = ik.solve(IKTarget(pose[:3, 3], approach=sideways), q, warn=False)
    assert res.position_error <= 1e-3
    assert not res.reached and res.approach_error > np.radians(5)


def test_bad_input_raises_clear_errors(ik):
    with pytest.raises(ValueError, match="position"):
        IKTarget([0.1, np.nan, 0.2])
    with pytest.raises(ValueError, match="approach"):
        IKTarget([0.1, 0.0, 0.2], approach=[0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="either"):
        IKTarget([0.1, 0.0, 0.2], approach=[0, 0, 1], rotation=np.eye(3))
    with pytest.raises(ValueError, match="seed"):
        ik.solve(IKTarget([0.2, 0.0, 0.2]), np.zeros(4))
    with pytest.raises(ValueError, match="seed"):
        ik.solve(IKTarget([0.2, 0.0, 0.2]), [0, 0, np.inf, 0, 0])
    with pytest.raises(ValueError, match="frame"):
        ik.frame_pose("no_such_link", np.zeros(5))
    with pytest.raises(ValueError, match="no joint"):
        PinocchioIK(robot_description("so101", "mock"), joint_names=["shoulder_pan", "nope"])


def test_prefixed_description(ik):
    pre = PinocchioIK(robot_description("so101", "mock", prefix="left_"), prefix="left_")
    q = np.array([0.3, -0.2, 0.4, 0.1, -0.5])
    np.testing.assert_allclose(pre.fk(q), ik.fk(q), atol=1e-12)


def test_factory_falls_back_to_pinocchio_without_moveit():
    if moveit_available():
        pytest.skip("moveit_py is installed: the factory picks MoveIt (covered by the MoveIt test)")
    solver = make_ik_solver("so101", backend="auto")
    assert isinstance(solver, PinocchioIK)
    with pytest.raises(ValueError, match="backend"):
        make_ik_solver("so101", backend="kdl")


def test_moveit_backend_round_trip():
    pytest.importorskip("moveit.planning", reason="moveit_py (MoveIt 2 Python bindings) is not installable here")
    solver = make_ik_solver("so101", backend="moveit")
    assert isinstance(solver, MoveItIK)
    rng = np.random.default_rng(2)
    q = rng.uniform(solver.lower * 0.7, solver.upper * 0.7)
    pose = solver.fk(q)
    res = solver.solve(IKTarget(pose[:3, 3], approach=pose[:3, :3] @ solver.approach_axis), q * 0.9)
    assert res.reached
