"""Gazebo pieces that can be checked without Gazebo: the gz URDF, the world SDF and the
ros_gz_bridge config (gz sim itself runs only on a ROS + Gazebo machine; docs/launch.md)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from so100_bringup import launch_plan as lp
from so100_description import robot_description
from so100_description.joints import JOINT_NAMES, VARIANTS

REPO = Path(__file__).resolve().parent.parent
WORLD = REPO / lp.GAZEBO_WORLD
BRIDGE = REPO / lp.GAZEBO_BRIDGE
# ROS message type <-> gz message type pairs that ros_gz_bridge converts
BRIDGEABLE = {"rosgraph_msgs/msg/Clock": "gz.msgs.Clock", "sensor_msgs/msg/Image": "gz.msgs.Image",
              "sensor_msgs/msg/CameraInfo": "gz.msgs.CameraInfo"}


def _bridge() -> list[dict]:
    return yaml.safe_load(BRIDGE.read_text())


def _resolve(topic: str, namespace: str = "") -> str:
    return topic if topic.startswith("/") else f"/{namespace + '/' if namespace else ''}{topic}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_gazebo_urdf_references_gz_ros2_control(variant):
    urdf = lp.robot_description_for(lp.parse_args({"hardware": "gazebo", "variant": variant}))
    root = ET.fromstring(urdf)
    hardware = root.find("ros2_control/hardware/plugin")
    assert hardware.text.strip() == "gz_ros2_control/GazeboSimSystem"
    joints = {j.get("name") for j in root.findall("ros2_control/joint")}
    assert joints == set(JOINT_NAMES)
    plugins = [p for g in root.findall("gazebo") for p in g.findall("plugin")]
    system = [p for p in plugins if p.get("filename") == "gz_ros2_control-system"]
    assert system and system[0].get("name") == "gz_ros2_control::GazeboSimROS2ControlPlugin"
    params = Path(system[0].find("parameters").text.strip())
    assert params.is_file() and "controller_manager" in yaml.safe_load(params.read_text())
    # fixed to the world (otherwise Gazebo lets the arm fall over)
    assert any(j.find("parent").get("link") == "world" for j in root.findall("joint"))
    # plain description: same expansion without the launch plan's camera
    assert "gz_ros2_control-system" in robot_description(variant, "gazebo")


def test_namespaced_gazebo_controller_manager():
    """Spawners of a namespaced bringup talk to /<ns>/controller_manager: the gz_ros2_control
    plugin must create it there."""
    plan = lp.bringup_plan(lp.parse_args({"hardware": "gazebo", "namespace": "left"}))
    root = ET.fromstring(plan.nodes[0].parameters[0]["robot_description"])
    plugin = next(p for g in root.findall("gazebo") for p in g.findall("plugin")
                  if p.get("filename") == "gz_ros2_control-system")
    assert plugin.find("ros/namespace").text == "/left"
    params = yaml.safe_load(Path(plugin.find("parameters").text.strip()).read_text())
    assert "/left/controller_manager" in params
    assert all("/left/controller_manager" in n.arguments for n in plan.nodes if n.executable == "spawner")


def test_wrist_camera_sensor_matches_the_bridge():
    urdf = lp.robot_description_for(lp.parse_args({"hardware": "gazebo"}))
    root = ET.fromstring(urdf)
    sensors = [s for g in root.findall("gazebo") for s in g.findall("sensor")]
    wrist = next(s for s in sensors if s.get("name") == "wrist_camera")
    link = [g.get("reference") for g in root.findall("gazebo") if g.find("sensor") is not None][0]
    assert link in {l.get("name") for l in root.findall("link")}
    gz_topics = {e["gz_topic_name"] for e in _bridge()}
    assert wrist.find("topic").text in gz_topics
    assert wrist.find("camera/camera_info_topic").text in gz_topics


def test_bridge_config_parses_and_is_complete():
    entries = _bridge()
    assert isinstance(entries, list) and entries
    for entry in entries:
        assert set(entry) >= {"ros_topic_name", "gz_topic_name", "ros_type_name", "gz_type_name", "direction"}
        assert BRIDGEABLE[entry["ros_type_name"]] == entry["gz_type_name"]
        assert entry["direction"] == "GZ_TO_ROS"
    ros_topics = {_resolve(e["ros_topic_name"]) for e in entries}
    assert "/clock" in ros_topics
    for name in ("front", "wrist"):
        assert {f"/camera/{name}/image_raw", f"/camera/{name}/camera_info"} <= ros_topics


def test_bridge_names_the_topics_the_policy_node_uses():
    """The policy's camera topics (config/policy.yaml, or the node's /camera/<name>/image_raw
    default for the sim's front and wrist cameras) are all bridged, inside a namespace too."""
    policy_yaml = REPO / "config" / lp.POLICY_PARAMS
    cameras = ""
    if policy_yaml.is_file():
        section = yaml.safe_load(policy_yaml.read_text()).get(lp.POLICY_NODE, {})
        cameras = section.get("ros__parameters", {}).get("cameras", "") or ""
    wanted = []
    for entry in [c.strip() for c in cameras.split(",") if c.strip()] or ["front", "wrist"]:
        name, _, topic = entry.partition("=")
        wanted.append(topic.strip() or f"camera/{name.strip()}/image_raw")
    for topic in wanted:
        if topic.startswith("/"):  # absolute: only meaningful without a namespace
            assert topic in {_resolve(e["ros_topic_name"]) for e in _bridge()}, topic
            continue
        for ns in ("", "left"):
            assert _resolve(topic, ns) in {_resolve(e["ros_topic_name"], ns) for e in _bridge()}, (topic, ns)
    assert all(_resolve(e["ros_topic_name"], "left") == "/clock" for e in _bridge()
               if e["ros_type_name"] == "rosgraph_msgs/msg/Clock")  # the clock stays global


