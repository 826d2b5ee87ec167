"""so100_driver over real DDS: the node runs in its own process against the pty emulator (in this
process, so faults can be injected); commands reach the servos in ticks, states come back in
radians, every fault is survived without a goal outside the limits."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (make setup installs the ROS 2 Jazzy wheels)")
from builtin_interfaces.msg import Duration  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_srvs.srv import SetBool, Trigger  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

from so100_description.calibration import JointUnitConverter, load_calibration  # noqa: E402
from so100_bringup.feetech.emulator import Sts3215Emulator  # noqa: E402
from so100_description.joints import ARM_JOINTS, JOINT_NAMES, joint_limits  # noqa: E402
from support.ros import (Spinner, call_service, initialized_context, start_node_process,  # noqa: E402
                                     stop_process, wait_for)

CAL_FILE = Path(__file__).resolve().parent / "data" / "so101_follower_calibration.json"
CAL = load_calibration(CAL_FILE)
CONV = JointUnitConverter(CAL)
LIM = joint_limits("so101")


REPO = Path(__file__).resolve().parent.parent


def start_driver(port: str, *params: str, calibration: str = str(CAL_FILE),
                 params_file: str | None = None):
    """The driver in its own process; `params` as "name:=value". stop_process(proc) returns its output."""
    overrides = {"port": port, "calibration_file": calibration, "timeout_ms": 50.0, "reconnect_period": 0.2,
                 "diagnostics_rate_hz": 5.0, "servo_timeout": 0.6}
    overrides.update(p.split(":=", 1) for p in params)
    return start_node_process("so100_bringup.driver_node", overrides,
                              ros_args=["--params-file", params_file] if params_file else [], capture_output=True)


def goals_within_limits(emu: Sts3215Emulator) -> int:
    n = 0
    for joint in JOINT_NAMES:
        a = CONV.radians_to_ticks(joint, LIM[joint].lower)
        b = CONV.radians_to_ticks(joint, LIM[joint].upper)
        lo, hi = min(a, b), max(a, b)
        goals = [v for name, v in emu.servos[CAL[joint].id].write_log if name == "Goal_Position"]
        bad = [g for g in goals if not lo <= g <= hi]
        assert not bad, (joint, lo, hi, bad[:5])
        n += len(goals)
    return n


class Probe:
    """The test's side of DDS: joint states, diagnostics, trajectories, services."""
    count = 0

    def __init__(self, context, states_topic="/joint_states"):
        Probe.count += 1
        self.node = rclpy.create_node(f"driver_test_probe_{Probe.count}", context=context)
        self.lock = threading.Lock()
        self.state: JointState | None = None
        self.state_count = 0
        self.diag: DiagnosticArray | None = None
        # hw/joint_states is best effort (what JointStateTopicSystem subscribes with)
        self.node.create_subscription(JointState, states_topic, self._on_state, qos_profile_sensor_data)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.arm_pub = self.node.create_publisher(JointTrajectory, "/arm_controller/joint_trajectory", 10)
        self.grip_pub = self.node.create_publisher(JointTrajectory, "/gripper_controller/joint_trajectory", 10)
        self.hw_pub = self.node.create_publisher(JointState, "/hw/joint_commands", 1)
        self.spinner = Spinner([self.node], context)

    def _on_state(self, msg):
        with self.lock:
            self.state = msg
            self.state_count += 1

    def _on_diag(self, msg):
        if any(s.name.startswith("so100_driver") for s in msg.status):
            with self.lock:
                self.diag = msg

    def positions(self) -> dict[str, float]:
        with self.lock:
            return dict(zip(self.state.name, self.state.position)) if self.state else {}

    def wait(self, predicate, timeout=8.0) -> bool:
        # a message not there yet (or without the key looked for) is "not yet"
        return wait_for(predicate, timeout, ignore=(KeyError, TypeError, AttributeError))

    def bus_status(self):
        with self.lock:
            return next((s for s in self.diag.status if s.name == "so100_driver: bus"), None) if self.diag else None

    def send(self, arm: dict[str, float] | None = None, gripper: float | None = None, duration: float = 0.6):
        for names, pub in (((list(arm), list(arm.values())) if arm else None, self.arm_pub),
                           ((["gripper"], [gripper]) if gripper is not None else None, self.grip_pub)):
            if names is None:
                continue
            msg = JointTrajectory()
            msg.joint_names = names[0]
            pt = JointTrajectoryPoint()
            pt.positions = [float(x) for x in names[1]]
            pt.time_from_start = Duration(sec=int(duration), nanosec=int((duration % 1) * 1e9))
            msg.points = [pt]
            pub.publish(msg)

    def call(self, srv_type, name, request, timeout=5.0):
        return call_service(self.node, srv_type, name, request, timeout)

    def close(self):
        self.spinner.stop()
        self.node.destroy_node()


