"""Leader arm: a second SO-100/SO-101 moved by hand, read through the driver's Feetech bus and
published as /leader/joint_states (radians, REP-103) for the recorder's "leader" action source.

`LeaderReader` (plain Python) opens the bus, switches torque off (the arm is moved by hand,
as LeRobot's SO leader does) and converts Present_Position ticks to radians with the leader's
own LeRobot calibration; the node (`leader_node_class()`, parameters in `PARAMS`) publishes at
`rate_hz`. A servo that does not answer is left out of that message (never a made-up value). A
missing or lost port is tried again every `reconnect_period`, as the driver does: the node
stays up and says why in the log and on /diagnostics.

    python -m so100_bringup.teleop.leader --ros-args --params-file config/leader_arm.yaml \
        -p port:=/dev/ttyACM1 -p robot_id:=my_leader
"""
from __future__ import annotations

import functools
import sys
import time
from typing import Mapping, Sequence

from so100_description.calibration import LEROBOT_LEADER_DIRS, JointUnitConverter, MotorCalibration
from so100_bringup.feetech.bus import BusError, FeetechBus
from so100_bringup.feetech.registers import BAUD_CODES, DEFAULT_BAUDRATE, REGISTERS, decode_register, from_bytes
from so100_common.params import Param, schema
from so100_description.joints import JOINT_NAMES, VARIANTS


class LeaderReader:
    def __init__(self, bus: FeetechBus, calibration: Mapping[str, MotorCalibration], variant: str = "so101"):
        self.bus = bus
        self.converter = JointUnitConverter(calibration, variant=variant)
        self.ids = {name: calibration[name].id for name in JOINT_NAMES}
        self.misses = 0

    def open(self) -> None:
        self.bus.open()
        self.torque_off()

    def torque_off(self) -> None:
        for sid in self.ids.values():  # moved by hand: no holding torque
            self.bus.write(sid, "Torque_Enable", 0)

    def read(self) -> dict[str, float]:
        """{joint: rad} of the servos that answered (PortLostError when the port is gone)."""
        reg = REGISTERS["Present_Position"]
        got = self.bus.sync_read_retry(reg.address, reg.size, list(self.ids.values()))
        out: dict[str, float] = {}
        for name, sid in self.ids.items():
            if sid in got:
                ticks = decode_register(reg, from_bytes(got[sid]))
                out[name] = self.converter.ticks_to_radians(name, ticks)
            else:
                self.misses += 1
        return out

    def close(self) -> None:
        self.bus.close()


PARAMS = schema("leader_arm", [
    Param("port", "/dev/ttyACM1", "serial port of the leader arm's bus (prefer the stable /dev/serial/by-id/... "
          "name)"),
    Param("baudrate", DEFAULT_BAUDRATE, "bus baud rate (an STS3215 rate; LeRobot's is 1000000)",
          choices=tuple(BAUD_CODES.values())),
    Param("calibration_file", "", "the leader's LeRobot calibration JSON, e.g. ~/.cache/huggingface/lerobot/"
          "calibration/teleoperators/so_leader/<id>.json; empty: see robot_id"),
    Param("robot_id", "", "LeRobot teleoperator id: with calibration_file empty, read $HF_LEROBOT_CALIBRATION "
          "(default ~/.cache/huggingface/lerobot/calibration)/teleoperators/so_leader/<id>.json (or the older "
          "so101_leader / so100_leader folders); both empty = nominal calibration (emulator and tests only)"),
    Param("variant", "so101", "arm variant (gripper range)", choices=VARIANTS),
    Param("rate_hz", 100.0, "publish rate", min=0.0, min_exclusive=True, unit="Hz"),
    Param("topic", "leader/joint_states", "output topic (sensor_msgs/JointState, rad)"),
    Param("joint_prefix", "", "prefix for the published joint names"),
    Param("reconnect_period", 0.5, "Seconds between attempts to open a missing or lost port",
          min=0.05, max=60.0, unit="s"),
], title="Leader arm (so100_bringup.teleop.leader, console script so100_leader_arm): a hand-moved SO arm "
         "-> /leader/joint_states")


