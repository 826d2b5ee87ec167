"""The parameter schemas of the suite's nodes, and the config files generated from them.

Every node declares its parameters once, as a module-level `PARAMS` schema
(`so100_common.params`); `config/<file>.yaml` is rendered from that schema, so the files list
every parameter with its default, description and allowed values and cannot drift from the code
(test/test_node_params.py checks it).

    python -m so100_bringup.node_params --write   # regenerate the config files from the schemas
    python -m so100_bringup.node_params --check   # exit 1 listing the files that differ

Change a default or a description in the node's module, then run --write.
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from so100_common.params import ParamSchema, render_yaml

REPO_CONFIG = Path(__file__).resolve().parent.parent / "config"  # the source tree's config/


@dataclass(frozen=True)
class NodeParams:
    """One node: the module holding its `PARAMS`, how to get its rclpy node class, and the config
    file generated from the schema (None: the node has no file; its launchers pass parameters)."""

    module: str
    node_class: str  # attribute of `module`: the Node subclass, or a function returning it
    config: str | None  # file name under config/
    key: str | None = None  # top-level YAML key; None = the schema's node name
    header: tuple[str, ...] = ()  # extra comment lines under the generated header

    @property
    def label(self) -> str:
        return self.config or self.module


REGISTRY: tuple[NodeParams, ...] = (
    NodeParams("vla_policy_node.node", "PolicyNode", "policy.yaml", header=(
        "`ros2 param describe /vla_policy_node <name>` shows the same descriptions and ranges on a running node.",
        "Radians on every topic; LeRobot units exist only inside the node.",
        "so100_demo, so100_evaluate and launch/policy.launch.py pass this file with --params-file.",
    )),
    NodeParams("so100_bringup.recorder.node", "RecorderNode", "recorder.yaml", header=(
        "Run: python -m so100_bringup.recorder.node --ros-args --params-file config/recorder.yaml -p root:=<dir>",
        "(so100_record_sim passes this file too.)",
    )),
    NodeParams("so100_bringup.driver_node", "So100Driver", "driver.yaml", key="/**/so100_driver", header=(
        "launch/real.launch.py passes this file and overrides port / calibration_file / variant / prefix / mode",
        "from launch arguments. docs/real_arm.md explains the behaviour behind each parameter.",
        "The key /**/so100_driver matches the node in any namespace.",
    )),
    NodeParams("so100_bringup.sim.node", "MujocoSimNode", "sim.yaml", header=(
        "launch/sim_mujoco.launch.py, so100_demo, so100_evaluate and so100_record_sim pass this file",
        "with --params-file.",
        "",
        "Topics (relative, so a namespace and remapping apply; defaults resolve to these):",
        "  publishes  /clock (rosgraph_msgs/Clock, sim time)",
        "             /joint_states (standalone) or /hw/joint_states (hardware)   sensor_msgs/JointState",
        "             /camera/<name>/image_raw (rgb8) + /camera/<name>/camera_info, name in {front, wrist}",
        "             /sim/task_success (std_msgs/Bool, transient local), /diagnostics",
        "  subscribes /arm_controller/joint_trajectory, /gripper_controller/joint_trajectory (standalone)",
        "             /hw/joint_commands (hardware)",
        "  services   ~/reset (std_srvs/Trigger) -> /mujoco_sim/reset",
        "Other nodes that should run on the sim's clock need use_sim_time: true (the sim node itself",
        "stamps everything with its own sim time and does not need it).",
    )),
    NodeParams("so100_bringup.teleop.leader", "leader_node_class", "leader_arm.yaml", key="/**/leader_arm", header=(
        "Run: python -m so100_bringup.teleop.leader --ros-args --params-file config/leader_arm.yaml \\",
        "       -p port:=/dev/ttyACM1 -p calibration_file:=<the leader's calibration JSON>",
        "The key /**/leader_arm matches the node in any namespace.",
    )),
    # No config file: only so100_record_sim starts it, with its parameters on the command line.
    NodeParams("so100_bringup.teleop.expert_node", "ExpertNode", None),
    NodeParams("so100_bringup.viewer.node", "ViewerNode", "viewer.yaml", header=(
        "Run: python -m so100_bringup.viewer.node --ros-args --params-file config/viewer.yaml -p spawn:=true",
        "(no use_sim_time needed: the timeline is the messages' stamps, sim or wall time; docs/viewer.md)",
        "so100_demo (for its demo.rrd), so100_evaluate and so100_record_sim (--viewer) pass this file.",
    )),
)


def load_schema(entry: NodeParams) -> ParamSchema:
    """The module's PARAMS (importing the module only: nodes import heavy libraries lazily)."""
    params = getattr(importlib.import_module(entry.module), "PARAMS", None)
    if not isinstance(params, ParamSchema):
        raise TypeError(f"{entry.module}.PARAMS is a {type(params).__name__}, not a so100_common.params schema")
    return params


def node_class(entry: NodeParams):
    """The entry's rclpy node class (constructing it declares the parameters first)."""
    from rclpy.node import Node

    module = importlib.import_module(entry.module)
    found = getattr(module, entry.node_class, None)
    if found is None:  # renamed: the one Node subclass the module defines
        own = [v for v in vars(module).values()
               if isinstance(v, type) and issubclass(v, Node) and v.__module__ == module.__name__]
        if len(own) != 1:
            raise LookupError(f"{entry.module} has no {entry.node_class} (node classes found: {own})")
        found = own[0]
    if not (isinstance(found, type) and issubclass(found, Node)):
        found = found()
    if not (isinstance(found, type) and issubclass(found, Node)):
        raise TypeError(f"{entry.module}.{entry.node_class} is not an rclpy node class")
    return found


def render(entry: NodeParams, params: ParamSchema | None = None) -> str:
    """The text config/<entry.config> must have."""
    return render_yaml(params or load_schema(entry), header=entry.header, key=entry.key)


def with_config() -> list[NodeParams]:
    return [e for e in REGISTRY if e.config]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m so100_bringup.node_params", description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="regenerate the config files")
    mode.add_argument("--check", action="store_true", help="exit 1 listing the config files that differ")
    ap.add_argument("--config-dir", type=Path, default=REPO_CONFIG, help=f"default: {REPO_CONFIG}")
    ap.add_argument("--diff", action="store_true", help="with --check: show the differences")
    a = ap.parse_args(argv)
    if not a.config_dir.is_dir():
        ap.error(f"no config directory at {a.config_dir} (run from a source checkout or pass --config-dir)")

    differing: list[str] = []
    for entry in with_config():
        text = render(entry)
        path = a.config_dir / entry.config
        current = path.read_text() if path.is_file() else None
        if current == text:
            continue
        if a.write:
            path.write_text(text)
            print(f"wrote {path}")
        else:
            differing.append(str(path))
            if a.diff:
                sys.stdout.writelines(difflib.unified_diff((current or "").splitlines(True), text.splitlines(True),
                                                           str(path), "generated"))
    if differing:
        print("differ from their node's schema (regenerate: python -m so100_bringup.node_params --write):",
              *differing, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
