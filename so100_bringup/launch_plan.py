"""What the launch files start, as plain data (no `launch` import): tests check it on machines
without ROS 2 launch, and launch/bringup.launch.py turns it into launch_ros actions.

One plan per choice of `hardware` (mock | mujoco | gazebo | real) and `control`:
  ros2_control (full ROS machine): robot_state_publisher, controller_manager (ros2_control_node;
      inside Gazebo for hardware gazebo), spawners for joint_state_broadcaster, arm_controller,
      gripper_controller, and the far side of joint_state_topic_hardware_interface
      (so100_mujoco_sim or so100_driver in mode "hardware", on <ns>/hw/joint_commands ->
      <ns>/hw/joint_states).
  standalone (no ros2_control): robot_state_publisher and the sim/driver node in mode
      "standalone" (it publishes joint_states and follows the JointTrajectory topics itself).
Optional parts: the VLA policy node, MoveIt's move_group, RViz.

    python -m so100_bringup.launch_plan hardware:=mujoco policy:=true   # print the plan
    python -m so100_bringup.launch_plan --run hardware:=real control:=standalone port:=/dev/ttyACM0
        # pip-only machine: start this package's nodes of the plan as processes (through
        # so100_bringup.processes, their output on the terminal); Ctrl-C stops them in order
"""
from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from so100_description.joints import VARIANTS

PACKAGE = "so100_vla"
HARDWARE = ("mock", "mujoco", "gazebo", "real")
CONTROL_MODES = ("ros2_control", "standalone")
CONTROLLERS = ("joint_state_broadcaster", "arm_controller", "gripper_controller")

# Node names (as the nodes name themselves; parameter files are keyed by them).
DRIVER_NODE = "so100_driver"
SIM_NODE = "mujoco_sim"
POLICY_NODE = "vla_policy_node"

# Parameter files under config/ (owned by each node's engineer) and this package's data files.
DRIVER_PARAMS = "driver.yaml"
SIM_PARAMS = "sim.yaml"
POLICY_PARAMS = "policy.yaml"
CONTROLLERS_PARAMS = "controllers.yaml"
GAZEBO_WORLD = "so100_description/gazebo/so100_table.sdf"
GAZEBO_BRIDGE = "so100_description/gazebo/bridge.yaml"
RVIZ_CONFIG = "so100_description/rviz/so100.rviz"
RVIZ_MOVEIT_CONFIG = "so100_description/rviz/moveit.rviz"

# Launch arguments: name -> (default, description, choices or None). Every launch file declares
# the common ones; bringup.launch.py declares them all.
COMMON_ARGS: dict[str, tuple[str, str, tuple[str, ...] | None]] = {
    "variant": ("so101", "arm variant", VARIANTS),
    "hardware": ("mock", "mock (ros2_control mock_components), mujoco (MuJoCo sim node), gazebo "
                         "(gz sim + gz_ros2_control) or real (Feetech driver)", HARDWARE),
    "namespace": ("", "namespace of every node and topic ('' = none)", None),
    "use_sim_time": ("auto", "true/false; auto = true for mujoco and gazebo", ("auto", "true", "false")),
    "rviz": ("false", "start RViz", ("true", "false")),
}
EXTRA_ARGS: dict[str, tuple[str, str, tuple[str, ...] | None]] = {
    "control": ("ros2_control", "ros2_control (controller_manager + joint_trajectory_controller) or "
                                "standalone (the sim/driver node follows trajectories itself)", CONTROL_MODES),
    "robot": ("true", "start the robot side (description, controllers, hardware/sim)", ("true", "false")),
    "policy": ("false", "start the VLA policy node", ("true", "false")),
    "moveit": ("false", "start MoveIt's move_group", ("true", "false")),
    "port": ("/dev/ttyACM0", "hardware real: serial port of the arm", None),
    "calibration_file": ("", "the follower arm's LeRobot calibration JSON, for the driver and the policy node "
                             "('' = see robot_id)", None),
    "robot_id": ("", "LeRobot robot id: the calibration file robots/so_follower/<id>.json of LeRobot's calibration "
                     "folder, when calibration_file is ''", None),
    "policy_path": ("", "policy: LeRobot checkpoint directory ('' = config/policy.yaml's)", None),
    "policy_params_file": ("", "policy: parameter file replacing config/policy.yaml", None),
    "cameras": ("", "policy: 'name=topic,...' ('' = config/policy.yaml's)", None),
    "task": ("", "policy: task instruction ('' = config/policy.yaml's)", None),
    "world": ("", "gazebo: world SDF ('' = the package's table scene)", None),
    "gz_gui": ("true", "gazebo: open the Gazebo GUI (false = server only)", ("true", "false")),
}
ALL_ARGS = {**COMMON_ARGS, **EXTRA_ARGS}

