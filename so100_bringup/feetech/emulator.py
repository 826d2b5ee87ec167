"""STS3215 servos on a pseudo-terminal, so the real serial code (the Feetech SDK, LeRobot's
FeetechMotorsBus, this package's driver) runs without an arm.

Register semantics emulated: model number / firmware, ID, Return_Delay_Time, Response_Status_Level,
position limits, Homing_Offset (Present_Position = actual - offset, wrapped to 0..4095),
Torque_Enable, Goal_Position -> Present_Position with a first-order response and a speed limit,
Present_Velocity / Present_Load / Present_Voltage / Present_Temperature / Present_Current / Moving,
Lock; instructions PING, READ, WRITE, REG_WRITE + ACTION, SYNC_READ, SYNC_WRITE. Packets with a
bad checksum are ignored, as a servo does.

Optionally paced at the wire time of the configured baud rate (10 bit times per byte), so a
benchmark measures what a real 1 Mbps bus would allow.

`sweep(period)` (`--sweep SECONDS`) stands in for the operator of a calibration: a servo with
torque off rests at mid-range until a calibration has written its Homing_Offset and then read its
position (the "middle" step of LeRobot's procedure and so100_calibrate's), then moves back and
forth over +-amplitude ticks around that pose (default: the joint's nominal URDF range), one cycle
per period.

Fault injection (thread-safe): dropped replies, corrupted checksums, servos that stop answering,
and the port vanishing and coming back (use `link`: a stable symlink, like /dev/serial/by-id/...,
that is removed while the port is gone and re-pointed at a fresh pty when it returns).
"""
from __future__ import annotations

import argparse
import math
import os
import random
import select
import signal
import sys
import threading
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from so100_bringup.feetech.registers import (BAUD_CODES, BROADCAST_ID, INST_ACTION, INST_PING,
                                             INST_READ, INST_REG_WRITE, INST_SYNC_READ, INST_SYNC_WRITE,
                                             INST_WRITE, REGISTERS, STS3215_MODEL_NUMBER, TICKS_PER_REV,
                                             checksum, decode_register, encode_register, from_bytes,
                                             status_packet, to_bytes)

FACTORY_DEFAULTS: dict[str, int] = {
    "Firmware_Major_Version": 3, "Firmware_Minor_Version": 10, "Model_Number": STS3215_MODEL_NUMBER,
    "Baud_Rate": 0, "Return_Delay_Time": 250, "Response_Status_Level": 1,
    "Min_Position_Limit": 0, "Max_Position_Limit": 4095, "Max_Temperature_Limit": 70,
    "Max_Voltage_Limit": 140, "Min_Voltage_Limit": 40, "Max_Torque_Limit": 1000, "Phase": 12,
    "Unloading_Condition": 44, "LED_Alarm_Condition": 47, "P_Coefficient": 32, "D_Coefficient": 32,
    "I_Coefficient": 0, "Minimum_Startup_Force": 16, "CW_Dead_Zone": 1, "CCW_Dead_Zone": 1,
    "Protection_Current": 500, "Angular_Resolution": 1, "Homing_Offset": 0, "Operating_Mode": 0,
    "Protective_Torque": 20, "Protection_Time": 200, "Overload_Torque": 80, "Torque_Enable": 0,
    "Acceleration": 0, "Goal_Position": 0, "Goal_Time": 0, "Goal_Velocity": 0, "Torque_Limit": 1000,
    "Lock": 1, "Present_Voltage": 120, "Present_Temperature": 31, "Maximum_Acceleration": 0,
}
_STATE_ADDRESSES = range(REGISTERS["Present_Position"].address, REGISTERS["Present_Current"].address + 2)
# address -> register names covering it (for write bookkeeping without scanning the table)
_REGS_AT: dict[int, list[str]] = {}
for _reg in REGISTERS.values():
    for _a in range(_reg.address, _reg.address + _reg.size):
        _REGS_AT.setdefault(_a, []).append(_reg.name)
_HOMING = REGISTERS["Homing_Offset"]
_TORQUE = REGISTERS["Torque_Enable"].address
_GOAL = REGISTERS["Goal_Position"].address
_MIN_LIMIT = REGISTERS["Min_Position_Limit"].address
_MAX_LIMIT = REGISTERS["Max_Position_Limit"].address
_PRESENT_POS = REGISTERS["Present_Position"].address


def _sm(value: int, bit: int) -> int:
    return (-value | (1 << bit)) if value < 0 else value