def test_world_sdf_is_well_formed_and_has_the_scene():
    root = ET.parse(WORLD).getroot()
    assert root.tag == "sdf" and root.get("version")
    world = root.find("world")
    models = {m.get("name"): m for m in world.findall("model")}
    assert {"table", "cube", "target_area", "front_camera", "ground_plane"} <= set(models)
    plugins = {p.get("name") for p in world.findall("plugin")}
    assert {"gz::sim::systems::Physics", "gz::sim::systems::Sensors",
            "gz::sim::systems::SceneBroadcaster", "gz::sim::systems::UserCommands"} <= plugins
    cube = models["cube"]
    assert cube.find("static") is None or cube.find("static").text.strip() == "false"
    assert float(cube.find("link/inertial/mass").text) > 0
    sensor = models["front_camera"].find("link/sensor")
    assert sensor.get("type") == "camera"
    gz_topics = {e["gz_topic_name"] for e in _bridge()}
    assert sensor.find("topic").text in gz_topics
    assert sensor.find("camera/camera_info_topic").text in gz_topics
    # the table top is the z = 0 plane the arm stands on
    table = models["table"]
    z = float(table.find("pose").text.split()[2])
    thickness = float(table.find("link/collision/geometry/box/size").text.split()[2])
    assert abs(z + thickness / 2) < 1e-9


def test_front_camera_is_where_the_mujoco_scene_has_it():
    import math

    from so100_bringup.sim.scene import SceneConfig

    cfg = SceneConfig()
    camera = {m.get("name"): m for m in ET.parse(WORLD).getroot().find("world").findall("model")}["front_camera"]
    x, y, z, roll, pitch, yaw = (float(v) for v in camera.find("pose").text.split())
    assert (x, y, z) == pytest.approx(cfg.front_camera_pos, abs=1e-6)
    # A Gazebo camera looks along its link's +x: yaw about z, then pitch (positive = down).
    view = (math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), -math.sin(pitch))
    wanted = [t - p for t, p in zip(cfg.front_camera_target, cfg.front_camera_pos)]
    norm = math.sqrt(sum(w * w for w in wanted))
    assert roll == 0 and view == pytest.approx([w / norm for w in wanted], abs=1e-3)
    hfov = float(camera.find("link/sensor/camera/horizontal_fov").text)
    vfov = 2 * math.atan(math.tan(hfov / 2) * 240 / 320)
    assert math.degrees(vfov) == pytest.approx(cfg.front_camera_fovy_deg, abs=0.05)


def test_world_loads_in_sdformat():
    sdformat = pytest.importorskip("sdformat14", reason="sdformat Python bindings (Gazebo Harmonic) not installed")
    errors = sdformat.Root().load(str(WORLD))
    assert not errors, errors
