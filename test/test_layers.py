"""Import layering of the suite (docs/architecture.md), checked on the source with `ast` only.

Nothing of the suite is imported here, so this runs in well under a second without torch,
mujoco or rclpy. Every import counts: module level, inside functions, methods, `if`/`try`
blocks (lazy imports), relative imports (resolved to absolute names), `from pkg import mod`
(resolved to the submodule when it is one) and `importlib.import_module("literal")` /
`__import__("literal")` calls.

Checks:
  * every suite module has a layer in LAYER_RULES ("assign <module> to a layer");
  * package order: so100_common, so100_description  <  vla_policy_node  <  so100_bringup  <
    launch/*.py; the two bottom packages are independent of each other;
  * layers: a module imports modules of its own layer or below, never above; a package's
    `__init__` is not above any module inside it (importing a submodule runs its parents);
  * plain-Python cores (layers 0-2) import no rclpy and no ROS interface package, lazily or not
    (duck-typed use of message objects needs no import and is fine);
  * every import of a suite module names a module that exists (stale names after a move).
"""
from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Package order, bottom first. Same rank = independent: neither may import the other.
PACKAGE_RANK = {
    "so100_common": 0,
    "so100_description": 0,
    "vla_policy_node": 1,
    "so100_bringup": 2,
    "launch": 3,  # the launch/*.py files (named "launch/<file>"), not ROS' `launch` package
}
SUITE_PACKAGES = ("so100_common", "so100_description", "vla_policy_node", "so100_bringup")

LAYER_NAMES = {0: "model", 1: "control & hardware", 2: "policy & task cores", 3: "ROS node shells",
               4: "tools"}
CORE_LAYERS = (0, 1, 2)  # must run without ROS

# Module-name patterns -> layer. "a.b" matches exactly a.b; "a.b.*" matches a.b and everything
# under it; "launch/" matches the launch files. The most specific rule wins (more dotted
# components; an exact rule beats a wildcard with the same base).
LAYER_RULES = {
    # 0 model: the robot and plain parameter schema; no hardware, no policy, no ROS runtime
    "so100_common": 0,  # package docstring only
    "so100_common.params": 0,
    "so100_description.*": 0,  # joints, limits, calibration units, ik, description, paths, moveit config
    # 1 control & hardware: plain Python that moves or simulates the arm, or converts its data
    "so100_bringup": 1,  # empty package; its lowest content is layer 1
    "so100_bringup.control.*": 1,  # trajectory follower, hardware interface, arm controller
    "so100_bringup.feetech.*": 1,  # registers, bus, arm, STS3215 emulator
    "so100_bringup.sim.*": 1,  # scene, physics, render (the cameras), gl, schedule
    "so100_common.images": 1,
    "vla_policy_node": 1,  # empty package; its lowest content is layer 1
    "vla_policy_node.chunking": 1,
    "vla_policy_node.safety": 1,
    # 2 policy & task cores: decide what the arm does next, or record what it did (no ROS)
    "vla_policy_node.observation": 2,
    "vla_policy_node.backends.*": 2,
    "vla_policy_node.runner": 2,
    "vla_policy_node.actions": 2,
    "vla_policy_node.ee_actions": 2,
    "so100_bringup.teleop": 2,  # package docstring only; holds a layer-2 core and layer-3 nodes
    "so100_bringup.teleop.expert": 2,  # scripted demonstrator, the core of teleop.expert_node
    "so100_bringup.recorder": 2,  # package docstring only
    "so100_bringup.recorder.core": 2,  # frames -> LeRobot dataset, the core of recorder.node
    "so100_bringup.recorder.bag_io": 2,  # rosbag2 read/write through rosbags (no rclpy)
    "so100_bringup.recorder.bag_to_dataset": 2,  # bag -> dataset by the recorder's rules (so100_bag2lerobot)
    "so100_bringup.recorder.dataset_to_bag": 2,  # dataset -> MCAP bag (so100_lerobot2bag)
    "so100_bringup.viewer": 2,  # package docstring only; holds a layer-2 core, a layer-3 node, a layer-4 helper
    "so100_bringup.viewer.log": 2,  # topics' values -> Rerun entities, the core of viewer.node
    # 3 ROS node shells: modules that define rclpy nodes or rclpy helpers
    "so100_common.ros_node": 3,
    "so100_common.ros_images": 3,  # cv_bridge when installed
    "so100_description.moveit.ik": 3,  # MoveIt's IK (moveit_py, a ROS client) and the backend choice
    "so100_bringup.follower_ros": 3,
    "so100_bringup.driver_node": 3,
    "so100_bringup.sim.node": 3,
    "so100_bringup.node_params": 4,  # config/*.yaml generated from the node schemas
    "vla_policy_node.node": 3,
    "so100_bringup.recorder.node": 3,
    "so100_bringup.teleop.expert_node": 3,
    "so100_bringup.teleop.leader": 3,  # leader-arm reader + its publisher node in one module
    "so100_bringup.viewer.node": 3,
    # 4 tools: command-line programs and helpers on top of everything
    "so100_bringup.demo": 4,
    "so100_bringup.demo_video": 4,  # VideoWriter, and the demo's two-camera video with its overlay
    "so100_bringup.learning.*": 4,  # train, evaluate, record_direct, record_sim, random_act
    "so100_bringup.learning.record_loop": 4,  # so100_record: lerobot-record's loop over the recorder node
    "so100_bringup.learning.bag2lerobot": 4,  # so100_bag2lerobot: command line over recorder.bag_to_dataset
    "so100_bringup.learning.lerobot2bag": 4,  # so100_lerobot2bag: command line over recorder.dataset_to_bag
    "so100_bringup.learning.keys": 4,  # operator keys from the terminal (record loop, real-arm evaluation)
    "so100_bringup.processes": 4,
    "so100_bringup.viewer.child": 4,  # the tools' --viewer option and the viewer node's command line
    "so100_bringup.launch_plan": 4,
    "so100_bringup.launch_support": 4,
    "so100_bringup.calibrate": 4,
    "so100_bringup.ctl": 4,  # so100_ctl: service calls and graph listing from a shell (rclpy)
    "so100_bringup.ros_client": 4,  # a tool's rclpy client: service calls, parameters, diagnostics, publishing
    "launch/": 4,
}

