"""Leader arm: positions read from an emulated STS3215 bus, torque off, published over DDS."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from so100_description.calibration import JointUnitConverter, nominal_calibration
from so100_bringup.feetech.bus import FeetechBus
from so100_bringup.feetech.emulator import Sts3215Emulator
from so100_bringup.teleop.leader import LeaderReader
from so100_description.joints import JOINT_NAMES

TICKS = {1: 2300, 2: 1800, 3: 2600, 4: 2047, 5: 1000, 6: 2400}


@pytest.fixture()
def emulator():
    emu = Sts3215Emulator(positions=TICKS).start()
    for servo in emu.servos.values():  # a leader arrives with torque on from a previous use
        servo.write(40, bytes([1]))
    yield emu
    emu.stop()


def expected(converter) -> dict[str, float]:
    return {j: converter.ticks_to_radians(j, TICKS[i + 1]) for i, j in enumerate(JOINT_NAMES)}


def test_reader_converts_and_disables_torque(emulator):
    cal = nominal_calibration()
    reader = LeaderReader(FeetechBus(emulator.port, list(TICKS)), cal)
    reader.open()
    try:
        got = reader.read()
        want = expected(JointUnitConverter(cal))
        assert set(got) == set(JOINT_NAMES)
        for j in JOINT_NAMES:
            assert got[j] == pytest.approx(want[j], abs=2e-3)
        assert all(s.get("Torque_Enable") == 0 for s in emulator.servos.values())
        emulator.set_silent(6)
        partial = reader.read()
        assert "gripper" not in partial and len(partial) == 5  # no made-up value
        assert reader.misses >= 1
    finally:
        reader.close()


@pytest.fixture()
def leader_messages(rclpy_context):
    """/leader/joint_states as received by a listener spinning in the background."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import JointState

    node = rclpy.create_node("leader_listener", context=rclpy_context)
    msgs: list[JointState] = []
    node.create_subscription(JointState, "/leader/joint_states", msgs.append, 10)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    yield msgs
    executor.shutdown()
    node.destroy_node()


@pytest.mark.ros
def test_leader_node_publishes_joint_states(emulator, leader_messages):
    msgs = leader_messages
    proc = subprocess.Popen([sys.executable, "-m", "so100_bringup.teleop.leader", "--ros-args",
                             "-p", f"port:={emulator.port}", "-p", "rate_hz:=50.0"],
                            env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(msgs) < 5 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert len(msgs) >= 5, out
    last = msgs[-1]
    want = expected(JointUnitConverter(nominal_calibration()))
    assert list(last.name) == list(JOINT_NAMES)
    np.testing.assert_allclose(last.position, [want[j] for j in JOINT_NAMES], atol=2e-3)


@pytest.mark.ros
def test_leader_node_waits_for_a_missing_port_and_connects_when_it_appears(tmp_path, leader_messages):
    from support.ros import start_node_process, stop_process, wait_for

    msgs = leader_messages
    link = tmp_path / "ttyACM_leader"  # not there yet: the arm is unplugged
    log = tmp_path / "leader.log"
    proc = start_node_process("so100_bringup.teleop.leader", {"port": str(link), "reconnect_period": 0.1,
                                                              "rate_hz": 50.0}, log_path=log)
    emu = Sts3215Emulator(link=link, positions=TICKS)
    try:
        # the driver's line for a missing port, once, and the node stays up
        assert wait_for(lambda: "not found" in log.read_text(), 60), log.read_text()
        time.sleep(0.5)
        assert proc.poll() is None and not msgs
        emu.start()  # plugged in
        assert wait_for(lambda: len(msgs) >= 3, 20), log.read_text()
    finally:
        stop_process(proc)
        emu.stop()
    text = log.read_text()
    assert text.count(f"serial port {link} not found") == 1, text
    assert "connected to" in text
    want = expected(JointUnitConverter(nominal_calibration()))
    np.testing.assert_allclose(msgs[-1].position, [want[j] for j in JOINT_NAMES], atol=2e-3)


def test_leader_robot_id_finds_lerobot_teleoperator_calibration(tmp_path, monkeypatch):
    from so100_description.calibration import LEROBOT_LEADER_DIRS, resolve_calibration_path, save_calibration

    monkeypatch.setenv("HF_LEROBOT_CALIBRATION", str(tmp_path))
    assert resolve_calibration_path("", "my_leader", LEROBOT_LEADER_DIRS) == \
        tmp_path / "teleoperators" / "so_leader" / "my_leader.json"  # where lerobot-calibrate writes (named in errors)
    older = tmp_path / "teleoperators" / "so101_leader" / "my_leader.json"  # an older LeRobot's folder
    save_calibration(nominal_calibration(), older)
    assert resolve_calibration_path("", "my_leader", LEROBOT_LEADER_DIRS) == older
    assert resolve_calibration_path("/x/leader.json", "my_leader", LEROBOT_LEADER_DIRS) == Path("/x/leader.json")
