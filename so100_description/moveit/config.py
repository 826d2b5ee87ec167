"""Parameters of MoveIt's move_group (and moveit_py) for the SO-100 / SO-101 (plain Python).

The same dictionary moveit_configs_utils' MoveItConfigsBuilder would assemble, built from the
files in this directory so launch files, the IK module and tests share one source without
needing MoveIt installed. Nested dicts are what launch_ros flattens into dotted parameters.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from so100_description.joints import VARIANTS

MOVEIT_DIR = Path(__file__).resolve().parent
KINEMATICS_FILE = MOVEIT_DIR / "kinematics.yaml"
OMPL_FILE = MOVEIT_DIR / "ompl_planning.yaml"
CONTROLLERS_FILE = MOVEIT_DIR / "moveit_controllers.yaml"


def srdf_file(variant: str) -> Path:
    _check_variant(variant)
    return MOVEIT_DIR / variant / f"{variant}.srdf"


def joint_limits_file(variant: str) -> Path:
    _check_variant(variant)
    return MOVEIT_DIR / variant / "joint_limits.yaml"


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown arm variant {variant!r}; expected one of {VARIANTS}")


def _load(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"MoveIt config file {path} is missing")
    return yaml.safe_load(path.read_text()) or {}


def robot_description_semantic(variant: str = "so101") -> str:
    return srdf_file(variant).read_text()


def ompl_pipeline(distro: str | None = None) -> dict[str, Any]:
    """The `ompl` pipeline namespace; Humble's MoveIt takes one plugin and space-separated adapters."""
    ompl = _load(OMPL_FILE)
    distro = distro or os.environ.get("ROS_DISTRO", "jazzy")
    if distro == "humble":
        ompl = copy.deepcopy(ompl)
        ompl["planning_plugin"] = ompl.pop("planning_plugins")[0]
        ompl.pop("response_adapters", None)
        ompl["request_adapters"] = " ".join([
            "default_planner_request_adapters/AddTimeOptimalParameterization",
            "default_planner_request_adapters/ResolveConstraintFrames",
            "default_planner_request_adapters/FixWorkspaceBounds",
            "default_planner_request_adapters/FixStartStateBounds",
            "default_planner_request_adapters/FixStartStateCollision",
            "default_planner_request_adapters/FixStartStatePathConstraints"])
    return ompl


def move_group_params(variant: str = "so101", robot_description: str | None = None,
                      use_sim_time: bool = False, distro: str | None = None) -> dict[str, Any]:
    """Everything move_group needs: URDF, SRDF, kinematics, limits, OMPL, controllers."""
    if robot_description is None:
        from so100_description import robot_description as make_urdf

        robot_description = make_urdf(variant, "mock")
    params: dict[str, Any] = {
        "robot_description": robot_description,
        "robot_description_semantic": robot_description_semantic(variant),
        "robot_description_kinematics": _load(KINEMATICS_FILE),
        "robot_description_planning": _load(joint_limits_file(variant)),
        "planning_pipelines": ["ompl"],
        "default_planning_pipeline": "ompl",
        "ompl": ompl_pipeline(distro),
        "publish_robot_description": True,
        "publish_robot_description_semantic": True,
        "publish_planning_scene": True,
        "publish_geometry_updates": True,
        "publish_state_updates": True,
        "publish_transforms_updates": True,
        "monitor_dynamics": False,
        "use_sim_time": bool(use_sim_time),
    }
    params.update(_load(CONTROLLERS_FILE))
    return params


def moveit_py_params(variant: str = "so101", robot_description: str | None = None,
                     use_sim_time: bool = False) -> dict[str, Any]:
    """move_group_params plus the options MoveItPy(config_dict=...) reads."""
    params = move_group_params(variant, robot_description, use_sim_time)
    params["planning_scene_monitor_options"] = {
        "name": "planning_scene_monitor",
        "robot_description": "robot_description",
        "joint_state_topic": "/joint_states",
        "attached_collision_object_topic": "/moveit_py/planning_scene_monitor",
        "publish_planning_scene_topic": "/moveit_py/publish_planning_scene",
        "monitored_planning_scene_topic": "/moveit_py/monitored_planning_scene",
        "wait_for_initial_state_timeout": 10.0,
    }
    params["planning_pipelines"] = {"pipeline_names": ["ompl"]}
    params["plan_request_params"] = {
        "planning_attempts": 1, "planning_pipeline": "ompl", "max_velocity_scaling_factor": 1.0,
        "max_acceleration_scaling_factor": 1.0}
    return params


def moveit_config_dict(variant: str = "so101", robot_description: str | None = None) -> dict[str, Any]:
    """What so100_description.moveit.ik.MoveItIK hands to MoveItPy."""
    return moveit_py_params(variant, robot_description)
