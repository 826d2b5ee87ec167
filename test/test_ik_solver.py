"""IK for the 5-DOF arm on the project's URDF: FK/IK round trips, limits, continuity, bad input."""
from __future__ import annotations

import logging

import numpy as np
import pytest

pytest.importorskip("pinocchio", reason="pinocchio (PyPI `pin`, extra `kinematics`) not installed")

from so100_description import robot_description  # noqa: E402
from so100_description.joints import ARM_JOINTS, LimitArrays  # noqa: E402
from so100_description.ik import IKTarget, PinocchioIK, SolverSettings  # noqa: E402
from so100_description.moveit.ik import MoveItIK, make_ik_solver, moveit_available  # noqa: E402

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
    limits = LimitArrays.for_joints(ARM_JOINTS, "so101")
    lower, upper = limits.lower, limits.upper
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


@pytest.mark.parametrize("variant", ["so101", "so100"])
def test_round_trip_position_only(variant):
    ik = _solver(variant)
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
    with caplog.at_level(logging.WARNING, logger="so100_description.ik"):
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


# -- geometric (closed-form) starts --------------------------------------------------------------

def _seed_mode(variant: str) -> PinocchioIK:
    key = variant + ":seed"
    if key not in _SOLVERS:
        _SOLVERS[key] = PinocchioIK(robot_description(variant, "mock"), variant=variant,
                                    settings=SolverSettings(initial_guess="seed"))
    return _SOLVERS[key]


@pytest.mark.parametrize("variant", ["so101", "so100"])
def test_closed_form_is_exact_for_both_models(variant):
    """The pan + planar-triangle solution, with link lengths and offsets measured on each
    variant's own URDF, reproduces FK poses with no iteration at all (position, approach and,
    for full-pose targets, the wrist roll)."""
    ik = _solver(variant)
    assert ik.planar_arm is not None
    for q in _random_configs(ik, 100, seed=21):
        pose = ik.fk(q)
        for target in (IKTarget(pose[:3, 3], approach=_approach(ik, pose)),
                       IKTarget(pose[:3, 3], rotation=pose[:3, :3])):
            starts = ik.geometric_starts(target, np.zeros(5))
            assert starts and all(np.all(s >= ik.lower) and np.all(s <= ik.upper) for s in starts)

            def errors(s: np.ndarray) -> tuple[float, float]:
                achieved = ik.fk(s)
                cos = _approach(ik, achieved) @ _approach(ik, pose)
                return (float(np.linalg.norm(achieved[:3, 3] - pose[:3, 3])),
                        float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))))

            best = min(starts, key=lambda s: sum(errors(s)))
            pos_err, app_err_deg = errors(best)
            assert pos_err < 1e-6 and app_err_deg < 1e-4
            if target.rotation is not None:
                np.testing.assert_allclose(ik.fk(best)[:3, :3], pose[:3, :3], atol=1e-6)


@pytest.mark.parametrize("variant", ["so101", "so100"])
def test_cold_full_pose_round_trip(variant):
    """Full-pose targets (position + rotation; the roll comes from the rotation) from zero."""
    ik = _solver(variant)
    solved = 0
    for q in _random_configs(ik, N_TARGETS, seed=13):
        pose = ik.fk(q)
        res = ik.solve(IKTarget(pose[:3, 3], rotation=pose[:3, :3]), np.zeros(5), warn=False)
        assert np.all(res.q >= ik.lower - 1e-9) and np.all(res.q <= ik.upper + 1e-9)
        solved += res.reached and res.position_error <= 1e-3 and res.rotation_error <= np.radians(1.0)
    assert solved / N_TARGETS >= 0.99, f"only {solved}/{N_TARGETS} solved"


def test_geometric_start_needs_fewer_iterations_than_the_seeded_scheme():
    """Same targets, same success, and far less work than starting from the seed (the
    original scheme, still selectable as initial_guess="seed")."""
    geo, old = _solver("so101"), _seed_mode("so101")
    its = {"geometric": [], "seed": []}
    reached = {"geometric": 0, "seed": 0}
    for q in _random_configs(geo, 100, seed=14):
        pose = geo.fk(q)
        target = IKTarget(pose[:3, 3], approach=_approach(geo, pose))
        for name, ik in (("geometric", geo), ("seed", old)):
            res = ik.solve(target, np.zeros(5), warn=False)
            its[name].append(res.iterations)
            reached[name] += res.reached
    assert reached["geometric"] >= reached["seed"] and reached["geometric"] >= 99
    assert np.median(its["geometric"]) <= 2
    assert np.mean(its["geometric"]) * 3 < np.mean(its["seed"])