# Which arguments each launch file accepts, i.e. declares (bringup.launch.py: all of them). A
# wrapper neither declares nor accepts the arguments it fixes or leaves at bringup's default, so
# `ros2 launch ... --show-args` lists exactly what it takes, and anything else is refused
# (launch_file_values), because ROS 2 launch hands undeclared arguments on unchecked.
_COMMON_BUT_HARDWARE = tuple(a for a in COMMON_ARGS if a != "hardware")
LAUNCH_FILES: dict[str, tuple[str, ...]] = {
    "bringup.launch.py": tuple(ALL_ARGS),
    "real.launch.py": (*_COMMON_BUT_HARDWARE, "control", "port", "calibration_file", "robot_id", "policy",
                       "policy_path", "moveit"),
    "mock.launch.py": (*_COMMON_BUT_HARDWARE, "moveit", "policy", "policy_path"),
    "sim_mujoco.launch.py": (*_COMMON_BUT_HARDWARE, "control", "policy", "policy_path", "cameras", "task", "moveit"),
    "sim_gazebo.launch.py": (*_COMMON_BUT_HARDWARE, "world", "gz_gui", "policy", "policy_path", "moveit"),
    "moveit.launch.py": (*COMMON_ARGS, "robot", "port", "calibration_file", "robot_id", "world", "gz_gui"),
    "policy.launch.py": (*COMMON_ARGS, "policy_path", "policy_params_file", "cameras", "task", "calibration_file",
                         "robot_id"),
}
# Arguments a launch file fixes (hands to bringup's plan whatever the command line says).
LAUNCH_FILE_FIXED: dict[str, dict[str, str]] = {
    "real.launch.py": {"hardware": "real"},
    "mock.launch.py": {"hardware": "mock"},
    "sim_mujoco.launch.py": {"hardware": "mujoco"},
    "sim_gazebo.launch.py": {"hardware": "gazebo"},
    "moveit.launch.py": {"moveit": "true"},
    "policy.launch.py": {"robot": "false", "policy": "true"},
}
# Defaults a launch file changes (shown by `ros2 launch ... --show-args`).
LAUNCH_FILE_DEFAULTS: dict[str, dict[str, str]] = {
    "moveit.launch.py": {"rviz": "true"},
}

# Executables of other ROS packages the plans start (all declared in package.xml).
EXTERNAL_EXECUTABLES: dict[str, tuple[str, ...]] = {
    "robot_state_publisher": ("robot_state_publisher",),
    "controller_manager": ("ros2_control_node", "spawner"),
    "ros_gz_sim": ("create",),
    "ros_gz_bridge": ("parameter_bridge",),
    "moveit_ros_move_group": ("move_group",),
    "rviz2": ("rviz2",),
}
# Parameters of those executables that the plans set.
EXTERNAL_PARAMETERS: dict[str, tuple[str, ...]] = {
    "robot_state_publisher": ("robot_description", "publish_frequency", "use_sim_time", "frame_prefix"),
    "ros2_control_node": ("robot_description", "use_sim_time"),
    "parameter_bridge": ("config_file", "use_sim_time"),
    "create": ("use_sim_time",),
    "spawner": ("use_sim_time",),
    # rviz2 hands these to MoveIt's MotionPlanning display
    "rviz2": ("use_sim_time", "robot_description", "robot_description_semantic",
              "robot_description_kinematics", "robot_description_planning"),
}


