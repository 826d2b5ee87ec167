"""Typed, validated node parameters: the schema API (so100_common.params), its ROS side
(so100_common.ros_node.declare_params), the config files generated from the schemas
(so100_bringup.node_params), and every registered node refusing bad values at start-up.

The bad values are generated from each node's schema itself: for every bounded number a value
just outside its bound, for every `choices` parameter an unknown value, and a wrong type for one
parameter of every type. Each node is constructed in this process with `parameter_overrides`
and must raise ParameterError from declare_params (so before it opens a port, loads a model or
creates a dataset), naming the parameter and what it accepts.
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
import yaml

from so100_bringup import node_params as registry
from so100_common.params import Param, ParameterError, render_yaml, schema

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "config"


# -- the schema API (plain Python) -------------------------------------------------------------
def test_defaults_outside_their_bounds_or_choices_are_refused_at_definition():
    for bad in (dict(default=-1.0, min=0.0), dict(default=5, max=3), dict(default=0.0, min=0.0, min_exclusive=True),
                dict(default=1.5, min=0.0, max=1.0), dict(default="c", choices=("a", "b")),
                dict(default=["front", "top"], choices=("front", "wrist")), dict(default=float("nan"))):
        with pytest.raises(ValueError, match="x: default"):
            Param("x", description="d", **bad)
    Param("x", 0.0, "d", min=0.0)  # inclusive bound: fine
    Param("x", 1e-9, "d", min=0.0, min_exclusive=True)


@pytest.mark.parametrize("kwargs,match", [
    (dict(name="x", default="a", min=0), "bounds need a numeric"),
    (dict(name="x", default=True, max=1), "bounds need a numeric"),
    (dict(name="x", default=1.0, min=2.0, max=1.0), "min 2.0 > max 1.0"),
    (dict(name="x", default=1.0, max=math.inf), "not a finite number"),
    (dict(name="x", default=2, min=1, min_exclusive=True), "min_exclusive needs a double"),
    (dict(name="x", default=1.0, min_exclusive=True), "min_exclusive needs a double"),
    (dict(name="x", default="a", choices=("a", 1)), r"choices \[1\] are not of the parameter's type"),
    (dict(name="x", default="a", choices="abc"), "choices must be a tuple"),
    (dict(name="x", default={"a": 1}), "unsupported default"),
    (dict(name="x", default=[1, "a"]), "unsupported default"),
    (dict(name="bad name", default=1), "not a valid ROS parameter name"),
    (dict(name="x", default=1, description=" "), "description is required"),
])
def test_bad_definitions_are_refused(kwargs, match):
    kwargs.setdefault("description", "d")
    with pytest.raises(ValueError, match=match):
        Param(**kwargs)


def test_schema_refuses_a_name_declared_twice():
    with pytest.raises(ValueError, match="n: parameter x declared twice"):
        schema("n", [Param("x", 1, "d"), Param("x", 2, "d")])


def test_types_an_integer_is_a_fine_double_and_nothing_else_converts():
    rate = Param("rate", 30.0, "d", min=0.0, min_exclusive=True)
    assert rate.kind is float and rate.problem(30) == ""
    assert schema("n", [rate]).validate({"rate": 30}) == {"rate": 30.0}
    assert type(schema("n", [rate]).validate({"rate": 30})["rate"]) is float
    assert "allowed: double > 0" in rate.problem(True)  # a bool is not a number here
    assert "allowed: double > 0" in rate.problem("30")
    count = Param("count", 3, "d", min=1)
    assert count.problem(3.0) and count.problem(True) and count.problem(3) == ""
    name = Param("name", "a", "d")
    assert "(an integer)" in name.problem(5) and "-p name:=\"'5'\"" in name.problem(5)  # the quoting hint
    assert Param("xs", [0.0, 1.0], "d").problem([1, 2]) == ""  # integers in a double array
    assert Param("xs", [0.0, 1.0], "d").problem([1.0, float("inf")])
    assert Param("ns", [1, 2], "d").problem([1.0])
    assert Param("ss", ["a"], "d").problem(["a", 1])
    assert Param("ss", [], "d", dynamic_typing=True).kind == "str_list"
    with pytest.raises(ValueError, match="empty array default needs dynamic_typing"):
        Param("fs", [], "d")


def test_bounds_and_choices_are_checked_and_described():
    p = Param("fps", 30.0, "d", min=0.0, min_exclusive=True)
    assert p.allowed() == "double > 0"
    assert p.problem(0.0) == "is 0.0; allowed: double > 0" and p.problem(1e-12) == ""
    assert "finite" in p.problem(float("inf")) and "finite" in p.problem(float("nan"))
    q = Param("frac", 0.5, "d", min=0.0, max=1.0)
    assert q.allowed() == "double in [0, 1]" and q.problem(0.0) == "" and q.problem(1.0) == ""
    assert q.problem(-0.1) and q.problem(1.01)
    assert Param("s", 0.5, "d", min=0.0, max=1.0, min_exclusive=True).allowed() == "double in (0, 1]"
    assert Param("n", 4, "d", min=1).allowed() == "integer >= 1"
    assert Param("n", 4, "d", max=10).allowed() == "integer <= 10"
    assert Param("t", 0.123456789, "d", min=0.123456789).allowed() == "double >= 0.123456789"  # not rounded
    mode = Param("mode", "a", "d", choices=("a", "b"))
    assert mode.allowed() == "one of a, b" and mode.problem("c") == "is 'c'; allowed: one of a, b"
    cams = Param("cameras", ["front"], "d", choices=("front", "wrist"))
    assert cams.problem(["wrist", "front"]) == "" and cams.problem([]) == ""
    assert cams.problem(["top", "front"]) == "has 'top'; allowed: string array of: front, wrist"


def test_validate_names_every_bad_parameter_and_unknown_names():
    s = schema("node_x", [Param("a", 1, "d", min=0), Param("b", "x", "d", choices=("x", "y")), Param("c", True, "d")])
    assert s.validate({}) == {"a": 1, "b": "x", "c": True}
    with pytest.raises(ParameterError) as err:
        s.validate({"a": -1, "b": "z", "c": True, "d": 3})
    text = str(err.value)
    assert text.startswith("node_x: ") and "\n" not in text
    assert "parameter a is -1; allowed: integer >= 0" in text
    assert "parameter b is 'z'; allowed: one of x, y" in text
    assert "unknown parameter 'd'" in text and "parameter c" not in text
    with pytest.raises(ParameterError, match="^left_x: "):
        s.validate({"a": -1}, node="left_x")


TRICKY = schema("tricky", [
    Param("small", 1e-05, "d"), Param("huge", 1e300, "d"), Param("neg", -2.5e-10, "d"), Param("whole", 3.0, "d"),
    Param("yes_text", "yes", "d"), Param("on_text", "on", "d"), Param("num", "0", "d"), Param("colons", "1:20", "d"),
    Param("addr", "127.0.0.1:8080", "d"), Param("empty", "", "d"), Param("hash", "a # b", "d"),
    Param("pattern", "/camera/{name}/image_raw", "d"), Param("quote", "it's", "d"), Param("null_text", "null", "d"),
    Param("flag", False, "d"), Param("count", -3, "d"), Param("names", ["front", "true", "1"], "d"),
    Param("xs", [0.0, 1e-05, -2.0], "d"), Param("ns", [1, 2], "d"),
], title="a schema whose defaults are easy to write wrong")


def test_render_yaml_reads_back_as_the_same_values_and_types():
    text = render_yaml(TRICKY, header=("first header line", ""), key="/**/tricky")
    data = yaml.safe_load(text)
    assert list(data) == ["/**/tricky"]
    values = data["/**/tricky"]["ros__parameters"]
    assert list(values) == TRICKY.names()
    for p in TRICKY:
        assert values[p.name] == p.default and type(values[p.name]) is type(p.default), p.name
        if isinstance(p.default, list):
            assert [type(x) for x in values[p.name]] == [type(x) for x in p.default], p.name
    lines = text.splitlines()
    assert lines[0] == "# a schema whose defaults are easy to write wrong"
    assert "# first header line" in lines and "#" in lines
    assert max(len(line) for line in lines if line.startswith("    #")) <= 100
    assert "\ntricky:\n  ros__parameters:\n" in render_yaml(TRICKY)


def test_render_yaml_comments_say_what_each_parameter_accepts():
    s = schema("n", [Param("rate", 5.0, "loop rate", min=0.0, min_exclusive=True, unit="Hz"),
                     Param("task", "", "what to do", read_only=False)])
    text = render_yaml(s, values={"rate": 7})
    assert "    # loop rate [double > 0, Hz]\n    rate: 7.0\n" in text
    assert "    # what to do [string, settable at run time]\n    task: \"\"\n" in text
    with pytest.raises(ParameterError, match="parameter rate is 0"):
        render_yaml(s, values={"rate": 0})


# -- the registry and the generated config files ---------------------------------------------
ENTRIES = list(registry.REGISTRY)
CONFIG_ENTRIES = registry.with_config()


def test_every_node_file_under_config_is_generated_and_every_declaring_module_is_registered():
    generated = {e.config for e in CONFIG_ENTRIES}
    node_files = {p.name for p in CONFIG.glob("*.yaml")} - {"controllers.yaml"}  # ros2_control's, not ours
    assert node_files == generated
    declaring = set()
    for package in ("so100_bringup", "vla_policy_node", "so100_common"):
        for path in (REPO / package).rglob("*.py"):
            if "declare_params(self" in path.read_text():
                declaring.add(".".join(path.relative_to(REPO).with_suffix("").parts))
    assert declaring and declaring <= {e.module for e in ENTRIES}, declaring - {e.module for e in ENTRIES}


@pytest.mark.parametrize("entry", CONFIG_ENTRIES, ids=lambda e: e.config)
def test_config_file_is_what_the_schema_renders(entry):
    params = registry.load_schema(entry)
    expected = registry.render(entry, params)
    actual = (CONFIG / entry.config).read_text()
    assert actual == expected, (f"config/{entry.config} differs from {entry.module}.PARAMS; regenerate it with "
                                "python -m so100_bringup.node_params --write")
    key = entry.key or params.node
    assert key.rsplit("/", 1)[-1] == params.node  # the file's section is this node's
    assert yaml.safe_load(actual)[key]["ros__parameters"] == params.defaults()


def test_check_and_write_commands(tmp_path, capsys):
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    checked = [e.config for e in CONFIG_ENTRIES]
    assert "policy.yaml" in checked
    assert registry.main(["--check", "--config-dir", str(config)]) == 0
    (config / "policy.yaml").write_text((config / "policy.yaml").read_text().replace("fps: 30.0", "fps: 15.0"))
    (config / "leader_arm.yaml").unlink()
    capsys.readouterr()
    assert registry.main(["--check", "--diff", "--config-dir", str(config)]) == 1
    out = capsys.readouterr().out
    assert str(config / "policy.yaml") in out and str(config / "leader_arm.yaml") in out
    assert "-    fps: 15.0\n+    fps: 30.0" in out and "recorder.yaml" not in out
    assert registry.main(["--write", "--config-dir", str(config)]) == 0
    assert registry.main(["--check", "--config-dir", str(config)]) == 0
    for name in checked:
        assert (config / name).read_text() == (CONFIG / name).read_text()


def test_recorder_video_codecs_are_lerobots():
    video = pytest.importorskip("lerobot.configs.video", reason="lerobot not installed")
    from so100_bringup.recorder.node import PARAMS, VIDEO_CODECS

    assert set(VIDEO_CODECS) == set(video.VALID_VIDEO_CODECS) | set(video.VIDEO_CODECS_ALIASES)
    assert PARAMS["video_codec"].choices == VIDEO_CODECS


def test_policy_end_effector_choices_are_ee_actions():
    try:
        from vla_policy_node import ee_actions
    except ImportError as exc:  # its IK stack is optional
        pytest.skip(f"vla_policy_node.ee_actions does not import: {exc}")
    from vla_policy_node.node import PARAMS

    assert PARAMS["ee_gripper_unit"].choices == tuple(ee_actions.GRIPPER_UNITS)
    assert PARAMS["ee_orientation"].choices == tuple(ee_actions.ORIENTATION_MODES)


# -- ROS: declare_params, start-up and run-time checks ---------------------------------------
@pytest.fixture(scope="module")
def ctx():
    rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (make setup installs the ROS 2 Jazzy wheels)")
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.try_shutdown(context=context)


def _plain_node(ctx, name="params_test", overrides=(), args=None):
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    return Node(name, context=ctx, cli_args=args,
                parameter_overrides=[Parameter(k, value=v) for k, v in dict(overrides).items()])


@pytest.mark.parametrize("entry", CONFIG_ENTRIES, ids=lambda e: e.config)
def test_generated_files_load_in_ros_as_the_defaults_with_their_types(ctx, entry):
    """rcl's own YAML parser (not PyYAML) reads the file: every value arrives with the schema's
    type, so declaring the parameters with the file accepts all of them."""
    from so100_common.ros_node import declare_params

    params = registry.load_schema(entry)
    node = _plain_node(ctx, params.node, args=["--ros-args", "--params-file", str(CONFIG / entry.config)])
    try:
        assert set(node._parameter_overrides) >= set(params.names())
        assert declare_params(node, params) == params.defaults()
        for p in params:
            assert type(node.get_parameter(p.name).value) is type(p.default) or isinstance(p.default, list), p.name
    finally:
        node.destroy_node()


def test_declare_params_types_ranges_and_overrides(ctx):
    from rcl_interfaces.msg import ParameterType
    from rclpy.parameter import Parameter

    from so100_common.ros_node import declare_params

    s = schema("typed", [Param("rate", 10.0, "loop rate", min=0.0, min_exclusive=True, unit="Hz"),
                         Param("count", 3, "how many", min=1, max=9),
                         Param("names", ["a"], "some names"), Param("xs", [0.5], "some numbers"),
                         Param("mode", "a", "a mode", choices=("a", "b"))])
    node = _plain_node(ctx, overrides={"rate": 30, "xs": [1, 2], "typo_rate": 3.0},
                       args=["--ros-args", "-p", "names:=[]"])
    try:
        values = declare_params(node, s)
        assert values == {"rate": 30.0, "count": 3, "names": [], "xs": [1.0, 2.0], "mode": "a"}
        assert type(values["rate"]) is float
        assert node.get_parameter("rate").type_ == Parameter.Type.DOUBLE  # -p rate:=30 is the double 30.0
        d = node.describe_parameter("rate")
        assert d.type == ParameterType.PARAMETER_DOUBLE and d.read_only
        assert d.floating_point_range[0].from_value > 0.0 and "double > 0, Hz" in d.description
        c = node.describe_parameter("count")
        assert (c.integer_range[0].from_value, c.integer_range[0].to_value) == (1, 9)
        assert "one of a, b" in node.describe_parameter("mode").additional_constraints
    finally:
        node.destroy_node()


def test_declare_params_reports_every_bad_value_at_once(ctx):
    from so100_common.ros_node import declare_params

    s = schema("typed", [Param("rate", 10.0, "d", min=0.0, min_exclusive=True), Param("count", 3, "d", min=1),
                         Param("mode", "a", "d", choices=("a", "b")), Param("ok", True, "d")])
    node = _plain_node(ctx, "renamed_node", overrides={"rate": "fast", "count": 0, "mode": "c"})
    try:
        with pytest.raises(ParameterError) as err:
            declare_params(node, s)
        text = str(err.value)
        assert text.startswith("renamed_node: ") and "\n" not in text
        assert "parameter rate is 'fast' (a string); allowed: double > 0" in text
        assert "parameter count is 0; allowed: integer >= 1" in text
        assert "parameter mode is 'c'; allowed: one of a, b" in text
        assert not node.has_parameter("rate")  # refused before anything was declared
    finally:
        node.destroy_node()


def test_run_time_sets_are_checked_and_only_accepted_ones_reach_on_change(ctx):
    from rcl_interfaces.msg import SetParametersResult
    from rclpy.parameter import Parameter

    from so100_common.ros_node import declare_params

    s = schema("dyn", [Param("gain", 0.5, "d", min=0.0, max=1.0, read_only=False),
                       Param("mode", "a", "d", choices=("a", "b"), read_only=False),
                       Param("rate", 10.0, "d", min=0.0, min_exclusive=True)])
    seen: list[dict] = []
    node = _plain_node(ctx)
    try:
        declare_params(node, s, on_change=seen.append)
        applied: list[str] = []
        # a callback the node adds later runs before the schema check: it must not apply values itself
        node.add_on_set_parameters_callback(lambda ps: (applied.extend(p.name for p in ps),
                                                        SetParametersResult(successful=True))[1])

        def set_(name, value):
            return node.set_parameters([Parameter(name, value=value)])[0]

        for name, value in (("gain", 1.5), ("gain", -0.1), ("gain", "high"), ("mode", "c"), ("mode", 1),
                            ("rate", 20.0)):
            result = set_(name, value)
            assert not result.successful, (name, value)
            assert result.reason, (name, value)
        assert "allowed: one of a, b" in set_("mode", "c").reason
        assert "read-only" in set_("rate", 20.0).reason
        assert seen == [] and node.get_parameter("gain").value == 0.5 and node.get_parameter("mode").value == "a"
        assert set_("gain", 0.75).successful and set_("mode", "b").successful
        assert set_("gain", 1).successful  # an integer for a double (widened before the type check)
        assert seen == [{"gain": 0.75}, {"mode": "b"}, {"gain": 1.0}]
        assert node.get_parameter("gain").value == 1.0 and node.get_parameter("mode").value == "b"
    finally:
        node.destroy_node()


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.label)
def test_run_time_sets_of_every_registered_schema(ctx, entry):
    """Declared on a plain node: read-only parameters refuse any set; dynamic ones refuse the
    schema's bad values (and take a good one)."""
    from rclpy.parameter import Parameter

    from so100_common.ros_node import declare_params

    params = registry.load_schema(entry)
    node = _plain_node(ctx, params.node)
    try:
        declare_params(node, params)
        for p in params:
            if p.read_only:
                result = node.set_parameters([Parameter(p.name, value=p.default)])[0]
                assert not result.successful and "read-only" in result.reason, p.name
                continue
            for value, _why in bad_values(p):
                result = node.set_parameters([Parameter(p.name, value=value)])[0]
                assert not result.successful, (p.name, value)
            assert node.set_parameters([Parameter(p.name, value=p.default)])[0].successful, p.name
    finally:
        node.destroy_node()