def test_unbounded_solve_keeps_the_branch_of_the_current_state(ik):
    """A target has up to four arm shapes (elbow up/down, reaching forwards/backwards over the
    top); a seed near any one of them gets that one back, not a reconfiguration."""
    rng = np.random.default_rng(15)
    checked = multi = 0
    for q in _random_configs(ik, 40, seed=16):
        pose = ik.fk(q)
        target = IKTarget(pose[:3, 3], approach=_approach(ik, pose))
        branches = [b for b in ik.geometric_starts(target)
                    if np.linalg.norm(ik.fk(b)[:3, 3] - pose[:3, 3]) < 1e-6]
        multi += len(branches) > 1
        for b in branches:
            seed = np.clip(b + rng.uniform(-0.05, 0.05, 5), ik.lower, ik.upper)
            res = ik.solve(target, seed, warn=False)
            assert res.reached
            np.testing.assert_allclose(res.q[:4], b[:4], atol=1e-3)
            checked += 1
    assert checked >= 40 and multi >= 10  # many targets have several branches within limits


def test_targets_behind_the_base_reach_over_the_top(ik):
    """A target behind the arm, beyond pan's +-110 degrees, is met by reaching backwards over
    the shoulder (pan turned the other way round), found from a cold start."""
    q = np.array([0.3, -1.2, -1.0, -1.0, 0.0])  # lift back past vertical
    pose = ik.fk(q)
    rel = pose[:3, 3] - ik.planar_arm.pan_origin
    assert abs(np.arctan2(rel[1], rel[0])) > ik.upper[0] + 0.5  # no pan angle faces it
    res = ik.solve(IKTarget(pose[:3, 3], approach=_approach(ik, pose)), np.zeros(5), warn=False)
    assert res.reached and res.iterations <= 3


def test_non_planar_model_falls_back_to_the_seeded_scheme():
    """A model whose elbow axis is not parallel to the shoulder_lift axis has no closed form:
    the solver says so (no geometric starts) and still solves by the seeded scheme."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(robot_description("so101", "mock"))
    joint = next(j for j in root.iter("joint") if j.get("name") == "elbow_flex")
    axis = np.array([float(v) for v in joint.find("axis").get("xyz").split()])
    tilt = np.cross(axis, [1.0, 0.0, 0.0] if abs(axis[0]) < 0.9 else [0.0, 1.0, 0.0])
    tilted = axis + 0.2 * tilt / np.linalg.norm(tilt)
    joint.find("axis").set("xyz", " ".join(f"{v:.6f}" for v in tilted / np.linalg.norm(tilted)))
    ik = PinocchioIK(ET.tostring(root, encoding="unicode"))
    assert ik.planar_arm is None
    target_q = np.array([0.3, -0.4, 0.6, 0.5, 0.1])
    pose = ik.fk(target_q)
    target = IKTarget(pose[:3, 3], approach=_approach(ik, pose))
    assert ik.geometric_starts(target) == []
    res = ik.solve(target, np.zeros(5), warn=False)
    assert res.reached


def test_bad_initial_guess_setting_is_rejected():
    with pytest.raises(ValueError, match="initial_guess"):
        PinocchioIK(robot_description("so101", "mock"), settings=SolverSettings(initial_guess="zero"))


def test_prefixed_description_gets_the_closed_form_too(ik):
    pre = PinocchioIK(robot_description("so101", "mock", prefix="left_"), prefix="left_")
    assert pre.planar_arm is not None
    q = np.array([0.3, -0.2, 0.4, 0.1, -0.5])
    pose = pre.fk(q)
    res = pre.solve(IKTarget(pose[:3, 3], rotation=pose[:3, :3]), np.zeros(5), warn=False)
    assert res.reached and res.iterations <= 2
    np.testing.assert_allclose(res.q, q, atol=1e-6)