def launch_file_arguments(launch_file: str) -> list[tuple[str, str, str, tuple[str, ...] | None]]:
    """(name, default, description, choices) of every argument `launch_file` declares."""
    defaults = LAUNCH_FILE_DEFAULTS.get(launch_file, {})
    out = []
    for name in LAUNCH_FILES[launch_file]:
        default, description, choices = ALL_ARGS[name]
        out.append((name, defaults.get(name, default), description, choices))
    return out


def launch_file_values(launch_file: str, values: Mapping[str, str]) -> dict[str, str]:
    """The bringup argument strings `launch_file` stands for: `values` (only arguments it accepts),
    then its changed defaults and fixed arguments. Any other name is a ValueError naming the fix."""
    if launch_file not in LAUNCH_FILES:
        raise ValueError(f"unknown launch file {launch_file!r}; known: {sorted(LAUNCH_FILES)}")
    accepted = LAUNCH_FILES[launch_file]
    fixed = LAUNCH_FILE_FIXED.get(launch_file, {})
    refused = sorted(set(values) - set(accepted))
    if refused:
        fixes = f"it fixes {_assignments(fixed)}; " if fixed else ""
        message = f"{launch_file} does not take {', '.join(refused)} ({fixes}it takes: {', '.join(accepted)})."
        unknown = sorted(set(refused) - set(ALL_ARGS))
        if unknown:
            message += f" No launch file takes {', '.join(unknown)}; bringup.launch.py takes: {', '.join(ALL_ARGS)}."
        else:
            kept = {k: v for k, v in fixed.items() if k not in refused}
            message += f" Run bringup.launch.py {_assignments({**kept, **dict.fromkeys(refused, '...')})} instead."
        raise ValueError(message)
    return {**LAUNCH_FILE_DEFAULTS.get(launch_file, {}), **values, **fixed}


def _assignments(values: Mapping[str, str]) -> str:
    return " ".join(f"{k}:={v}" for k, v in values.items())


@dataclass
class LaunchArgs:
    variant: str = "so101"
    hardware: str = "mock"
    namespace: str = ""
    use_sim_time: bool | None = None  # None: auto
    rviz: bool = False
    control: str = "ros2_control"
    robot: bool = True
    policy: bool = False
    moveit: bool = False
    port: str = "/dev/ttyACM0"
    calibration_file: str = ""
    robot_id: str = ""
    policy_path: str = ""
    policy_params_file: str = ""
    cameras: str = ""
    task: str = ""
    world: str = ""
    gz_gui: bool = True

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant {self.variant!r}: expected one of {VARIANTS}")
        if self.hardware not in HARDWARE:
            raise ValueError(f"hardware {self.hardware!r}: expected one of {HARDWARE}")
        if self.control not in CONTROL_MODES:
            raise ValueError(f"control {self.control!r}: expected one of {CONTROL_MODES}")
        if self.control == "standalone" and self.hardware in ("mock", "gazebo"):
            raise ValueError(f"hardware {self.hardware} runs only with control:=ros2_control "
                             "(mock_components / gz_ros2_control are ros2_control plugins)")
        if self.moveit and self.control == "standalone":
            raise ValueError("moveit needs control:=ros2_control (it executes through "
                             "FollowJointTrajectory actions of the joint_trajectory_controllers)")
        self.namespace = self.namespace.strip("/")

    @property
    def sim_time(self) -> bool:
        return self.hardware in ("mujoco", "gazebo") if self.use_sim_time is None else self.use_sim_time

    @property
    def ns_prefix(self) -> str:
        """'/ns' or '' (for absolute topic names inside a namespace)."""
        return f"/{self.namespace}" if self.namespace else ""


def _bool(name: str, text: str) -> bool:
    value = str(text).strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"launch argument {name}:={text!r}: expected true or false")


