"""The SO-100/SO-101 arm on a Feetech bus, in URDF radians: the Feetech `ArmHardware`.

Plain Python (no rclpy, torch or lerobot). `read()` = one sync read of position, velocity and
load of every servo; `write(goal)` = one sync write of the six goals. The safety rules (limits,
step bound, holds) are the ArmController's; this class keeps what only the bus can:

* connect configures every servo as LeRobot's SO follower does and checks its calibration: a
  servo whose homing offset or position limits differ from the file is written only with
  `write_calibration` (LeRobot asks first; here that is the parameter), else the connect is refused
  with every difference listed;
* enabling torque first sets each goal to the measured position, as read (no jump, also when
  the arm rests outside its URDF limits);
* a servo that stops answering, or the port vanishing (or never appearing), puts the arm in a
  fault state that is retried every `reconnect_period` s and cleared when the hardware is back
  (`resync_count` tells the controller to restart from the measured position).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from so100_bringup.control.hardware import HardwareStatus, JointReading
from so100_bringup.feetech.bus import BusError, CommError, FeetechBus, PortLostError
from so100_bringup.feetech.registers import HEALTH_BLOCK, REGISTERS, STATE_BLOCK, decode_block, error_text
from so100_description.calibration import JointUnitConverter, MotorCalibration
from so100_description.joints import GRIPPER_JOINTS, JOINT_NAMES, LimitArrays

log = logging.getLogger(__name__)


@dataclass
class ArmConfig:
    port: str
    calibration: Mapping[str, MotorCalibration]
    variant: str = "so101"
    baudrate: int = 1_000_000
    timeout_ms: float = 10.0  # wait for a status packet beyond its wire time
    retries: int = 2  # extra tries of a failed read/write
    torque_on_connect: bool = True  # LeRobot enables torque on connect
    write_calibration: bool = False  # write the file's homing/limits to EEPROM when they differ (else refuse)
    p_coefficient: int = 16  # LeRobot's SO follower defaults
    i_coefficient: int = 0
    d_coefficient: int = 32
    acceleration: int = 254
    return_delay: int = 0
    gripper_max_torque: int = 500  # 0.1 %: LeRobot limits the gripper to 50 % torque
    gripper_protection_current: int = 250  # 6.5 mA units: 50 % of max current
    gripper_overload_torque: int = 25  # % torque when overloaded
    reconnect_period: float = 0.5  # s between attempts to get a lost port / servo back
    lost_timeout: float = 0.25 # s without a valid reply before a servo counts as lost


ArmReading = JointReading  # stamp is time.monotonic()

# The calibration a servo keeps in EEPROM: register -> the calibration file's field.
EEPROM_CALIBRATION = {"Homing_Offset": "homing_offset", "Min_Position_Limit": "range_min",
                      "Max_Position_Limit": "range_max"}


class CalibrationMismatchError(BusError):
    """The servos' homing offsets / position limits differ from the calibration file, and
    write_calibration is off; the message lists every difference and the fix."""


def calibration_mismatch_text(port: str, differences: Mapping[str, Mapping[str, tuple[int, int]]],
                              ids: Mapping[str, int]) -> str:
    """{joint: {register: (servo value, file value)}} as one line per joint, and the fix."""
    lines = [f"the calibration stored in the servos on {port} differs from the calibration file "
             "(register: servo value -> file value):"]
    for joint, regs in differences.items():
        lines.append(f"  {joint} (id {ids[joint]}): " + ", ".join(
            f"{name} {servo} -> {wanted}" for name, (servo, wanted) in regs.items()))
    lines.append("not connecting. Fix: set write_calibration:=true to write the file's values to the servos "
                 "(what LeRobot does when you accept a calibration file), or recalibrate this arm "
                 "(so100_calibrate or lerobot-calibrate) if the file belongs to another one")
    return "\n".join(lines)


@dataclass
class JointHealth:
    temperature: float = float("nan")  # deg C
    voltage: float = float("nan")  # V
    load: float = float("nan")  # fraction of max torque, signed
    current: float = float("nan")  # A
    error: int = 0  # status-packet error bits


@dataclass
class ArmStatus(HardwareStatus):
    lost_ids: list[int] = field(default_factory=list)
    goal_ticks: dict[str, int] = field(default_factory=dict)


class SO100Arm:
    def __init__(self, config: ArmConfig, bus: FeetechBus | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.config = config
        self.joints: tuple[str, ...] = JOINT_NAMES
        self.converter = JointUnitConverter(config.calibration, "degrees", config.variant)
        self.ids = {j: config.calibration[j].id for j in self.joints}
        self.names = {i: j for j, i in self.ids.items()}
        self.bus = bus or FeetechBus(config.port, list(self.ids.values()), config.baudrate,
                                     config.timeout_ms, config.retries)
        self.joint_names = self.joints
        self.effort_scale = LimitArrays.for_joints(self.joints, config.variant).effort
        self._clock = clock
        self.status = ArmStatus()
        self.last: ArmReading | None = None
        self.health: dict[str, JointHealth] = {j: JointHealth() for j in self.joints}
        self.resync_count = 0  # bumps whenever the caller must restart from the measured position
        self.writes = 0
        self.connect_error = ""  # why the last (re)connect failed; empty once connected
        self._ever_connected = False
        self._want_torque = config.torque_on_connect
        self._last_seen: dict[int, float] = {}
        self._present_ticks: dict[str, int] = {}  # Present_Position of the last read, per joint
        self._next_retry = 0.0

    # -- connection --------------------------------------------------------------------------
    def connect(self, torque: bool = True) -> ArmReading:
        """Open the port, check the servos and their calibration, configure them like LeRobot,
        hold the current pose, and (with `torque`) enable torque. Raises BusError subclasses."""
        self._want_torque = torque
        if not self.bus.connected:
            self.bus.open()
        try:
            self.bus.verify(names=self.names)
            self._configure_servos(list(self.ids.values()))
            reading = self._read_all(required=True)
            self._hold_present()
            self._set_torque(torque)
        except PortLostError:
            raise
        except BusError:
            self.bus.close()
            raise
        self.status.connected, self.status.fault, self.status.lost_ids = True, "", []
        self.connect_error = ""
        self._ever_connected = True
        self._last_seen = {}
        self.resync_count += 1
        return reading

    def close(self, disable_torque: bool = False) -> None:
        if disable_torque and self.bus.connected:
            try:
                self._set_torque(False)
            except BusError:
                pass
        self.bus.close()
        self.status.connected = False

    def _configure_servos(self, servo_ids: Sequence[int]) -> None:
        """Check the calibration of every servo first (nothing is written when it is refused), then
        configure each."""
        eeprom = self._eeprom_changes(servo_ids)
        for servo_id in servo_ids:
            self._configure_servo(servo_id, eeprom.get(servo_id, {}))

    def _eeprom_changes(self, servo_ids: Sequence[int]) -> dict[int, dict[str, int]]:
        """{id: {register: file value}} of the calibration registers that differ from the file;
        CalibrationMismatchError listing them all unless write_calibration."""
        differences: dict[str, dict[str, tuple[int, int]]] = {}
        for servo_id in servo_ids:
            joint = self.names[servo_id]
            cal = self.config.calibration[joint]
            regs = {name: (self.bus.read(servo_id, name), int(getattr(cal, field)))
                    for name, field in EEPROM_CALIBRATION.items()}
            regs = {name: pair for name, pair in regs.items() if pair[0] != pair[1]}
            if regs:
                differences[joint] = regs
        if differences and not self.config.write_calibration:
            raise CalibrationMismatchError(calibration_mismatch_text(self.bus.port, differences, self.ids))
        for joint, regs in differences.items():
            log.warning("servo %d (%s): writing the calibration file's %s over the servo's %s (write_calibration)",
                        self.ids[joint], joint, {n: w for n, (_, w) in regs.items()},
                        {n: v for n, (v, _) in regs.items()})
        return {self.ids[j]: {n: w for n, (_, w) in regs.items()} for j, regs in differences.items()}

    def _configure_servo(self, servo_id: int, eeprom: Mapping[str, int]) -> None:
        """What LeRobot's SO follower writes on connect, plus the calibration registers `eeprom`."""
        c = self.config
        joint = self.names[servo_id]
        bus = self.bus
        torque_was_on = bus.read(servo_id, "Torque_Enable") == 1
        wanted = {"Return_Delay_Time": c.return_delay, "Maximum_Acceleration": c.acceleration,
                  "Acceleration": c.acceleration, "Operating_Mode": 0, "P_Coefficient": c.p_coefficient,
                  "I_Coefficient": c.i_coefficient, "D_Coefficient": c.d_coefficient}
        if joint in GRIPPER_JOINTS:
            wanted.update({"Max_Torque_Limit": c.gripper_max_torque,
                           "Protection_Current": c.gripper_protection_current,
                           "Overload_Torque": c.gripper_overload_torque})
        present = {name: bus.read(servo_id, name) for name in wanted}
        changes = {n: v for n, v in wanted.items() if present[n] != v}
        changes.update(eeprom)
        phase = bus.read(servo_id, "Phase")
        if phase & 0x10:  # angle feedback mode 0: positions stay in 0..4095 (as LeRobot sets it)
            changes["Phase"] = phase & ~0x10
        if not changes:
            return
        if torque_was_on:
            bus.write(servo_id, "Torque_Enable", 0)
        bus.write(servo_id, "Lock", 0)
        for name in EEPROM_CALIBRATION:
            if name in changes:  # homing before the limits, which are in homed ticks
                bus.write(servo_id, name, changes.pop(name))
        for name, value in changes.items():
            bus.write(servo_id, name, value)
        bus.write(servo_id, "Lock", 1)

    # -- torque ------------------------------------------------------------------------------
    @property
    def torque_enabled(self) -> bool:
        return self.status.torque_enabled

    def set_torque(self, enabled: bool) -> None:
        """Torque on (after setting goals to the measured pose) or off (limp). Raises BusError."""
        self._want_torque = enabled
        if not (self.bus.connected and self.status.connected) or self.status.fault:
            raise BusError(f"arm not ready ({self.status.fault or 'not connected'}); torque "
                           f"{'on' if enabled else 'off'} will be applied when it is back")
        self._set_torque(enabled)

    def _set_torque(self, enabled: bool) -> None:
        if enabled:
            self._read_all(required=True)
            self._hold_present()
        for servo_id in self.ids.values():
            self.bus.write(servo_id, "Torque_Enable", 1 if enabled else 0)
            self.bus.write(servo_id, "Lock", 1)
        self.status.torque_enabled = enabled
        self.resync_count += 1

    def _hold_present(self) -> None:
        """Goal := the position just read, tick for tick, inside the URDF limits or not: enabling
        torque never moves the arm."""
        self.bus.sync_write("Goal_Position", {self.ids[j]: t for j, t in self._present_ticks.items()})
        self.writes += 1
        self.status.goal_ticks = dict(self._present_ticks)

    # -- cycle -------------------------------------------------------------------------------
    def read(self) -> ArmReading | None:
        """Read every servo. None while the port is gone or not connected yet (then a connect is
        tried every `reconnect_period` s). Never raises for bus faults."""
        now = self._clock()
        if not self.bus.connected or not self.status.connected:
            if now >= self._next_retry:
                self._next_retry = now + self.config.reconnect_period
                self._try_reconnect()
            if not self.status.connected:
                return None
        try:
            reading = self._read_all(required=False)
            self._track_lost(reading, now)
            return reading
        except BusError as exc:
            self._on_error(exc)
            return None

    def write(self, goal: Sequence[float] | np.ndarray) -> None:
        """Sync-write one goal per joint (rad), while torque is on and every servo answers.
        Never raises for bus faults."""
        target = np.asarray(goal, dtype=np.float64).reshape(-1)
        if target.shape[0] != len(self.joints) or not np.all(np.isfinite(target)):
            raise ValueError(f"goal must be {len(self.joints)} finite values for joints {self.joints}")
        if not (self.bus.connected and self.status.connected and self.status.torque_enabled) or self.status.fault:
            return
        try:
            self._write_ticks(target)
        except BusError as exc:
            self._on_error(exc)

    def _write_ticks(self, target: np.ndarray) -> dict[str, int]:
        ticks = {j: self.converter.radians_to_ticks(j, float(p)) for j, p in zip(self.joints, target)}
        self.bus.sync_write("Goal_Position", {self.ids[j]: t for j, t in ticks.items()})
        self.writes += 1
        self.status.goal_ticks = ticks
        return ticks

    def _read_all(self, required: bool) -> ArmReading:
        ids = [self.ids[j] for j in self.joints if self.ids[j] not in self.status.lost_ids]
        start, size = STATE_BLOCK
        data = self.bus.sync_read(start, size, ids) if not required else self.bus.sync_read_retry(start, size, ids)
        if required and len(data) < len(self.joints):
            missing = [self.names[i] for i in self.ids.values() if i not in data]
            raise CommError(f"servo(s) {missing} on {self.bus.port} did not answer the state read")
        prev = self.last
        pos = prev.positions.copy() if prev else np.zeros(len(self.joints))
        vel = np.zeros(len(self.joints))
        eff = np.zeros(len(self.joints))
        fresh = np.zeros(len(self.joints), dtype=bool)
        for k, joint in enumerate(self.joints):
            raw = data.get(self.ids[joint])
            if raw is None:
                continue
            values = decode_block(start, raw, ("Present_Position", "Present_Velocity", "Present_Load"))
            self._present_ticks[joint] = values["Present_Position"]
            pos[k] = self.converter.ticks_to_radians(joint, values["Present_Position"])
            vel[k] = values["Present_Velocity"] * self.converter.radians_per_tick(joint)
            eff[k] = values["Present_Load"] / 1000.0 * self.effort_scale[k]
            fresh[k] = True
        reading = ArmReading(self._clock(), pos, vel, eff, fresh)
        if prev is None and not fresh.all():
            reading.positions[~fresh] = np.nan
        self.last = reading
        return reading

    def _track_lost(self, reading: ArmReading, now: float) -> None:
        for k, joint in enumerate(self.joints):
            servo_id = self.ids[joint]
            if servo_id in self.status.lost_ids:
                continue
            if reading.fresh[k] or servo_id not in self._last_seen:
                self._last_seen[servo_id] = now
            elif now - self._last_seen[servo_id] > self.config.lost_timeout:
                self.status.lost_ids.append(servo_id)
                self.status.fault = (f"servo {servo_id} ({joint}) on {self.bus.port} stopped answering; "
                                     "holding the other joints (check its cable and power)")
                log.error(self.status.fault)
                self._next_retry = now + self.config.reconnect_period
        if self.status.lost_ids and now >= self._next_retry:
            self._next_retry = now + self.config.reconnect_period
            self._try_revive()

    def _try_revive(self) -> None:
        for servo_id in list(self.status.lost_ids):
            if self.bus.ping(servo_id) is None:
                return
        try:  # everyone answers again: reconfigure (a power-cycled servo forgot its RAM settings)
            self._configure_servos(list(self.status.lost_ids))
            self.status.lost_ids = []
            self._last_seen = {}
            self._read_all(required=True)
            self._hold_present()
            self._set_torque(self._want_torque)
            self.status.fault = ""
            log.warning("all servos answer again on %s; holding the measured pose", self.bus.port)
        except BusError as exc:
            self._on_error(exc)

    def _try_reconnect(self) -> None:
        """First connect, or again after the port was lost: errors are logged once per change."""
        try:
            if not self.bus.connected:
                if self._ever_connected:
                    if not self.bus.reopen():
                        return  # still gone: the fault says so already
                else:
                    self.bus.open()
            self.status.lost_ids = []
            self.connect(torque=self._want_torque)
        except BusError as exc:
            if str(exc) != self.connect_error:
                log.error("%s", exc)
            self.connect_error = str(exc)
            self.status.connected = False
            self.bus.close()
            return
        log.warning("connected to %s; holding the measured pose", self.bus.port)

    def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, PortLostError):
            self.bus.close()
            self.status.connected = False
            self.status.fault = str(exc)
        else:
            self.status.fault = self.status.fault or str(exc)
        log.error("%s", exc)

    # -- health ------------------------------------------------------------------------------
    def read_health(self) -> dict[str, JointHealth]:
        """Temperature, voltage, load, current and error bits (one sync read; missing joints keep
        their previous values). Never raises for bus faults."""
        if not self.bus.connected or not self.status.connected:
            return self.health
        start, size = HEALTH_BLOCK
        ids = [i for i in self.ids.values() if i not in self.status.lost_ids]
        try:
            data = self.bus.sync_read(start, size, ids)
        except BusError as exc:
            self._on_error(exc)
            return self.health
        for servo_id, raw in data.items():
            v = decode_block(start, raw, ("Present_Load", "Present_Voltage", "Present_Temperature",
                                          "Present_Current"))
            self.health[self.names[servo_id]] = JointHealth(
                temperature=float(v["Present_Temperature"]), voltage=v["Present_Voltage"] / 10.0,
                load=v["Present_Load"] / 1000.0, current=v["Present_Current"] * 0.0065,
                error=self.bus.stats.last_servo_error.get(servo_id, 0))
        return self.health

    @staticmethod
    def error_text(error: int) -> str:
        return error_text(error)


__all__ = ["ArmConfig", "ArmReading", "ArmStatus", "CalibrationMismatchError", "JointHealth", "SO100Arm",
           "REGISTERS"]
