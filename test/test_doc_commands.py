"""Every shell command in README.md and docs/*.md is checked here, or marked as not runnable here.

The commands are taken from the ```bash blocks. A command of this package is checked without
running it, as far as it can be on a machine without the arm or a full ROS install:
- argparse tools (console scripts, `python -m` modules): main() runs up to its parse_args, so
  every flag must be accepted;
- ROS nodes (`--ros-args`): each `-p name:=value` must be a parameter of the node's PARAMS schema
  with a valid value, and each `--params-file` must exist;
- `python -m so100_bringup.launch_plan` and `ros2 launch so100_vla <file>`: the arguments must
  give a plan (launch_plan, plain Python);
- `make <target>`: the target exists, and DEMO_ARGS parse as so100_demo arguments;
- lerobot's draccus CLIs: their config class parses the flags.
A command that cannot be checked must carry one of MARKERS in a comment, on its line or on a
comment line above it in the same paragraph of the block. The marker tells the reader why it
does not run on a plain pip machine, and this test checks what it can of it: the program exists.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import importlib.util
import io
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
import yaml

from so100_bringup import launch_plan as lp

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_LANGS = {"bash", "sh", "shell"}
VENV_BIN = Path(sys.executable).parent

# Why a command cannot run on the pip-only test machine. The docs write them as comments.
MARKERS = {
    "full ROS machine": "ROS 2 Jazzy from apt (ros2, colcon, rosdep, launch, ros2_control, MoveIt, Gazebo): not "
                        "installable here",
    "needs the arm": "talks to a real SO-100/SO-101 (serial port, leader arm, cameras)",
    "needs the hub": "downloads from the Hugging Face hub; the tests run offline",
}
# Programs that are not this package's and have no check here: only with a marker.
MARKED_ONLY = {
    "ros2": "full ROS machine", "colcon": "full ROS machine", "rosdep": "full ROS machine",
    "source": "full ROS machine", "cd": "", "git": "", "pip": "", "ls": "", "sudo": "",
    "lerobot-record": "needs the arm", "hf": "needs the hub",
}
# lerobot's draccus CLIs (python -m module): the config class their main parses.
DRACCUS = {"lerobot.async_inference.policy_server": ("lerobot.async_inference.configs", "PolicyServerConfig")}
ROS_BUILTIN_PARAMS = {"use_sim_time"}  # every rclpy node has it
MAKE_VARIABLES = {"DEMO_ARGS": "so100_demo", "PYTEST_ARGS": None}


@dataclass
class Command:
    doc: str
    line: int
    argv: list[str]
    marker: str | None

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: {shlex.join(self.argv)}"


def fenced_blocks(text: str) -> list[tuple[str, int, list[str]]]:
    """(language, line number of the first body line, body lines) of every ``` block."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        opening = re.match(r"^\s*```(\S*)\s*$", lines[i])
        if not opening:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not re.match(r"^\s*```\s*$", lines[j]):
            j += 1
        out.append((opening.group(1), i + 2, lines[i + 1:j]))
        i = j + 1
    return out


def _marker(text: str) -> str | None:
    comment = text.partition("#")[2] if "#" in text else ""
    return next((m for m in MARKERS if m in comment), None)


def _simple_commands(line: str) -> list[list[str]]:
    """The simple commands of a shell line (split at &&, ||, ;, |, &), comments removed.
    Placeholders such as <leader calibration json> become one word."""
    line = re.sub(r"<[^<>]*>", "PLACEHOLDER", line)
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    commands, current = [], []
    for token in lexer:
        if token and set(token) <= set(";&|"):
            commands.append(current)
            current = []
        else:
            current.append(token)
    return [c for c in [*commands, current] if c]


def shell_commands(doc: str, text: str) -> list[Command]:
    out = []
    for lang, first, body in fenced_blocks(text):
        if lang not in SHELL_LANGS:
            continue
        block_marker, i = None, 0
        while i < len(body):
            start, line = i, body[i]
            while line.rstrip().endswith("\\") and i + 1 < len(body):
                i += 1
                line = line.rstrip()[:-1] + " " + body[i].strip()
            i += 1
            stripped = line.strip()
            if not stripped:
                block_marker = None  # a comment's marker covers its paragraph
                continue
            if stripped.startswith("#"):
                block_marker = _marker(stripped) or block_marker
                continue
            marker = _marker(line) or block_marker
            out.extend(Command(doc, first + start, argv, marker) for argv in _simple_commands(line))
    return out


def all_commands() -> list[Command]:
    return [c for path in DOCS for c in shell_commands(str(path.relative_to(REPO)), path.read_text())]


def console_scripts() -> dict[str, str]:
    """name -> 'module:function' from setup.py's console_scripts (AST, without running setup)."""
    scripts = {}
    for node in ast.walk(ast.parse((REPO / "setup.py").read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(
                r"[\w-]+ = [\w.]+:\w+", node.value):
            name, _, target = node.value.partition(" = ")
            scripts[name] = target
    return scripts


def make_targets() -> set[str]:
    return set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.MULTILINE))


