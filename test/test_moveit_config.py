"""MoveIt configuration: SRDF against the URDF and sampled collisions, limits generated from the
single limits file, kinematics/OMPL/controllers consistent with the groups and controllers.yaml."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import yaml

from so100_description import robot_description
from so100_description.joints import ARM_JOINTS, JOINT_NAMES, VARIANTS, joint_limits
from so100_description.moveit import config as mc
from so100_description.moveit import generate
from so100_description.paths import config_path


def _srdf(variant: str) -> ET.Element:
    return ET.fromstring(mc.srdf_file(variant).read_text())


def _urdf_links_joints(variant: str) -> tuple[set[str], set[str]]:
    root = ET.fromstring(robot_description(variant, "mock"))
    return ({l.get("name") for l in root.findall("link")}, {j.get("name") for j in root.findall("joint")})


@pytest.mark.parametrize("variant", VARIANTS)
def test_srdf_groups_and_named_poses(variant):
    srdf = _srdf(variant)
    links, joints = _urdf_links_joints(variant)
    assert srdf.get("name") == variant
    groups = {g.get("name"): g for g in srdf.findall("group")}
    assert set(groups) == {"arm", "gripper"}
    chain = groups["arm"].find("chain")
    assert chain.get("base_link") == "base_link" and chain.get("tip_link") == "tcp"
    assert {chain.get("base_link"), chain.get("tip_link")} <= links
    assert {j.get("name") for j in groups["gripper"].findall("joint")} == {"gripper"}
    assert {l.get("name") for l in groups["gripper"].findall("link")} <= links
    states = {(s.get("name"), s.get("group")): {j.get("name"): float(j.get("value")) for j in s.findall("joint")}
              for s in srdf.findall("group_state")}
    assert {"home", "ready", "rest"} <= {n for n, g in states if g == "arm"}
    limits = joint_limits(variant)
    for (name, group), values in states.items():
        expected = set(ARM_JOINTS) if group == "arm" else {"gripper"}
        assert set(values) == expected, name
        for joint, value in values.items():
            assert limits[joint].lower <= value <= limits[joint].upper, (name, joint, value)
    ee = srdf.find("end_effector")
    assert ee.get("parent_link") in links and ee.get("group") == "gripper" and ee.get("parent_group") == "arm"
    for pair in srdf.findall("disable_collisions"):
        assert {pair.get("link1"), pair.get("link2")} <= links
        assert pair.get("reason") in ("Adjacent", "Default", "Always", "Never")


@pytest.mark.parametrize("variant", VARIANTS)
def test_disabled_collisions_agree_with_fresh_samples(variant):
    """Re-check the committed SRDF on new random configurations (another seed): a pair disabled
    as Never never collides, every pair that does collide is still checked unless adjacent or
    always/default-colliding, parent/child links are disabled, named poses are collision-free."""
    pin = pytest.importorskip("pinocchio", reason="pinocchio (PyPI `pin`) not installed")
    cm = generate.load_collision_model(variant)
    fractions, at_zero = generate.collision_fractions(variant, samples=120, seed=1234, cm=cm)
    disabled = {frozenset((p.get("link1"), p.get("link2"))): p.get("reason")
                for p in _srdf(variant).findall("disable_collisions")}
    for pair in cm.adjacent:
        if pair <= set(cm.links):
            assert disabled.get(pair) == "Adjacent", sorted(pair)
    for pair, reason in disabled.items():
        if reason == "Never":
            assert fractions.get(pair, 0.0) == 0.0, f"{sorted(pair)} disabled as Never but collides"
    colliding = {p for p, f in fractions.items() if f > 0.0}
    assert colliding - set(disabled), "sampling found no pair MoveIt still has to check"
    gdata, data = pin.GeometryData(cm.geom), cm.model.createData()
    for name, pose in generate.NAMED_POSES.items():
        q = generate._configuration(cm, {**pose, "gripper": 0.3})
        hits = generate._colliding_link_pairs(cm, q, gdata, data) - set(disabled)
        assert not hits, f"named pose {name} in collision: {[sorted(h) for h in hits]}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_joint_limits_generated_from_the_single_source(variant):
    on_disk = yaml.safe_load(mc.joint_limits_file(variant).read_text())
    assert on_disk == generate.moveit_joint_limits(variant), \
        "moveit joint_limits.yaml is stale: run python -m so100_description.moveit.generate"
    limits = joint_limits(variant)
    for joint in JOINT_NAMES:
        entry = on_disk["joint_limits"][joint]
        assert entry["has_acceleration_limits"] and entry["max_acceleration"] == limits[joint].acceleration > 0
        assert entry["has_velocity_limits"] and entry["max_velocity"] == limits[joint].velocity > 0


def test_kinematics_uses_pick_ik_for_the_arm_group():
    kin = yaml.safe_load(mc.KINEMATICS_FILE.read_text())
    groups = {g.get("name") for g in _srdf("so101").findall("group")}
    assert set(kin) <= groups
    assert kin["arm"]["kinematics_solver"] == "pick_ik/PickIkPlugin"
    assert 0.0 < kin["arm"]["rotation_scale"] < 1.0  # orientation weighs less than position (5 DOF)
    assert kin["arm"]["position_threshold"] <= 0.001


def test_ompl_groups_and_planner_configs_exist():
    ompl = yaml.safe_load(mc.OMPL_FILE.read_text())
    groups = {g.get("name") for g in _srdf("so101").findall("group")}
    for group in groups:
        assert group in ompl
        for planner in ompl[group]["planner_configs"]:
            assert planner in ompl["planner_configs"]
        assert ompl[group]["default_planner_config"] in ompl["planner_configs"]


def test_moveit_controllers_match_ros2_control_controllers():
    moveit = yaml.safe_load(mc.CONTROLLERS_FILE.read_text())
    controllers = yaml.safe_load(config_path("controllers.yaml").read_text())
    manager = moveit["moveit_simple_controller_manager"]
    for name in manager["controller_names"]:
        assert manager[name]["type"] == "FollowJointTrajectory"
        assert manager[name]["joints"] == controllers[name]["ros__parameters"]["joints"], name
        assert controllers["controller_manager"]["ros__parameters"][name]["type"] == \
            "joint_trajectory_controller/JointTrajectoryController"


@pytest.mark.parametrize("variant", VARIANTS)
def test_move_group_params_build(variant):
    params = mc.move_group_params(variant, robot_description="<robot name='x'/>", distro="jazzy")
    assert params["robot_description_semantic"].lstrip().startswith("<?xml")
    assert params["ompl"]["planning_plugins"] == ["ompl_interface/OMPLPlanner"]
    assert params["moveit_controller_manager"].startswith("moveit_simple_controller_manager")
    humble = mc.ompl_pipeline("humble")
    assert humble["planning_plugin"] == "ompl_interface/OMPLPlanner"
    assert isinstance(humble["request_adapters"], str)
    with pytest.raises(ValueError):
        mc.srdf_file("so102")


def test_move_group_loads_the_config():
    pytest.importorskip("moveit.planning", reason="MoveIt 2 (moveit_py) is not installable here")
    from moveit.planning import MoveItPy

    moveit = MoveItPy(node_name="so100_moveit_test", config_dict=mc.moveit_py_params("so101"))
    model = moveit.get_robot_model()
    assert model.get_joint_model_group("arm").active_joint_model_names == list(ARM_JOINTS)
