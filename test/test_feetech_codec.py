"""Wire-format vectors: our register codecs and packet builders vs the protocol, the official SDK
and LeRobot's sign-magnitude helpers."""
from __future__ import annotations

import os
import select
import tty

import pytest

from so100_bringup.feetech import registers as R


def test_known_packets():
    # PING id 1 and READ Present_Position of id 1 (values checked by hand against the formula)
    assert R.instruction_packet(1, R.INST_PING) == bytes.fromhex("ffff010201fb")
    assert R.instruction_packet(1, R.INST_READ, [56, 2]) == bytes.fromhex("ffff0104023802be")
    assert R.status_packet(1, 0, [0x00, 0x08]) == bytes.fromhex("ffff0104000008f2")
    # SYNC_WRITE Goal_Position 2048 to ids 1 and 2: LEN = (n + 1) * k + 4
    pkt = R.sync_write_packet(42, 2, {1: 2048, 2: 1})
    assert pkt[:7] == bytes([0xFF, 0xFF, 0xFE, (2 + 1) * 2 + 4, 0x83, 42, 2])
    assert pkt[7:13] == bytes([1, 0x00, 0x08, 2, 0x01, 0x00])
    assert pkt[-1] == (~sum(pkt[2:-1])) & 0xFF
    assert R.sync_read_packet(56, 2, [1, 2, 3]) == bytes([0xFF, 0xFF, 0xFE, 7, 0x82, 56, 2, 1, 2, 3,
                                                         (~(0xFE + 7 + 0x82 + 56 + 2 + 6)) & 0xFF])


@pytest.mark.parametrize("value, bit, raw", [(0, 15, 0), (5, 15, 5), (-1, 15, 0x8001), (-4095, 15, 0x8FFF),
                                             (-1470, 11, 0x800 | 1470), (2047, 11, 2047), (-100, 10, 0x400 | 100)])
def test_sign_magnitude_vectors(value, bit, raw):
    assert R.encode_sign_magnitude(value, bit) == raw
    assert R.decode_sign_magnitude(raw, bit) == value


def test_sign_magnitude_overflow_is_an_error():
    with pytest.raises(ValueError):
        R.encode_sign_magnitude(2048, 11)
    with pytest.raises(ValueError):
        R.encode_register(R.REGISTERS["Goal_Time"], 70000)


def test_sign_magnitude_matches_lerobot():
    enc = pytest.importorskip("lerobot.motors.encoding_utils", reason="lerobot not installed")
    for bit in (10, 11, 15):
        for value in range(-(1 << bit) + 1, 1 << bit, 37):
            assert R.encode_sign_magnitude(value, bit) == enc.encode_sign_magnitude(value, bit)
            raw = R.encode_sign_magnitude(value, bit)
            assert R.decode_sign_magnitude(raw, bit) == enc.decode_sign_magnitude(raw, bit)


def test_register_table_matches_lerobot_and_reference():
    tables = pytest.importorskip("lerobot.motors.feetech.tables", reason="lerobot not installed")
    theirs = tables.STS_SMS_SERIES_CONTROL_TABLE
    for name, reg in R.REGISTERS.items():
        assert theirs[name] == (reg.address, reg.size), name
    for name, bit in tables.STS_SMS_SERIES_ENCODINGS_TABLE.items():
        if name in R.REGISTERS:
            assert R.REGISTERS[name].sign_bit == bit, name
    # the STS3215 control table (docs/real_arm.md, "STS3215 protocol")
    expected = {"ID": 5, "Return_Delay_Time": 7, "Homing_Offset": 31, "Torque_Enable": 40, "Goal_Position": 42,
                "Lock": 55, "Present_Position": 56, "Present_Load": 60, "Present_Current": 69,
                "Maximum_Acceleration": 85}
    assert {n: R.REGISTERS[n].address for n in expected} == expected


def test_decode_block():
    data = [*R.to_bytes(R.encode_sign_magnitude(-12, 15), 2), *R.to_bytes(R.encode_sign_magnitude(-300, 15), 2),
            *R.to_bytes(R.encode_sign_magnitude(-50, 10), 2)]
    out = R.decode_block(56, data, ("Present_Position", "Present_Velocity", "Present_Load"))
    assert out == {"Present_Position": -12, "Present_Velocity": -300, "Present_Load": -50}


def test_wire_budget():
    # sync read of 6 positions (14 B) + 6 status packets (48 B) + sync write of 6 goals (26 B)
    assert R.cycle_wire_bytes(6) == 14 + 48 + 26


def test_sdk_sends_exactly_our_packets():
    """The official SDK's bytes on a pty equal our builders' (so the emulator parses the real thing)."""
    scs = pytest.importorskip("scservo_sdk", reason="feetech-servo-sdk not installed")
    master, slave = os.openpty()
    tty.setraw(master)
    port = scs.PortHandler(os.ttyname(slave))
    try:
        assert port.openPort()
        pk = scs.PacketHandler(0)

        def sent() -> bytes:
            out = b""
            while select.select([master], [], [], 0.05)[0]:
                out += os.read(master, 1024)
            return out

        port.setPacketTimeout = lambda n: setattr(port, "packet_timeout", 0.0) or setattr(
            port, "packet_start_time", port.getCurrentTime())
        pk.read2ByteTxRx(port, 3, 56)
        assert sent() == R.instruction_packet(3, R.INST_READ, [56, 2])
        pk.write2ByteTxOnly(port, 2, 42, R.encode_sign_magnitude(-7, 15))
        assert sent() == R.instruction_packet(2, R.INST_WRITE, [42, 7, 0x80])
        writer = scs.GroupSyncWrite(port, pk, 42, 2)
        for i, v in {1: 100, 2: 4000, 6: 2048}.items():
            writer.addParam(i, R.to_bytes(v, 2))
        writer.txPacket()
        assert sent() == R.sync_write_packet(42, 2, {1: 100, 2: 4000, 6: 2048})
        reader = scs.GroupSyncRead(port, pk, 56, 6)
        for i in (1, 2, 3):
            reader.addParam(i)
        reader.txPacket()
        assert sent() == R.sync_read_packet(56, 6, [1, 2, 3])
    finally:
        port.closePort()
        os.close(master)
        os.close(slave)