# -- checks -------------------------------------------------------------------------------------
class _Parsed(BaseException):
    """Raised by the patched parse_args: the arguments were accepted; stop before any work."""


def check_argparse(main, argv: list[str], what: str) -> None:
    original = argparse.ArgumentParser.parse_args

    def parse_only(self, args=None, namespace=None):
        original(self, args, namespace)
        raise _Parsed

    stderr = io.StringIO()
    with mock.patch.object(argparse.ArgumentParser, "parse_args", parse_only), contextlib.redirect_stderr(stderr):
        try:
            main(argv)
        except _Parsed:
            return
        except SystemExit as exc:
            raise AssertionError(f"{what}: its arguments are refused (exit {exc.code}): "
                                 f"{stderr.getvalue().strip()}") from None
    raise AssertionError(f"{what}: main() returned without parsing its arguments with argparse")


def check_ros_args(schema, argv: list[str], what: str) -> None:
    """A node's command line: nothing but ROS arguments, parameters the node declares."""
    if not argv:
        return
    assert argv[0] == "--ros-args", f"{what}: a node takes only ROS arguments (--ros-args ...), got {argv[0]!r}"
    tokens = iter(argv[1:])
    for token in tokens:
        if token in ("-p", "--param"):
            name, sep, text = next(tokens, "").partition(":=")
            assert sep, f"{what}: -p needs name:=value"
            if name in ROS_BUILTIN_PARAMS:
                continue
            assert name in schema, f"{what}: the node has no parameter {name!r} (it has: {', '.join(schema.names())})"
            value = yaml.safe_load(text) if text else ""  # ROS reads -p values as YAML
            problem = schema[name].problem(value)
            assert not problem, f"{what}: parameter {name} {problem}"
        elif token == "--params-file":
            path = next(tokens, "")
            assert (REPO / path).is_file(), f"{what}: parameter file {path} does not exist"
        elif token in ("-r", "--remap"):
            assert ":=" in next(tokens, ""), f"{what}: -r needs from:=to"
        elif token == "--log-level":
            next(tokens, None)
        else:
            raise AssertionError(f"{what}: unknown ROS argument {token!r}")


def _launch_values(argv: list[str], flags: set[str], what: str) -> dict[str, str]:
    unknown = [a for a in argv if ":=" not in a and a not in flags]
    assert not unknown, f"{what}: {unknown} are not name:=value launch arguments"
    return dict(a.split(":=", 1) for a in argv if ":=" in a)


def check_module(module: str, argv: list[str], what: str) -> None:
    """A module of this package run as a program (console script or python -m)."""
    if module == "so100_bringup.launch_plan":  # not argparse: name:=value, and --run
        lp.bringup_plan(lp.parse_args(_launch_values(argv, {"--run"}, what)))
        return
    from so100_common.params import ParamSchema

    if importlib.util.find_spec(module) is None:
        raise AssertionError(f"{what}: module {module} does not exist")
    loaded = importlib.import_module(module)
    if isinstance(getattr(loaded, "PARAMS", None), ParamSchema):
        check_ros_args(loaded.PARAMS, argv, what)
    else:
        check_argparse(loaded.main, argv, what)


def check_make(argv: list[str], what: str) -> None:
    targets = [a for a in argv if "=" not in a]
    assert targets and set(targets) <= make_targets(), f"{what}: no such Makefile target(s) {targets}"
    for assignment in (a for a in argv if "=" in a):
        name, _, value = assignment.partition("=")
        assert name in MAKE_VARIABLES, f"{what}: the Makefile does not use {name}"
        script = MAKE_VARIABLES[name]
        if script:
            module, _, _ = console_scripts()[script].partition(":")
            check_module(module, shlex.split(value), f"{what} ({script} {value})")


def check_ros2(argv: list[str], what: str) -> None:
    if argv[1:3] == ["launch", lp.PACKAGE]:
        launch_file = argv[3]
        assert launch_file in lp.LAUNCH_FILES, f"{what}: no launch file {launch_file} (has {sorted(lp.LAUNCH_FILES)})"
        values = _launch_values(argv[4:], {"--show-args", "-s"}, what)
        lp.plan_for_launch_file(launch_file, values)  # a refused or invalid argument raises


