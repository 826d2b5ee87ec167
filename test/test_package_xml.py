"""package.xml against ROS 2 Jazzy: every dependency is a rosdep key that Jazzy resolves, and every
plugin the robot description and configs name comes from a package that package.xml depends on.

`rosdep install --from-paths . --ignore-src` on a full ROS machine fails on the first unknown key,
so a package that leaves the distribution (topic_based_ros2_control did, in October 2025) stops
the whole install. The keys below were checked against ros/rosdistro (commit 8468e88, August
2026): jazzy/distribution.yaml for ROS packages, rosdep/python.yaml for the python3-* keys.
A new dependency needs the same check before it goes into both lists.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from so100_description import HARDWARE, robot_description

REPO = Path(__file__).resolve().parent.parent

# Released into Jazzy (jazzy/distribution.yaml: a repository's release.packages).
JAZZY_PACKAGES = frozenset({
    "ament_index_python", "builtin_interfaces", "controller_manager", "cv_bridge", "control_msgs",
    "diagnostic_msgs", "geometry_msgs", "gz_ros2_control", "hardware_interface",
    "joint_state_broadcaster", "joint_state_publisher", "joint_state_topic_hardware_interface",
    "joint_trajectory_controller", "launch", "launch_ros", "moveit_configs_utils",
    "moveit_kinematics", "moveit_planners_ompl", "moveit_ros_move_group", "moveit_ros_visualization",
    "moveit_simple_controller_manager", "pick_ik", "rclpy", "robot_state_publisher",
    "ros2_controllers", "ros_gz_bridge", "ros_gz_sim", "rosgraph_msgs", "rviz2", "sensor_msgs",
    "std_msgs", "std_srvs", "tf2_ros", "trajectory_msgs", "xacro",
})
# rosdep/python.yaml keys with an Ubuntu Noble definition (a "-pip" key would be listed here too).
ROSDEP_KEYS = frozenset({"python3-numpy", "python3-pytest", "python3-serial", "python3-yaml"})
# Keys that left Jazzy, and what replaced them.
REMOVED = {"topic_based_ros2_control": "joint_state_topic_hardware_interface (same parameters; "
                                       "plugin joint_state_topic_hardware_interface/JointStateTopicSystem)"}

# Plugin prefixes that are not the name of the package exporting them.
PLUGIN_PACKAGE = {
    "mock_components": "hardware_interface",  # ros2_control's mock hardware lives in hardware_interface
    "ompl_interface": "moveit_planners_ompl",
    "gz_ros2_control-system": "gz_ros2_control",  # the Gazebo system plugin's library file name
}


def package_xml_dependencies() -> dict[str, str]:
    """key -> tag (exec_depend, test_depend, ...) of every dependency in package.xml."""
    root = ET.parse(REPO / "package.xml").getroot()
    return {e.text.strip(): e.tag for e in root if e.tag.endswith("depend") and e.text}


def plugin_package(plugin: str) -> str:
    prefix = plugin.split("/")[0]
    return PLUGIN_PACKAGE.get(prefix, prefix)


def plugins_named_by_the_robot() -> dict[str, str]:
    """plugin -> where it is named: the URDF's ros2_control hardware for every `hardware`, the
    Gazebo system plugin, the controller types, MoveIt's IK solver, planner and controller manager."""
    out: dict[str, str] = {}
    for hardware in HARDWARE:
        root = ET.fromstring(robot_description("so101", hardware))
        for plugin in root.iter("plugin"):
            name = plugin.get("filename") or (plugin.text or "").strip()
            out[name] = f"URDF, hardware:={hardware}"
    controllers = yaml.safe_load((REPO / "config" / "controllers.yaml").read_text())
    for name, spec in controllers["controller_manager"]["ros__parameters"].items():
        if isinstance(spec, dict) and "type" in spec:
            out[spec["type"]] = f"config/controllers.yaml: {name}"
    moveit = REPO / "so100_description" / "moveit"
    for group, spec in yaml.safe_load((moveit / "kinematics.yaml").read_text()).items():
        out[spec["kinematics_solver"]] = f"kinematics.yaml: {group}"
    for planner in yaml.safe_load((moveit / "ompl_planning.yaml").read_text())["planning_plugins"]:
        out[planner] = "ompl_planning.yaml"
    manager = yaml.safe_load((moveit / "moveit_controllers.yaml").read_text())["moveit_controller_manager"]
    out[manager] = "moveit_controllers.yaml"
    return out


def unknown_keys(dependencies: dict[str, str]) -> list[str]:
    out = []
    for key, tag in dependencies.items():
        if key in REMOVED:
            out.append(f"<{tag}>{key}</{tag}> left Jazzy: use {REMOVED[key]}")
        elif key not in JAZZY_PACKAGES | ROSDEP_KEYS:
            out.append(f"<{tag}>{key}</{tag}>: not a known Jazzy rosdep key; check it in rosdistro's "
                       "jazzy/distribution.yaml or rosdep/*.yaml, then add it to test_package_xml.py")
    return out


def test_every_dependency_is_a_jazzy_rosdep_key():
    problems = unknown_keys(package_xml_dependencies())
    assert not problems, "\n".join(problems)


def test_the_check_names_the_successor_of_a_removed_key():
    problems = unknown_keys({"topic_based_ros2_control": "exec_depend", "rclpy": "exec_depend",
                             "python3-lerobot": "exec_depend"})
    assert len(problems) == 2
    assert "left Jazzy: use joint_state_topic_hardware_interface" in problems[0]
    assert "python3-lerobot" in problems[1]


def test_every_plugin_comes_from_a_declared_package():
    deps = package_xml_dependencies()
    plugins = plugins_named_by_the_robot()
    missing = [f"{plugin} ({where}): package {plugin_package(plugin)} is not in package.xml"
               for plugin, where in plugins.items() if plugin_package(plugin) not in deps]
    assert not missing, "\n".join(missing)
    # the topic hardware by its current name, not the deprecated alias the successor still loads
    assert "joint_state_topic_hardware_interface/JointStateTopicSystem" in plugins
    assert not [p for p in plugins if p.startswith("topic_based_ros2_control/")]


@pytest.mark.parametrize("plugin, package", [
    ("joint_state_topic_hardware_interface/JointStateTopicSystem", "joint_state_topic_hardware_interface"),
    ("mock_components/GenericSystem", "hardware_interface"),
    ("gz_ros2_control-system", "gz_ros2_control"),
    ("pick_ik/PickIkPlugin", "pick_ik"),
])
def test_plugin_package_names_the_exporting_package(plugin, package):
    assert plugin_package(plugin) == package