# Third-party names a core module (layers 0-2) must not import: the ROS client library, ROS
# interface packages, and ROS libraries that need them (cv_bridge imports sensor_msgs, moveit_py
# starts an rclcpp node, launch is the ROS launch system). ament_index_python is a plain file
# lookup and allowed.
ROS_MODULES = {"rclpy", "cv_bridge", "moveit",
               "launch", "launch_ros", "tf2_ros", "message_filters", "std_srvs", "rosgraph_msgs",
               "builtin_interfaces", "rcl_interfaces"}
ROS_SUFFIXES = ("_msgs", "_srvs", "_interfaces")


def is_ros_module(name: str) -> bool:
    top = name.split(".")[0]
    return top in ROS_MODULES or top.startswith("rosidl_") or top.endswith(ROS_SUFFIXES)


@dataclass(frozen=True)
class Import:
    path: str  # importing file, relative to the scanned root
    line: int
    importer: str  # importing module ("launch/<file>" for launch files)
    name: str  # absolute dotted name as imported (after resolving relative imports)
    target: str | None  # suite module it refers to; None: a third-party name
    unresolved: bool = False  # no such suite module: target is then its nearest existing parent

    def where(self) -> str:
        return f"{self.path}:{self.line}"


def module_name(root: Path, path: Path) -> str:
    rel = path.relative_to(root)
    if rel.parts[0] == "launch":
        return "launch/" + "/".join(rel.parts[1:])
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(root: Path) -> list[Path]:
    files = [p for pkg in SUITE_PACKAGES for p in (root / pkg).rglob("*.py")]
    files += (root / "launch").glob("*.py")
    return sorted(p for p in files if "__pycache__" not in p.parts)


