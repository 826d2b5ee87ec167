"""The pty STS3215 emulator: the official SDK and LeRobot's FeetechMotorsBus both drive it."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from so100_description.calibration import load_calibration
from so100_bringup.feetech import registers as R
from so100_bringup.feetech.emulator import Sts3215Emulator
from support import ros

scs = pytest.importorskip("scservo_sdk", reason="feetech-servo-sdk not installed")
CAL_FILE = Path(__file__).resolve().parent / "data" / "so101_follower_calibration.json"


def wait_for(predicate, timeout=3.0):
    return ros.wait_for(predicate, timeout, poll=0.01)


@pytest.fixture()
def emulator(tmp_path):
    with Sts3215Emulator(link=tmp_path / "arm") as emu:
        yield emu


class PatientPortHandler(scs.PortHandler):
    """The SDK's reply timeout (~34 ms) is shorter than a loaded 2-core CI machine may take to
    schedule the Python emulator; these tests are about protocol semantics, not timing."""

    def setPacketTimeout(self, packet_length):
        super().setPacketTimeout(packet_length)
        self.packet_timeout = max(self.packet_timeout, 250.0)


@pytest.fixture()
def sdk(emulator):
    port = PatientPortHandler(emulator.port)
    assert port.openPort()
    yield port, scs.PacketHandler(0)
    port.closePort()


def test_sdk_ping_read_write_and_model(sdk, emulator):
    port, pk = sdk
    model, result, error = pk.ping(port, 4)
    assert (model, result, error) == (R.STS3215_MODEL_NUMBER, scs.COMM_SUCCESS, 0)
    _, result, _ = pk.ping(port, 9)  # nobody there
    assert result == scs.COMM_RX_TIMEOUT
    assert pk.write1ByteTxRx(port, 2, 7, 0) == (scs.COMM_SUCCESS, 0)
    assert emulator.register(2, "Return_Delay_Time") == 0


def test_sdk_sync_write_moves_servos_with_torque_only(sdk, emulator):
    port, pk = sdk
    for i in (1, 2):
        assert pk.write1ByteTxRx(port, i, 40, 1)[0] == scs.COMM_SUCCESS
    writer = scs.GroupSyncWrite(port, pk, 42, 2)
    for i in range(1, 7):
        writer.addParam(i, R.to_bytes(2500, 2))
    assert writer.txPacket() == scs.COMM_SUCCESS
    reader = scs.GroupSyncRead(port, pk, 56, 2)
    for i in range(1, 7):
        reader.addParam(i)

    def positions():
        assert reader.txRxPacket() == scs.COMM_SUCCESS
        return [reader.getData(i, 56, 2) for i in range(1, 7)]

    assert wait_for(lambda: positions()[:2] == [2500, 2500])
    assert positions()[2:] == [2048] * 4  # torque off: goals do not move a servo


def test_homing_offset_and_limits_semantics(sdk, emulator):
    port, pk = sdk
    before = pk.read2ByteTxRx(port, 1, 56)[0]
    assert pk.write2ByteTxRx(port, 1, 31, R.encode_sign_magnitude(-100, 11))[0] == scs.COMM_SUCCESS
    assert pk.read2ByteTxRx(port, 1, 56)[0] == before + 100  # Present = actual - Homing_Offset
    pk.write2ByteTxRx(port, 1, 11, 2200)  # Max_Position_Limit
    pk.write1ByteTxRx(port, 1, 40, 1)
    pk.write2ByteTxRx(port, 1, 42, 3000)
    assert wait_for(lambda: pk.read2ByteTxRx(port, 1, 56)[0] == 2200)  # goal clamped to the limit


def test_reg_write_waits_for_action(sdk, emulator):
    port, pk = sdk
    assert pk.regWriteTxRx(port, 3, 7, 1, [5])[0] == scs.COMM_SUCCESS
    assert emulator.register(3, "Return_Delay_Time") == 250
    pk.action(port, 3)
    assert wait_for(lambda: emulator.register(3, "Return_Delay_Time") == 5)


def test_corrupt_instruction_is_ignored(emulator):
    import serial
    with serial.Serial(emulator.port, 1_000_000, timeout=0.2) as ser:
        bad = bytearray(R.instruction_packet(1, R.INST_WRITE, [7, 9]))
        bad[-1] ^= 0xFF
        ser.write(bytes(bad))
        assert ser.read(6) == b""
        ser.write(R.instruction_packet(1, R.INST_PING))
        assert ser.read(6) == R.status_packet(1, 0)
    assert emulator.register(1, "Return_Delay_Time") == 250


def test_lerobot_feetech_bus_connects_and_syncs(emulator):
    feetech = pytest.importorskip("lerobot.motors.feetech", reason="lerobot[feetech] not installed")
    motors_mod = pytest.importorskip("lerobot.motors", reason="lerobot not installed")
    cal = load_calibration(CAL_FILE)
    motors = {n: motors_mod.Motor(c.id, "sts3215", motors_mod.MotorNormMode.RANGE_0_100 if n == "gripper"
                                  else motors_mod.MotorNormMode.DEGREES) for n, c in cal.items()}
    lr_cal = {n: motors_mod.MotorCalibration(**dataclasses.asdict(c)) for n, c in cal.items()}
    bus = feetech.FeetechMotorsBus(emulator.port, motors, calibration=lr_cal)
    bus.connect()  # pings every motor, reads model numbers and firmware versions
    try:
        assert not bus.is_calibrated
        bus.write_calibration(lr_cal)
        assert bus.is_calibrated
        bus.configure_motors()
        assert emulator.register(1, "Return_Delay_Time") == 0
        bus.enable_torque()
        start = bus.sync_read("Present_Position")
        assert set(start) == set(cal)
        goal = {"shoulder_pan": 20.0, "elbow_flex": -15.0, "gripper": 40.0}
        bus.sync_write("Goal_Position", goal)
        assert wait_for(lambda: all(abs(bus.sync_read("Present_Position")[m] - v) < 0.5 for m, v in goal.items()))
        raw = bus.sync_read("Present_Position", normalize=False)
        assert raw["shoulder_pan"] == emulator.register(1, "Present_Position")
    finally:
        bus.disconnect(disable_torque=True)
    assert emulator.register(1, "Torque_Enable") == 0


def test_vanish_and_reappear_keeps_the_link(emulator):
    link = Path(emulator.port)
    emulator.vanish()
    assert not link.exists()
    emulator.reappear()
    assert link.exists()
    port = scs.PortHandler(str(link))
    assert port.openPort()
    try:
        # A few tries, as the bus driver makes: the SDK waits only a few ms for a reply, which
        # the emulator thread can miss on a loaded machine.
        assert any(scs.PacketHandler(0).ping(port, 1)[1] == scs.COMM_SUCCESS for _ in range(5))
    finally:
        port.closePort()
