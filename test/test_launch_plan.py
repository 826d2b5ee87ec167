"""The launch decisions (so100_bringup/launch_plan.py), checked without ROS 2 launch: every
executable, config file and parameter a launch file names exists, for every hardware choice."""
from __future__ import annotations

import ast
import itertools
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from so100_bringup import launch_plan as lp

REPO = Path(__file__).resolve().parent.parent
LAUNCH_DIR = REPO / "launch"


def _console_scripts() -> dict[str, str]:
    """name -> 'module:function' from setup.py's entry_points (AST, without running setup)."""
    tree = ast.parse((REPO / "setup.py").read_text())
    scripts: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and " = " in node.value \
                and ":" in node.value and "." in node.value:
            name, _, target = node.value.partition(" = ")
            scripts[name.strip()] = target.strip()
    return scripts


def _package_xml_deps() -> set[str]:
    root = ET.parse(REPO / "package.xml").getroot()
    return {e.text.strip() for e in root if e.tag in ("exec_depend", "depend") and e.text}


def _declared_parameters(target: str) -> set[str]:
    """Parameters a node's module ('mod.sub:main') declares: the names of its module-level
    PARAMS schema (`schema(..., [Param("name", ...), ...])`) plus every literal
    declare_parameter("name", ...) call."""
    module = target.split(":")[0]
    path = REPO / (module.replace(".", "/") + ".py")
    assert path.is_file(), f"{target}: module file {path} missing"
    tree = ast.parse(path.read_text())
    declared: set[str] = set()
    for node in tree.body:
        targets = [node.target] if isinstance(node, ast.AnnAssign) else getattr(node, "targets", [])
        names = {t.id for t in targets if isinstance(t, ast.Name)}
        if "PARAMS" in names and node.value is not None:
            declared |= {c.args[0].value for c in ast.walk(node.value) if isinstance(c, ast.Call)
                         and getattr(c.func, "id", getattr(c.func, "attr", "")) == "Param"
                         and c.args and isinstance(c.args[0], ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "declare_parameter" \
                and node.args and isinstance(node.args[0], ast.Constant):
            declared.add(node.args[0].value)
    assert declared, f"{path} declares no parameters (expected a PARAMS schema of Param(...) entries)"
    return declared


def _has_main(target: str) -> bool:
    module, _, func = target.partition(":")
    path = REPO / (module.replace(".", "/") + ".py")
    return path.is_file() and any(isinstance(n, ast.FunctionDef) and n.name == func
                                  for n in ast.parse(path.read_text()).body)


def _all_plans():
    """(label, plan) for every launch file x hardware x control x namespace that is valid."""
    for launch_file, hardware, control, ns, extras in itertools.product(
            lp.LAUNCH_FILES, lp.HARDWARE, lp.CONTROL_MODES, ("", "left"),
            ({}, {"policy": "true", "rviz": "true", "moveit": "true"})):
        values = {"hardware": hardware, "control": control, "namespace": ns, **extras}
        given = {k: v for k, v in values.items() if k in lp.LAUNCH_FILES[launch_file]}
        try:
            lp.parse_args({**given, **lp.LAUNCH_FILE_FIXED.get(launch_file, {})})
        except ValueError:
            continue  # invalid combination (mock/gazebo standalone, moveit standalone): tested below
        plan = lp.plan_for_launch_file(launch_file, given)  # any error here is a real failure
        yield f"{launch_file}[{hardware},{control},{ns or '-'},{bool(extras)}]", plan


ALL_PLANS = list(_all_plans())


def test_every_combination_is_covered():
    labels = [label for label, _ in ALL_PLANS]
    for hardware in lp.HARDWARE:
        assert any(f"[{hardware}," in label for label in labels)
    assert len(ALL_PLANS) > 50


def test_executables_exist():
    scripts = _console_scripts()
    deps = _package_xml_deps()
    for label, plan in ALL_PLANS:
        for node in plan.nodes:
            if node.package == lp.PACKAGE:
                assert node.executable in scripts, f"{label}: {node.executable} is not a console script in setup.py"
                assert _has_main(scripts[node.executable]), f"{label}: {scripts[node.executable]} missing"
            else:
                assert node.package in deps, f"{label}: package {node.package} not in package.xml"
                assert node.executable in lp.EXTERNAL_EXECUTABLES[node.package], (label, node.executable)
        for inc in plan.includes:
            assert inc.package in deps, f"{label}: included package {inc.package} not in package.xml"


def test_named_files_exist():
    gz = lp.bringup_plan(lp.parse_args({"hardware": "gazebo"}))
    assert any(f.endswith(".sdf") for f in gz.files()) and any(f.endswith("bridge.yaml") for f in gz.files())
    for label, plan in ALL_PLANS:
        for path in plan.files():
            assert Path(path).is_file(), f"{label}: {path} does not exist"


def test_parameters_are_declared_by_the_nodes():
    scripts = _console_scripts()
    for label, plan in ALL_PLANS:
        for node in plan.nodes:
            if node.package == lp.PACKAGE:
                declared = _declared_parameters(scripts[node.executable]) | {"use_sim_time"}
            else:
                declared = set(lp.EXTERNAL_PARAMETERS.get(node.executable, ()))
            for params in node.parameters:
                if isinstance(params, dict):
                    if node.executable in ("move_group",):
                        continue  # MoveIt's parameters: test_moveit_config checks their files
                    unknown = set(params) - declared
                    assert not unknown, f"{label}: {node.executable} does not declare {sorted(unknown)}"
                elif node.package == lp.PACKAGE and Path(params).is_file():  # missing: test above
                    data = yaml.safe_load(Path(params).read_text()) or {}
                    keys = [k for k in data if str(k).rstrip("/").split("/")[-1] == node.name]
                    assert keys, f"{label}: {params} has no section for node {node.name}"
                    for key in keys:
                        unknown = set(data[key].get("ros__parameters", {})) - declared
                        assert not unknown, f"{label}: {params} sets undeclared {sorted(unknown)}"


def test_hardware_choices_start_the_right_nodes():
    def plan(**values):
        return lp.bringup_plan(lp.parse_args(values))

    def executables(p):
        return [(n.package, n.executable) for n in p.nodes]

    mock = plan(hardware="mock")
    assert ("controller_manager", "ros2_control_node") in executables(mock)
    assert [n.arguments[0] for n in mock.nodes if n.executable == "spawner"] == list(lp.CONTROLLERS)
    assert not any(n.package == lp.PACKAGE for n in mock.nodes)
    assert "mock_components/GenericSystem" in mock.nodes[0].parameters[0]["robot_description"]

    sim = plan(hardware="mujoco")
    node = next(n for n in sim.nodes if n.executable == "so100_mujoco_sim")
    assert node.parameters[-1]["mode"] == "hardware" and node.parameters[-1]["use_sim_time"] is False
    assert all(p.get("use_sim_time") for n in sim.nodes if n is not node
               for p in n.parameters if isinstance(p, dict) and "use_sim_time" in p)
    assert "joint_state_topic_hardware_interface/JointStateTopicSystem" in sim.nodes[0].parameters[0]["robot_description"]

    standalone = plan(hardware="mujoco", control="standalone")
    assert ("controller_manager", "ros2_control_node") not in executables(standalone)
    assert not any(n.executable == "spawner" for n in standalone.nodes)
    assert next(n for n in standalone.nodes if n.executable == "so100_mujoco_sim").parameters[-1]["mode"] == "standalone"

    real = plan(hardware="real", port="/dev/ttyUSB3", calibration_file="/tmp/arm.json")
    driver = next(n for n in real.nodes if n.executable == "so100_driver")
    assert driver.parameters[-1] == {"variant": "so101", "mode": "hardware", "port": "/dev/ttyUSB3",
                                     "use_sim_time": False, "calibration_file": "/tmp/arm.json"}
    assert real.nodes[0].parameters[0]["use_sim_time"] is False

    gz = plan(hardware="gazebo")
    assert ("controller_manager", "ros2_control_node") not in executables(gz)  # inside gz
    assert ("ros_gz_sim", "create") in executables(gz) and ("ros_gz_bridge", "parameter_bridge") in executables(gz)
    assert gz.includes[0].package == "ros_gz_sim" and lp.GAZEBO_WORLD.split("/")[-1] in gz.includes[0].arguments["gz_args"]
    assert " -s" not in gz.includes[0].arguments["gz_args"]
    assert " -s" in plan(hardware="gazebo", gz_gui="false").includes[0].arguments["gz_args"]


def test_optional_parts():
    base = lp.bringup_plan(lp.parse_args({}))
    full = lp.bringup_plan(lp.parse_args({"policy": "true", "moveit": "true", "rviz": "true",
                                          "policy_path": "/ckpt", "task": "pick the cube"}))
    extra = [n.executable for n in full.nodes[len(base.nodes):]]
    assert extra == ["move_group", "vla_policy_node", "rviz2"]
    policy = next(n for n in full.nodes if n.executable == "vla_policy_node")
    assert policy.parameters[-1]["policy_path"] == "/ckpt" and policy.parameters[-1]["task"] == "pick the cube"
    assert "cameras" not in policy.parameters[-1]  # empty argument: the YAML's value stands
    rviz = next(n for n in full.nodes if n.executable == "rviz2")
    assert rviz.arguments[-1].endswith("moveit.rviz") and "robot_description_semantic" in rviz.parameters[0]
    only_policy = lp.plan_for_launch_file("policy.launch.py", {"hardware": "real"})
    assert [n.executable for n in only_policy.nodes] == ["vla_policy_node"]
    assert only_policy.nodes[0].parameters[-1]["use_sim_time"] is False


def test_namespace_reaches_every_node_topic_and_parameter_file():
    plan = lp.bringup_plan(lp.parse_args({"hardware": "mujoco", "namespace": "/left/", "policy": "true"}))
    assert {n.namespace for n in plan.nodes} == {"left"}
    urdf = plan.nodes[0].parameters[0]["robot_description"]
    assert ">/left/hw/joint_commands<" in urdf and ">/left/hw/joint_states<" in urdf
    assert all("/left/controller_manager" in n.arguments for n in plan.nodes if n.executable == "spawner")
    for node in plan.nodes:
        for params in node.parameters:
            if isinstance(params, str):
                data = yaml.safe_load(Path(params).read_text())
                assert data and all(str(k).startswith("/left/") for k in data), params
    policy_files = [p for p in next(n for n in plan.nodes if n.executable == "vla_policy_node").parameters
                     if isinstance(p, str)]
    policy = next(iter(yaml.safe_load(Path(policy_files[0]).read_text()).values()))["ros__parameters"]
    assert policy["joint_states_topic"] == "joint_states"  # relative: resolved inside /left
    assert policy["arm_trajectory_topic"] == "arm_controller/joint_trajectory"
    no_ns = lp.bringup_plan(lp.parse_args({"hardware": "mujoco"}))
    assert ">/hw/joint_commands<" in no_ns.nodes[0].parameters[0]["robot_description"]


def test_sim_time_defaults():
    assert lp.parse_args({"hardware": "mujoco"}).sim_time
    assert lp.parse_args({"hardware": "gazebo"}).sim_time
    assert not lp.parse_args({"hardware": "real"}).sim_time
    assert not lp.parse_args({"hardware": "mujoco", "use_sim_time": "false"}).sim_time
    assert lp.parse_args({"hardware": "mock", "use_sim_time": "true"}).sim_time


@pytest.mark.parametrize("values, match", [
    ({"hardware": "mock", "control": "standalone"}, "ros2_control"),
    ({"hardware": "gazebo", "control": "standalone"}, "ros2_control"),
    ({"hardware": "mujoco", "control": "standalone", "moveit": "true"}, "moveit"),
    ({"hardware": "hololens"}, "hardware"),
    ({"variant": "so102"}, "variant"),
    ({"rviz": "maybe"}, "true or false"),
    ({"gripper": "true"}, "unknown launch argument"),
])
def test_invalid_arguments_are_clear_errors(values, match):
    with pytest.raises(ValueError, match=match):
        lp.bringup_plan(lp.parse_args(values))


def test_launch_files_match_the_plan_module():
    files = sorted(p.name for p in LAUNCH_DIR.glob("*.launch.py"))
    assert files == sorted(lp.LAUNCH_FILES)
    for name in files:
        tree = ast.parse((LAUNCH_DIR / name).read_text())
        funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert "generate_launch_description" in funcs, name
        consts = {n.targets[0].id: n.value.value for n in tree.body
                  if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
                  and isinstance(n.value, ast.Constant)}
        assert consts.get("NAME") == name, f"{name}: NAME constant must be the file name"
        accepted = set(lp.LAUNCH_FILES[name])
        fixed = set(lp.LAUNCH_FILE_FIXED.get(name, {}))
        assert accepted <= set(lp.ALL_ARGS) and fixed <= set(lp.ALL_ARGS), name
        assert not accepted & fixed, f"{name} declares an argument it fixes"
        assert set(lp.COMMON_ARGS) - fixed <= accepted, f"{name} lacks a common argument"
        if name != "bringup.launch.py":
            assert fixed, f"{name} fixes nothing: it would be bringup.launch.py"
        for arg, default, _desc, choices in lp.launch_file_arguments(name):
            assert choices is None or default in choices, (name, arg)


@pytest.mark.parametrize("name", sorted(lp.LAUNCH_FILES))
def test_a_launch_file_refuses_every_argument_it_does_not_declare(name):
    """ROS 2 launch hands undeclared command-line arguments on unchecked: a wrapper must refuse
    them itself (e.g. `policy.launch.py moveit:=true` would start move_group)."""
    accepted = lp.LAUNCH_FILES[name]
    defaults = {arg: default for arg, default, _d, _c in lp.launch_file_arguments(name)}
    for arg in set(lp.ALL_ARGS) - set(accepted):
        value = lp.LAUNCH_FILE_FIXED.get(name, {}).get(arg, lp.ALL_ARGS[arg][0])  # even a harmless value
        with pytest.raises(ValueError, match=rf"{name} does not take {arg} .*Run bringup\.launch\.py"):
            lp.plan_at_launch_time(name, {**defaults, arg: value})
    with pytest.raises(ValueError, match="No launch file takes polcy_path"):
        lp.launch_file_values(name, {"polcy_path": "/ckpt"})
    # the context's other configurations (--launch-prefix, an including file's own) pass by
    assert lp.plan_at_launch_time(name, {**defaults, "launch-prefix": "gdb -ex run --args"}) == \
        lp.plan_for_launch_file(name, defaults)


def test_wrappers_fix_their_arguments_and_take_the_rest():
    policy = lp.launch_file_values("policy.launch.py", {"task": "pick", "hardware": "mujoco"})
    assert policy == {"task": "pick", "hardware": "mujoco", "robot": "false", "policy": "true"}
    with pytest.raises(ValueError, match=r"fixes robot:=false policy:=true.*bringup\.launch\.py "
                                         r"robot:=false policy:=true moveit:=\.\.\."):
        lp.plan_for_launch_file("policy.launch.py", {"moveit": "true"})
    with pytest.raises(ValueError, match=r"does not take hardware \(it fixes hardware:=real.*"
                                         r"bringup\.launch\.py hardware:=\.\.\. instead"):
        lp.plan_for_launch_file("real.launch.py", {"hardware": "mock"})
    moveit = lp.launch_file_values("moveit.launch.py", {})
    assert moveit == {"rviz": "true", "moveit": "true"}  # changed default, then fixed
    assert lp.launch_file_values("moveit.launch.py", {"rviz": "false"})["rviz"] == "false"
    with pytest.raises(ValueError, match="unknown launch file"):
        lp.launch_file_values("nope.launch.py", {})


def test_launch_support_declares_exactly_the_accepted_arguments(monkeypatch):
    """launch_support against stand-ins of launch's classes (launch is not installable here):
    a wrapper declares its arguments and plans at launch time; it includes nothing, so
    `--show-args` (which also lists the arguments of included files) shows only its own."""
    class Action:
        def __init__(self, *args, **kwargs):
            self.args, self.kwargs = args, kwargs

    class DeclareLaunchArgument(Action):
        pass

    class OpaqueFunction(Action):
        pass

    actions = types.SimpleNamespace(DeclareLaunchArgument=DeclareLaunchArgument,
                                    OpaqueFunction=OpaqueFunction)
    launch = types.SimpleNamespace(LaunchDescription=lambda entities: entities, actions=actions)
    monkeypatch.setitem(sys.modules, "launch", launch)
    monkeypatch.setitem(sys.modules, "launch.actions", actions)
    from so100_bringup import launch_support

    planned: list[lp.Plan] = []
    monkeypatch.setattr(launch_support, "plan_to_actions", lambda plan: planned.append(plan) or [])
    for name in lp.LAUNCH_FILES:
        entities = launch_support.launch_description(name)
        declared = [e for e in entities if isinstance(e, DeclareLaunchArgument)]
        assert [d.args[0] for d in declared] == list(lp.LAUNCH_FILES[name])
        assert [type(e) for e in entities[len(declared):]] == [OpaqueFunction], name
        opaque = entities[-1]
        context = types.SimpleNamespace(launch_configurations={d.args[0]: d.kwargs["default_value"]
                                                               for d in declared})
        opaque.kwargs["function"](context, *opaque.kwargs["args"])
        assert planned[-1] == lp.plan_for_launch_file(name, context.launch_configurations)
        if name == "policy.launch.py":
            context.launch_configurations["moveit"] = "true"
            with pytest.raises(ValueError, match="does not take moveit"):
                opaque.kwargs["function"](context, *opaque.kwargs["args"])


def test_plan_prints():
    text = lp.describe(lp.bringup_plan(lp.parse_args({"hardware": "gazebo", "policy": "true"})))
    assert "ros_gz_sim/create" in text and "vla_policy_node" in text and "<" in text
    assert lp.main(["hardware:=mujoco", "control:=standalone"]) == 0


def _ros_parameter_leaves(value, path=""):
    """Yield (dotted name, leaf) of a nested parameter dict, as launch_ros flattens it."""
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _ros_parameter_leaves(sub, f"{path}.{key}" if path else str(key))
    else:
        yield path, value


def _is_ros_parameter_value(value) -> bool:
    scalar = (bool, int, float, str)
    if isinstance(value, scalar):
        return True
    if isinstance(value, (list, tuple)) and value:
        kinds = {type(v) for v in value}  # launch_ros wants uniform items (int and float differ)
        return len(kinds) == 1 and kinds <= {bool, int, float, str}
    return False


def test_inline_parameters_are_valid_ros_parameter_types():
    """Every inline parameter (MoveIt's nested dicts included) flattens to a type a ROS
    parameter can hold: no None, no empty or mixed-type lists."""
    for label, plan in ALL_PLANS:
        for node in plan.nodes:
            for params in node.parameters:
                if isinstance(params, dict):
                    for name, leaf in _ros_parameter_leaves(params):
                        assert _is_ros_parameter_value(leaf), f"{label}: {node.executable} {name}={leaf!r}"


@pytest.mark.parametrize("config", [lp.RVIZ_CONFIG, lp.RVIZ_MOVEIT_CONFIG])
def test_rviz_configs_match_the_description(config):
    from so100_description import robot_description
    from so100_description.moveit.config import srdf_file

    data = yaml.safe_load((REPO / config).read_text())
    manager = data["Visualization Manager"]
    links = {l.get("name") for l in ET.fromstring(robot_description("so101", "mock")).findall("link")}
    assert manager["Global Options"]["Fixed Frame"] in links
    displays = {d["Class"]: d for d in manager["Displays"]}
    for display in manager["Displays"]:
        if display["Class"] == "rviz_default_plugins/Image":
            assert display["Topic"]["Value"] in ("camera/front/image_raw", "camera/wrist/image_raw")
    if "moveit_rviz_plugin/MotionPlanning" in displays:
        groups = {g.get("name") for g in ET.parse(srdf_file("so101")).getroot().findall("group")}
        assert displays["moveit_rviz_plugin/MotionPlanning"]["Planning Request"]["Planning Group"] in groups
    else:
        assert displays["rviz_default_plugins/RobotModel"]["Description Topic"]["Value"] == "robot_description"


@pytest.mark.parametrize("values", [{"calibration_file": "~/arm.json"}, {"robot_id": "my_arm"},
                                    {"calibration_file": "/tmp/arm.json", "robot_id": "my_arm"}])
def test_one_calibration_argument_reaches_every_node_that_converts_units(values):
    def unit_nodes(plan):
        return {n.executable: n.parameters[-1] for n in plan.nodes if n.package == lp.PACKAGE}

    calibration_keys = {"calibration_file", "robot_id"}
    for control in lp.CONTROL_MODES:
        real = lp.plan_for_launch_file("real.launch.py", {"control": control, "policy": "true", **values})
        nodes = unit_nodes(real)
        assert set(nodes) == {"so100_driver", "vla_policy_node"}
        for params in nodes.values():
            assert {k: params[k] for k in calibration_keys & set(params)} == values
    alone = unit_nodes(lp.plan_for_launch_file("policy.launch.py", values))  # policy next to a driven arm
    assert {k: alone["vla_policy_node"][k] for k in values} == values
    # not given: no override, the parameter files' values stand
    plain = unit_nodes(lp.plan_for_launch_file("real.launch.py", {"policy": "true"}))
    assert not any(calibration_keys & set(params) for params in plain.values())