class _Collector:
    """The imports of one file: `ast.walk` over every node, so imports at any depth count."""

    def __init__(self, known: set[str], rel: str, module: str) -> None:
        self.known, self.rel, self.module = known, rel, module
        self.is_package = rel.endswith("__init__.py")
        self.found: list[Import] = []

    def run(self, tree: ast.AST) -> list[Import]:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self._add(node, alias.name)
            elif isinstance(node, ast.ImportFrom):
                base = self._absolute(node.module, node.level)
                for alias in node.names:
                    self._add(node, base, alias.name)
            elif isinstance(node, ast.Call):
                name = self._import_call(node)
                if name:
                    self._add(node, name)
        # one entry per (line, module): `from a import x, y` names module a once
        return sorted(set(self.found), key=lambda i: (i.line, i.name))

    def _absolute(self, module: str | None, level: int) -> str:
        if level == 0:
            return module or ""
        if self.module.startswith("launch/"):
            raise ValueError("relative import in a launch file")
        package = self.module.split(".") if self.is_package else self.module.split(".")[:-1]
        if level > len(package):
            raise ValueError("relative import beyond the top-level package")
        base = package[:len(package) - (level - 1)]
        return ".".join(base + ([module] if module else []))

    def _import_call(self, node: ast.Call) -> str | None:
        """importlib.import_module("literal"[, package="literal"]) or __import__("literal")."""
        func = node.func
        fname = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if fname not in ("import_module", "__import__") or not node.args \
                or not isinstance(node.args[0], ast.Constant) or not isinstance(node.args[0].value, str):
            return None
        name = node.args[0].value
        if not name.startswith("."):
            return name
        package = next((k.value for k in node.keywords if k.arg == "package"),
                       node.args[1] if len(node.args) > 1 else None)
        if not (isinstance(package, ast.Constant) and isinstance(package.value, str)):
            return None
        level = len(name) - len(name.lstrip("."))
        parts = package.value.split(".")
        return ".".join(parts[:len(parts) - (level - 1)] + ([name.lstrip(".")] if name.lstrip(".") else []))

    def _add(self, node: ast.AST, name: str, member: str | None = None) -> None:
        """`name` imported (`member` from it, for `from name import member`)."""
        if not name:
            return
        if name.split(".")[0] not in SUITE_PACKAGES:
            self.found.append(Import(self.rel, node.lineno, self.module, name, None))
            return
        if member is not None and f"{name}.{member}" in self.known:
            name = f"{name}.{member}"  # from pkg import submodule
        parts = name.split(".")  # `import a.b.c` where only a.b exists: a stale name
        target = next((".".join(parts[:n]) for n in range(len(parts), 0, -1)
                       if ".".join(parts[:n]) in self.known), name)
        self.found.append(Import(self.rel, node.lineno, self.module, name, target,
                                 unresolved=target != name))


def collect(root: Path) -> tuple[list[str], list[Import]]:
    """(modules found, every import) of the suite under `root`."""
    files = source_files(root)
    modules = [module_name(root, path) for path in files]
    known = set(modules)
    imports, errors = [], []
    for path, module in zip(files, modules):
        rel = path.relative_to(root).as_posix()
        try:
            tree = ast.parse(path.read_bytes(), filename=rel)
            imports.extend(_Collector(known, rel, module).run(tree))
        except (SyntaxError, ValueError) as exc:
            errors.append(f"{rel}: {exc}")
    assert not errors, "cannot read:\n  " + "\n  ".join(errors)
    return modules, imports


# -- rules ----------------------------------------------------------------------------------

def layer_of(module: str) -> int | None:
    best: tuple[tuple[int, int], int] | None = None
    for pattern, layer in LAYER_RULES.items():
        if pattern.endswith("/"):
            hit, key = module.startswith(pattern), (0, 0)
        elif pattern.endswith(".*"):
            base = pattern[:-2]
            hit, key = module == base or module.startswith(base + "."), (base.count(".") + 1, 0)
        else:
            hit, key = module == pattern, (pattern.count(".") + 1, 1)
        if hit and (best is None or key > best[0]):
            best = (key, layer)
    return None if best is None else best[1]


def package_of(module: str) -> str:
    return "launch" if module.startswith("launch/") else module.split(".")[0]


