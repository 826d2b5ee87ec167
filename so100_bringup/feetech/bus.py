"""A Feetech STS bus on top of the official SDK (`scservo_sdk`, PyPI feetech-servo-sdk).

The SDK does the wire protocol (packets, checksums, status parsing). This wrapper adds what a
driver loop needs: clear errors for a missing/forbidden port and wrong servos, per-transfer
timeouts, bounded retries, per-servo error counting, a sync read that still returns the servos
that did answer when one does not, and "the port went away" as a state, not a crash.
"""
from __future__ import annotations

import errno
import logging
import os
import termios
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence, TypeVar

import serial
import scservo_sdk as scs

from so100_bringup.control.hardware import HardwareError

from so100_bringup.feetech.registers import (DEFAULT_BAUDRATE, REGISTERS, STS3215_MODEL_NUMBER, decode_register,
                                             encode_register, from_bytes, to_bytes)

log = logging.getLogger(__name__)
T = TypeVar("T")

# What pyserial / the SDK raise when the device disappears mid-transfer (a closed handler has
# ser=None, hence the TypeError/AttributeError).
PORT_ERRORS = (serial.SerialException, OSError, termios.error, TypeError, AttributeError)

DIALOUT_FIX = ("add your user to the serial group and log in again: `sudo usermod -aG dialout $USER` "
               "(Arch: uucp), or for a quick test `sudo chmod 666 {port}`")


class BusError(HardwareError):
    """A bus problem the operator has to fix; the message names the port and the fix."""


class PortNotFoundError(BusError):
    pass


class PortPermissionError(BusError):
    pass


class ServoMismatchError(BusError):
    pass


class PortLostError(BusError):
    """The port vanished (unplugged, powered off) while in use."""


class CommError(BusError):
    """A transfer failed after all retries."""


@dataclass
class BusStats:
    transfers: int = 0
    timeouts: int = 0  # no status packet
    corrupt: int = 0  # incorrect status packet (checksum, length)
    tx_errors: int = 0
    retries: int = 0
    servo_errors: int = 0  # status packets with error bits set (overload, overheat, ...)
    port_errors: int = 0
    reconnects: int = 0
    missing: dict[int, int] = field(default_factory=dict)  # id -> replies missed
    last_error: str = ""
    last_servo_error: dict[int, int] = field(default_factory=dict)  # id -> error byte

    def as_dict(self) -> dict[str, int | str]:
        out = {k: v for k, v in self.__dict__.items() if isinstance(v, (int, str))}
        out.update({f"missed_replies_id{i}": n for i, n in sorted(self.missing.items())})
        return out


def check_port(port: str) -> None:
    """Raise a clear BusError if `port` cannot be opened, before the SDK tries."""
    if not port:
        raise PortNotFoundError("no serial port given; set the `port` parameter (e.g. /dev/ttyACM0 or "
                                "/dev/serial/by-id/usb-...; `lerobot-find-port` finds it)")
    if not os.path.exists(port):
        raise PortNotFoundError(
            f"serial port {port} not found: is the arm's USB cable plugged in and the controller board powered? "
            f"List candidates with `ls /dev/serial/by-id/ /dev/ttyACM* /dev/ttyUSB*` (or `lerobot-find-port`) "
            f"and set the `port` parameter")
    if not os.access(port, os.R_OK | os.W_OK):
        raise PortPermissionError(f"permission denied on serial port {port}: " + DIALOUT_FIX.format(port=port))