def parse_args(values: Mapping[str, str]) -> LaunchArgs:
    """LaunchArgs from launch-argument strings (unknown names are an error)."""
    unknown = set(values) - set(ALL_ARGS)
    if unknown:
        raise ValueError(f"unknown launch argument(s) {sorted(unknown)}; known: {sorted(ALL_ARGS)}")
    kwargs: dict[str, Any] = {}
    for f in fields(LaunchArgs):
        if f.name not in values:
            continue
        text = values[f.name]
        if f.name == "use_sim_time":
            kwargs[f.name] = None if str(text).lower() == "auto" else _bool(f.name, text)
        elif f.type in ("bool", bool):
            kwargs[f.name] = _bool(f.name, text)
        else:
            kwargs[f.name] = str(text)
    return LaunchArgs(**kwargs)


@dataclass
class NodeSpec:
    package: str
    executable: str
    name: str | None = None
    namespace: str = ""
    parameters: list[str | dict[str, Any]] = field(default_factory=list)  # files and dicts
    remappings: list[tuple[str, str]] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)
    respawn: bool = False


@dataclass
class IncludeSpec:
    package: str
    launch_file: str  # under share/<package>/launch/
    arguments: dict[str, str] = field(default_factory=dict)


@dataclass
class Plan:
    nodes: list[NodeSpec] = field(default_factory=list)
    includes: list[IncludeSpec] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)

    def extend(self, other: "Plan") -> "Plan":
        self.nodes += other.nodes
        self.includes += other.includes
        self.environment.update(other.environment)
        return self

    def files(self) -> list[str]:
        """Every file the plan names (parameter files, configs, worlds)."""
        out = [p for n in self.nodes for p in n.parameters if isinstance(p, str)]
        for node in self.nodes:
            out += [a for a, prev in zip(node.arguments[1:], node.arguments) if prev in ("-d", "-file")]
            out += [v for p in node.parameters if isinstance(p, dict)
                    for k, v in p.items() if k == "config_file"]
        for inc in self.includes:  # e.g. the world in gz_sim's gz_args
            out += [tok for v in inc.arguments.values() for tok in str(v).split()
                    if tok.endswith((".sdf", ".world", ".yaml"))]
        return out


# -- files ------------------------------------------------------------------------------------
def share_file(relative: str) -> str:
    from so100_description.paths import share_dir

    return str(share_dir() / relative)


def config_file(name: str) -> str:
    from so100_description.paths import share_dir

    return str(share_dir() / "config" / name)


def namespaced_params_file(path: str, namespace: str) -> str:
    """A copy of a ROS parameter file whose node keys are `/<namespace>/<node>`: plain node-name
    keys only match nodes in the root namespace. Written once per content (race-free)."""
    if not namespace:
        return path
    data = yaml.safe_load(Path(path).read_text()) or {}
    rewritten = {(k if str(k).startswith("/") else f"/{namespace}/{k}"): v for k, v in data.items()}
    return _write_params(rewritten, Path(path).name)


def _write_params(data: dict, name: str) -> str:
    import hashlib

    text = yaml.safe_dump(data, sort_keys=False)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    out = Path(tempfile.gettempdir()) / "so100_vla_launch" / digest / name
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(out)
    return str(out)


def _params_file(args: LaunchArgs, path: str) -> str:
    return namespaced_params_file(path, args.namespace) if Path(path).is_file() else path


# -- robot description ------------------------------------------------------------------------
GAZEBO_CAMERA_LINK = "gripper_link"


def gazebo_wrist_camera_xml(prefix: str = "", width: int = 320, height: int = 240, rate: float = 30.0) -> str:
    """A Gazebo camera sensor on the gripper (the policy's `wrist` camera), placed as in the
    MuJoCo scene: 6 cm out on the fixed jaw's side of gripper_link, looking past the jaw tips
    (pitched 1.1442 rad from gripper_link's x towards -z), 75 deg vertical field of view."""
    return f"""
  <gazebo reference="{prefix}{GAZEBO_CAMERA_LINK}">
    <sensor name="wrist_camera" type="camera">
      <pose>-0.06 0 -0.02 0 1.1442 0</pose>
      <always_on>true</always_on>
      <update_rate>{rate:g}</update_rate>
      <topic>/camera/wrist/image_raw</topic>
      <camera>
        <camera_info_topic>/camera/wrist/camera_info</camera_info_topic>
        <horizontal_fov>1.5936</horizontal_fov>
        <image><width>{width}</width><height>{height}</height><format>R8G8B8</format></image>
        <clip><near>0.01</near><far>5.0</far></clip>
        <optical_frame_id>{prefix}wrist_optical_frame</optical_frame_id>
      </camera>
    </sensor>
  </gazebo>
"""