def _describe(imp: Import, why: str) -> str:
    return f"{imp.where()}: {imp.importer} -> {imp.target or imp.name}  ({why})"


def unassigned_modules(modules: list[str], imports: list[Import]) -> list[str]:
    names = set(modules) | {i.target for i in imports if i.target and not i.unresolved}
    return [f"assign {m} to a layer in test_layers.py" for m in sorted(names) if layer_of(m) is None]


def package_violations(imports: list[Import]) -> list[str]:
    out = []
    for imp in imports:
        if imp.target is None:
            continue
        src, dst = package_of(imp.importer), package_of(imp.target)
        if src != dst and PACKAGE_RANK[dst] >= PACKAGE_RANK[src]:
            rel = "same rank, independent" if PACKAGE_RANK[dst] == PACKAGE_RANK[src] else "upward"
            out.append(_describe(imp, f"package {src} -> {dst}: {rel}"))
    return out


def layer_violations(modules: list[str], imports: list[Import]) -> list[str]:
    out = []
    for imp in imports:
        if imp.target is None:
            continue
        src, dst = layer_of(imp.importer), layer_of(imp.target)
        if src is not None and dst is not None and dst > src:
            out.append(_describe(imp, f"layer {src} {LAYER_NAMES[src]} -> layer {dst} {LAYER_NAMES[dst]}"))
    packages = {m for m in modules if not m.startswith("launch/")}
    for module in sorted(packages):
        parent = module.rsplit(".", 1)[0] if "." in module else None
        while parent:
            if parent in packages and None not in (layer_of(parent), layer_of(module)) \
                    and layer_of(parent) > layer_of(module):
                out.append(f"package {parent} (layer {layer_of(parent)}) sits above its module "
                           f"{module} (layer {layer_of(module)}): importing the module runs the package")
            parent = parent.rsplit(".", 1)[0] if "." in parent else None
    return out


def ros_violations(imports: list[Import]) -> list[str]:
    out = []
    for imp in imports:
        layer = layer_of(imp.importer)
        if imp.target is None and layer in CORE_LAYERS and is_ros_module(imp.name):
            out.append(_describe(imp, f"ROS import in layer {layer} {LAYER_NAMES[layer]}, a plain-Python core"))
    return out


def unresolved_imports(imports: list[Import]) -> list[str]:
    return [f"{i.where()}: {i.importer} -> {i.name}  (no such module in the tree; nearest: {i.target})"
            for i in imports if i.unresolved]


# -- the tests ------------------------------------------------------------------------------

_CACHE: dict[Path, tuple[list[str], list[Import]]] = {}


def _tree() -> tuple[list[str], list[Import]]:
    if REPO not in _CACHE:
        _CACHE[REPO] = collect(REPO)
    return _CACHE[REPO]


def _report(title: str, problems: list[str]) -> str:
    return f"{title} ({len(problems)}), see docs/architecture.md:\n  " + "\n  ".join(problems)


def test_every_module_has_a_layer():
    modules, imports = _tree()
    assert len(modules) > 40, modules  # the walk found the suite
    problems = unassigned_modules(modules, imports)
    assert not problems, _report("modules without a layer", problems)


def test_no_package_cycle():
    _, imports = _tree()
    problems = package_violations(imports)
    assert not problems, _report(
        "imports against the package order so100_common | so100_description < vla_policy_node "
        "< so100_bringup < launch", problems)


def test_no_upward_layer_import():
    modules, imports = _tree()
    problems = layer_violations(modules, imports)
    assert not problems, _report("imports of a higher layer", problems)


def test_cores_import_no_ros():
    _, imports = _tree()
    problems = ros_violations(imports)
    assert not problems, _report("ROS imports in plain-Python cores (layers 0-2)", problems)


def test_suite_imports_resolve():
    _, imports = _tree()
    problems = unresolved_imports(imports)
    assert not problems, _report("imports of suite modules that do not exist", problems)


# -- the checker itself ---------------------------------------------------------------------

