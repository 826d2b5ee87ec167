"""so100_driver: the real SO-100/SO-101 arm as a ROS 2 node (thin shell over feetech.arm).

Two modes (docs/real_arm.md, shared/INTERFACES.md):
* standalone (pip-only machine): publishes `joint_states` and follows
  `arm_controller/joint_trajectory` + `gripper_controller/joint_trajectory` through the shared
  TrajectoryFollower (joint_trajectory_controller splice semantics);
* hardware (full ROS machine): the far side of topic_based_ros2_control: reads
  `hw/joint_commands` (JointState positions), publishes `hw/joint_states`.

Topic names are relative, so a namespace applies to all of them. Services: `~/enable`
(SetBool: true = torque on and accept commands, false = hold the measured pose and ignore
commands), `~/torque` (SetBool: torque on/off, off = limp), `~/estop` (Trigger: hold the measured
pose, ignore commands until `~/enable` true; optionally torque off).
"""
from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool, Trigger

from so100_bringup.calibration import CalibrationError, load_calibration, nominal_calibration
from so100_bringup.feetech.arm import ArmConfig, SO100Arm
from so100_bringup.feetech.bus import BusError
from so100_bringup.follower import TrajectoryFollower
from so100_bringup.follower_ros import TrajectoryFollowerBridge
from so100_bringup.ros_common import (ERROR, HW_COMMAND_QOS, HW_STATE_QOS, OK, STATE_QOS, WARN, declare_params,
                                      diagnostic_array, diagnostic_status, now_seconds)
from so100_description.joints import JOINT_NAMES, limit_arrays, prefixed

PARAMS: dict[str, tuple[object, str]] = {
    "port": ("/dev/ttyACM0", "Serial port of the arm's controller board (prefer /dev/serial/by-id/...)"),
    "calibration_file": ("", "LeRobot calibration JSON of this arm (so_follower/<id>.json); empty: see robot_id"),
    "robot_id": ("", "LeRobot robot id: with calibration_file empty, read "
                     "$HF_LEROBOT_CALIBRATION or ~/.cache/huggingface/lerobot/calibration/robots/so_follower/<id>.json"),
    "use_nominal_calibration": (False, "No calibration file: use nominal ranges = URDF limits (emulator/tests only)"),
    "variant": ("so101", "Arm variant for the URDF limits: so100 or so101"),
    "prefix": ("", "Joint name prefix, as in the URDF"),
    "mode": ("standalone", "standalone: follow JointTrajectory topics and publish joint_states; "
                           "hardware: serve topic_based_ros2_control (hw/joint_commands -> hw/joint_states)"),
    "rate_hz": (200.0, "Control loop rate (one bus read + one goal write per cycle); joint states are published "
                       "every cycle"),
    "baudrate": (1000000, "Bus baud rate (STS3215 default 1000000)"),
    "timeout_ms": (10.0, "Wait for a status packet beyond its wire time before counting it missing"),
    "retries": (2, "Extra tries of a failed read/write during setup; the cycle never blocks on retries"),
    "max_step": (0.05, "Max change of a joint goal per cycle (rad); limits jumps of bad commands"),
    "watchdog_timeout": (0.5, "Hardware mode: hold the measured pose when hw/joint_commands stop for this long (s)"),
    "enable_on_start": (True, "Enable torque and accept commands once connected (LeRobot enables torque on connect)"),
    "estop_disables_torque": (False, "e-stop also switches torque off (the arm falls under gravity!)"),
    "disable_torque_on_exit": (False, "Switch torque off when the node exits (LeRobot's disable_torque_on_disconnect)"),
    "write_calibration": (True, "Write the file's homing offsets/limits to the servos when they differ (as LeRobot "
                                "does when you accept a calibration file); false: refuse to start instead"),
    "gripper_max_torque": (500, "Gripper Max_Torque_Limit (0.1 %), LeRobot: 500"),
    "gripper_protection_current": (250, "Gripper Protection_Current (6.5 mA units), LeRobot: 250"),
    "gripper_overload_torque": (25, "Gripper Overload_Torque (%), LeRobot: 25"),
    "p_coefficient": (16, "Position P gain written to every servo (LeRobot: 16)"),
    "i_coefficient": (0, "Position I gain (LeRobot: 0)"),
    "d_coefficient": (32, "Position D gain (LeRobot: 32)"),
    "servo_timeout": (0.25, "A servo without a valid reply for this long (s) counts as lost: the arm holds, "
                            "its joint leaves joint_states, and it is probed every reconnect_period"),
    "reconnect_period": (0.5, "Seconds between attempts to reopen a lost port or reach a silent servo"),
    "health_rate_hz": (5.0, "Rate of the temperature/voltage/current read"),
    "diagnostics_rate_hz": (1.0, "Rate of /diagnostics"),
    "joint_states_topic": ("joint_states", "Standalone mode: joint states out"),
    "arm_trajectory_topic": ("arm_controller/joint_trajectory", "Standalone mode: arm trajectories in"),
    "gripper_trajectory_topic": ("gripper_controller/joint_trajectory", "Standalone mode: gripper trajectories in"),
    "hw_commands_topic": ("hw/joint_commands", "Hardware mode: position commands from TopicBasedSystem"),
    "hw_states_topic": ("hw/joint_states", "Hardware mode: states to TopicBasedSystem"),
}