def bad_values(p: Param) -> list[tuple[object, str]]:
    """(value, what it tests) for one parameter, from its schema entry: outside each bound,
    outside its choices, and one value of a wrong type."""
    out: list[tuple[object, str]] = []
    if p.min is not None:
        out.append((p.min if p.min_exclusive else (p.min - 1 if p.kind is int else p.min - 0.5), "below min"))
    if p.max is not None:
        out.append((p.max + 1 if p.kind is int else p.max + 0.5, "above max"))
    if p.choices is not None:
        unknown = {str: "not-a-choice", int: -12345, float: -12345.5}
        if p.kind in unknown:
            out.append((unknown[p.kind], "not a choice"))
        elif p.kind == "str_list":
            out.append((["not-a-choice"], "not a choice"))
    wrong = {bool: "maybe", int: 2.5, float: "fast", str: 7, "str_list": 3, "float_list": "x", "int_list": [0.5]}
    out.append((wrong[p.kind], "wrong type"))
    return out


def startup_cases():
    """(entry, parameter, value, what) for every registered node."""
    cases = []
    for entry in ENTRIES:
        try:
            params = registry.load_schema(entry)
        except Exception as exc:  # noqa: BLE001 - a module that does not import fails its own case
            cases.append(pytest.param(entry, exc, None, "import", id=f"{entry.label}-import"))
            continue
        seen_types = set()
        for p in params:
            for value, what in bad_values(p):
                if what == "wrong type":  # one wrong-type case per parameter type and node
                    if p.kind in seen_types:
                        continue
                    seen_types.add(p.kind)
                cases.append(pytest.param(entry, p, value, what, id=f"{params.node}-{p.name}-{what.replace(' ', '_')}"))
    return cases


