"""What a robot PC needs for the remote backend, checked against the packages it would have.

LeRobot's async-inference protocol pickles TimedObservation / TimedAction objects, and the
actions come back as torch tensors: the client needs torch and lerobot, not only gRPC. These
tests run the client's imports in a fresh interpreter that sees only what `pip install
so100_vla[remote]` installs (the base install, setup.py's REMOTE extra and everything they
require, plus the ROS wheels for the node): every other installed package is hidden, as if
it were not installed.
"""
from __future__ import annotations

import ast
import importlib.metadata as md
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lerobot", reason="lerobot is not installed (pip install so100_vla[remote])")
pytest.importorskip("grpc", reason="grpcio is not installed (pip install so100_vla[remote])")
from packaging.requirements import Requirement  # noqa: E402  (installed with lerobot)
from packaging.utils import canonicalize_name  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SUITE = ("so100_common", "so100_description", "so100_bringup", "vla_policy_node")

# In a fresh interpreter: hide the top-level modules in argv[1] (comma-separated) from every
# finder, so importing them fails and importlib.util.find_spec returns None, as when they are
# not installed; distribution metadata lookups still go through.
HIDE = """
import sys
hidden = set(filter(None, sys.argv[1].split(",")))
class Hide:
    def __init__(self, finder):
        self.finder = finder
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in hidden or not hasattr(self.finder, "find_spec"):
            return None
        return self.finder.find_spec(name, path, target)
    def __getattr__(self, name):
        return getattr(self.finder, name)
sys.meta_path[:] = [Hide(f) for f in sys.meta_path]
"""


def _setup_lists() -> dict[str, list[str]]:
    """setup.py's module-level requirement lists and install_requires (AST, without running it)."""
    tree = ast.parse((REPO / "setup.py").read_text())
    lists = {n.targets[0].id: ast.literal_eval(n.value) for n in tree.body
             if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name) and isinstance(n.value, ast.List)}
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "install_requires":
            lists["install_requires"] = ast.literal_eval(node.value)
    return lists


def requirement_closure(roots: list[str]) -> set[str]:
    """Canonical names of the distributions `roots` pull in (with their extras), as far as they
    are installed here."""
    names: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(r) for r in roots]
    while todo:
        req = todo.pop()
        name, extras = canonicalize_name(req.name), frozenset(req.extras)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        names.add(name)
        try:
            requires = md.distribution(name).requires or []
        except md.PackageNotFoundError:  # e.g. a platform-specific one not installed here
            continue
        for text in requires:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras | {""}):
                todo.append(sub)
    return names


def modules_outside(allowed: set[str]) -> list[str]:
    """Installed top-level modules whose distributions are all outside `allowed`."""
    return sorted(module for module, dists in md.packages_distributions().items()
                  if module not in SUITE and not module.startswith("_")
                  and not any(canonicalize_name(d) in allowed for d in dists))


def robot_pc_packages() -> set[str]:
    lists = _setup_lists()
    ros = [line.strip() for line in (REPO / "requirements" / "ros-jazzy.txt").read_text().splitlines()
           if line.strip() and not line.startswith("#")]
    return requirement_closure(lists["install_requires"] + lists["REMOTE"] + ros)


def run_hidden(hidden: list[str], code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HIDE + code, ",".join(hidden)], env=os.environ.copy(),
                          capture_output=True, text=True, timeout=300, cwd=REPO)


CLIENT_IMPORTS = """
from vla_policy_node.backends.remote import RemotePolicyServerBackend
from lerobot.async_inference.helpers import RemotePolicyConfig, TimedAction, TimedObservation
from lerobot.transport import services_pb2, services_pb2_grpc
from lerobot.transport.utils import grpc_channel_options, send_bytes_in_chunks
from lerobot.utils.feature_utils import hw_to_dataset_features
try:
    import rclpy
except ImportError:
    rclpy = None
if rclpy is not None:
    import vla_policy_node.node
print("ok")
"""


def test_the_remote_extra_is_enough_for_the_client():
    allowed = robot_pc_packages()
    assert {"torch", "lerobot", "grpcio", "protobuf"} <= allowed
    hidden = modules_outside(allowed)
    out = run_hidden(hidden, CLIENT_IMPORTS)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), (
        f"the remote backend imports more than so100_vla[remote] installs (hidden: {hidden}):\n{out.stderr[-3000:]}")


@pytest.mark.parametrize("missing", ["torch", "grpc"])
def test_without_torch_or_grpc_the_backend_names_the_extra(missing):
    """Torch is no optional part: the protocol's pickles hold torch tensors. The error says what
    to install instead of a bare ImportError."""
    code = ("from vla_policy_node.backends import CheckpointError\n"
            "from vla_policy_node.backends.remote import RemotePolicyServerBackend\n"
            "try:\n"
            "    RemotePolicyServerBackend('127.0.0.1:1', '/nonexistent', policy_type='act')\n"
            "except CheckpointError as exc:\n"
            "    print(exc)\n")
    out = run_hidden([missing], code)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "so100_vla[remote]" in out.stdout and "torch" in out.stdout, out.stdout


def test_the_closure_follows_extras():
    """The closure is what the first test trusts: an extra's requirements are in it, and a
    package nothing asks for is not."""
    plain, with_extra = requirement_closure(["lerobot==0.6.1"]), requirement_closure(["lerobot[grpcio-dep]==0.6.1"])
    assert "torch" in plain and "grpcio" not in plain and "grpcio" in with_extra
    assert "mujoco" not in robot_pc_packages()  # the sim extra is not on the robot PC
