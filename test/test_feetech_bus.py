"""FeetechBus (official SDK underneath) against the emulator: errors that name the port and the
fix, and every injected fault counted, survived and recovered from."""
from __future__ import annotations

import errno
import os
import time

import pytest
import serial

from so100_bringup.feetech import registers as R
from so100_bringup.feetech.bus import (BusError, CommError, FeetechBus, PortLostError, PortNotFoundError,
                                       PortPermissionError, ServoMismatchError)
from so100_bringup.feetech.emulator import Sts3215Emulator

IDS = [1, 2, 3, 4, 5, 6]
POS = R.STATE_BLOCK


@pytest.fixture()
def emulator(tmp_path):
    with Sts3215Emulator(link=tmp_path / "arm") as emu:
        yield emu


@pytest.fixture()
def bus(emulator):
    # generous timeout: the emulator shares this process (and a loaded CI machine)
    b = FeetechBus(emulator.port, IDS, timeout_ms=100.0, retries=2)
    b.open()
    yield b
    b.close()


def test_missing_port_names_port_and_fix(tmp_path):
    bus = FeetechBus(str(tmp_path / "ttyACM9"), IDS)
    with pytest.raises(PortNotFoundError) as info:
        bus.open()
    text = str(info.value)
    assert "ttyACM9" in text and "plugged" in text and "port" in text


def test_empty_port_is_a_clear_error():
    with pytest.raises(PortNotFoundError, match="port"):
        FeetechBus("", IDS).open()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can open any file, so permission denied cannot happen")
def test_permission_denied_names_dialout(tmp_path):
    path = tmp_path / "ttyUSB0"
    path.write_text("")
    path.chmod(0)
    with pytest.raises(PortPermissionError, match="dialout") as info:
        FeetechBus(str(path), IDS).open()
    assert str(path) in str(info.value)


def test_permission_error_from_pyserial_names_dialout():
    # what pyserial raises for a device node the user may not open (as root we cannot provoke it)
    exc = serial.SerialException(errno.EACCES, "could not open port /dev/ttyACM0: [Errno 13] Permission denied")
    err = FeetechBus("/dev/ttyACM0", IDS)._open_error(exc)
    assert isinstance(err, PortPermissionError) and "dialout" in str(err) and "/dev/ttyACM0" in str(err)


def test_wrong_model_and_missing_id_are_named(emulator, bus):
    emulator.set_register(3, "Model_Number", 1284)
    emulator.set_silent(6)
    with pytest.raises(ServoMismatchError) as info:
        bus.verify(names={3: "elbow_flex", 6: "gripper"})
    text = str(info.value)
    assert emulator.port in text
    assert "3 (elbow_flex) report model 1284" in text and "STS3215" in text
    assert "no reply from servo id(s) 6 (gripper)" in text and "lerobot-setup-motors" in text


def test_verify_passes_on_a_healthy_bus(bus):
    bus.verify()


def test_sync_read_and_write_all_six(emulator, bus):
    for i in IDS:
        bus.write(i, "Torque_Enable", 1)
    bus.sync_write("Goal_Position", {i: 1000 + 100 * i for i in IDS})
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        data = bus.sync_read(*POS)
        positions = {i: R.decode_block(POS[0], d, ["Present_Position"])["Present_Position"] for i, d in data.items()}
        if positions == {i: 1000 + 100 * i for i in IDS}:
            break
        time.sleep(0.02)
    assert positions == {i: 1000 + 100 * i for i in IDS}


def test_signed_values_decode(emulator, bus):
    bus.write(2, "Homing_Offset", -300)
    assert bus.read(2, "Homing_Offset") == -300
    assert emulator.register(2, "Homing_Offset") == -300


def test_dropped_reply_is_counted_and_others_survive(emulator, bus):
    emulator.drop_replies(1)
    data = bus.sync_read(*POS)
    assert len(data) == 5 and bus.stats.timeouts >= 1
    assert bus.stats.missing[1] == 1  # the first reply of the sync read was dropped
    assert len(bus.sync_read(*POS)) == 6  # next cycle is whole again


def test_corrupt_reply_is_counted_and_others_survive(emulator, bus):
    emulator.corrupt_replies(1)
    data = bus.sync_read(*POS)
    assert len(data) == 5 and bus.stats.corrupt >= 1
    assert len(bus.sync_read(*POS)) == 6


def test_single_reads_retry_then_raise(emulator, bus):
    emulator.drop_replies(2)
    assert bus.read(4, "Model_Number") == R.STS3215_MODEL_NUMBER  # third try succeeds
    assert bus.stats.retries == 2
    emulator.set_silent(4)
    with pytest.raises(CommError, match="servo id 4"):
        bus.read(4, "Model_Number")


def test_sync_read_retry_fills_in_missing(emulator, bus):
    emulator.drop_replies(2)
    assert len(bus.sync_read_retry(*POS)) == 6


def test_silent_servo_does_not_hide_the_others(emulator, bus):
    emulator.set_silent(2)
    data = bus.sync_read(*POS)
    assert sorted(data) == [1, 3, 4, 5, 6]
    emulator.set_silent(2, False)
    assert sorted(bus.sync_read(*POS)) == IDS


def test_port_vanishing_raises_port_lost_then_recovers(emulator, bus):
    emulator.vanish()
    with pytest.raises(PortLostError, match="lost"):
        for _ in range(3):
            bus.sync_read(*POS)
            bus.sync_write("Goal_Position", {1: 2048})
    assert not bus.connected
    with pytest.raises(PortLostError):
        bus.sync_read(*POS)
    assert not bus.reopen()  # still gone
    assert "not found" in bus.stats.last_error
    emulator.reappear()
    assert bus.reopen()
    assert sorted(bus.sync_read(*POS)) == IDS
    assert bus.stats.reconnects == 1 and bus.stats.port_errors >= 1


def test_bus_error_hierarchy():
    # callers catch BusError for everything the bus reports
    for cls in (PortNotFoundError, PortPermissionError, ServoMismatchError, PortLostError, CommError):
        assert issubclass(cls, BusError)