class _RosLogHandler(logging.Handler):
    """Forward the plain-Python core's `logging` records to the node's ROS logger."""

    def __init__(self, node: Node):
        super().__init__()
        self._logger = node.get_logger()

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        if record.levelno >= logging.ERROR:
            self._logger.error(text)
        elif record.levelno >= logging.WARNING:
            self._logger.warn(text)
        else:
            self._logger.info(text)


LEROBOT_CALIBRATION_DIRS = ("robots/so_follower", "robots/so101_follower", "robots/so100_follower")


def resolve_calibration_path(calibration_file: str, robot_id: str) -> Path | None:
    if calibration_file:
        return Path(calibration_file).expanduser()
    if not robot_id:
        return None
    root = Path(os.environ.get("HF_LEROBOT_CALIBRATION",
                               Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser()
                               / "lerobot" / "calibration")).expanduser()
    candidates = [root / d / f"{robot_id}.json" for d in LEROBOT_CALIBRATION_DIRS]
    return next((c for c in candidates if c.exists()), candidates[0])


class So100Driver(Node):
    def __init__(self, **kwargs):
        super().__init__("so100_driver", **kwargs)
        p = self.params = declare_params(self, PARAMS)
        core_log = logging.getLogger("so100_bringup.feetech")
        core_log.addHandler(_RosLogHandler(self))
        core_log.setLevel(logging.INFO)
        core_log.propagate = False
        if p["mode"] not in ("standalone", "hardware"):
            raise ValueError(f"parameter mode={p['mode']!r}: expected 'standalone' or 'hardware'")
        self.variant = str(p["variant"])
        self.prefix = str(p["prefix"])
        self.names = prefixed(JOINT_NAMES, self.prefix)
        calibration = self._load_calibration()
        self.arm = SO100Arm(ArmConfig(
            port=str(p["port"]), calibration=calibration, variant=self.variant, baudrate=int(p["baudrate"]),
            timeout_ms=float(p["timeout_ms"]), retries=int(p["retries"]), max_step=float(p["max_step"]),
            write_calibration=bool(p["write_calibration"]), p_coefficient=int(p["p_coefficient"]),
            i_coefficient=int(p["i_coefficient"]), d_coefficient=int(p["d_coefficient"]),
            gripper_max_torque=int(p["gripper_max_torque"]),
            gripper_protection_current=int(p["gripper_protection_current"]),
            gripper_overload_torque=int(p["gripper_overload_torque"]),
            reconnect_period=float(p["reconnect_period"]), lost_timeout=float(p["servo_timeout"])))
        self.lower, self.upper = limit_arrays(self.names, self.variant, self.prefix)
        self._lock = threading.RLock()
        self.accepting = bool(p["enable_on_start"])  # commands are followed
        self.estopped = False
        self.connect_error = ""
        self._resync_seen = -1
        self._last_hw_command: np.ndarray | None = None
        self._last_hw_time = 0.0
        self._watchdog_tripped = False
        self.rejected_commands = 0
        self.cycles = 0
        self._rate_window: list[float] = []
        self.follower: TrajectoryFollower | None = None
        self.bridge: TrajectoryFollowerBridge | None = None

        if p["mode"] == "standalone":
            self.state_pub = self.create_publisher(JointState, p["joint_states_topic"], STATE_QOS)
            # Holds zero until the first reading re-syncs it; trajectories are refused until then.
            self.follower = TrajectoryFollower(self.names, np.clip(np.zeros(len(self.names)), self.lower, self.upper),
                                               self.lower, self.upper)
            self.bridge = TrajectoryFollowerBridge(
                self, self.follower, p["arm_trajectory_topic"], p["gripper_trajectory_topic"],
                accept=self._accepting_trajectories)
        else:
            self.state_pub = self.create_publisher(JointState, p["hw_states_topic"], HW_STATE_QOS)
            self.create_subscription(JointState, p["hw_commands_topic"], self._on_hw_command, HW_COMMAND_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_service(SetBool, "~/enable", self._on_enable)
        self.create_service(SetBool, "~/torque", self._on_torque)
        self.create_service(Trigger, "~/estop", self._on_estop)
        self.create_timer(1.0 / max(0.1, float(p["diagnostics_rate_hz"])), self._publish_diagnostics)

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="so100_driver_loop", daemon=True)
        self._thread.start()

    # -- setup ---------------------------------------------------------------------------------
    def _load_calibration(self):
        p = self.params
        path = resolve_calibration_path(str(p["calibration_file"]), str(p["robot_id"]))
        if path is None:
            if p["use_nominal_calibration"]:
                self.get_logger().warn("no calibration file: using the nominal calibration (URDF limits); "
                                       "for a real arm set calibration_file or robot_id")
                return nominal_calibration(self.variant)
            raise CalibrationError(
                "no calibration: set calibration_file to LeRobot's calibration JSON of this arm (e.g. "
                "~/.cache/huggingface/lerobot/calibration/robots/so_follower/<id>.json) or robot_id, or run "
                "so100_calibrate / lerobot-calibrate first")
        return load_calibration(path)

    def _accepting_trajectories(self) -> bool:
        return (self.accepting and not self.estopped and self.arm.torque_enabled and self.arm.status.connected
                and not self.arm.status.fault and self._resync_seen == self.arm.resync_count)

    # -- control loop ----------------------------------------------------------------------------
    def _loop(self) -> None:
        period = 1.0 / max(1.0, float(self.params["rate_hz"]))
        health_period = 1.0 / max(0.1, float(self.params["health_rate_hz"]))
        next_health = 0.0
        next_connect = 0.0
        next_tick = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if not self.arm.status.connected and self.arm.last is None:
                if now >= next_connect:  # first connection: keep trying, never crash the launch
                    next_connect = now + float(self.params["reconnect_period"])
                    self._first_connect()
            else:
                try:
                    self._cycle()
                    if now >= next_health:
                        next_health = now + health_period
                        with self._lock:
                            self.arm.read_health()
                except Exception as exc:  # noqa: BLE001 - the loop must outlive any single bad cycle
                    if self._stop.is_set() or not self.context.ok():
                        return
                    self.get_logger().error(f"control cycle failed: {exc!r}", throttle_duration_sec=1.0)
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_tick = time.monotonic()

    def _first_connect(self) -> None:
        try:
            with self._lock:
                reading = self.arm.connect(torque=bool(self.params["enable_on_start"]))
        except BusError as exc:
            if str(exc) != self.connect_error:
                self.get_logger().error(str(exc))
            self.connect_error = str(exc)
            self.arm.bus.close()
            return
        self.connect_error = ""
        self.get_logger().info(f"connected to {self.arm.bus.port}: {dict(zip(self.names, reading.positions.round(3)))}")

    def _command(self, now_ros: float) -> np.ndarray | None:
        """The goal for this cycle, or None to leave the servos' goals as they are."""
        if not self.accepting or self.estopped:
            return None
        if self.follower is not None:
            positions, _ = self.follower.sample(now_ros)
            return positions
        if self._last_hw_command is None:
            return None
        if time.monotonic() - self._last_hw_time > float(self.params["watchdog_timeout"]):
            if not self._watchdog_tripped:
                self._watchdog_tripped = True
                self.get_logger().warn("hw/joint_commands stopped: holding the measured pose")
                self.arm.hold()
            return None
        return self._last_hw_command

    def _cycle(self) -> None:
        with self._lock:
            now_ros = now_seconds(self)
            if self.arm.resync_count != self._resync_seen and self.arm.last is not None:
                # torque change, e-stop, reconnect, revived servo: restart from the measured pose
                self._resync_seen = self.arm.resync_count
                if self.follower is not None and np.all(np.isfinite(self.arm.last.positions)):
                    self.follower.hold(now_ros, np.clip(self.arm.last.positions, self.lower, self.upper))
                self._last_hw_command = None
            reading = self.arm.cycle(self._command(now_ros))
            self.cycles += 1
        if reading is None:
            return
        self._rate_window.append(reading.stamp)
        if len(self._rate_window) > 200:
            del self._rate_window[:100]
        # A reply missed now and then keeps the joint's last reading (at most servo_timeout old);
        # a lost servo's joint is left out, so nobody mistakes a stale value for a live one.
        fresh = np.array([self.arm.ids[j] not in self.arm.status.lost_ids for j in JOINT_NAMES])
        fresh &= np.isfinite(reading.positions)
        msg = JointState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.name = [n for n, f in zip(self.names, fresh) if f]  # a silent servo's joint is left out
        msg.position = [float(x) for x, f in zip(reading.positions, fresh) if f]
        msg.velocity = [float(x) for x, f in zip(reading.velocities, fresh) if f]
        msg.effort = [float(x) for x, f in zip(reading.efforts, fresh) if f]
        if msg.name:
            self.state_pub.publish(msg)

    # -- inputs --------------------------------------------------------------------------------
    def _on_hw_command(self, msg: JointState) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        if len(msg.position) != len(msg.name) or any(n not in index for n in self.names):
            self.rejected_commands += 1
            self.get_logger().error(f"hw/joint_commands needs positions for {self.names}; got names {list(msg.name)} "
                                    f"with {len(msg.position)} positions", throttle_duration_sec=2.0)
            return
        cmd = np.array([msg.position[index[n]] for n in self.names], dtype=float)
        if not np.all(np.isfinite(cmd)):
            self.rejected_commands += 1
            self.get_logger().error("hw/joint_commands with non-finite positions ignored", throttle_duration_sec=2.0)
            return
        with self._lock:
            self._last_hw_command = cmd
            self._last_hw_time = time.monotonic()
            self._watchdog_tripped = False

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        with self._lock:
            try:
                if request.data:
                    self.arm.set_torque(True)
                    self.estopped = False
                    self.accepting = True
                    response.message = "torque on, following commands"
                else:
                    self.accepting = False
                    self.arm.hold()
                    response.message = "holding the measured pose; commands ignored"
                response.success = True
            except BusError as exc:
                response.success, response.message = False, str(exc)
        return response

    def _on_torque(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        with self._lock:
            try:
                self.arm.set_torque(bool(request.data))
                response.success = True
                response.message = "torque on (holding the measured pose)" if request.data else "torque off (limp)"
            except BusError as exc:
                response.success, response.message = False, str(exc)
        return response

    def _on_estop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            self.estopped = True
            self.arm.hold()
            if self.params["estop_disables_torque"]:
                try:
                    self.arm.set_torque(False)
                except BusError as exc:
                    self.get_logger().error(f"e-stop could not switch torque off: {exc}")
        self.get_logger().warn("E-STOP: holding the measured pose; call ~/enable true to resume")
        response.success, response.message = True, "e-stop: holding; ~/enable true resumes"
        return response

    # -- diagnostics ---------------------------------------------------------------------------
    def cycle_rate(self) -> float:
        w = self._rate_window
        return (len(w) - 1) / (w[-1] - w[0]) if len(w) > 10 and w[-1] > w[0] else 0.0

    def _publish_diagnostics(self) -> None:
        arm = self.arm
        stats = arm.bus.stats
        if self.connect_error:
            level, message = ERROR, self.connect_error
        elif arm.status.fault:
            level, message = ERROR, arm.status.fault
        elif self.estopped:
            level, message = WARN, "e-stop active"
        elif not arm.torque_enabled:
            level, message = WARN, "torque off"
        elif self._watchdog_tripped:
            level, message = WARN, "command watchdog: holding"
        else:
            level, message = OK, "ok"
        values = {"port": arm.bus.port, "mode": self.params["mode"], "cycle_rate_hz": round(self.cycle_rate(), 1),
                  "torque_enabled": arm.torque_enabled, "accepting_commands": self.accepting and not self.estopped,
                  "goals_written": arm.writes, "goals_clamped": arm.clamped, "goals_step_limited": arm.step_limited,
                  "rejected_commands": self.rejected_commands + (self.bridge.rejected if self.bridge else 0)}
        values.update({f"bus_{k}": v for k, v in stats.as_dict().items()})
        statuses = [diagnostic_status("so100_driver: bus", level, message, values, hardware_id=arm.bus.port)]
        for joint, name in zip(JOINT_NAMES, self.names):
            h = arm.health[joint]
            jl = OK
            msg = "ok"
            if h.error:
                jl, msg = ERROR, f"servo error: {arm.error_text(h.error)}"
            elif not math.isnan(h.temperature) and h.temperature >= 60:
                jl, msg = WARN, "hot"
            elif arm.ids[joint] in arm.status.lost_ids:
                jl, msg = ERROR, "not answering"
            statuses.append(diagnostic_status(
                f"so100_driver: {name}", jl, msg,
                {"id": arm.ids[joint], "temperature_c": h.temperature, "voltage_v": h.voltage, "load": h.load,
                 "current_a": h.current, "goal_ticks": arm.status.goal_ticks.get(joint, -1)},
                hardware_id=f"{arm.bus.port}#{arm.ids[joint]}"))
        self.diag_pub.publish(diagnostic_array(self, statuses))

    def shutdown(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        with self._lock:
            self.arm.close(disable_torque=bool(self.params["disable_torque_on_exit"]))


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    try:
        node = So100Driver()
    except (CalibrationError, ValueError) as exc:
        print(f"so100_driver: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