@pytest.mark.parametrize("entry,param,value,what", startup_cases())
def test_bad_startup_value_stops_the_node_in_declare_params(ctx, entry, param, value, what):
    from rclpy.parameter import Parameter

    if isinstance(param, Exception):
        raise param
    cls = registry.node_class(entry)
    with pytest.raises(ParameterError) as err:
        node = cls(context=ctx, parameter_overrides=[Parameter(param.name, value=value)])
        node.destroy_node()  # not reached when the value is refused
    text = str(err.value)
    assert f"parameter {param.name} " in text and f"allowed: {param.allowed()}" in text, text
    assert "\n" not in text
    frames = [f.name for f in traceback.extract_tb(err.value.__traceback__)]
    assert "declare_params" in frames, f"{what}: raised outside declare_params: {frames}"


def _script(name: str) -> Path:
    path = Path(sys.executable).parent / name
    if not path.is_file():
        pytest.skip(f"console script {name} not installed (make setup)")
    return path


@pytest.mark.parametrize("script,args,names", [
    ("vla_policy_node", ["-p", "fps:=0.0"], ["parameter fps is 0.0", "allowed: double > 0"]),
    ("vla_policy_node", ["-p", "fps:=0", "-p", "image_resize:=stretch"],
     ["parameter fps is 0.0", "parameter image_resize is 'stretch'; allowed: one of resize, crop"]),
    ("so100_leader_arm", ["-p", "rate_hz:=-5.0", "-p", "port:=/nonexistent/port"],
     ["leader_arm: parameter rate_hz is -5.0; allowed: double > 0"]),
])
def test_console_script_prints_one_line_and_exits_2(script, args, names):
    # the source tree first: an editable install made before a package was added does not map it
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
    proc = subprocess.run([str(_script(script)), "--ros-args", *args], env=env, capture_output=True, text=True,
                          timeout=120)
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.stdout, err)
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len(err.splitlines()) == 1, err
    for name in names:
        assert name in err, err


