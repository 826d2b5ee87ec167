"""The MuJoCo scene, physics, task signal, rendering and scheduling without ROS."""
from __future__ import annotations

import numpy as np
import pytest

mujoco = pytest.importorskip("mujoco", reason="mujoco not installed (make setup installs the sim extra)")

from so100_bringup.sim.physics import ArmSim  # noqa: E402
from so100_bringup.sim.scene import SceneConfig, build_scene, cluster_vertices, look_at_xyaxes  # noqa: E402
from so100_bringup.sim.schedule import Pacer, Periodic  # noqa: E402
from so100_description.joints import JOINT_NAMES, joint_limits  # noqa: E402


@pytest.fixture(scope="module")
def scene():
    cfg = SceneConfig()
    model, names = build_scene(cfg)
    return model, names, cfg


@pytest.fixture()
def sim(scene):
    model, names, cfg = scene
    return ArmSim(model, names, cfg, task="lift", seed=3)


def run_until(sim: ArmSim, seconds: float) -> None:
    sim.step(int(round(seconds / sim.timestep)))


def test_scene_has_the_arm_objects_cameras_and_fast_physics(scene):
    model, names, _ = scene
    assert model.opt.timestep <= 1.0 / 500
    for joint in JOINT_NAMES:
        assert model.actuator(joint).trntype == mujoco.mjtTrn.mjTRN_JOINT
    for body in ("cube", "target", "tcp", "gripper_link"):
        assert model.body(body).id >= 0
    assert model.camera("front").bodyid == 0  # fixed in the world
    assert model.body(model.camera("wrist").bodyid).name == "gripper_link"  # moves with the gripper


def test_actuators_and_joints_respect_the_project_limits(scene):
    model, _, _ = scene
    limits = joint_limits("so101")
    for joint in JOINT_NAMES:
        lo, hi = model.actuator(joint).ctrlrange
        assert (lo, hi) == pytest.approx((limits[joint].lower, limits[joint].upper))
        assert model.actuator(joint).forcerange[1] == pytest.approx(limits[joint].effort)


def test_position_targets_are_reached_like_a_servo(sim):
    target = np.array([0.6, -0.4, 0.5, 0.3, -0.8, 0.9])
    sim.set_targets(target)
    run_until(sim, 1.5)
    np.testing.assert_allclose(sim.joint_positions(), target, atol=0.05)
    assert np.all(np.abs(sim.joint_velocities()) < 0.05)


