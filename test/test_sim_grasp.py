"""The sim cube can be grasped: jaw pads carry the cube contacts, the scripted expert lifts and
places it, a held cube stays put (plain Python, no ROS, no rendering)."""
from __future__ import annotations

import numpy as np
import pytest

mujoco = pytest.importorskip("mujoco", reason="mujoco not installed (make setup installs the sim extra)")
pytest.importorskip("pinocchio", reason="pin (pinocchio) not installed (make setup)")

from so100_bringup.control.follower import TrajectoryFollower  # noqa: E402
from so100_bringup.sim.physics import ArmSim  # noqa: E402
from so100_bringup.sim.scene import SceneConfig, build_scene  # noqa: E402
from so100_bringup.teleop.expert import PickPlaceExpert, plan_duration  # noqa: E402

SEEDS = (0, 1, 2, 3)


@pytest.fixture(scope="module")
def scene():
    cfg = SceneConfig()
    model, names = build_scene(cfg)
    return model, names, cfg


@pytest.fixture(scope="module")
def scene_without_pads():
    cfg = SceneConfig(jaw_pads=False)
    model, names = build_scene(cfg)
    return model, names, cfg


@pytest.fixture(scope="module")
def expert():
    return PickPlaceExpert()


def start_plan(sim: ArmSim, expert: PickPlaceExpert):
    names = list(sim.joint_names)
    points = expert.plan(sim.joint_positions(), sim.cube_position(), sim.target_position()[:2])
    follower = TrajectoryFollower(names, sim.targets(), sim.lower, sim.upper)
    follower.set_trajectory(names, points, sim.time, sim.time)
    return follower, points, sim.time


def run(sim: ArmSim, follower: TrajectoryFollower, until: float, watch=None) -> bool:
    """Follow the plan until sim time `until`; True if `watch()` held at any step."""
    seen = False
    while sim.time < until:
        sim.set_targets(follower.sample(sim.time)[0])
        sim.step()
        seen = seen or bool(watch and watch())
    return seen


def cube_in_gripper(sim: ArmSim, model) -> np.ndarray:
    gripper = model.body("gripper_link").id
    rot = sim.data.xmat[gripper].reshape(3, 3)
    return rot.T @ (sim.cube_position() - sim.data.xpos[gripper])


def cube_contacts(model, data) -> set[str]:
    """Names (or '<body>:mesh') of the geoms touching the cube."""
    cube = model.geom("cube").id
    out = set()
    for c in data.contact[:data.ncon]:
        if cube in (c.geom1, c.geom2):
            other = c.geom2 if c.geom1 == cube else c.geom1
            out.add(model.geom(other).name or f"{model.body(model.geom_bodyid[other]).name}:mesh")
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_expert_lifts_and_places_the_cube(scene, expert, seed):
    model, names, cfg = scene
    lift = ArmSim(model, names, cfg, task="lift", seed=seed)
    follower, points, start = start_plan(lift, expert)
    assert run(lift, follower, start + plan_duration(points), watch=lift.task_success), \
        f"seed {seed}: cube never lifted 5 cm (cube at {lift.cube_position().round(3)})"

    place = ArmSim(model, names, cfg, task="place", seed=seed)
    follower, points, start = start_plan(place, expert)
    run(place, follower, start + plan_duration(points) + 1.0)
    assert place.task_success(), (f"seed {seed}: cube at {place.cube_position().round(3)}, "
                                  f"target at {place.target_position()[:2].round(3)}")


def pad_angle(model) -> float:
    return float(model.numeric("jaw_pad_angle").data[0])


def test_only_the_pads_touch_a_held_cube_and_it_does_not_slip(scene, expert):
    model, names, cfg = scene
    sim = ArmSim(model, names, cfg, task="lift", seed=5)
    follower, points, start = start_plan(sim, expert)
    run(sim, follower, start + points[4].time_from_start + 0.3)  # closed, lifted, settled
    assert sim.task_success()
    assert cube_contacts(model, sim.data) == {"fixed_jaw_pad", "moving_jaw_pad"}
    # the jaws stall where the pads were fitted to be parallel on the cube (stiff contacts)
    assert sim.joint_positions()[5] == pytest.approx(pad_angle(model), abs=0.03)

    held = cube_in_gripper(sim, model)
    sim.step(int(round(2.0 / sim.timestep)))  # hold still
    assert np.linalg.norm(cube_in_gripper(sim, model) - held) < 0.001
    base = sim.targets()  # shake pan and wrist: +-0.3 rad at 1.5-2 Hz for 1 s
    for k in range(int(round(1.0 / sim.timestep))):
        phase = 2 * np.pi * k * sim.timestep
        shaken = base.copy()
        shaken[0] += 0.3 * np.sin(1.5 * phase)
        shaken[3] += 0.3 * np.sin(2.0 * phase)
        sim.set_targets(shaken)
        sim.step()
    assert sim.task_success() and np.linalg.norm(cube_in_gripper(sim, model) - held) < 0.005