@functools.lru_cache(maxsize=None)
def leader_node_class():
    """The rclpy node class (defined on first use: LeaderReader needs no rclpy)."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.node import Node
    from sensor_msgs.msg import JointState

    from so100_description.calibration import load_calibration, nominal_calibration, resolve_calibration_path
    from so100_common.ros_node import (ERROR, OK, STATE_QOS, WARN, declare_params, diagnostic_array,
                                       diagnostic_status, joint_state_msg)

    class LeaderNode(Node):
        def __init__(self, **kwargs):
            super().__init__("leader_arm", **kwargs)
            p = declare_params(self, PARAMS)  # first: a bad value stops here, before the port is opened
            self.p = p
            path = resolve_calibration_path(p["calibration_file"], p["robot_id"], LEROBOT_LEADER_DIRS)
            if path is not None:
                cal = load_calibration(path)
            else:
                self.get_logger().warn("no calibration_file or robot_id: using the nominal calibration "
                                       "(emulator/tests only)")
                cal = nominal_calibration(p["variant"])
            bus = FeetechBus(p["port"], [cal[j].id for j in JOINT_NAMES], int(p["baudrate"]))
            self.reader = LeaderReader(bus, cal, p["variant"])
            self.connected = False
            self.connect_error = ""  # why the last connect failed; empty once connected
            self._next_connect = 0.0
            self.pub = self.create_publisher(JointState, p["topic"], STATE_QOS)
            self.diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
            self.get_logger().info(f"leader arm on {p['port']}: publishing {p['topic']} at {p['rate_hz']} Hz")
            self._connect()  # a missing port is logged and tried again, never fatal (like the driver)
            self.create_timer(1.0 / float(p["rate_hz"]), self._tick)
            self.create_timer(1.0, self._report)

        def _connect(self) -> None:
            self._next_connect = time.monotonic() + float(self.p["reconnect_period"])
            try:
                self.reader.close()  # the handle of a lost port
                self.reader.open()
            except BusError as exc:
                self.reader.close()
                if str(exc) != self.connect_error:  # once per change, not every reconnect_period
                    self.get_logger().error(str(exc))
                self.connect_error = str(exc)
                return
            self.connected, self.connect_error = True, ""
            self.get_logger().info(f"connected to {self.p['port']}: torque off, reading the leader arm")

        def _tick(self):
            if not self.connected:
                if time.monotonic() >= self._next_connect:
                    self._connect()
                return
            try:
                positions = self.reader.read()
            except BusError as exc:  # the port went away: try again every reconnect_period
                self.connected = False
                self.connect_error = str(exc)
                self.get_logger().error(f"leader port lost: {exc}")
                return
            if positions:
                names = [self.p["joint_prefix"] + j for j in positions]
                self.pub.publish(joint_state_msg(self, names, list(positions.values())))

        def _report(self):
            level = OK if self.connected and not self.reader.misses else (WARN if self.connected else ERROR)
            msg = "reading" if self.connected else f"not connected, retrying: {self.connect_error}"
            self.diag.publish(diagnostic_array(self, [diagnostic_status(
                f"{self.get_name()}: leader arm", level, msg,
                {"port": self.p["port"], "missed_reads": self.reader.misses, **self.reader.bus.stats.as_dict()})]))

    return LeaderNode


def main(argv: Sequence[str] | None = None) -> int:
    from so100_description.calibration import CalibrationError
    from so100_common.ros_node import spin_node_main

    return spin_node_main(argv, leader_node_class(), "leader_arm", (CalibrationError, ValueError),
                          close=lambda node: node.reader.close())


if __name__ == "__main__":
    sys.exit(main())
