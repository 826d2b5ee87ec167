"""Leader arm: positions read from an emulated STS3215 bus, torque off, published over DDS."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

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


@pytest.mark.ros
def test_leader_node_publishes_joint_states(emulator, rclpy_context):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import JointState

    node = rclpy.create_node("leader_listener", context=rclpy_context)
    msgs: list[JointState] = []
    node.create_subscription(JointState, "/leader/joint_states", msgs.append, 10)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
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
        executor.shutdown()
        node.destroy_node()
    assert len(msgs) >= 5, out
    last = msgs[-1]
    want = expected(JointUnitConverter(nominal_calibration()))
    assert list(last.name) == list(JOINT_NAMES)
    np.testing.assert_allclose(last.position, [want[j] for j in JOINT_NAMES], atol=2e-3)


def test_leader_node_reports_missing_port():
    proc = subprocess.run([sys.executable, "-m", "so100_bringup.teleop.leader", "--ros-args",
                           "-p", "port:=/dev/does_not_exist"], env=os.environ.copy(), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert "does_not_exist" in proc.stderr