class ServoModel:
    """One STS3215: a 256-byte memory plus a first-order position response."""

    def __init__(self, servo_id: int, present: float = 2048.0, time_constant: float = 0.04,
                 max_speed: float = 3400.0, clock=time.monotonic):
        self.mem = bytearray(256)
        self._clock = clock
        for name, value in FACTORY_DEFAULTS.items():
            self._store(name, value)
        self._store("ID", servo_id)
        self.present = float(present) % TICKS_PER_REV  # Present_Position before rounding
        self.velocity = 0.0  # ticks/s
        self.time_constant = time_constant
        self.max_speed = max_speed  # ticks/s
        self.load_gain = 4.0  # 0.1 % of torque per tick of error
        self._last = clock()
        self._store("Goal_Position", int(round(self.present)) % TICKS_PER_REV)
        self.pending: tuple[int, bytes] | None = None  # REG_WRITE waiting for ACTION
        self.write_log: list[tuple[str, int]] = []  # (register, value) of writes, for tests
        # sweep (an emulated hand, torque off): amplitude and period; started by the calibration
        self.sweep_amplitude = 0.0  # ticks; 0 = no sweep
        self.sweep_period = 4.0  # s
        self._sweep_armed = False  # Homing_Offset written: the next position read is "the middle"
        self._sweep_start: float | None = None
        self._sweep_mid = 0.0  # actual (unhomed) position the sweep is centred on

    # -- memory ------------------------------------------------------------------------
    def _store(self, name: str, value: int) -> None:
        reg = REGISTERS[name]
        self.mem[reg.address:reg.address + reg.size] = bytes(to_bytes(encode_register(reg, value), reg.size))

    def get(self, name: str) -> int:
        reg = REGISTERS[name]
        if reg.address in _STATE_ADDRESSES:
            self.step()
        return decode_register(reg, from_bytes(self.mem[reg.address:reg.address + reg.size]))

    @property
    def id(self) -> int:
        return self.mem[REGISTERS["ID"].address]

    def read(self, address: int, length: int) -> bytes:
        if any(a in _STATE_ADDRESSES for a in range(address, address + length)):
            if self._sweep_armed and address <= _PRESENT_POS < address + length:
                self._sweep_armed = False  # the calibration took the middle: start moving from here
                self._sweep_start = self._clock()
                self._sweep_mid = self.present + self.get("Homing_Offset")
            self.step()
        return bytes(self.mem[address:address + length])

    def write(self, address: int, data: bytes) -> None:
        self.step()
        end = address + len(data)
        homing_touched = address < _HOMING.address + 2 and _HOMING.address < end
        old_homing = self.get("Homing_Offset") if homing_touched else 0
        for i, byte in enumerate(data):
            a = address + i
            if a >= 256 or a in _STATE_ADDRESSES or a < REGISTERS["ID"].address:
                continue  # read-only
            self.mem[a] = byte
        touched = dict.fromkeys(n for a in range(address, end) for n in _REGS_AT.get(a, ()))
        for name in touched:
            self.write_log.append((name, self.get(name)))
        if homing_touched:
            self._sweep_armed = self.sweep_amplitude > 0 and self._sweep_start is None
            new_homing = self.get("Homing_Offset")
            if new_homing != old_homing:  # Present_Position = actual - Homing_Offset
                self.present = (self.present + old_homing - new_homing) % TICKS_PER_REV
                self._store("Goal_Position", int(round(self.present)) % TICKS_PER_REV)
        if address <= _TORQUE < end and self.mem[_TORQUE]:
            self._last = self._clock()
        self._publish_state()

    # -- motion ------------------------------------------------------------------------
    def target(self) -> float:
        mem = self.mem
        raw = mem[_GOAL] | mem[_GOAL + 1] << 8
        goal = float(-(raw & 0x7FFF) if raw & 0x8000 else raw)
        lo = mem[_MIN_LIMIT] | mem[_MIN_LIMIT + 1] << 8
        hi = mem[_MAX_LIMIT] | mem[_MAX_LIMIT + 1] << 8
        if lo < hi:  # position mode honours the angle limits (both 0 = multi-turn, not emulated)
            goal = min(max(goal, lo), hi)
        return goal

    def step(self) -> None:
        now = self._clock()
        dt = max(0.0, now - self._last)
        self._last = now
        torque = self.mem[_TORQUE] == 1
        if not torque and self._sweep_start is not None:
            self._hand(now, dt)
        elif torque and dt > 0:
            error = self.target() - self.present
            move = error * (1.0 - math.exp(-dt / self.time_constant))
            limit = self.max_speed * dt
            move = min(max(move, -limit), limit)
            self.present += move
            self.velocity = move / dt
        elif dt > 0:
            self.velocity = 0.0
        self._publish_state()

    def _hand(self, now: float, dt: float) -> None:
        """The emulated operator's motion: a sine of `sweep_amplitude` around the middle."""
        phase = 2.0 * math.pi * (now - self._sweep_start) / self.sweep_period
        actual = self._sweep_mid + self.sweep_amplitude * math.sin(phase)
        present = (actual - self.get("Homing_Offset")) % TICKS_PER_REV
        self.velocity = (present - self.present) / dt if dt > 0 else 0.0
        self.present = present

    def _publish_state(self) -> None:
        torque = self.mem[_TORQUE] == 1
        pos = int(round(self.present)) % TICKS_PER_REV
        vel = _sm(int(round(max(-32767.0, min(32767.0, self.velocity)))), 15)
        load = 0
        if torque:
            load = max(-1000, min(1000, int(round(self.load_gain * (self.target() - self.present)))))
        raw_load = _sm(load, 10)
        a = _PRESENT_POS
        self.mem[a:a + 6] = bytes((pos & 0xFF, pos >> 8, vel & 0xFF, vel >> 8, raw_load & 0xFF, raw_load >> 8))
        current = min(4095, abs(load) // 2)
        self.mem[69:71] = bytes((current & 0xFF, current >> 8))
        self.mem[66] = int(abs(self.velocity) > 5.0)


@dataclass
class Faults:
    drop_next: int = 0  # drop this many upcoming status packets
    corrupt_next: int = 0  # corrupt the checksum of this many upcoming status packets
    drop_probability: float = 0.0
    corrupt_probability: float = 0.0
    silent_ids: set[int] = field(default_factory=set)  # servos that neither hear nor answer
    dropped: int = 0
    corrupted: int = 0


class Sts3215Emulator:
    """A bus of STS3215 servos behind a pty. `port` is the path to open (the symlink if `link`)."""

    def __init__(self, ids: Iterable[int] = (1, 2, 3, 4, 5, 6), positions: Mapping[int, float] | None = None,
                 paced: bool = False, link: str | os.PathLike | None = None, seed: int = 0,
                 time_constant: float = 0.04):
        positions = positions or {}
        self.servos: dict[int, ServoModel] = {
            i: ServoModel(i, positions.get(i, 2048.0), time_constant=time_constant) for i in ids}
        self.paced = paced
        self.link = Path(link) if link else None
        self.faults = Faults()
        self.lock = threading.RLock()
        self.packets = 0
        self.bad_packets = 0
        self._rng = random.Random(seed)
        self._master = self._slave = -1
        self._tty = ""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._present = threading.Event()  # port exists
        self._buf = bytearray()
        self._first_byte_time = 0.0
        self._wire_free = 0.0  # perf_counter time at which the emulated wire is idle again

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def port(self) -> str:
        return str(self.link) if self.link else self._tty

    def start(self) -> "Sts3215Emulator":
        self._open_pty()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sts3215-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2.0)
        with self.lock:
            self._close_pty()

    def __enter__(self) -> "Sts3215Emulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        tty.setraw(master)
        self._master, self._slave = master, slave
        self._tty = os.ttyname(slave)
        self._buf.clear()
        if self.link:
            tmp = self.link.with_name(self.link.name + ".tmp")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self._tty)
            os.replace(tmp, self.link)
        self._present.set()

    def _close_pty(self) -> None:
        self._present.clear()
        if self.link:
            self.link.unlink(missing_ok=True)
        for fd in (self._master, self._slave):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = -1

    # -- fault injection -----------------------------------------------------------------
    def drop_replies(self, n: int = 1) -> None:
        with self.lock:
            self.faults.drop_next += n

    def corrupt_replies(self, n: int = 1) -> None:
        with self.lock:
            self.faults.corrupt_next += n

    def set_silent(self, servo_id: int, silent: bool = True) -> None:
        with self.lock:
            (self.faults.silent_ids.add if silent else self.faults.silent_ids.discard)(servo_id)

    def vanish(self) -> None:
        """Unplug: the pty (and the link) disappear; the other side's reads and writes fail."""
        with self.lock:
            self._close_pty()

    def reappear(self) -> None:
        """Plug back in: a fresh pty; `link` points at it again. Servo state is kept."""
        with self.lock:
            if not self._present.is_set():
                self._open_pty()

    def clear_faults(self) -> None:
        with self.lock:
            self.faults = Faults()

    # -- inspection --------------------------------------------------------------------
    def register(self, servo_id: int, name: str) -> int:
        with self.lock:
            return self.servos[servo_id].get(name)

    def set_register(self, servo_id: int, name: str, value: int) -> None:
        reg = REGISTERS[name]
        with self.lock:
            servo = self.servos[servo_id]
            servo.mem[reg.address:reg.address + reg.size] = bytes(to_bytes(encode_register(reg, value), reg.size))

    def sweep(self, period: float, amplitudes: Mapping[int, float] | None = None) -> None:
        """Act as the operator of a calibration (module docstring): `amplitudes` {id: ticks},
        default half the nominal calibration range of the joint with that id."""
        if period <= 0:
            raise ValueError(f"sweep period must be > 0 s, got {period}")
        if amplitudes is None:
            from so100_description.calibration import nominal_calibration

            amplitudes = {c.id: (c.range_max - c.range_min) / 2.0 for c in nominal_calibration().values()}
        with self.lock:
            for servo_id, servo in self.servos.items():
                servo.sweep_amplitude = float(amplitudes.get(servo_id, 0.0))
                servo.sweep_period = float(period)

    def apply_calibration(self, calibration: Mapping[str, object], at_mid: bool = True) -> None:
        """Write a LeRobot calibration into the servos' EEPROM (as LeRobot does) and, with
        `at_mid`, place each servo mid-range."""
        with self.lock:
            for cal in calibration.values():
                servo = self.servos.get(cal.id)
                if servo is None:
                    continue
                servo.write(REGISTERS["Homing_Offset"].address,
                            bytes(to_bytes(encode_register(REGISTERS["Homing_Offset"], cal.homing_offset), 2)))
                servo.write(REGISTERS["Min_Position_Limit"].address, bytes(to_bytes(cal.range_min, 2)))
                servo.write(REGISTERS["Max_Position_Limit"].address, bytes(to_bytes(cal.range_max, 2)))
                if at_mid:
                    servo.present = (cal.range_min + cal.range_max) / 2.0
                    servo._store("Goal_Position", int(round(servo.present)))
                    servo._publish_state()
                servo.write_log.clear()

    # -- serial loop -------------------------------------------------------------------
    def _byte_time(self) -> float:
        servo = next(iter(self.servos.values()))
        return 10.0 / BAUD_CODES.get(servo.mem[REGISTERS["Baud_Rate"].address], 1_000_000)

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._present.is_set():
                time.sleep(0.01)
                continue
            master = self._master
            try:
                ready, _, _ = select.select([master], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(master, 4096)
            except (OSError, ValueError):
                time.sleep(0.01)  # vanished under us, or nobody has the slave open
                continue
            if not data:
                continue
            self._first_byte_time = time.perf_counter()  # arrival of this chunk
            self._buf.extend(data)
            with self.lock:
                self._parse()

    def _parse(self) -> None:
        buf = self._buf
        while True:
            start = buf.find(b"\xff\xff")
            if start < 0:
                del buf[:max(0, len(buf) - 1)]
                return
            if start:
                del buf[:start]
            if len(buf) < 4:
                return
            if buf[2] == 0xFF:  # a third 0xFF: slide by one
                del buf[0]
                continue
            total = buf[3] + 4
            if buf[3] < 2:
                del buf[:2]
                continue
            if len(buf) < total:
                return
            packet = bytes(buf[:total])
            del buf[:total]
            if checksum(packet[2:-1]) != packet[-1]:
                self.bad_packets += 1
                continue
            self.packets += 1
            self._handle(packet)

    def _wait_until(self, deadline: float) -> None:
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            if remaining > 0.0003:
                time.sleep(remaining - 0.0002)

    def _handle(self, packet: bytes) -> None:
        servo_id, instr, params = packet[2], packet[4], packet[5:-1]
        byte_time = self._byte_time()
        # Half-duplex wire: a packet starts when it arrived and the wire is free (after the
        # previous packet and its replies); it has crossed the wire len * byte_time later.
        wire_end = max(self._first_byte_time, self._wire_free) + len(packet) * byte_time
        replies: list[tuple[ServoModel, bytes]] = []
        if servo_id == BROADCAST_ID:
            if instr == INST_SYNC_WRITE and len(params) >= 2:
                address, size = params[0], params[1]
                body = params[2:]
                for k in range(0, len(body) - size, size + 1):
                    servo = self._listening(body[k])
                    if servo:
                        servo.write(address, body[k + 1:k + 1 + size])
            elif instr == INST_SYNC_READ and len(params) >= 2:
                address, size = params[0], params[1]
                for sid in params[2:]:
                    servo = self._listening(sid)
                    if servo:
                        replies.append((servo, status_packet(servo.id, 0, servo.read(address, size))))
            elif instr == INST_WRITE and len(params) >= 1:
                for servo in self._all_listening():
                    servo.write(params[0], params[1:])
            elif instr == INST_ACTION:
                for servo in self._all_listening():
                    self._action(servo)
            elif instr == INST_PING:
                replies = [(s, status_packet(s.id, 0)) for s in self._all_listening()]
        else:
            servo = self._listening(servo_id)
            if servo is None:
                return
            status_level = servo.mem[REGISTERS["Response_Status_Level"].address]
            if instr == INST_PING:
                replies.append((servo, status_packet(servo_id, 0)))
            elif instr == INST_READ and len(params) == 2:
                replies.append((servo, status_packet(servo_id, 0, servo.read(params[0], params[1]))))
            elif instr in (INST_WRITE, INST_REG_WRITE) and len(params) >= 1:
                if instr == INST_WRITE:
                    servo.write(params[0], params[1:])
                else:
                    servo.pending = (params[0], bytes(params[1:]))
                if status_level:
                    replies.append((servo, status_packet(servo.id, 0)))
            elif instr == INST_ACTION:
                self._action(servo)
                if status_level:
                    replies.append((servo, status_packet(servo.id, 0)))
        t = wire_end
        self._wire_free = t
        for servo, reply in replies:
            reply = self._apply_reply_faults(reply)
            if self.paced:
                t += servo.mem[REGISTERS["Return_Delay_Time"].address] * 2e-6 + len(reply) * byte_time
                self._wait_until(t)
                self._wire_free = t
            if reply:
                try:
                    os.write(self._master, reply)
                except OSError:
                    return

    def _action(self, servo: ServoModel) -> None:
        if servo.pending:
            servo.write(*servo.pending)
            servo.pending = None

    def _listening(self, servo_id: int) -> ServoModel | None:
        if servo_id in self.faults.silent_ids:
            return None
        for servo in self.servos.values():
            if servo.id == servo_id:
                return servo
        return None

    def _all_listening(self) -> list[ServoModel]:
        return [s for s in self.servos.values() if s.id not in self.faults.silent_ids]

    def _apply_reply_faults(self, reply: bytes) -> bytes:
        f = self.faults
        if f.drop_next > 0 or (f.drop_probability and self._rng.random() < f.drop_probability):
            f.drop_next = max(0, f.drop_next - 1)
            f.dropped += 1
            return b""
        if f.corrupt_next > 0 or (f.corrupt_probability and self._rng.random() < f.corrupt_probability):
            f.corrupt_next = max(0, f.corrupt_next - 1)
            f.corrupted += 1
            return reply[:-1] + bytes([reply[-1] ^ 0x5A])
        return reply


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Emulate SO-100/SO-101 STS3215 servos on a pseudo-terminal.")
    parser.add_argument("--link", default="/tmp/so100_emulated_arm",
                        help="stable symlink to the pty (pass it to the driver's `port` parameter)")
    parser.add_argument("--ids", default="1,2,3,4,5,6", help="comma-separated servo ids")
    parser.add_argument("--calibration", default="",
                        help="LeRobot calibration JSON written into the servos' EEPROM (servos start mid-range)")
    parser.add_argument("--paced", action="store_true", help="pace replies at the wire time of the baud rate")
    parser.add_argument("--sweep", type=float, default=0.0, metavar="SECONDS",
                        help="stand in for the operator of so100_calibrate / lerobot-calibrate: once the "
                             "calibration has read the middle pose, move every joint (torque off) back and "
                             "forth over its nominal range, one cycle per SECONDS")
    args = parser.parse_args(argv)
    ids = [int(x) for x in args.ids.split(",") if x.strip()]
    emulator = Sts3215Emulator(ids=ids, paced=args.paced, link=args.link)
    if args.calibration:
        from so100_description.calibration import load_calibration
        emulator.apply_calibration(load_calibration(args.calibration))
    if args.sweep:
        emulator.sweep(args.sweep)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    emulator.start()
    print(f"STS3215 emulator: servos {ids} on {emulator.port} -> {emulator._tty}", flush=True)
    done.wait()
    for sig in (signal.SIGINT, signal.SIGTERM):  # stopping: a repeated Ctrl-C must not kill the teardown
        signal.signal(sig, signal.SIG_IGN)
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
