"""so100_ctl over real DDS: the tool runs as a subprocess (the venv's console script, else
`python -m so100_bringup.ctl`) against nodes in this process (services that record how they were
called) and the real recorder and policy nodes in child processes. Every test uses its own
namespace, so the nodes of one test never answer another's call."""
from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (make setup installs the ROS 2 Jazzy wheels)")

from rclpy.node import Node  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import SetBool, Trigger  # noqa: E402

from so100_bringup.ctl import EXIT_INTERRUPTED, EXIT_NO_ANSWER, EXIT_OK, EXIT_REFUSED  # noqa: E402
from support.ros import Spinner, start_node_process, stop_process, wait_for  # noqa: E402

pytestmark = pytest.mark.ros


def ctl_command() -> list[str]:
    script = Path(sys.executable).with_name("so100_ctl")
    return [str(script)] if script.exists() else [sys.executable, "-m", "so100_bringup.ctl"]


def ctl(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*ctl_command(), *args], capture_output=True, text=True, timeout=timeout)


class ControlledNode(Node):
    """Offers ~/enable, ~/torque (SetBool), ~/estop, ~/reset and ~/pause_episode (Trigger) like the
    policy node, the driver, the sim and the recorder, records every call and every instruction, publishes joint_states at 20 Hz.
    `refuse_torque_off`: ~/torque false answers success=false, as a driver whose bus fails."""

    def __init__(self, name: str, namespace: str, context, refuse_torque_off: bool = False):
        super().__init__(name, namespace=namespace, context=context)
        self.calls: list[tuple[str, bool | None]] = []
        self.instructions: list[str] = []
        self.lock = threading.Lock()
        self.refuse_torque_off = refuse_torque_off
        self.create_service(SetBool, "~/enable", lambda req, res: self._answer("enable", req.data, res))
        self.create_service(SetBool, "~/torque", lambda req, res: self._answer("torque", req.data, res))
        self.create_service(Trigger, "~/estop", lambda req, res: self._answer("estop", None, res))
        self.create_service(Trigger, "~/reset", lambda req, res: self._answer("reset", None, res))
        self.create_service(Trigger, "~/pause_episode", lambda req, res: self._answer("pause_episode", None, res))
        self.create_subscription(String, "vla/instruction", self._on_instruction, 10)
        self.state_pub = self.create_publisher(JointState, "joint_states", 10)
        self.create_timer(0.05, lambda: self.state_pub.publish(JointState(name=["gripper"], position=[0.1])))

    def _answer(self, service: str, value: bool | None, response):
        with self.lock:
            self.calls.append((service, value))
        refused = service == "torque" and value is False and self.refuse_torque_off
        response.success = not refused
        response.message = "servo 3 does not answer" if refused else f"{service} {value} done"
        return response

    def _on_instruction(self, msg: String) -> None:
        with self.lock:
            self.instructions.append(msg.data)


