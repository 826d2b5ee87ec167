"""so100_calibrate: calibrate an SO-100/SO-101 arm and write the same JSON LeRobot writes.

The procedure is LeRobot's (so the file is interchangeable with `lerobot-calibrate`):
1. torque off, position mode;
2. with the arm in the middle of its range, clear the homing offsets and set each to
   position - 2047, so mid-travel reads 2047 (half-turn homing);
3. while the operator moves every joint but wrist_roll through its whole range, record the min
   and max positions; wrist_roll gets the full 0..4095;
4. write homing offsets and position limits to the servos and save
   {motor: {id, drive_mode: 0, homing_offset, range_min, range_max}}.
No rclpy, torch or lerobot needed.
"""
from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Callable

from so100_description.calibration import (FULL_TURN_JOINTS, HALF_TURN_MID, MotorCalibration, save_calibration)
from so100_bringup.feetech.bus import BusError, FeetechBus
from so100_bringup.feetech.registers import REGISTERS, TICKS_PER_REV, decode_block
from so100_description.joints import JOINT_NAMES, MOTOR_IDS

POSITION = REGISTERS["Present_Position"].address


def read_positions(bus: FeetechBus, ids: dict[str, int]) -> dict[str, int]:
    data = bus.sync_read_retry(POSITION, 2, list(ids.values()))
    missing = [j for j, i in ids.items() if i not in data]
    if missing:
        raise BusError(f"servo(s) {missing} on {bus.port} did not report a position")
    return {j: decode_block(POSITION, data[i], ["Present_Position"])["Present_Position"] for j, i in ids.items()}


def set_half_turn_homings(bus: FeetechBus, ids: dict[str, int]) -> dict[str, int]:
    for servo_id in ids.values():
        bus.write(servo_id, "Torque_Enable", 0)
        bus.write(servo_id, "Lock", 0)
        bus.write(servo_id, "Operating_Mode", 0)
        bus.write(servo_id, "Homing_Offset", 0)
        bus.write(servo_id, "Min_Position_Limit", 0)
        bus.write(servo_id, "Max_Position_Limit", TICKS_PER_REV - 1)
    actual = read_positions(bus, ids)
    homings = {j: p - HALF_TURN_MID for j, p in actual.items()}
    for joint, offset in homings.items():
        bus.write(ids[joint], "Homing_Offset", offset)
    return homings


def record_ranges(bus: FeetechBus, ids: dict[str, int], stop: threading.Event,
                  on_sample: Callable[[dict[str, int]], None] | None = None) -> tuple[dict[str, int], dict[str, int]]:
    first = read_positions(bus, ids)
    lows, highs = dict(first), dict(first)
    while not stop.is_set():
        pos = read_positions(bus, ids)
        for j, p in pos.items():
            lows[j], highs[j] = min(lows[j], p), max(highs[j], p)
        if on_sample:
            on_sample(pos)
        stop.wait(0.02)
    return lows, highs


def calibrate(bus: FeetechBus, wait_mid: Callable[[], None], wait_ranges: Callable[[threading.Event], None],
              ids: dict[str, int] | None = None) -> dict[str, MotorCalibration]:
    """Run the procedure. `wait_mid()` returns when the arm is mid-range; `wait_ranges(stop)` sets
    `stop` when the operator has moved every joint through its range."""
    ids = dict(ids or MOTOR_IDS)
    bus.verify(ids=list(ids.values()), names={i: j for j, i in ids.items()})
    for servo_id in ids.values():
        bus.write(servo_id, "Torque_Enable", 0)
    wait_mid()
    homings = set_half_turn_homings(bus, ids)
    ranged = {j: i for j, i in ids.items() if j not in FULL_TURN_JOINTS}
    stop = threading.Event()
    waiter = threading.Thread(target=wait_ranges, args=(stop,), daemon=True)
    waiter.start()
    lows, highs = record_ranges(bus, ranged, stop)
    for joint in ids:
        if joint in FULL_TURN_JOINTS:
            lows[joint], highs[joint] = 0, TICKS_PER_REV - 1
    same = [j for j in ids if lows[j] >= highs[j]]
    if same:
        raise BusError(f"joint(s) {same} did not move while recording ranges; move each joint end to end")
    calibration = {j: MotorCalibration(id=ids[j], drive_mode=0, homing_offset=homings[j],
                                       range_min=lows[j], range_max=highs[j]) for j in ids}
    for joint, cal in calibration.items():
        bus.write(cal.id, "Min_Position_Limit", cal.range_min)
        bus.write(cal.id, "Max_Position_Limit", cal.range_max)
        bus.write(cal.id, "Lock", 1)
    return calibration


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Calibrate an SO-100/SO-101 arm; writes LeRobot's calibration JSON.")
    parser.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyACM0")
    parser.add_argument("--output", required=True,
                        help="JSON to write, e.g. ~/.cache/huggingface/lerobot/calibration/robots/so_follower/<id>.json")
    parser.add_argument("--baudrate", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    bus = FeetechBus(args.port, list(MOTOR_IDS.values()), args.baudrate)
    try:
        bus.open()

        def wait_mid() -> None:
            input("Torque is off. Move the arm to the middle of its range of motion and press ENTER...")

        def wait_ranges(stop: threading.Event) -> None:
            input(f"Move every joint except {', '.join(FULL_TURN_JOINTS)} through its entire range, "
                  "then press ENTER...")
            stop.set()

        calibration = calibrate(bus, wait_mid, wait_ranges)
    except BusError as exc:
        print(f"so100_calibrate: {exc}", file=sys.stderr)
        return 1
    finally:
        bus.close()
    out = Path(args.output).expanduser()
    save_calibration(calibration, out)
    print(f"calibration written to {out}")
    for joint in JOINT_NAMES:
        c = calibration[joint]
        print(f"  {joint:<14} id {c.id}  homing {c.homing_offset:5d}  range {c.range_min}..{c.range_max}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
