"""so100_calibrate: calibrate an SO-100/SO-101 arm and write the same JSON LeRobot writes.

The procedure is LeRobot's (so the file is interchangeable with `lerobot-calibrate`):
1. torque off, position mode;
2. with the arm in the middle of its range, clear the homing offsets and set each to
   position - 2047, so mid-travel reads 2047 (half-turn homing);
3. while the operator moves every joint but wrist_roll through its whole range, record the min
   and max positions; wrist_roll gets the full 0..4095;
4. write homing offsets and position limits to the servos and save
   {motor: {id, drive_mode: 0, homing_offset, range_min, range_max}}.
The same procedure calibrates a follower and a leader arm; `--robot-id` / `--teleop-id` choose
the LeRobot folder the file goes to (robots/so_follower/<id>.json, teleoperators/so_leader/<id>.json
under $HF_LEROBOT_CALIBRATION, default ~/.cache/huggingface/lerobot/calibration), where the
driver's and the leader node's `robot_id` parameter, and LeRobot itself, find it. While the
joints move, a table of min / position / max per joint is redrawn in place on a terminal.
No rclpy, torch or lerobot needed.

    so100_calibrate --port /dev/ttyACM0 --robot-id my_arm
    so100_calibrate --port /dev/ttyACM1 --teleop-id my_leader

Without an arm (the emulator moves the joints the way the operator would):

    so100_sts3215_emulator --link /tmp/so100_arm --sweep 2 &
    so100_calibrate --port /tmp/so100_arm --robot-id emulated --record-seconds 5
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence, TextIO

from so100_description.calibration import (FULL_TURN_JOINTS, HALF_TURN_MID, LEROBOT_FOLLOWER_DIRS,
                                           LEROBOT_LEADER_DIRS, MotorCalibration, lerobot_calibration_root,
                                           save_calibration)
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


Sample = Callable[[Mapping[str, int], Mapping[str, int], Mapping[str, int]], None]  # lows, positions, highs


def record_ranges(bus: FeetechBus, ids: dict[str, int], stop: threading.Event,
                  on_sample: Sample | None = None) -> tuple[dict[str, int], dict[str, int]]:
    first = read_positions(bus, ids)
    lows, highs = dict(first), dict(first)
    while not stop.is_set():
        pos = read_positions(bus, ids)
        for j, p in pos.items():
            lows[j], highs[j] = min(lows[j], p), max(highs[j], p)
        if on_sample:
            on_sample(lows, pos, highs)
        stop.wait(0.02)
    return lows, highs


def calibrate(bus: FeetechBus, wait_mid: Callable[[], None], wait_ranges: Callable[[threading.Event], None],
              ids: dict[str, int] | None = None, on_sample: Sample | None = None) -> dict[str, MotorCalibration]:
    """Run the procedure. `wait_mid()` returns when the arm is mid-range; `wait_ranges(stop)` sets
    `stop` when the operator has moved every joint through its range; `on_sample(lows, positions,
    highs)` sees every reading meanwhile."""
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
    lows, highs = record_ranges(bus, ranged, stop, on_sample)
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


class RangeTable:
    """min / position / max per joint while the operator moves the arm, redrawn in place (at most
    every `period` s) when `out` is a terminal; nothing otherwise (a log file gets the summary)."""

    def __init__(self, joints: Sequence[str], out: TextIO = sys.stdout, period: float = 0.1):
        self.joints = list(joints)
        self.out = out
        self.period = period
        self.live = out.isatty()
        self._drawn = 0  # lines of the last drawing, to move back over
        self._next = 0.0

    def lines(self, lows: Mapping[str, int], positions: Mapping[str, int], highs: Mapping[str, int]) -> list[str]:
        rows = [f"{'joint':<14} {'min':>6} {'position':>9} {'max':>6}"]
        rows += [f"{j:<14} {lows[j]:>6} {positions[j]:>9} {highs[j]:>6}" for j in self.joints]
        return rows

    def update(self, lows: Mapping[str, int], positions: Mapping[str, int], highs: Mapping[str, int]) -> None:
        now = time.monotonic()
        if not self.live or now < self._next:
            return
        self._next = now + self.period
        text = f"\x1b[{self._drawn}F" if self._drawn else ""  # cursor back to the table's first line
        rows = self.lines(lows, positions, highs)
        text += "".join(row + "\x1b[K\n" for row in rows)  # each row clears what is left of the old one
        self.out.write(text)
        self.out.flush()
        self._drawn = len(rows)


def output_path(output: str, robot_id: str, teleop_id: str) -> Path:
    """--output as given, else LeRobot's file of the follower `robot_id` or the leader `teleop_id`
    (LeRobot 0.6's folder names, where lerobot-calibrate writes and this package reads first)."""
    if output:
        return Path(output).expanduser()
    folder, name = (LEROBOT_FOLLOWER_DIRS[0], robot_id) if robot_id else (LEROBOT_LEADER_DIRS[0], teleop_id)
    return lerobot_calibration_root() / folder / f"{name}.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Calibrate an SO-100/SO-101 arm (follower or leader); writes "
                                                 "LeRobot's calibration JSON.")
    parser.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyACM0 (or an emulator's --link)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--robot-id", default="", help="a follower arm: write LeRobot's robots/so_follower/<id>.json "
                                                       "(the driver's and policy node's robot_id)")
    where.add_argument("--teleop-id", default="", help="a leader arm: write LeRobot's teleoperators/so_leader/<id>.json "
                                                        "(the leader node's robot_id)")
    where.add_argument("--output", default="", help="write this JSON file instead")
    parser.add_argument("--baudrate", type=int, default=1_000_000)
    parser.add_argument("--record-seconds", type=float, default=0.0, metavar="S",
                        help="scripted run without prompts: the arm is taken to be mid-range at the start, and "
                             "ranges are recorded for S seconds instead of until ENTER (e.g. against "
                             "so100_sts3215_emulator --sweep)")
    args = parser.parse_args(argv)
    out = output_path(args.output, args.robot_id, args.teleop_id)
    bus = FeetechBus(args.port, list(MOTOR_IDS.values()), args.baudrate)
    table = RangeTable([j for j in JOINT_NAMES if j not in FULL_TURN_JOINTS])

    def wait_mid() -> None:
        if not args.record_seconds:
            input("Torque is off. Move the arm to the middle of its range of motion and press ENTER...")

    def wait_ranges(stop: threading.Event) -> None:
        if args.record_seconds:
            print(f"recording ranges for {args.record_seconds:g} s", flush=True)
            stop.wait(args.record_seconds)
        else:
            try:
                input(f"Move every joint except {', '.join(FULL_TURN_JOINTS)} through its entire range, "
                      "then press ENTER...\n")
            except EOFError:  # no terminal: stop rather than record forever
                pass
        stop.set()

    try:
        bus.open()
        calibration = calibrate(bus, wait_mid, wait_ranges, on_sample=table.update)
    except BusError as exc:
        print(f"so100_calibrate: {exc}", file=sys.stderr)
        return 1
    except EOFError:
        print("so100_calibrate: no input (stdin is not a terminal); use --record-seconds for a scripted run",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nso100_calibrate: interrupted; {out} not written. Run the calibration again before using "
              "this arm: its servos may hold a half-written calibration", file=sys.stderr)
        return 130
    finally:
        bus.close()
    save_calibration(calibration, out)
    print(f"calibration written to {out}")
    for joint in JOINT_NAMES:
        c = calibration[joint]
        print(f"  {joint:<14} id {c.id}  homing {c.homing_offset:5d}  range {c.range_min}..{c.range_max}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