def test_targets_outside_limits_are_clamped_and_nan_is_refused(sim):
    applied = sim.set_targets([10.0, -10.0, 0.0, 0.0, 0.0, 0.0])
    assert applied[0] == pytest.approx(sim.upper[0]) and applied[1] == pytest.approx(sim.lower[1])
    before = sim.targets()
    with pytest.raises(ValueError):
        sim.set_targets([np.nan, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError):
        sim.set_targets([0.0] * 5)
    np.testing.assert_array_equal(sim.targets(), before)
    run_until(sim, 2.0)
    assert np.all(sim.joint_positions() <= sim.upper + 0.02)
    assert np.all(sim.joint_positions() >= sim.lower - 0.02)


def test_reset_is_seeded_keeps_time_running_and_homes_the_arm(scene):
    model, names, cfg = scene
    a = ArmSim(model, names, cfg, seed=7)
    b = ArmSim(model, names, cfg, seed=7)
    c = ArmSim(model, names, cfg, seed=8)
    assert a.episode.cube_xy == b.episode.cube_xy and a.episode.target_xy == b.episode.target_xy
    assert a.episode.cube_xy != c.episode.cube_xy
    lo, hi = np.array(cfg.cube_xy_range)
    assert np.all(a.cube_position()[:2] >= lo) and np.all(a.cube_position()[:2] <= hi)
    assert np.linalg.norm(np.subtract(a.episode.cube_xy, a.episode.target_xy)) >= cfg.min_target_distance_m

    a.set_targets([0.5, 0.3, 0.2, 0.1, 0.0, 0.4])
    run_until(a, 0.5)
    t_before = a.time
    second = a.reset()
    assert a.time == pytest.approx(t_before)  # /clock must never go back
    assert second.cube_xy != a.episode.cube_xy or second.index == 2
    np.testing.assert_allclose(a.joint_positions(), cfg.home_positions, atol=1e-9)
    np.testing.assert_allclose(a.cube_position()[:2], second.cube_xy)
    b.reset()
    assert b.episode.cube_xy == second.cube_xy  # the layout sequence is reproducible


def test_cube_rests_on_the_table(sim):
    run_until(sim, 1.0)
    assert sim.cube_position()[2] == pytest.approx(sim.cfg.cube_size_m / 2, abs=0.003)
    assert not sim.task_success()


def test_lift_success_needs_the_cube_up_and_held(sim):
    tcp = sim.tcp_position()
    sim.set_cube_position([tcp[0] + 0.3, tcp[1], 0.2])  # high but far from the gripper
    assert not sim.task_success()
    sim.set_cube_position(tcp)
    assert tcp[2] > 0.1 and sim.task_success()


def test_place_success_needs_a_carry_and_the_cube_at_rest_in_the_target(scene):
    model, names, cfg = scene
    sim = ArmSim(model, names, cfg, task="place", seed=1)
    target = sim.target_position()
    half = cfg.cube_size_m / 2
    sim.set_cube_position([target[0], target[1], half])  # pushed there: never carried
    run_until(sim, 0.2)
    assert not sim.task_success()
    sim.set_cube_position([target[0], target[1], 0.1])  # carried ...
    run_until(sim, 1.0)  # ... and dropped into the target area
    assert sim.task_success()
    sim.set_cube_position([target[0] + cfg.target_size_m, target[1], half])
    run_until(sim, 0.2)
    assert not sim.task_success()


def test_periodic_fires_at_the_rate_in_sim_time_without_bursts():
    p = Periodic(30.0)
    times = [k * 0.002 for k in range(1, 1501)]  # 3 s of 500 Hz steps
    fired = [t for t in times if p.due(t)]
    assert len(fired) in (89, 90, 91)
    assert np.max(np.diff(fired)) < 1 / 30 + 0.0021
    late = Periodic(10.0)
    assert late.due(0.0) and late.due(5.0) and not late.due(5.05)  # a jump fires once


def test_pacer_holds_the_target_rtf_and_never_sprints_after_a_stall():
    wall = [0.0]
    slept: list[float] = []

    def sleep(dt):
        slept.append(dt)
        wall[0] += dt

    pacer = Pacer(0.5, wall=lambda: wall[0], sleep=sleep)
    pacer.wait(0.0)
    pacer.wait(0.1)  # 0.1 s of sim at RTF 0.5 = 0.2 s of wall
    assert wall[0] == pytest.approx(0.2)
    wall[0] += 5.0  # a stall (slow rendering)
    slept.clear()
    pacer.wait(0.2)
    pacer.wait(0.3)
    assert slept == [pytest.approx(0.2)]  # re-anchored: paced from the stall, no catch-up
    assert (pacer.steps, pacer.late_steps) == (3, 1)  # the stall is the one missed deadline


def test_pacer_counts_steps_later_than_its_threshold_as_missed():
    wall = [0.0]
    pacer = Pacer(1.0, wall=lambda: wall[0], sleep=lambda dt: None, late_s=0.05)
    pacer.wait(0.0)
    for step, lag in enumerate((0.0, 0.04, 0.06, 0.0), start=1):
        wall[0] = step * 0.01 + lag
        pacer.wait(step * 0.01)
    assert (pacer.steps, pacer.late_steps) == (4, 1)  # 40 ms behind is on time, 60 ms is late


def test_mesh_simplification_keeps_the_shape():
    # A finely tessellated unit square: clustering merges vertices but keeps the extent.
    n = 50
    xs, ys = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n))
    verts = np.c_[xs.ravel(), ys.ravel(), np.zeros(n * n)]
    idx = np.arange(n * n).reshape(n, n)
    faces = np.r_[np.c_[idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[:-1, 1:].ravel()],
                  np.c_[idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()]]
    v2, f2 = cluster_vertices(verts, faces, 0.1)
    assert 0 < len(f2) < len(faces) / 10
    assert v2.min(axis=0)[:2] == pytest.approx([0, 0], abs=0.05)
    assert v2.max(axis=0)[:2] == pytest.approx([1, 1], abs=0.05)


def test_look_at_points_the_camera_minus_z_at_the_target():
    pos, target = np.array([1.0, 0.5, 0.5]), np.array([0.0, 0.0, 0.0])
    x, y = np.reshape(look_at_xyaxes(pos, target), (2, 3))
    z = np.cross(x, y)
    np.testing.assert_allclose(-z, (target - pos) / np.linalg.norm(target - pos), atol=1e-9)
    assert y[2] > 0  # image up is world up


def test_cameras_render_the_scene(scene):
    from so100_bringup.sim.render import CameraRenderer

    model, names, cfg = scene
    sim = ArmSim(model, names, cfg, seed=0)
    renderer = CameraRenderer(model, ["front", "wrist"], 320, 240)
    try:
        front = renderer.render(sim.data, "front")
        wrist = renderer.render(sim.data, "wrist")
        assert front.shape == (240, 320, 3) and front.dtype == np.uint8
        def red_pixels(img):
            return int(((img[..., 0] > 150) & (img[..., 1] < 80) & (img[..., 2] < 80)).sum())

        assert red_pixels(front) > 20  # the red cube is in the front view
        sim.set_cube_position([sim.cfg.cube_xy_range[0][0], 0.0, -0.5])  # under the table
        assert red_pixels(renderer.render(sim.data, "front")) < red_pixels(front) / 4
        assert wrist.std() > 5  # not a blank frame
        k = renderer.intrinsics["front"]
        assert k.cx == pytest.approx(159.5) and k.fx == pytest.approx(k.fy) and k.fx > 0
    finally:
        renderer.close()


def test_sim_yaml_documents_every_node_parameter_with_valid_defaults():
    import yaml

    from so100_bringup.sim.node import PARAMS
    from so100_description.paths import config_path

    values = yaml.safe_load(config_path("sim.yaml").read_text())["mujoco_sim"]["ros__parameters"]
    assert set(values) == set(PARAMS.names())
    for param in PARAMS:
        assert param.description
        assert type(values[param.name]) is type(param.default), param.name  # ROS refuses 500 for a double
    SceneConfig(variant=values["variant"], arm_source=values["arm_source"],
                physics_rate_hz=values["physics_rate_hz"], home_positions=tuple(values["home_positions"]))