class FeetechBus:
    """Servos `ids` on `port`. All methods are for one thread (the driver's control loop)."""

    def __init__(self, port: str, ids: Sequence[int], baudrate: int = DEFAULT_BAUDRATE,
                 timeout_ms: float = 10.0, retries: int = 2, model_number: int = STS3215_MODEL_NUMBER):
        self.port = port
        self.ids = list(ids)
        self.baudrate = int(baudrate)
        self.timeout_ms = float(timeout_ms)
        self.retries = int(retries)
        self.model_number = model_number
        self.stats = BusStats()
        self._port: scs.PortHandler | None = None
        self._packet = scs.PacketHandler(0)  # STS series: protocol 0
        self.connected = False

    # -- port ------------------------------------------------------------------------------
    def open(self) -> None:
        check_port(self.port)
        handler = scs.PortHandler(self.port)
        # The SDK waits 2 * 16 ms (USB latency timer) + wire time for every status packet; a
        # configurable margin keeps a lost reply from stalling the control loop for 34 ms.
        margin = self.timeout_ms

        def set_packet_timeout(packet_length: int, _h=handler) -> None:
            _h.packet_start_time = _h.getCurrentTime()
            _h.packet_timeout = _h.tx_time_per_byte * packet_length + margin

        handler.setPacketTimeout = set_packet_timeout  # type: ignore[method-assign]
        handler.baudrate = self.baudrate
        try:
            ok = handler.openPort()
        except serial.SerialException as exc:
            raise self._open_error(exc) from None
        except OSError as exc:
            raise self._open_error(exc) from None
        if not ok:
            raise BusError(f"serial port {self.port}: baud rate {self.baudrate} is not supported by the SDK")
        # Block in read() for up to 1 ms instead of spinning: returns as soon as the bytes asked
        # for are there, so it adds no latency but frees the CPU while a reply is on the wire.
        handler.ser.timeout = 0.001
        self._port = handler
        self.connected = True

    def _open_error(self, exc: Exception) -> BusError:
        err = getattr(exc, "errno", None)
        text = str(exc)
        if err == errno.EACCES or "Permission denied" in text:
            return PortPermissionError(f"permission denied on serial port {self.port}: "
                                       + DIALOUT_FIX.format(port=self.port))
        if err == errno.ENOENT or "No such file" in text or "could not open port" in text and "2]" in text:
            return PortNotFoundError(f"serial port {self.port} not found ({text}); check the USB cable and "
                                     f"the `port` parameter")
        if err == errno.EBUSY or "busy" in text.lower():
            return BusError(f"serial port {self.port} is busy: another program (a LeRobot script, a second "
                            f"driver, a serial monitor) has it open; stop it first")
        return BusError(f"cannot open serial port {self.port}: {text}")

    def close(self) -> None:
        if self._port is not None:
            try:
                self._port.closePort()
            except Exception:  # noqa: BLE001 - closing a vanished port may fail in many ways
                pass
        self._port = None
        self.connected = False

    def reopen(self) -> bool:
        """Try to open the port again after it was lost. True when it is back."""
        self.close()
        try:
            self.open()
        except BusError as exc:
            self.stats.last_error = str(exc)
            return False
        self.stats.reconnects += 1
        return True

    def _require(self) -> scs.PortHandler:
        if self._port is None or not self.connected:
            raise PortLostError(f"serial port {self.port} is not open (unplugged or powered off?)")
        return self._port

    def _lost(self, exc: Exception) -> PortLostError:
        self.stats.port_errors += 1
        self.stats.last_error = f"serial port {self.port} lost: {exc}"
        self.connected = False
        if self._port is not None:
            self._port.is_using = False
        return PortLostError(self.stats.last_error + "; waiting for it to come back")

    def _count(self, result: int) -> None:
        if result == scs.COMM_RX_TIMEOUT:
            self.stats.timeouts += 1
        elif result == scs.COMM_RX_CORRUPT:
            self.stats.corrupt += 1
        elif result != scs.COMM_SUCCESS:
            self.stats.tx_errors += 1
        if result != scs.COMM_SUCCESS:
            self.stats.last_error = self._packet.getTxRxResult(result)

    def _servo_error(self, servo_id: int, error: int) -> None:
        if error:
            self.stats.servo_errors += 1
            self.stats.last_servo_error[servo_id] = error

    def _settle(self) -> None:
        port = self._require()
        time.sleep(self.timeout_ms / 1000.0)
        self._drain(port)

    def _drain(self, port: scs.PortHandler) -> None:
        """Throw away late bytes of a failed transfer so they do not poison the next one."""
        try:
            port.ser.reset_input_buffer()
        except PORT_ERRORS:
            pass

    # -- single-servo access ---------------------------------------------------------------
    def _request(self, servo_id: int, transfer: Callable[[scs.PortHandler], tuple[T, int, int]],
                 valid: Callable[[T], bool] = lambda _payload: True) -> T | None:
        """One request/reply `transfer` (-> payload, result, error byte), tried up to 1 + retries
        times; the payload of the first valid reply, or None when every try failed."""
        port = self._require()
        for attempt in range(1 + self.retries):
            try:
                payload, result, error = transfer(port)
            except PORT_ERRORS as exc:
                raise self._lost(exc) from None
            self.stats.transfers += 1
            self._count(result)
            if result == scs.COMM_SUCCESS and valid(payload):
                self._servo_error(servo_id, error)
                return payload
            self.stats.retries += attempt < self.retries
            self._drain(port)
        return None

    def _missed(self, servo_id: int) -> None:
        self.stats.missing[servo_id] = self.stats.missing.get(servo_id, 0) + 1

    def ping(self, servo_id: int) -> int | None:
        """Model number of `servo_id`, or None when it does not answer."""
        def transfer(port: scs.PortHandler) -> tuple[int, int, int]:
            try:
                return self._packet.ping(port, servo_id)
            except IndexError:  # the SDK indexes a too-short reply (a late packet of an earlier try)
                port.is_using = False
                return 0, scs.COMM_RX_CORRUPT, 0

        model = self._request(servo_id, transfer)
        return None if model is None else int(model)

    def read_raw(self, servo_id: int, address: int, size: int) -> bytes:
        data = self._request(servo_id, lambda port: self._packet.readTxRx(port, servo_id, address, size),
                             valid=lambda payload: len(payload) == size)
        if data is None:
            self._missed(servo_id)
            raise CommError(f"servo id {servo_id} on {self.port}: no valid reply reading {size} byte(s) at "
                            f"address {address} after {1 + self.retries} tries ({self.stats.last_error})")
        return bytes(data)

    def read(self, servo_id: int, name: str) -> int:
        reg = REGISTERS[name]
        return decode_register(reg, from_bytes(self.read_raw(servo_id, reg.address, reg.size)))

    def write_raw(self, servo_id: int, address: int, data: Sequence[int]) -> None:
        def transfer(port: scs.PortHandler) -> tuple[bool, int, int]:
            result, error = self._packet.writeTxRx(port, servo_id, address, len(data), list(data))
            return True, result, error  # a write's reply carries no payload

        if self._request(servo_id, transfer) is None:
            self._missed(servo_id)
            raise CommError(f"servo id {servo_id} on {self.port}: write of address {address} not acknowledged "
                            f"after {1 + self.retries} tries ({self.stats.last_error})")

    def write(self, servo_id: int, name: str, value: int) -> None:
        reg = REGISTERS[name]
        if not reg.writable:
            raise ValueError(f"register {name} is read-only")
        self.write_raw(servo_id, reg.address, to_bytes(encode_register(reg, value), reg.size))

    # -- whole-bus access ------------------------------------------------------------------
    def verify(self, ids: Iterable[int] | None = None, names: Mapping[int, str] | None = None) -> None:
        """Every servo answers and is an STS3215; otherwise a ServoMismatchError saying what to do."""
        names = names or {}
        missing, wrong = [], []
        for servo_id in (self.ids if ids is None else ids):
            model = None
            for _ in range(3):
                # Late replies of earlier transfers carry the same id and would be taken for the
                # model number: settle and flush before believing a mismatch.
                self._settle()
                model = self.ping(servo_id)
                if model in (None, self.model_number):
                    break
            if model is None:
                missing.append(servo_id)
            elif model != self.model_number:
                wrong.append((servo_id, model))
        label = lambda i: f"{i} ({names[i]})" if i in names else str(i)  # noqa: E731
        problems = []
        if missing:
            problems.append(f"no reply from servo id(s) {', '.join(label(i) for i in missing)}: check the "
                            "daisy-chain cables and the servo power supply, and that ids were set with "
                            "`lerobot-setup-motors` (ids 1..6 = shoulder_pan..gripper)")
        if wrong:
            problems.append("servo id(s) " + ", ".join(f"{label(i)} report model {m}" for i, m in wrong)
                            + f", expected STS3215 (model {self.model_number}): wrong servo on that id, or "
                            "a leader arm's servo on the follower bus")
        if problems:
            raise ServoMismatchError(f"serial port {self.port} at {self.baudrate} baud: " + "; ".join(problems))

    def sync_read(self, address: int, size: int, ids: Sequence[int] | None = None) -> dict[int, bytes]:
        """One SYNC_READ; returns {id: data} of the servos that answered with a valid packet.

        Unlike the SDK's GroupSyncRead (which gives up at the first missing reply and then drops
        the replies of the servos after it), every valid status packet is kept."""
        port = self._require()
        ids = list(self.ids if ids is None else ids)
        got: dict[int, bytes] = {}
        try:
            result = self._packet.syncReadTx(port, address, size, ids, len(ids))
            if result != scs.COMM_SUCCESS:
                port.is_using = False
                self._count(result)
                return got
            while len(got) < len(ids):
                packet, result = self._packet.rxPacket(port)
                if result != scs.COMM_SUCCESS:
                    self._count(result)
                    if result == scs.COMM_RX_TIMEOUT or port.isPacketTimeout() or port.packet_timeout == 0:
                        break
                    continue  # corrupt packet: keep listening for the rest until the timeout
                sid = packet[scs.PKT_ID]
                if sid in ids and sid not in got and len(packet) >= 6 + size:
                    got[sid] = bytes(packet[scs.PKT_PARAMETER0:scs.PKT_PARAMETER0 + size])
                    self._servo_error(sid, packet[scs.PKT_ERROR])
        except PORT_ERRORS as exc:
            raise self._lost(exc) from None
        finally:
            if self._port is not None:
                self._port.is_using = False
        self.stats.transfers += 1
        for sid in ids:
            if sid not in got:
                self._missed(sid)
        if len(got) < len(ids):
            self._drain(port)
        return got

    def sync_read_retry(self, address: int, size: int, ids: Sequence[int] | None = None) -> dict[int, bytes]:
        """sync_read, then up to `retries` more sync reads for the servos that did not answer."""
        ids = list(self.ids if ids is None else ids)
        got = self.sync_read(address, size, ids)
        for _ in range(self.retries):
            missing = [i for i in ids if i not in got]
            if not missing:
                break
            self.stats.retries += 1
            got.update(self.sync_read(address, size, missing))
        return got

    def sync_write(self, name: str, values: Mapping[int, int]) -> None:
        """One SYNC_WRITE of register `name` (no replies on the bus, so nothing to retry)."""
        reg = REGISTERS[name]
        self.sync_write_raw(reg.address, reg.size,
                            {i: to_bytes(encode_register(reg, v), reg.size) for i, v in values.items()})

    def sync_write_raw(self, address: int, size: int, data: Mapping[int, Sequence[int]]) -> None:
        port = self._require()
        params: list[int] = []
        for servo_id, chunk in data.items():
            params.append(servo_id)
            params.extend(chunk)
        try:
            result = self._packet.syncWriteTxOnly(port, address, size, params, len(params))
        except PORT_ERRORS as exc:
            raise self._lost(exc) from None
        finally:
            port.is_using = False
        self.stats.transfers += 1
        if result != scs.COMM_SUCCESS:
            self._count(result)
            raise CommError(f"sync write to {self.port} failed: {self._packet.getTxRxResult(result)}")