@pytest.fixture(scope="module")
def ros_context():
    with initialized_context() as context:
        yield context


def near(probe: Probe, target: dict[str, float], tol=0.02) -> bool:
    pos = probe.positions()
    return len(pos) == 6 and all(abs(pos[j] - v) < tol for j, v in target.items())


@pytest.fixture(scope="module")
def standalone(tmp_path_factory, ros_context):
    link = tmp_path_factory.mktemp("driver") / "arm"
    emu = Sts3215Emulator(link=link)
    emu.apply_calibration(CAL)
    emu.start()
    proc = start_driver(str(link), "rate_hz:=200.0")
    probe = Probe(ros_context)
    try:
        assert probe.wait(lambda: probe.state is not None and len(probe.state.name) == 6, 20), stop_process(proc)
        yield emu, proc, probe
    finally:
        probe.close()
        output = stop_process(proc)
        emu.stop()
        print(output[-3000:])


def test_states_come_back_in_radians(standalone):
    emu, proc, probe = standalone
    pos = probe.positions()
    assert list(probe.state.name) == list(JOINT_NAMES)
    for joint in JOINT_NAMES:
        ticks = emu.register(CAL[joint].id, "Present_Position")
        assert pos[joint] == pytest.approx(CONV.ticks_to_radians(joint, ticks), abs=2 * 2 * np.pi / 4095)
    assert len(probe.state.velocity) == 6 and len(probe.state.effort) == 6


def test_trajectory_reaches_servos_in_ticks(standalone):
    emu, proc, probe = standalone
    target = {"shoulder_pan": 0.3, "shoulder_lift": -0.4, "elbow_flex": 0.5, "wrist_flex": -0.2, "wrist_roll": 0.8}
    probe.send(target, gripper=1.2)
    assert probe.wait(lambda: near(probe, {**target, "gripper": 1.2})), probe.positions()
    for joint, value in {**target, "gripper": 1.2}.items():
        assert emu.register(CAL[joint].id, "Goal_Position") == CONV.radians_to_ticks(joint, value)
    assert goals_within_limits(emu) > 0


def test_out_of_limit_trajectory_is_clamped(standalone):
    emu, proc, probe = standalone
    probe.send({j: 4.0 for j in ARM_JOINTS}, gripper=-3.0)
    upper = {j: LIM[j].upper for j in ARM_JOINTS}
    assert probe.wait(lambda: near(probe, {**upper, "gripper": LIM["gripper"].lower})), probe.positions()
    for joint in ARM_JOINTS:
        assert emu.register(CAL[joint].id, "Goal_Position") == CONV.radians_to_ticks(joint, LIM[joint].upper)
    goals_within_limits(emu)


def test_estop_holds_and_enable_resumes(standalone):
    emu, proc, probe = standalone
    home = {j: 0.0 for j in ARM_JOINTS}
    probe.send(home, duration=0.4)
    assert probe.wait(lambda: near(probe, home))
    assert probe.call(Trigger, "/so100_driver/estop", Trigger.Request()).success
    goals = {j: emu.register(CAL[j].id, "Goal_Position") for j in ARM_JOINTS}
    probe.send({j: 0.5 for j in ARM_JOINTS}, duration=0.2)
    time.sleep(0.6)
    assert {j: emu.register(CAL[j].id, "Goal_Position") for j in ARM_JOINTS} == goals
    assert probe.wait(lambda: probe.bus_status().message == "e-stop active")
    assert probe.call(SetBool, "/so100_driver/enable", SetBool.Request(data=True)).success
    probe.send({j: 0.5 for j in ARM_JOINTS}, duration=0.3)
    assert probe.wait(lambda: near(probe, {j: 0.5 for j in ARM_JOINTS})), probe.positions()