@pytest.mark.slow
def test_policy_node_task_is_set_at_run_time_and_the_rest_is_read_only(ctx, tmp_path):
    """The real policy node: `task` reaches the observation builder when set at run time (and
    a wrong type does not); every other parameter refuses a run-time set."""
    pytest.importorskip("lerobot", reason="lerobot is not installed (pip install so100_vla[policy])")
    from rclpy.parameter import Parameter

    from so100_bringup.learning.random_act import make_random_act
    from vla_policy_node.node import PARAMS, PolicyNode

    assert [p.name for p in PARAMS.dynamic()] == ["task"]
    path = make_random_act(tmp_path / "act", cameras=("front",), image_hw=(48, 64), chunk_size=5)
    node = PolicyNode(context=ctx, parameter_overrides=[Parameter("policy_path", value=str(path)),
                                                        Parameter("task", value="first")])
    try:
        assert node.builder.task == "first"
        assert node.set_parameters([Parameter("task", value="pick the red cube")])[0].successful
        assert node.builder.task == "pick the red cube"
        assert not node.set_parameters([Parameter("task", value=3)])[0].successful
        assert node.builder.task == "pick the red cube"
        for name in ("fps", "policy_path", "velocity_scale"):
            result = node.set_parameters([Parameter(name, value=node.get_parameter(name).value)])[0]
            assert not result.successful and "read-only" in result.reason
    finally:
        node.destroy_node()