def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_checker_catches_violations(tmp_path):
    _write(tmp_path, {
        "so100_common/__init__.py": "",
        "so100_common/params.py": "",
        "so100_description/__init__.py": "from .joints import NAMES\n",
        "so100_description/joints.py": """\
            NAMES = ()

            def lazy():
                try:
                    from so100_bringup.control import follower  # lazy, upward twice
                except ImportError:
                    pass
            """,
        "vla_policy_node/__init__.py": "",
        "vla_policy_node/node.py": "",
        "so100_bringup/__init__.py": "",
        "so100_bringup/control/__init__.py": "from . import follower\n",
        "so100_bringup/control/follower.py": """\
            import importlib

            from ..driver_node import Driver  # relative, upward to layer 3


            class Follower:
                def run(self):
                    if True:
                        import rclpy.node  # lazy ROS import in a core
                    return importlib.import_module("vla_policy_node.node")
            """,
        "so100_bringup/driver_node.py": """\
            from so100_description import NAMES
            from so100_bringup.control import follower
            import so100_bringup.gone
            Driver = object
            """,
        "so100_bringup/mystery.py": "",
        "launch/x.launch.py": "from so100_bringup.driver_node import Driver\n",
    })
    modules, imports = collect(tmp_path)
    assert "launch/x.launch.py" in modules and "so100_description" in modules

    by_line = {(i.path, i.line): i for i in imports if i.target}
    rel = by_line[("so100_bringup/control/follower.py", 3)]
    assert rel.name == "so100_bringup.driver_node" and rel.target == "so100_bringup.driver_node"
    sub = by_line[("so100_description/joints.py", 5)]
    assert sub.target == "so100_bringup.control.follower"  # `from pkg import module` -> the module
    assert by_line[("so100_bringup/driver_node.py", 1)].target == "so100_description"  # a name: the package
    assert by_line[("so100_bringup/control/follower.py", 10)].target == "vla_policy_node.node"
    assert by_line[("so100_bringup/control/__init__.py", 1)].target == "so100_bringup.control.follower"

    assert unassigned_modules(modules, imports) == ["assign so100_bringup.mystery to a layer in test_layers.py"]

    packages = package_violations(imports)
    assert any(p.startswith("so100_description/joints.py:5: so100_description.joints -> "
                            "so100_bringup.control.follower") for p in packages), packages
    assert not any("launch/x.launch.py" in p or "driver_node.py" in p or "follower.py" in p
                   for p in packages), packages  # downward across packages is fine

    layers = layer_violations(modules, imports)
    assert any(p.startswith("so100_bringup/control/follower.py:3: so100_bringup.control.follower -> "
                            "so100_bringup.driver_node  (layer 1") for p in layers), layers
    assert any(p.startswith("so100_description/joints.py:5:") for p in layers), layers
    assert any(p.startswith("so100_bringup/control/follower.py:10:") for p in layers), layers
    assert not any("driver_node.py:1" in p or "driver_node.py:2" in p for p in layers), layers

    ros = ros_violations(imports)
    assert ros == ["so100_bringup/control/follower.py:9: so100_bringup.control.follower -> rclpy.node  "
                   "(ROS import in layer 1 control & hardware, a plain-Python core)"], ros

    assert unresolved_imports(imports) == [
        "so100_bringup/driver_node.py:3: so100_bringup.driver_node -> so100_bringup.gone  "
        "(no such module in the tree; nearest: so100_bringup)"], unresolved_imports(imports)


def test_layer_rules_most_specific_wins():
    assert layer_of("so100_bringup.sim.scene") == 1
    assert layer_of("so100_bringup.sim.node") == 3
    assert layer_of("so100_bringup.sim") == 1
    assert layer_of("so100_bringup.teleop.expert") == 2
    assert layer_of("so100_bringup.teleop.expert_node") == 3
    assert layer_of("launch/real.launch.py") == 4
    assert layer_of("so100_bringup.brand_new") is None
    assert is_ros_module("sensor_msgs.msg") and is_ros_module("std_srvs.srv") and is_ros_module("rclpy")
    assert is_ros_module("rosidl_runtime_py") and is_ros_module("cv_bridge")
    assert not is_ros_module("numpy") and not is_ros_module("ament_index_python.packages")