def test_torque_service(standalone):
    emu, proc, probe = standalone
    assert probe.call(SetBool, "/so100_driver/torque", SetBool.Request(data=False)).success
    assert all(emu.register(i, "Torque_Enable") == 0 for i in range(1, 7))
    assert probe.wait(lambda: probe.bus_status().message == "torque off")
    assert probe.call(SetBool, "/so100_driver/torque", SetBool.Request(data=True)).success
    assert all(emu.register(i, "Torque_Enable") == 1 for i in range(1, 7))
    assert probe.call(SetBool, "/so100_driver/enable", SetBool.Request(data=True)).success


def test_every_fault_survived_and_recovered(standalone):
    emu, proc, probe = standalone
    # dropped replies and corrupt checksums while moving
    emu.faults.drop_probability = emu.faults.corrupt_probability = 0.1
    target = {j: -0.3 for j in ARM_JOINTS}
    probe.send(target, gripper=0.5)
    time.sleep(1.0)
    emu.clear_faults()
    assert probe.wait(lambda: near(probe, {**target, "gripper": 0.5})), probe.positions()
    assert probe.wait(lambda: int(next(kv.value for kv in probe.bus_status().values
                                       if kv.key == "bus_corrupt")) > 0)
    # a servo stops answering: its joint leaves joint_states, diagnostics say which
    emu.set_silent(3)
    assert probe.wait(lambda: "elbow_flex" not in probe.positions() and len(probe.positions()) == 5)
    assert probe.wait(lambda: "elbow_flex" in probe.bus_status().message and probe.bus_status().level == b"\x02")
    emu.set_silent(3, False)
    assert probe.wait(lambda: len(probe.positions()) == 6)
    target = {j: 0.1 for j in ARM_JOINTS}
    probe.send(target, duration=0.3)
    assert probe.wait(lambda: near(probe, target)), probe.positions()
    # the port vanishes and comes back
    emu.vanish()
    assert probe.wait(lambda: "lost" in probe.bus_status().message)
    time.sleep(0.5)
    assert proc.poll() is None
    emu.reappear()
    assert probe.wait(lambda: probe.bus_status().message == "ok"), probe.bus_status()
    target = {j: -0.2 for j in ARM_JOINTS}
    probe.send(target, duration=0.3)
    assert probe.wait(lambda: near(probe, target)), probe.positions()
    assert proc.poll() is None
    assert goals_within_limits(emu) > 100


def test_hardware_mode_and_watchdog(tmp_path, ros_context):
    link = tmp_path / "arm"
    emu = Sts3215Emulator(link=link)
    emu.apply_calibration(CAL)
    for servo in emu.servos.values():
        servo.max_speed = 400.0  # slow, so the watchdog catches the arm mid-motion
    emu.start()
    proc = start_driver(str(link), "mode:=hardware", "watchdog_timeout:=0.15")
    probe = Probe(ros_context, states_topic="/hw/joint_states")
    try:
        assert probe.wait(lambda: len(probe.positions()) == 6, 20), stop_process(proc)
        target = [0.0, 0.0, 0.0, 0.0, 0.0, 0.3]
        cmd = JointState(name=list(JOINT_NAMES), position=target)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and not near(probe, dict(zip(JOINT_NAMES, target))):
            probe.hw_pub.publish(cmd)
            time.sleep(0.02)
        assert near(probe, dict(zip(JOINT_NAMES, target))), probe.positions()
        assert emu.register(1, "Goal_Position") == CONV.radians_to_ticks("shoulder_pan", 0.0)
        # a far target, then silence: the driver must stop where the arm is, not finish the move
        far = JointState(name=list(JOINT_NAMES), position=[1.5, 0.0, 0.0, 0.0, 0.0, 0.3])
        for _ in range(5):
            probe.hw_pub.publish(far)
            time.sleep(0.02)
        time.sleep(1.0)
        pan = probe.positions()["shoulder_pan"]
        assert 0.0 < pan < 1.2
        goal = emu.register(1, "Goal_Position")
        assert abs(goal - emu.register(1, "Present_Position")) <= 3
        assert probe.wait(lambda: probe.bus_status().message == "command watchdog: holding")
        # malformed commands are refused
        probe.hw_pub.publish(JointState(name=["shoulder_pan"], position=[1.0]))
        probe.hw_pub.publish(JointState(name=list(JOINT_NAMES), position=[float("nan")] * 6))
        time.sleep(0.3)
        assert emu.register(1, "Goal_Position") == goal
        assert proc.poll() is None
        goals_within_limits(emu)
    finally:
        probe.close()
        stop_process(proc)
        emu.stop()


