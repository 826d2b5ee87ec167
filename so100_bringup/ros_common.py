"""Small rclpy helpers shared by the nodes: parameters, QoS presets, diagnostics, JointState."""
from __future__ import annotations

import sys
from typing import Any, Callable, Mapping, Sequence

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, DurabilityPolicy
from sensor_msgs.msg import JointState

OK = DiagnosticStatus.OK
WARN = DiagnosticStatus.WARN
ERROR = DiagnosticStatus.ERROR
STALE = DiagnosticStatus.STALE

# Images: reliable with a short queue. qos_profile_sensor_data (best effort) drops large
# frames with FastDDS's default UDP transport; a depth of 2 keeps the freshest frame flowing.
IMAGE_QOS = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
STATE_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
# topic_based_ros2_control publishes commands with depth 1 and subscribes states with sensor-data QoS.
HW_COMMAND_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
HW_STATE_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST)
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL, history=HistoryPolicy.KEEP_LAST)


def declare_params(node: Node, spec: Mapping[str, tuple[Any, str]]) -> dict[str, Any]:
    """Declare parameters {name: (default, description)} and return their current values."""
    values: dict[str, Any] = {}
    for name, (default, description) in spec.items():
        node.declare_parameter(name, default, ParameterDescriptor(description=description))
        values[name] = node.get_parameter(name).value
    return values


def diagnostic_status(name: str, level: int, message: str, values: Mapping[str, Any] | None = None,
                      hardware_id: str = "") -> DiagnosticStatus:
    status = DiagnosticStatus(level=_level_byte(level), name=name, message=message, hardware_id=hardware_id)
    status.values = [KeyValue(key=str(k), value=_fmt(v)) for k, v in (values or {}).items()]
    return status


def diagnostic_array(node: Node, statuses: Sequence[DiagnosticStatus]) -> DiagnosticArray:
    msg = DiagnosticArray()
    msg.header.stamp = node.get_clock().now().to_msg()
    msg.status = list(statuses)
    return msg


def joint_state_msg(node: Node, names: Sequence[str], positions: Sequence[float],
                    velocities: Sequence[float] | None = None,
                    efforts: Sequence[float] | None = None) -> JointState:
    msg = JointState()
    msg.header.stamp = node.get_clock().now().to_msg()
    msg.name = list(names)
    msg.position = [float(x) for x in positions]
    msg.velocity = [float(x) for x in velocities] if velocities is not None else []
    msg.effort = [float(x) for x in efforts] if efforts is not None else []
    return msg


def now_seconds(node: Node) -> float:
    """The node's clock (sim time when use_sim_time is set) in seconds."""
    return node.get_clock().now().nanoseconds * 1e-9


def spin_node_main(argv: Sequence[str] | None, make_node: Callable[[], Node], label: str,
                   errors: tuple[type[BaseException], ...], close: Callable[[Node], None] | None = None) -> int:
    """Console-script body: init, build the node, spin until Ctrl-C; `errors` (bad parameters,
    files, ports) print one line and exit 2; `close` releases the node's resources."""
    import rclpy

    rclpy.init(args=argv)
    node = None
    try:
        node = make_node()
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    except errors as exc:
        print(f"{label}: {exc}", file=sys.stderr)
        return 2
    finally:
        if node is not None:
            if close is not None:
                close(node)
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


def _level_byte(level: int) -> bytes:
    return level if isinstance(level, bytes) else bytes([int(level)])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
