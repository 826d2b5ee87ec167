"""so100_driver: the real SO-100/SO-101 arm as a ROS 2 node, a thin shell over the shared
ArmController (so100_bringup/control) and the Feetech hardware (so100_bringup/feetech/arm.py).

Two modes (docs/real_arm.md):
* standalone (pip-only machine): publishes `joint_states` and follows
  `arm_controller/joint_trajectory` + `gripper_controller/joint_trajectory` with the shared
  follower (joint_trajectory_controller semantics);
* hardware (full ROS machine): the far side of ros2_control's topic-based hardware interface:
  reads `hw/joint_commands` (JointState positions), publishes `hw/joint_states`.

Topic names are relative, so a namespace applies to all of them. Services: `~/enable`
(SetBool: true = torque on and follow commands, false = hold the measured pose and ignore
commands), `~/torque` (SetBool: torque on/off, off = limp), `~/estop` (Trigger: hold the measured
pose, ignore commands until `~/enable` true; optionally torque off).
"""
from __future__ import annotations

import logging
import math
import sys

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool, Trigger

from so100_bringup.control.arm_controller import MODES, ArmController, CommandRejected, ControlLoop
from so100_bringup.control.hardware import HardwareError
from so100_bringup.feetech.arm import ArmConfig, SO100Arm
from so100_bringup.follower_ros import TrajectoryFollowerBridge
from so100_common.params import Param, schema
from so100_common.ros_node import (ERROR, HW_COMMAND_QOS, HW_STATE_QOS, OK, STATE_QOS, WARN, declare_params,
                                   diagnostic_array, diagnostic_status, forward_python_logging, now_seconds,
                                   spin_node_main)
from so100_description.calibration import (CalibrationError, load_calibration, nominal_calibration,
                                           resolve_calibration_path)
from so100_description.joints import JOINT_NAMES, VARIANTS, LimitArrays, prefixed

PARAMS = schema("so100_driver", [
    Param("port", "/dev/ttyACM0", "Serial port of the arm's controller board (prefer /dev/serial/by-id/...)"),
    Param("baudrate", 1000000, "Bus baud rate (STS3215 factory default and LeRobot's: 1000000)",
          choices=(9600, 19200, 38400, 57600, 115200, 128000, 250000, 500000, 1000000)),
    Param("calibration_file", "", "LeRobot calibration JSON of this arm (so_follower/<id>.json); empty: see robot_id"),
    Param("robot_id", "", "LeRobot robot id: with calibration_file empty, read $HF_LEROBOT_CALIBRATION "
                          "(default ~/.cache/huggingface/lerobot/calibration)/robots/so_follower/<id>.json"),
    Param("use_nominal_calibration", False, "No calibration file: use nominal ranges = URDF limits "
                                            "(emulator and tests only, never a real arm)"),
    Param("write_calibration", False, "Servos whose homing offset / position limits differ from the calibration "
                                      "file: true = write the file's values to them (LeRobot asks before it does "
                                      "this); false = do not connect, log every difference, keep checking"),
    Param("variant", "so101", "Arm variant for the URDF limits", choices=VARIANTS),
    Param("prefix", "", "Joint name prefix, as in the URDF"),
    Param("mode", "standalone", "standalone: follow JointTrajectory topics and publish joint_states; hardware: "
                                "serve ros2_control's topic-based system (hw/joint_commands -> hw/joint_states)",
          choices=MODES),
    Param("joint_states_topic", "joint_states", "Standalone mode: joint states out"),
    Param("arm_trajectory_topic", "arm_controller/joint_trajectory", "Standalone mode: arm trajectories in"),
    Param("gripper_trajectory_topic", "gripper_controller/joint_trajectory", "Standalone mode: gripper trajectories in"),
    Param("hw_commands_topic", "hw/joint_commands", "Hardware mode: position commands from the topic-based system"),
    Param("hw_states_topic", "hw/joint_states", "Hardware mode: states to the topic-based system"),
    Param("rate_hz", 200.0, "Control loop rate (one bus read + one goal write per cycle); joint states are "
                            "published every cycle", min=1.0, max=1000.0, unit="Hz"),
    Param("timeout_ms", 10.0, "Wait for a status packet beyond its wire time before counting it missing",
          min=0.0, max=1000.0, unit="ms"),
    Param("retries", 2, "Extra tries of a failed read/write during setup; the cycle never blocks on retries",
          min=0, max=10),
    Param("max_step", 0.05, "Max change of a joint goal per cycle; limits jumps of bad commands",
          min=0.001, max=0.5, unit="rad"),
    Param("watchdog_timeout", 0.5, "Hardware mode: hold the measured pose when hw/joint_commands stop for this long",
          min=0.01, max=60.0, unit="s"),
    Param("enable_on_start", True, "Enable torque and follow commands once connected (LeRobot enables torque "
                                   "on connect)"),
    Param("estop_disables_torque", False, "e-stop also switches torque off (the arm falls under gravity!)"),
    Param("disable_torque_on_exit", True, "Switch torque off when the node exits: the arm goes limp (LeRobot's "
                                          "disable_torque_on_disconnect, default true); false = keep holding"),
    Param("gripper_max_torque", 500, "Gripper Max_Torque_Limit (0.1 %), LeRobot: 500", min=0, max=1000),
    Param("gripper_protection_current", 250, "Gripper Protection_Current (6.5 mA units), LeRobot: 250",
          min=0, max=511),
    Param("gripper_overload_torque", 25, "Gripper Overload_Torque (%), LeRobot: 25", min=0, max=100),
    Param("p_coefficient", 16, "Position P gain written to every servo (LeRobot: 16)", min=0, max=254),
    Param("i_coefficient", 0, "Position I gain (LeRobot: 0)", min=0, max=254),
    Param("d_coefficient", 32, "Position D gain (LeRobot: 32)", min=0, max=254),
    Param("servo_timeout", 0.25, "A servo without a valid reply for this long counts as lost: the arm holds, its "
                                 "joint leaves joint_states, and it is probed every reconnect_period",
          min=0.01, max=10.0, unit="s"),
    Param("reconnect_period", 0.5, "Seconds between attempts to open the port or reach a silent servo",
          min=0.05, max=60.0, unit="s"),
    Param("health_rate_hz", 5.0, "Rate of the temperature/voltage/current read", min=0.1, max=100.0, unit="Hz"),
    Param("diagnostics_rate_hz", 1.0, "Rate of /diagnostics", min=0.1, max=100.0, unit="Hz"),
], title="so100_driver: the real SO-100/SO-101 arm on its Feetech bus")