def check_command(cmd: Command) -> None:
    what = str(cmd)
    program, args = re.sub(r"^(\.venv|\$VENV)/bin/", "", cmd.argv[0]), cmd.argv[1:]
    if program in MARKED_ONLY:
        assert cmd.marker, (f"{what}: {program} cannot run on the test machine; mark it with a comment "
                            f"naming one of {sorted(MARKERS)}")
        needed = MARKED_ONLY[program]
        assert not needed or cmd.marker == needed, f"{what}: mark it `# {needed}`"
        if program == "ros2":
            check_ros2(cmd.argv, what)
        elif "-" in program:  # a console script of another package (lerobot-record, ...)
            assert (VENV_BIN / program).is_file(), f"{what}: {program} is not installed with this package"
        return
    if program in ("python", "python3"):
        assert args[:1] == ["-m"] and len(args) > 1, f"{what}: run modules with python -m"
        module, rest = args[1], args[2:]
        if module in DRACCUS:
            draccus = pytest.importorskip("draccus", reason="lerobot is not installed (make setup)")

            config_module, config_class = DRACCUS[module]
            with contextlib.redirect_stderr(io.StringIO()) as err:
                try:
                    draccus.parse(getattr(importlib.import_module(config_module), config_class), args=rest)
                except SystemExit:
                    raise AssertionError(f"{what}: refused: {err.getvalue().strip()}") from None
            return
        assert module.split(".")[0] in ("so100_common", "so100_description", "so100_bringup", "vla_policy_node"), \
            f"{what}: {module} is not this package's: add it to DRACCUS or mark the command"
        check_module(module, rest, what)
        return
    if program == "make":
        check_make(args, what)
        return
    scripts = console_scripts()
    if program in scripts:
        check_module(scripts[program].partition(":")[0], args, what)
        return
    raise AssertionError(f"{what}: unknown program {program!r}: a console script of setup.py, python -m, make, "
                         f"or one of {sorted(MARKED_ONLY)} with a marker")


COMMANDS = all_commands()


def test_the_docs_have_commands():
    assert len(COMMANDS) > 40
    assert {c.doc for c in COMMANDS} >= {"README.md", "docs/launch.md", "docs/learning_loop.md", "docs/real_arm.md"}


@pytest.mark.parametrize("cmd", COMMANDS, ids=[f"{c.doc}:{c.line}:{c.argv[0].split('/')[-1]}" for c in COMMANDS])
def test_doc_command_is_checked_or_marked(cmd):
    check_command(cmd)


def test_no_command_hides_outside_a_bash_block():
    """A command in an unlabelled block would not be checked: label the block bash."""
    programs = {*console_scripts(), *MARKED_ONLY, "python", "python3", "make"}
    hidden = []
    for path in DOCS:
        for lang, first, body in fenced_blocks(path.read_text()):
            if lang in SHELL_LANGS or lang == "python":
                continue
            for offset, line in enumerate(body):
                words = line.split()
                if re.search(r"[─│┌└▶◀]", line):  # a drawing of the node graph
                    continue
                if words and re.sub(r"^\.venv/bin/", "", words[0]) in programs:
                    hidden.append(f"{path.relative_to(REPO)}:{first + offset}: {line.strip()}")
    assert not hidden, "label these blocks ```bash:\n" + "\n".join(hidden)


PLANTED = """
```bash
# full ROS machine
ros2 launch so100_vla real.launch.py port:=/dev/ttyACM0
cd ~/ws && colcon build

so100_train --dataset-root d --output-dir o \\
    --policy-type diffusion   # a comment
ls /dev/serial/by-id/   # needs the arm
python -m so100_bringup.recorder.node --ros-args -p calibration_file:=<follower json> &
```
```
make demo
```
"""


def test_the_extractor_finds_commands_markers_and_continuations():
    found = shell_commands("planted.md", PLANTED)
    assert [(c.line, c.argv[0], c.marker) for c in found] == [
        (4, "ros2", "full ROS machine"), (5, "cd", "full ROS machine"), (5, "colcon", "full ROS machine"),
        (7, "so100_train", None), (9, "ls", "needs the arm"), (10, "python", None)]
    assert found[3].argv[-2:] == ["--policy-type", "diffusion"]
    assert found[5].argv[-1] == "calibration_file:=PLACEHOLDER"


@pytest.mark.parametrize("line, match", [
    ("so100_train --dataset-root d --output-dir o --no-such-flag", "refused"),
    ("so100_driver --ros-args -p no_such_param:=1", "no parameter 'no_such_param'"),
    ("so100_driver --ros-args -p port:=1.5", "parameter port"),
    ("so100_driver --ros-args --params-file config/nope.yaml", "does not exist"),
    ("vla_policy_node --verbose", "only ROS arguments"),
    ("python -m so100_bringup.launch_plan hardware:=hololens", "hardware"),
    ("ros2 launch so100_vla policy.launch.py moveit:=true   # full ROS machine", "does not take moveit"),
    ("ros2 topic list", "mark it"),
    ("make deploy", "no such Makefile target"),
    ("make demo DEMO_ARGS='--polcy x'", "refused"),
    ("so100_frobnicate --now", "unknown program"),
    ("python -m lerobot.async_inference.policy_server --hots=0.0.0.0", "refused"),
])
def test_the_checks_catch_bad_commands(line, match):
    if "policy_server" in line:
        pytest.importorskip("draccus", reason="lerobot is not installed (make setup)")
    (cmd,) = shell_commands("planted.md", f"```bash\n{line}\n```\n")
    with pytest.raises((AssertionError, ValueError), match=match):
        check_command(cmd)
