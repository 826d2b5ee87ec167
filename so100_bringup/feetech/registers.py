"""STS3215 control table as data, plus the sign-magnitude codecs the table needs.

Addresses and sizes follow the Feetech STS/SMS memory table (the same one LeRobot's
``lerobot.motors.feetech.tables`` uses); multi-byte values are little-endian.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

STS3215_MODEL_NUMBER = 777
TICKS_PER_REV = 4096
DEFAULT_BAUDRATE = 1_000_000
BROADCAST_ID = 0xFE

# Baud_Rate register code -> baud
BAUD_CODES: dict[int, int] = {0: 1_000_000, 1: 500_000, 2: 250_000, 3: 128_000, 4: 115_200,
                              5: 57_600, 6: 38_400, 7: 19_200}

# Status-packet error bits (Feetech "ERR" byte)
ERROR_BITS: dict[int, str] = {0x01: "input voltage", 0x02: "angle sensor", 0x04: "overheat",
                              0x08: "overcurrent", 0x20: "overload"}

# Instructions
INST_PING, INST_READ, INST_WRITE, INST_REG_WRITE, INST_ACTION = 0x01, 0x02, 0x03, 0x04, 0x05
INST_SYNC_READ, INST_SYNC_WRITE = 0x82, 0x83


@dataclass(frozen=True)
class Register:
    name: str
    address: int
    size: int  # bytes
    writable: bool = True
    sign_bit: int | None = None  # sign-magnitude sign bit, if the value is signed


def _r(name: str, address: int, size: int, writable: bool = True, sign_bit: int | None = None) -> Register:
    return Register(name, address, size, writable, sign_bit)


REGISTERS: dict[str, Register] = {r.name: r for r in (
    # EEPROM
    _r("Firmware_Major_Version", 0, 1, False),
    _r("Firmware_Minor_Version", 1, 1, False),
    _r("Model_Number", 3, 2, False),
    _r("ID", 5, 1),
    _r("Baud_Rate", 6, 1),
    _r("Return_Delay_Time", 7, 1),  # unit 2 us
    _r("Response_Status_Level", 8, 1),  # 0: reply to PING/READ only, 1: reply to everything
    _r("Min_Position_Limit", 9, 2),
    _r("Max_Position_Limit", 11, 2),
    _r("Max_Temperature_Limit", 13, 1),
    _r("Max_Voltage_Limit", 14, 1),
    _r("Min_Voltage_Limit", 15, 1),
    _r("Max_Torque_Limit", 16, 2),  # 0.1 %
    _r("Phase", 18, 1),
    _r("Unloading_Condition", 19, 1),
    _r("LED_Alarm_Condition", 20, 1),
    _r("P_Coefficient", 21, 1),
    _r("D_Coefficient", 22, 1),
    _r("I_Coefficient", 23, 1),
    _r("Minimum_Startup_Force", 24, 2),
    _r("CW_Dead_Zone", 26, 1),
    _r("CCW_Dead_Zone", 27, 1),
    _r("Protection_Current", 28, 2),  # 6.5 mA
    _r("Angular_Resolution", 30, 1),
    _r("Homing_Offset", 31, 2, sign_bit=11),
    _r("Operating_Mode", 33, 1),  # 0 = position
    _r("Protective_Torque", 34, 1),
    _r("Protection_Time", 35, 1),
    _r("Overload_Torque", 36, 1),  # %
    # SRAM
    _r("Torque_Enable", 40, 1),
    _r("Acceleration", 41, 1),
    _r("Goal_Position", 42, 2, sign_bit=15),
    _r("Goal_Time", 44, 2),
    _r("Goal_Velocity", 46, 2, sign_bit=15),
    _r("Torque_Limit", 48, 2),
    _r("Lock", 55, 1),
    _r("Present_Position", 56, 2, False, 15),
    _r("Present_Velocity", 58, 2, False, 15),  # ticks/s
    _r("Present_Load", 60, 2, False, 10),  # 0.1 % of max torque
    _r("Present_Voltage", 62, 1, False),  # 0.1 V
    _r("Present_Temperature", 63, 1, False),  # deg C
    _r("Status", 65, 1, False),
    _r("Moving", 66, 1, False),
    _r("Present_Current", 69, 2, False),  # 6.5 mA
    _r("Maximum_Acceleration", 85, 1),
)}

# Contiguous block the driver reads every cycle: position, velocity, load (56..61).
STATE_BLOCK = (REGISTERS["Present_Position"].address, 6)
# Block read at a lower rate for diagnostics: load, voltage, temperature (60..63) and current (69..70).
HEALTH_BLOCK = (REGISTERS["Present_Load"].address, 11)


def encode_sign_magnitude(value: int, sign_bit: int) -> int:
    magnitude = abs(int(value))
    if magnitude >= 1 << sign_bit:
        raise ValueError(f"|{value}| does not fit a sign-magnitude field with sign bit {sign_bit}")
    return magnitude | ((1 << sign_bit) if value < 0 else 0)


def decode_sign_magnitude(raw: int, sign_bit: int) -> int:
    magnitude = raw & ((1 << sign_bit) - 1)
    return -magnitude if raw & (1 << sign_bit) else magnitude


def encode_register(reg: Register, value: int) -> int:
    if reg.sign_bit is not None:
        return encode_sign_magnitude(value, reg.sign_bit)
    value = int(value)
    if not 0 <= value < 1 << (8 * reg.size):
        raise ValueError(f"{reg.name}={value} does not fit {reg.size} byte(s)")
    return value


def decode_register(reg: Register, raw: int) -> int:
    return decode_sign_magnitude(raw, reg.sign_bit) if reg.sign_bit is not None else int(raw)


def to_bytes(value: int, size: int) -> list[int]:
    return [(value >> (8 * i)) & 0xFF for i in range(size)]


def from_bytes(data) -> int:
    return sum(int(b) << (8 * i) for i, b in enumerate(data))


def decode_block(start: int, data, names) -> dict[str, int]:
    """Decode the registers `names` out of a block read starting at address `start`."""
    out = {}
    for name in names:
        reg = REGISTERS[name]
        off = reg.address - start
        out[name] = decode_register(reg, from_bytes(data[off:off + reg.size]))
    return out


def error_text(error: int) -> str:
    return ", ".join(text for bit, text in ERROR_BITS.items() if error & bit) or "none"


def checksum(body) -> int:
    """Feetech checksum over ID, LEN, INSTR/ERR and parameters."""
    return ~sum(body) & 0xFF


def instruction_packet(servo_id: int, instruction: int, params=()) -> bytes:
    body = [servo_id, len(params) + 2, instruction, *params]
    return bytes([0xFF, 0xFF, *body, checksum(body)])


def status_packet(servo_id: int, error: int, params=()) -> bytes:
    body = [servo_id, len(params) + 2, error, *params]
    return bytes([0xFF, 0xFF, *body, checksum(body)])


def sync_write_packet(address: int, size: int, values: Mapping[int, int]) -> bytes:
    params = [address, size]
    for servo_id, value in values.items():
        params += [servo_id, *to_bytes(value, size)]
    return instruction_packet(BROADCAST_ID, INST_SYNC_WRITE, params)


def sync_read_packet(address: int, size: int, ids) -> bytes:
    return instruction_packet(BROADCAST_ID, INST_SYNC_READ, [address, size, *ids])


def cycle_wire_bytes(n_servos: int, read_size: int = 2, write_size: int = 2) -> int:
    """Bytes on the wire for one sync read of `read_size` bytes + one sync write of `write_size`."""
    sync_read = 8 + n_servos
    replies = n_servos * (6 + read_size)
    sync_write = 8 + n_servos * (1 + write_size)
    return sync_read + replies + sync_write