def robot_description_for(args: LaunchArgs) -> str:
    """The URDF for `args.hardware`, with the JointStateTopicSystem topics inside the namespace and,
    for Gazebo, the wrist camera sensor."""
    from so100_description import robot_description

    extra: dict[str, Any] = {}
    if args.hardware in ("real", "mujoco"):
        extra["joint_commands_topic"] = f"{args.ns_prefix}/hw/joint_commands"
        extra["joint_states_topic"] = f"{args.ns_prefix}/hw/joint_states"
    if args.hardware == "gazebo":
        controllers = config_file(CONTROLLERS_PARAMS)
        extra["controllers_file"] = _params_file(args, controllers)
    urdf = robot_description(args.variant, args.hardware, **extra)
    if args.hardware == "gazebo":
        head, sep, tail = urdf.rpartition("</robot>")
        urdf = head + gazebo_wrist_camera_xml() + sep + tail
        if args.namespace:  # gz_ros2_control's controller manager joins the namespace too
            tag = 'name="gz_ros2_control::GazeboSimROS2ControlPlugin">'
            if tag not in urdf:
                raise ValueError("gazebo URDF has no gz_ros2_control plugin to put in the namespace")
            urdf = urdf.replace(tag, f"{tag}<ros><namespace>/{args.namespace}</namespace></ros>", 1)
    return urdf


# -- parts ------------------------------------------------------------------------------------
def _distro() -> str:
    return os.environ.get("ROS_DISTRO", "jazzy")


def robot_plan(args: LaunchArgs) -> Plan:
    plan = Plan()
    ns = args.namespace
    urdf = robot_description_for(args)
    plan.nodes.append(NodeSpec("robot_state_publisher", "robot_state_publisher", "robot_state_publisher", ns,
                               [{"robot_description": urdf, "publish_frequency": 50.0,
                                 "use_sim_time": args.sim_time}]))
    if args.control == "ros2_control":
        if args.hardware != "gazebo":  # gz_ros2_control runs the controller manager inside gz
            cm_params: list[str | dict[str, Any]] = [_params_file(args, config_file(CONTROLLERS_PARAMS)),
                                                     {"use_sim_time": args.sim_time}]
            remaps: list[tuple[str, str]] = []
            if _distro() == "humble":
                cm_params.append({"robot_description": urdf})
            else:  # Jazzy+: the controller manager reads the URDF from robot_state_publisher's topic
                remaps.append(("~/robot_description", "robot_description"))
            plan.nodes.append(NodeSpec("controller_manager", "ros2_control_node", "controller_manager", ns,
                                       cm_params, remaps))
        manager = f"{args.ns_prefix}/controller_manager"
        for controller in CONTROLLERS:
            plan.nodes.append(NodeSpec("controller_manager", "spawner", f"spawner_{controller}", ns,
                                       [{"use_sim_time": args.sim_time}],
                                       arguments=[controller, "--controller-manager", manager,
                                                  "--controller-manager-timeout", "60"]))
    mode = "hardware" if args.control == "ros2_control" else "standalone"
    if args.hardware == "mujoco":
        # the sim owns the clock: it must not wait for /clock itself
        plan.nodes.append(NodeSpec(PACKAGE, "so100_mujoco_sim", SIM_NODE, ns,
                                   [_params_file(args, config_file(SIM_PARAMS)),
                                    {"variant": args.variant, "mode": mode, "use_sim_time": False}]))
    elif args.hardware == "real":
        overrides: dict[str, Any] = {"variant": args.variant, "mode": mode, "port": args.port,
                                     "use_sim_time": False}
        overrides.update(calibration_overrides(args))
        plan.nodes.append(NodeSpec(PACKAGE, "so100_driver", DRIVER_NODE, ns,
                                   [_params_file(args, config_file(DRIVER_PARAMS)), overrides]))
    elif args.hardware == "gazebo":
        plan.extend(gazebo_plan(args))
    return plan