class So100Driver(Node):
    def __init__(self, **kwargs):
        super().__init__("so100_driver", **kwargs)
        p = self.params = declare_params(self, PARAMS)
        forward_python_logging(self, "so100_bringup.feetech")
        self.names = prefixed(JOINT_NAMES, p["prefix"])
        self.arm = SO100Arm(ArmConfig(
            port=p["port"], calibration=self._load_calibration(), variant=p["variant"], baudrate=p["baudrate"],
            timeout_ms=p["timeout_ms"], retries=p["retries"], write_calibration=p["write_calibration"],
            p_coefficient=p["p_coefficient"], i_coefficient=p["i_coefficient"], d_coefficient=p["d_coefficient"],
            gripper_max_torque=p["gripper_max_torque"], gripper_protection_current=p["gripper_protection_current"],
            gripper_overload_torque=p["gripper_overload_torque"], reconnect_period=p["reconnect_period"],
            lost_timeout=p["servo_timeout"], torque_on_connect=p["enable_on_start"]))
        self.controller = ArmController(
            self.arm, self.names, LimitArrays.for_joints(self.names, p["variant"], p["prefix"]), p["max_step"],
            mode=p["mode"], watchdog_timeout=p["watchdog_timeout"], accepting=p["enable_on_start"])
        self.bridge: TrajectoryFollowerBridge | None = None
        if p["mode"] == "standalone":
            self.state_pub = self.create_publisher(JointState, p["joint_states_topic"], STATE_QOS)
            self.bridge = TrajectoryFollowerBridge(self, self.controller, p["arm_trajectory_topic"],
                                                   p["gripper_trajectory_topic"],
                                                   accept=self.controller.accepting_commands)
        else:
            self.state_pub = self.create_publisher(JointState, p["hw_states_topic"], HW_STATE_QOS)
            self.create_subscription(JointState, p["hw_commands_topic"], self._on_hw_command, HW_COMMAND_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_service(SetBool, "~/enable", self._on_enable)
        self.create_service(SetBool, "~/torque", self._on_torque)
        self.create_service(Trigger, "~/estop", self._on_estop)
        self.create_timer(1.0 / p["diagnostics_rate_hz"], self._publish_diagnostics)
        self._health_period = 1.0 / p["health_rate_hz"]
        self._next_health = 0.0
        self._was_connected = False
        self._rate_window: list[float] = []
        self.loop = ControlLoop(self._cycle, p["rate_hz"], "so100_driver_loop", on_error=self._on_cycle_error).start()

    def _load_calibration(self):
        p = self.params
        path = resolve_calibration_path(p["calibration_file"], p["robot_id"])
        if path is not None:
            return load_calibration(path)
        if p["use_nominal_calibration"]:
            self.get_logger().warn("no calibration file: using the nominal calibration (URDF limits); "
                                   "for a real arm set calibration_file or robot_id")
            return nominal_calibration(p["variant"])
        raise CalibrationError(
            "no calibration: set calibration_file to LeRobot's calibration JSON of this arm (e.g. "
            "~/.cache/huggingface/lerobot/calibration/robots/so_follower/<id>.json) or robot_id, or run "
            "so100_calibrate / lerobot-calibrate first")

    # -- control loop (its own thread) ----------------------------------------------------------
    def _cycle(self) -> None:
        reading = self.controller.cycle(now_seconds(self))
        if reading is None:
            return
        if reading.stamp >= self._next_health:
            self._next_health = reading.stamp + self._health_period
            with self.controller.exclusive():  # a service call may be switching torque right now
                self.arm.read_health()
        if not self._was_connected:
            self._was_connected = True
            positions = {n: round(float(x), 3) for n, x in zip(self.names, reading.positions)}
            self.get_logger().info(f"connected to {self.arm.bus.port}: {positions}")
        self._rate_window.append(reading.stamp)
        if len(self._rate_window) > 200:
            del self._rate_window[:100]
        # A reply missed now and then keeps the joint's last reading (at most servo_timeout old);
        # a lost servo's joint is left out, so nobody mistakes a stale value for a live one.
        fresh = np.array([self.arm.ids[j] not in self.arm.status.lost_ids for j in JOINT_NAMES])
        fresh &= np.isfinite(reading.positions)
        if not fresh.any():
            return
        msg = JointState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.name = [n for n, f in zip(self.names, fresh) if f]
        msg.position = reading.positions[fresh].tolist()
        msg.velocity = reading.velocities[fresh].tolist()
        msg.effort = reading.efforts[fresh].tolist()
        self.state_pub.publish(msg)

    def _on_cycle_error(self, exc: Exception) -> None:
        if self.context.ok():
            self.get_logger().error(f"control cycle failed: {exc!r}", throttle_duration_sec=1.0)

    # -- inputs --------------------------------------------------------------------------------
    def _on_hw_command(self, msg: JointState) -> None:
        try:
            self.controller.on_joint_commands(msg.name, msg.position)
        except CommandRejected as exc:
            self.get_logger().error(f"hw/joint_commands ignored: {exc}", throttle_duration_sec=2.0)

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        return self._call(response, lambda: self.controller.enable(bool(request.data)))

    def _on_torque(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        return self._call(response, lambda: self.controller.set_torque(bool(request.data)))

    def _on_estop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.message = self.controller.estop(self.params["estop_disables_torque"])
        response.success = True
        self.get_logger().warn(f"E-STOP: {response.message}")
        return response

    @staticmethod
    def _call(response, action):
        try:
            response.message, response.success = action(), True
        except HardwareError as exc:
            response.message, response.success = str(exc), False
        return response

    # -- diagnostics ---------------------------------------------------------------------------
    def cycle_rate(self) -> float:
        w = self._rate_window
        return (len(w) - 1) / (w[-1] - w[0]) if len(w) > 10 and w[-1] > w[0] else 0.0

    def _publish_diagnostics(self) -> None:
        arm, ctl = self.arm, self.controller.status()
        if arm.status.fault:
            level, message = ERROR, arm.status.fault
        elif arm.connect_error:
            level, message = ERROR, arm.connect_error
        elif ctl.estopped:
            level, message = WARN, "e-stop active"
        elif not arm.torque_enabled:
            level, message = WARN, "torque off"
        elif ctl.watchdog_tripped:
            level, message = WARN, "command watchdog: holding"
        else:
            level, message = OK, "ok"
        values = {"port": arm.bus.port, "mode": ctl.mode, "cycle_rate_hz": round(self.cycle_rate(), 1),
                  "missed_deadlines": self.loop.missed, "torque_enabled": arm.torque_enabled,
                  "accepting_commands": ctl.accepting and not ctl.estopped, "goals_written": ctl.goals_written,
                  "goals_clamped": ctl.goals_clamped, "goals_step_limited": ctl.goals_step_limited,
                  "rejected_commands": ctl.rejected_commands + (self.bridge.rejected if self.bridge else 0)}
        values.update({f"bus_{k}": v for k, v in arm.bus.stats.as_dict().items()})
        statuses = [diagnostic_status("so100_driver: bus", level, message, values, hardware_id=arm.bus.port)]
        for joint, name in zip(JOINT_NAMES, self.names):
            h = arm.health[joint]
            jl, text = OK, "ok"
            if h.error:
                jl, text = ERROR, f"servo error: {arm.error_text(h.error)}"
            elif not math.isnan(h.temperature) and h.temperature >= 60:
                jl, text = WARN, "hot"
            elif arm.ids[joint] in arm.status.lost_ids:
                jl, text = ERROR, "not answering"
            statuses.append(diagnostic_status(
                f"so100_driver: {name}", jl, text,
                {"id": arm.ids[joint], "temperature_c": h.temperature, "voltage_v": h.voltage, "load": h.load,
                 "current_a": h.current, "goal_ticks": arm.status.goal_ticks.get(joint, -1)},
                hardware_id=f"{arm.bus.port}#{arm.ids[joint]}"))
        self.diag_pub.publish(diagnostic_array(self, statuses))

    def shutdown(self) -> None:
        self.loop.stop()
        self.arm.close(disable_torque=self.params["disable_torque_on_exit"])


def main(args: list[str] | None = None) -> int:
    return spin_node_main(args, So100Driver, "so100_driver", (CalibrationError,),
                          close=lambda node: node.shutdown())


if __name__ == "__main__":
    sys.exit(main())
