"""config/controllers.yaml: parses, and its controllers name exactly the URDF's joints."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import yaml

from so100_description import ARM_JOINTS, GRIPPER_JOINTS, VARIANTS, robot_description
from so100_description.paths import config_path


@pytest.fixture(scope="module")
def controllers() -> dict:
    return yaml.safe_load(config_path("controllers.yaml").read_text())


def params(controllers: dict, name: str) -> dict:
    return controllers[name]["ros__parameters"]


def test_controller_manager_declares_the_three_controllers(controllers):
    cm = params(controllers, "controller_manager")
    assert 50 <= cm["update_rate"] <= 500
    assert cm["joint_state_broadcaster"]["type"] == "joint_state_broadcaster/JointStateBroadcaster"
    # the policy node publishes arm_controller/joint_trajectory and gripper_controller/joint_trajectory
    assert cm["arm_controller"]["type"] == "joint_trajectory_controller/JointTrajectoryController"
    assert cm["gripper_controller"]["type"] == "joint_trajectory_controller/JointTrajectoryController"


@pytest.mark.parametrize("variant", VARIANTS)
def test_controllers_name_exactly_the_urdf_joints(controllers, variant):
    root = ET.fromstring(robot_description(variant, "mock"))
    urdf_joints = [j.get("name") for j in root.findall("joint") if j.get("type") != "fixed"]
    arm = params(controllers, "arm_controller")["joints"]
    gripper = params(controllers, "gripper_controller")["joints"]
    assert arm == list(ARM_JOINTS) and gripper == list(GRIPPER_JOINTS)
    assert sorted(arm + gripper) == sorted(urdf_joints)  # every joint, each exactly once
    assert params(controllers, "joint_state_broadcaster")["joints"] == urdf_joints


def test_controller_interfaces_exist_in_the_ros2_control_block(controllers):
    root = ET.fromstring(robot_description("so101", "real"))
    for joint in root.findall("ros2_control/joint"):
        commands = {c.get("name") for c in joint.findall("command_interface")}
        states = {s.get("name") for s in joint.findall("state_interface")}
        for name in ("arm_controller", "gripper_controller"):
            p = params(controllers, name)
            if joint.get("name") in p["joints"]:
                assert set(p["command_interfaces"]) <= commands
                assert set(p["state_interfaces"]) <= states


def test_trajectory_constraints_are_sane(controllers):
    for name in ("arm_controller", "gripper_controller"):
        p = params(controllers, name)
        constraints = p["constraints"]
        assert constraints["goal_time"] > 0.0
        assert constraints["stopped_velocity_tolerance"] > 0.0
        for joint in p["joints"]:
            assert constraints[joint]["trajectory"] >= 0.0 and constraints[joint]["goal"] >= 0.0