def test_pads_close_parallel_one_cube_apart(scene):
    model, names, cfg = scene
    data = mujoco.MjData(model)
    data.qpos[model.joint("gripper").qposadr[0]] = pad_angle(model)
    mujoco.mj_kinematics(model, data)
    fixed, moving = model.geom("fixed_jaw_pad").id, model.geom("moving_jaw_pad").id
    rf, rm = data.geom_xmat[fixed].reshape(3, 3), data.geom_xmat[moving].reshape(3, 3)
    assert abs(rf[:, 0] @ rm[:, 0]) > np.cos(np.radians(0.5))  # face normals parallel
    # inner faces: the fixed pad's +x face, the moving pad's -x face, one cube edge apart
    face_f = data.geom_xpos[fixed] + rf[:, 0] * model.geom_size[fixed][0]
    face_m = data.geom_xpos[moving] - rm[:, 0] * model.geom_size[moving][0]
    assert (face_m - face_f) @ rf[:, 0] == pytest.approx(cfg.cube_size_m, abs=2e-4)
    # both pads face each other across the tcp, near its height
    tcp = data.xpos[model.body("tcp").id]
    assert (tcp - face_f) @ rf[:, 0] > 0 and (face_m - tcp) @ rf[:, 0] > 0
    for g in (fixed, moving):
        assert np.linalg.norm(data.geom_xpos[g] - tcp) < 0.03
        assert model.geom_group[g] == 3  # not drawn by the cameras


def jaw_pose_contacts(model, names, cfg, expert) -> tuple[set[str], set[str]]:
    """Jaws pointing down with the tcp 5 mm into the table: which jaw geoms touch the table; then a
    cube put into the root of the fixed jaw (inside its mesh, clear of the pads): what it touches."""
    from so100_description.ik import IKTarget

    sim = ArmSim(model, names, cfg, seed=0)
    q = expert.ik.solve(IKTarget(position=np.array([0.22, 0.0, -0.005]), approach=np.array([0.0, 0.0, -1.0])),
                        np.zeros(5), warn=False).q
    sim.data.qpos[[model.joint(j).qposadr[0] for j in sim.joint_names[:5]]] = q
    sim.set_cube_position((0.5, 0.3, cfg.cube_size_m / 2))  # out of the way; runs the collision
    table = model.geom("table").id
    jaw = {model.body(b).id for b in (names.gripper_body, names.moving_jaw_body)}
    on_table = set()
    for c in sim.data.contact[:sim.data.ncon]:
        other = c.geom2 if c.geom1 == table else c.geom1 if c.geom2 == table else -1
        if other >= 0 and model.geom_bodyid[other] in jaw:
            on_table.add(model.geom(other).name or f"{model.body(model.geom_bodyid[other]).name}:mesh")
    gripper = model.body(names.gripper_body).id
    inside = sim.data.xpos[gripper] + sim.data.xmat[gripper].reshape(3, 3) @ np.array([-0.02, 0.0, -0.05])
    sim.set_cube_position(inside)
    jaw_names = {model.geom(g).name or f"{model.body(model.geom_bodyid[g]).name}:mesh"
                 for g in range(model.ngeom) if model.geom_bodyid[g] in jaw}
    return on_table, cube_contacts(model, sim.data) & jaw_names


def test_jaw_meshes_touch_the_table_but_not_the_cube(scene, scene_without_pads, expert):
    model, names, cfg = scene
    on_table, cube_touches = jaw_pose_contacts(model, names, cfg, expert)
    assert any(n.endswith(":mesh") for n in on_table), on_table  # the jaws cannot enter the table
    assert cube_touches == set()

    # the old behaviour (jaw_pads=False): the mesh hulls touch that cube
    model_off, names_off, cfg_off = scene_without_pads
    assert mujoco.mj_name2id(model_off, mujoco.mjtObj.mjOBJ_GEOM, "fixed_jaw_pad") < 0
    _, cube_touches = jaw_pose_contacts(model_off, names_off, cfg_off, expert)
    assert "gripper_link:mesh" in cube_touches


def test_a_cube_the_jaws_cannot_hold_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot close on a 200 mm cube"):
        build_scene(SceneConfig(cube_size_m=0.2, mesh_cell_m=0.0))


def test_the_cameras_do_not_see_the_pads(scene, scene_without_pads):
    from so100_bringup.sim.render import CameraRenderer

    images = []
    for model, _, cfg in (scene, scene_without_pads):
        data = mujoco.MjData(model)
        data.qpos[model.joint("gripper").qposadr[0]] = 0.2  # jaws nearly closed, pads in view
        mujoco.mj_forward(model, data)
        renderer = CameraRenderer(model, ["wrist"], cfg.image_width, cfg.image_height)
        try:
            images.append(renderer.render(data, "wrist").copy())
        finally:
            renderer.close()
    assert images[0].std() > 0  # a real picture
    np.testing.assert_array_equal(images[0], images[1])