def test_missing_port_keeps_node_alive_and_connects_when_plugged(tmp_path, ros_context):
    link = tmp_path / "ttyACM_later"
    proc = start_driver(str(link), params_file=str(REPO / "config" / "driver.yaml"))
    probe = Probe(ros_context)
    emu = None
    try:
        assert probe.wait(lambda: probe.bus_status() is not None and "not found" in probe.bus_status().message, 20)
        assert str(link) in probe.bus_status().message
        assert proc.poll() is None
        emu = Sts3215Emulator(link=link)
        emu.apply_calibration(CAL)
        emu.start()
        assert probe.wait(lambda: len(probe.positions()) == 6, 10)
    finally:
        probe.close()
        stop_process(proc)
        if emu:
            emu.stop()


def test_missing_calibration_file_is_a_clear_exit(tmp_path):
    proc = start_driver(str(tmp_path / "port"), calibration=str(tmp_path / "nope.json"))
    try:
        assert proc.wait(timeout=30) == 2
    finally:
        out = stop_process(proc)
    assert "nope.json" in out and "calibrat" in out


def test_calibration_mismatch_is_refused_and_listed_until_write_calibration(tmp_path, ros_context):
    lift, grip = CAL["shoulder_lift"], CAL["gripper"]
    link = tmp_path / "arm"
    emu = Sts3215Emulator(link=link)
    emu.apply_calibration(CAL)
    emu.set_register(lift.id, "Homing_Offset", lift.homing_offset + 11)  # another arm's, or a stale write
    emu.set_register(grip.id, "Max_Position_Limit", grip.range_max - 40)
    emu.start()
    # in its own namespace: the module's other driver publishes /joint_states meanwhile
    probe = Probe(ros_context, states_topic="/mismatch/joint_states")
    overrides = {"port": str(link), "calibration_file": str(CAL_FILE), "timeout_ms": 50.0, "reconnect_period": 0.2}
    logs = [tmp_path / "refused.log", tmp_path / "written.log"]
    try:
        proc = start_node_process("so100_bringup.driver_node", overrides, ros_args=["-r", "__ns:=/mismatch"],
                                  log_path=logs[0])  # write_calibration defaults to false
        try:
            assert wait_for(lambda: "differs from the calibration file" in logs[0].read_text(), 20), \
                logs[0].read_text()
            time.sleep(0.6)  # a few reconnect periods: still refused, still alive, nothing written
            assert proc.poll() is None and probe.state is None
            assert emu.register(lift.id, "Homing_Offset") == lift.homing_offset + 11
            assert all(emu.register(i, "Torque_Enable") == 0 for i in emu.servos)
        finally:
            stop_process(proc)
        out = logs[0].read_text()
        assert (f"shoulder_lift (id {lift.id}): Homing_Offset {lift.homing_offset + 11} -> "
                f"{lift.homing_offset}") in out
        assert f"gripper (id {grip.id}): Max_Position_Limit {grip.range_max - 40} -> {grip.range_max}" in out
        assert "write_calibration:=true" in out and out.count("differs from the calibration file") == 1, out

        proc = start_node_process("so100_bringup.driver_node", {**overrides, "write_calibration": True},
                                  ros_args=["-r", "__ns:=/mismatch"], log_path=logs[1])
        try:
            assert probe.wait(lambda: len(probe.positions()) == 6, 20), logs[1].read_text()
            assert emu.register(lift.id, "Homing_Offset") == lift.homing_offset
            assert emu.register(grip.id, "Max_Position_Limit") == grip.range_max
        finally:
            stop_process(proc)
    finally:
        probe.close()
        emu.stop()