def calibration_overrides(args: LaunchArgs) -> dict[str, str]:
    """The follower's calibration (file or LeRobot robot id) for every node that converts units:
    the driver and the policy node read it the same way."""
    return {key: getattr(args, key) for key in ("calibration_file", "robot_id") if getattr(args, key)}


def gazebo_plan(args: LaunchArgs) -> Plan:
    world = args.world or share_file(GAZEBO_WORLD)
    gz_args = f"-r -v 3 {world}" + ("" if args.gz_gui else " -s")
    return Plan(
        includes=[IncludeSpec("ros_gz_sim", "gz_sim.launch.py", {"gz_args": gz_args})],
        nodes=[
            NodeSpec("ros_gz_sim", "create", "spawn_arm", args.namespace, [{"use_sim_time": True}],
                     arguments=["-topic", "robot_description", "-name", args.variant,
                                "-allow_renaming", "true"]),
            NodeSpec("ros_gz_bridge", "parameter_bridge", "gz_bridge", args.namespace,
                     [{"config_file": share_file(GAZEBO_BRIDGE), "use_sim_time": True}]),
        ],
    )


def policy_plan(args: LaunchArgs) -> Plan:
    params_file = args.policy_params_file or config_file(POLICY_PARAMS)
    overrides: dict[str, Any] = {"variant": args.variant, "use_sim_time": args.sim_time}
    for key in ("policy_path", "cameras", "task"):
        if getattr(args, key):
            overrides[key] = getattr(args, key)
    overrides.update(calibration_overrides(args))  # it converts units with the driver's calibration
    return Plan(nodes=[NodeSpec(PACKAGE, "vla_policy_node", POLICY_NODE, args.namespace,
                                [_params_file(args, params_file), overrides])])


def moveit_plan(args: LaunchArgs) -> Plan:
    from so100_description.moveit.config import move_group_params

    params = move_group_params(args.variant, robot_description_for(args), args.sim_time, _distro())
    return Plan(nodes=[NodeSpec("moveit_ros_move_group", "move_group", "move_group", args.namespace, [params])])


def rviz_plan(args: LaunchArgs) -> Plan:
    params: dict[str, Any] = {"use_sim_time": args.sim_time}
    config = RVIZ_CONFIG
    if args.moveit:  # the MotionPlanning display needs the semantic description and kinematics
        from so100_description.moveit.config import move_group_params

        mg = move_group_params(args.variant, robot_description_for(args), args.sim_time, _distro())
        params.update({k: mg[k] for k in ("robot_description", "robot_description_semantic",
                                          "robot_description_kinematics", "robot_description_planning")})
        config = RVIZ_MOVEIT_CONFIG
    return Plan(nodes=[NodeSpec("rviz2", "rviz2", "rviz2", args.namespace, [params],
                                arguments=["-d", share_file(config)])])


def bringup_plan(args: LaunchArgs) -> Plan:
    plan = Plan()
    if args.robot:
        plan.extend(robot_plan(args))
    if args.moveit:
        plan.extend(moveit_plan(args))
    if args.policy:
        plan.extend(policy_plan(args))
    if args.rviz:
        plan.extend(rviz_plan(args))
    return plan


def plan_for_launch_file(launch_file: str, values: Mapping[str, str]) -> Plan:
    """The plan a launch file produces for the given argument strings (see launch_file_values)."""
    return bringup_plan(parse_args(launch_file_values(launch_file, values)))


def plan_at_launch_time(launch_file: str, configurations: Mapping[str, str]) -> Plan:
    """plan_for_launch_file from a launch context's configurations. The context also holds
    configurations that are not this file's concern: `ros2 launch --launch-prefix` sets
    `launch-prefix`, and a launch file that includes this one sets its own. Only the names of
    bringup arguments are checked: those are the ones that would otherwise change the plan."""
    return plan_for_launch_file(launch_file, {k: v for k, v in configurations.items() if k in ALL_ARGS})