@contextlib.contextmanager
def running_ctl(context, *args: str) -> Iterator[tuple[subprocess.Popen, Any]]:
    """so100_ctl running in the background, and a node of this process to watch the graph with;
    both cleaned up on leaving. SIGINT goes back to its default in the child: a pytest started in
    the background by a non-interactive shell passes SIGINT on ignored, and Python keeps that."""
    proc = subprocess.Popen([*ctl_command(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    watcher = rclpy.create_node("watcher", context=context)
    try:
        yield proc, watcher
    finally:
        watcher.destroy_node()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture()
def ns() -> str:
    return f"ctl_{uuid.uuid4().hex[:8]}"


@pytest.fixture()
def nodes(rclpy_context):
    """make(name, namespace, ...) -> a spinning ControlledNode."""
    spinners: list[Spinner] = []

    def make(name: str, namespace: str, **kw) -> ControlledNode:
        node = ControlledNode(name, namespace, rclpy_context, **kw)
        spinners.append(Spinner([node], rclpy_context))
        return node

    yield make
    for spinner in spinners:
        spinner.stop()
        for node in spinner.nodes:
            node.destroy_node()


def test_enable_disable_estop_call_the_policy_node(nodes, ns):
    policy = nodes("vla_policy_node", f"/{ns}")
    for command in ("enable", "disable", "estop"):
        out = ctl("-n", ns, command)
        assert out.returncode == EXIT_OK, out.stderr
    assert policy.calls == [("enable", True), ("enable", False), ("estop", None)]
    assert f"/{ns}/vla_policy_node/estop: estop None done" in out.stdout


def test_driver_torque_and_a_refusal(nodes, ns):
    driver = nodes("so100_driver", f"/{ns}", refuse_torque_off=True)
    assert ctl("torque", "on", "-n", ns).returncode == EXIT_OK
    out = ctl("--namespace", ns, "estop", "--node", "so100_driver")  # options before or after the command
    assert out.returncode == EXIT_OK, out.stderr
    refused = ctl("-n", ns, "torque", "off")
    assert refused.returncode == EXIT_REFUSED
    assert "servo 3 does not answer" in refused.stderr
    # an absolute --node ignores the namespace
    assert ctl("-n", "elsewhere", "enable", "--node", f"/{ns}/so100_driver").returncode == EXIT_OK
    assert driver.calls == [("torque", True), ("estop", None), ("torque", False), ("enable", True)]


def test_sim_reset_and_recorder_pause(nodes, ns):
    sim = nodes("mujoco_sim", f"/{ns}")
    recorder = nodes("recorder", f"/{ns}")
    assert ctl("-n", ns, "reset").returncode == EXIT_OK
    assert ctl("-n", ns, "record", "pause").returncode == EXIT_OK
    assert sim.calls == [("reset", None)] and recorder.calls == [("pause_episode", None)]


def test_instruction_waits_for_its_subscriber(rclpy_context, nodes, ns):
    with running_ctl(rclpy_context, "-n", ns, "instruction", "pick up the cube", "--timeout", "60") as (proc, watcher):
        # the tool publishes into a graph with no subscriber yet: it must hold the message back
        assert wait_for(lambda: watcher.count_publishers(f"/{ns}/vla/instruction") >= 1, 30)
        assert proc.poll() is None
        policy = nodes("vla_policy_node", f"/{ns}")
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_OK, err
    assert policy.instructions == ["pick up the cube"]
    assert "delivered to 1 subscriber" in out


def test_nodes_lists_nodes_topics_rates_and_services(nodes, ns):
    nodes("vla_policy_node", f"/{ns}")
    out = ctl("-n", ns, "nodes", "--window", "1")
    assert out.returncode == EXIT_OK, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"/{ns}/vla_policy_node"
    rate = [line for line in lines if f"/{ns}/joint_states [sensor_msgs/msg/JointState]" in line]
    assert rate and float(re.search(r"([0-9.e+]+) Hz", rate[0]).group(1)) > 0, out.stdout
    assert f"  srv  /{ns}/vla_policy_node/enable [std_srvs/srv/SetBool]" in lines
    assert "/rosout" not in out.stdout and "set_parameters" not in out.stdout
    assert "so100_ctl" not in out.stdout  # the tool's own node


@pytest.mark.parametrize("command, service, hint", [
    (["enable"], "vla_policy_node/enable", "vla_policy_node --ros-args"),
    (["record", "start"], "recorder/start_episode", "so100_recorder --ros-args"),
])
def test_nothing_answering_exits_2_and_says_what_to_start(ns, command, service, hint):
    out = ctl("-n", ns, *command, "--timeout", "1")
    assert out.returncode == EXIT_NO_ANSWER
    assert f"no service /{ns}/{service}" in out.stderr
    assert hint in out.stderr and f"-r __ns:=/{ns}" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_service_in_another_namespace_is_pointed_out(nodes, ns):
    nodes("vla_policy_node", f"/{ns}")
    out = ctl("-n", f"{ns}_other", "enable", "--timeout", "1")
    assert out.returncode == EXIT_NO_ANSWER
    assert f"/{ns}/vla_policy_node/enable" in out.stderr and f"--namespace /{ns}" in out.stderr


def test_nodes_waits_for_its_namespace_past_nodes_elsewhere(rclpy_context, nodes, ns):
    # a lab's (or another test's) node is on the domain before ours: the tool must not settle on it
    nodes("elsewhere_node", f"/{ns}_other")
    with running_ctl(rclpy_context, "-n", ns, "nodes", "--window", "0.5", "--timeout", "60") as (proc, watcher):
        assert wait_for(lambda: any(n.startswith("so100_ctl_") for n in watcher.get_node_names()), 30)
        time.sleep(2.0)  # several settle periods with only the other namespace's node in the graph
        nodes("vla_policy_node", f"/{ns}")
        out, err = proc.communicate(timeout=90)
    assert proc.returncode == EXIT_OK, err
    assert out.splitlines()[0] == f"/{ns}/vla_policy_node"
    assert f"{ns}_other" not in out


def test_nodes_with_nothing_running_exits_2_and_names_nodes_elsewhere(nodes, ns):
    out = ctl("-n", ns, "nodes", "--timeout", "1")
    assert out.returncode == EXIT_NO_ANSWER
    assert f"no ROS nodes found in namespace /{ns}" in out.stderr
    nodes("vla_policy_node", f"/{ns}_left")
    out = ctl("-n", ns, "nodes", "--timeout", "3")
    assert out.returncode == EXIT_NO_ANSWER
    assert f"nodes elsewhere on this domain: /{ns}_left/vla_policy_node" in out.stderr


def test_ctrl_c_exits_130_without_traceback(rclpy_context, ns):
    with running_ctl(rclpy_context, "-n", ns, "enable", "--timeout", "120") as (proc, watcher):
        # interrupt it while it waits for the service
        assert wait_for(lambda: any(n.startswith("so100_ctl_") for n in watcher.get_node_names()), 30)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == EXIT_INTERRUPTED
    assert "Traceback" not in err


@pytest.mark.slow  # the recorder process imports lerobot and creates a dataset
def test_record_and_instruction_with_the_real_recorder(ns, tmp_path):
    pytest.importorskip("datasets", reason="lerobot[dataset] not installed (make setup)")
    recorder = start_node_process(
        "so100_bringup.recorder.node",
        {"root": str(tmp_path / "data"), "cameras": ["front"], "image_width": 64, "image_height": 48,
         "use_videos": False},
        ros_args=["-r", f"__ns:=/{ns}"], log_path=tmp_path / "recorder.log")
    try:
        out = ctl("-n", ns, "instruction", "stack the cubes", "--timeout", "120")  # also waits for the start
        assert out.returncode == EXIT_OK, out.stderr + (tmp_path / "recorder.log").read_text()
        started = ctl("-n", ns, "record", "start", "--timeout", "30")
        assert started.returncode == EXIT_OK, started.stderr
        assert "recording episode 0: 'stack the cubes'" in started.stdout
        again = ctl("-n", ns, "record", "start")
        assert again.returncode == EXIT_REFUSED and "already recording episode 0" in again.stderr
        empty = ctl("-n", ns, "record", "stop")  # no camera ever published: nothing to save
        assert empty.returncode == EXIT_REFUSED and "no frames" in empty.stderr
        discarded = ctl("-n", ns, "record", "discard")
        assert discarded.returncode == EXIT_OK and "discarded the episode" in discarded.stdout
    finally:
        stop_process(recorder)


@pytest.mark.slow  # loads a policy (torch, lerobot) in a child process
def test_enable_instruction_estop_with_the_real_policy_node(ns, tmp_path):
    pytest.importorskip("lerobot", reason="lerobot is not installed (pip install so100_vla[policy])")
    from so100_bringup.learning.random_act import make_random_act

    path = make_random_act(tmp_path / "act", cameras=("front",), image_hw=(48, 64), chunk_size=10, seed=1)
    log = tmp_path / "policy.log"
    proc = start_node_process("vla_policy_node.node", {"policy_path": str(path), "torch_threads": 1},
                              ros_args=["-r", f"__ns:=/{ns}"], log_path=log)
    try:
        enabled = ctl("-n", ns, "enable", "--timeout", "120")
        assert enabled.returncode == EXIT_OK, enabled.stderr + log.read_text()
        out = ctl("-n", ns, "instruction", "pick up the cube")
        assert out.returncode == EXIT_OK, out.stderr
        assert wait_for(lambda: "task instruction: 'pick up the cube'" in log.read_text(), 30), log.read_text()
        stopped = ctl("-n", ns, "estop")
        assert stopped.returncode == EXIT_OK, stopped.stderr
    finally:
        stop_process(proc)


def test_rate_reading_follows_the_publishers_reliability():
    from rclpy.qos import ReliabilityPolicy as R

    from so100_bringup.ctl import rate_hz, rate_qos

    assert rate_qos([R.RELIABLE, R.RELIABLE]).reliability == R.RELIABLE  # big images arrive complete
    assert rate_qos([R.RELIABLE, R.BEST_EFFORT]).reliability == R.BEST_EFFORT  # else it would not match
    assert rate_qos([]).reliability == R.BEST_EFFORT
    assert rate_hz([0, 100_000_000, 200_000_000]) == pytest.approx(10.0)
    assert rate_hz([5]) is None