def describe(plan: Plan) -> str:
    lines = []
    for inc in plan.includes:
        lines.append(f"include {inc.package}/launch/{inc.launch_file} {inc.arguments}")
    for node in plan.nodes:
        params = []
        for p in node.parameters:
            if isinstance(p, str):
                params.append(p)
            else:
                params.append("{" + ", ".join(f"{k}: {'<' + str(len(v)) + ' chars>' if isinstance(v, str) and len(v) > 80 else v}"
                                              for k, v in p.items() if not isinstance(v, dict)) + "}")
        lines.append(f"{node.package}/{node.executable} name={node.name} ns={node.namespace or '/'}"
                     f"{' args=' + str(node.arguments) if node.arguments else ''}"
                     f"{' remap=' + str(node.remappings) if node.remappings else ''}\n    params: {params}")
    return "\n".join(lines)


# -- pip-only machines: run the plan's own nodes as processes ---------------------------------
def console_script_module(executable: str) -> str:
    """The module behind one of this package's console scripts (from its installed entry points)."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="console_scripts", name=executable):
        if ep.dist is None or ep.dist.name.replace("-", "_") == PACKAGE:
            return ep.module
    raise LookupError(f"{executable}: no console script of an installed {PACKAGE} "
                      "(pip install -e . or colcon build installs them)")


def command_for(spec: NodeSpec) -> list[str]:
    """argv that starts one of this package's nodes (processes.node_command, `python -m <module>`)
    with the spec's name, namespace, parameter files, overrides and remaps: what launch_ros
    would pass to its console script."""
    from so100_bringup.processes import node_command

    if spec.package != PACKAGE:
        raise ValueError(f"{spec.package}/{spec.executable} is not a node of {PACKAGE}")
    files = [p for p in spec.parameters if isinstance(p, str)]
    overrides: dict[str, Any] = {}
    for params in spec.parameters:
        if not isinstance(params, str):
            overrides.update(params)
    if overrides:  # one file keeps types exact (no -p string parsing)
        key = f"/{spec.namespace}/{spec.name}" if spec.namespace else f"/{spec.name}"
        files.append(_write_params({key: {"ros__parameters": overrides}}, f"{spec.name}_overrides.yaml"))
    return node_command(console_script_module(spec.executable), name=spec.name, namespace=spec.namespace,
                        remappings=spec.remappings, param_files=files, arguments=spec.arguments)


def run(plan: Plan, env: Mapping[str, str] | None = None) -> int:
    """Start the plan's own nodes (the others need a ROS install and are listed) with their output
    on this terminal, wait until one exits or Ctrl-C / SIGTERM, then stop them all in order.
    Returns the highest exit code of the nodes."""
    from so100_bringup.processes import Children, child_env, stop_on_signals

    def say(text: str) -> None:
        print(f"[launch_plan] {text}", flush=True)

    for node in plan.nodes:
        if node.package != PACKAGE:
            say(f"skipped {node.package}/{node.executable}: needs a ROS 2 install")
    if not any(node.package == PACKAGE for node in plan.nodes):
        say("no node of this package in the plan: nothing to run")
        return 0
    children = Children(None, {**(child_env() if env is None else env), **plan.environment}, say=say)
    try:
        with stop_on_signals():
            for node in plan.nodes:
                if node.package == PACKAGE:
                    children.start(node.name or node.executable, command_for(node))
            say(f"{children.wait_any()} exited; stopping the others")
    except KeyboardInterrupt:
        say("stopping")
    finally:
        children.stop()
    return max((p.returncode or 0 for p in children.procs.values()), default=0)


def main(argv: list[str] | None = None) -> int:
    """python -m so100_bringup.launch_plan [--run] name:=value ...  (print, or run on pip-only)"""
    argv = sys.argv[1:] if argv is None else argv
    values = dict(a.split(":=", 1) for a in argv if ":=" in a)
    plan = bringup_plan(parse_args(values))
    if "--run" in argv:
        return run(plan)
    print(describe(plan))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
