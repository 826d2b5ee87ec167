"""The node style every node of the suite shares (rclpy): typed parameters declared from a
schema, QoS presets, diagnostics, JointState, and the console-script body."""
from __future__ import annotations

import contextlib
import faulthandler
import logging
import math
import signal
import sys
import threading
from typing import Any, Callable, Iterator, Mapping, Sequence

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType,
                                SetParametersResult)
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.parameter import Parameter
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, DurabilityPolicy
from sensor_msgs.msg import JointState

from so100_common.params import FLOAT_MAX, INT_MAX, INT_MIN, Param, ParameterError, ParamSchema, coerce

OK = DiagnosticStatus.OK
WARN = DiagnosticStatus.WARN
ERROR = DiagnosticStatus.ERROR
STALE = DiagnosticStatus.STALE

# Images: reliable with a short queue. qos_profile_sensor_data (best effort) drops large
# frames with FastDDS's default UDP transport; a depth of 2 keeps the freshest frame flowing.
IMAGE_QOS = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
STATE_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
# joint_state_topic_hardware_interface publishes commands with depth 1 and subscribes states with
# sensor-data QoS.
HW_COMMAND_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
HW_STATE_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST)
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL, history=HistoryPolicy.KEEP_LAST)


# Parameters every rclpy node has or may be given without declaring them itself.
_STANDARD_PARAMS = ("use_sim_time", "start_type_description_service")
_LIST_TYPES = {"str_list": Parameter.Type.STRING_ARRAY, "float_list": Parameter.Type.DOUBLE_ARRAY,
               "int_list": Parameter.Type.INTEGER_ARRAY}


def declare_params(node: Node, params: ParamSchema,
                   on_change: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Declare `params` to ROS with typed descriptors (type, range, read-only; choices in the
    description and checked here) and return their values, validated. Call it first in the
    node's constructor: a bad value raises ParameterError naming every bad parameter and what it
    accepts, before the node touches hardware or loads a model.

    An integer given for a double (`-p fps:=30`) is taken as that double, and an untyped `[]`
    as the empty list of the parameter's type. Overrides of names the schema does not have are
    reported as a warning (a typo would otherwise be ignored silently).

    At run time ROS refuses sets of read-only parameters, wrong types and out-of-range numbers;
    a dynamic parameter's set is checked against the schema too, and only when the whole set is
    accepted `on_change({name: value})` is called with the schema parameters it changes (the
    check runs after every on-set callback the node adds later, so a refused set is never
    applied by `on_change`)."""
    name = node.get_name()
    overrides = getattr(node, "_parameter_overrides", None)  # rclpy: {name: Parameter} from args
    if not isinstance(overrides, dict):
        overrides = {}
    problems = []
    for p in params:
        if p.name not in overrides:
            continue
        given = overrides[p.name]
        value = _typed_value(p, given.value, given.type_)
        why = p.problem(value)
        if why:
            problems.append(f"parameter {p.name} {why}")
        elif _is_integer_for_double(p, given):  # -p fps:=30 means 30.0
            overrides[p.name] = Parameter(p.name, _param_type(p), coerce(p, value))
    if problems:
        raise ParameterError(f"{name}: " + "; ".join(problems))

    values: dict[str, Any] = {}
    for p in params:
        try:
            param = node.declare_parameter(p.name, coerce(p, p.default), _descriptor(p))
        except (InvalidParameterValueException, InvalidParameterTypeException) as exc:
            raise ParameterError(f"{name}: parameter {p.name}: {exc}; allowed: {p.allowed()}") from None
        values[p.name] = _typed_value(p, param.value, param.type_)  # `[]` stays NOT_SET in ROS
    values = params.validate(values, node=name)

    unknown = sorted(k for k in overrides if k not in params and k not in _STANDARD_PARAMS
                     and not k.startswith("qos_overrides."))
    if unknown:
        node.get_logger().warning(f"ignoring parameter(s) {', '.join(unknown)}: not parameters of this "
                                  f"node (it has: {', '.join(params.names())})")

    if hasattr(node, "add_pre_set_parameters_callback"):  # Jazzy: an integer set for a double
        def widen(changes: list[Parameter]) -> list[Parameter]:
            out = []
            for change in changes:
                p = params[change.name] if change.name in params else None
                if p is not None and _is_integer_for_double(p, change):
                    change = Parameter(change.name, _param_type(p), coerce(p, change.value))
                out.append(change)
            return out

        node.add_pre_set_parameters_callback(widen)

    def check(changes: list[Parameter]) -> SetParametersResult:
        changed: dict[str, Any] = {}
        for change in changes:
            if change.name in params:
                p = params[change.name]
                value = _typed_value(p, change.value, change.type_)
                why = p.problem(value)
                if why:
                    return SetParametersResult(successful=False, reason=f"parameter {change.name} {why}")
                changed[change.name] = coerce(p, value)
        if changed and on_change is not None:
            on_change(changed)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(check)
    return values


def _typed_value(p: Param, value: Any, type_: Parameter.Type) -> Any:
    """An untyped `[]` (rcl gives NOT_SET) of a list parameter is its empty list; rclpy's
    array values become lists."""
    if p.kind in _LIST_TYPES:
        if type_ == Parameter.Type.NOT_SET or value is None:
            return []
        if not isinstance(value, (list, tuple, str, bytes)) and hasattr(value, "__iter__"):
            return list(value)  # array.array from some rclpy versions
    return value


def _is_integer_for_double(p: Param, given: Parameter) -> bool:
    return ((p.kind is float and given.type_ == Parameter.Type.INTEGER)
            or (p.kind == "float_list" and given.type_ == Parameter.Type.INTEGER_ARRAY))


def _param_type(p: Param) -> Parameter.Type:
    return _LIST_TYPES.get(p.kind) or {bool: Parameter.Type.BOOL, int: Parameter.Type.INTEGER,
                                       float: Parameter.Type.DOUBLE, str: Parameter.Type.STRING}[p.kind]


def _descriptor(p: Param) -> ParameterDescriptor:
    kinds = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
             float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING,
             "str_list": ParameterType.PARAMETER_STRING_ARRAY, "float_list": ParameterType.PARAMETER_DOUBLE_ARRAY,
             "int_list": ParameterType.PARAMETER_INTEGER_ARRAY}
    text = p.description + (f" [{p.allowed()}{', ' + p.unit if p.unit else ''}]")
    d = ParameterDescriptor(name=p.name, description=text, read_only=p.read_only,
                            dynamic_typing=p.dynamic_typing,
                            additional_constraints=f"allowed: {p.allowed()}")
    if not p.dynamic_typing:
        d.type = kinds[p.kind]
    if p.kind is int and (p.min is not None or p.max is not None):
        d.integer_range = [IntegerRange(from_value=int(p.min if p.min is not None else INT_MIN),
                                        to_value=int(p.max if p.max is not None else INT_MAX), step=0)]
    elif p.kind is float and (p.min is not None or p.max is not None):
        lo = float(p.min) if p.min is not None else -FLOAT_MAX
        if p.min_exclusive:
            lo = math.nextafter(lo, math.inf)
        d.floating_point_range = [FloatingPointRange(
            from_value=lo, to_value=float(p.max if p.max is not None else FLOAT_MAX), step=0.0)]
    return d


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


class _StopSignals:
    """The SIGINT/SIGTERM handler of a node process. Installed before rclpy.init, so rclpy's own
    handlers (they shut the context down) chain to it. The first signal raises KeyboardInterrupt
    in the main thread, which ends a blocking wait at once; every later one is only counted:
    `ros2 launch` sends SIGINT to the process group and then again itself (and SIGTERM after a
    timeout), and such a second signal must not interrupt destroy_node() with a traceback."""

    def __init__(self) -> None:
        self.count = 0
        self.armed = True  # the next signal raises KeyboardInterrupt

    def __call__(self, signum: int, frame: Any) -> None:
        self.count += 1
        if self.armed:
            self.armed = False
            raise KeyboardInterrupt

    def install(self) -> "_StopSignals":
        return self._set(self)

    def ignore(self) -> None:
        """For the rest of the process: the interpreter resets Python-level handlers to the default
        (die by the signal, exit status -2) while it finalises, but leaves ignored signals ignored."""
        self._set(signal.SIG_IGN)

    def _set(self, handler: Any) -> "_StopSignals":
        if threading.current_thread() is threading.main_thread():  # signal.signal's requirement
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, handler)
        return self


def spin_node_main(argv: Sequence[str] | None, make_node: Callable[[], Node], label: str,
                   errors: tuple[type[BaseException], ...] = (), close: Callable[[Node], None] | None = None,
                   *, failures: tuple[type[BaseException], ...] = (),
                   run: Callable[[Node], int | None] | None = None) -> int:
    """Console-script body shared by every node: init, build the node, run it until it ends, Ctrl-C
    or SIGTERM. `run(node)` replaces rclpy.spin for a node whose main thread runs its own loop
    (see `spinning`) and returns the exit code.

    A stop by signal exits 0 without a traceback, also on repeated signals and on one arriving
    during teardown or while the node is still being built. A bad parameter or one of `errors`
    (files, ports: the user's to fix) prints one line and exits 2; one of `failures` prints one
    line and exits 1. `close` releases the node's resources before destroy_node."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    if not faulthandler.is_enabled():  # a crash in a C extension then names the Python line that led to it
        faulthandler.enable()
    stop = _StopSignals().install()
    rclpy.init(args=argv)
    node = None
    code = 0
    try:
        try:
            node = make_node()
            code = (run(node) if run is not None else rclpy.spin(node)) or 0
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except (ParameterError, *errors) as exc:
            code = 0 if stop.count else _print_error(label, exc, 2)
        except failures as exc:
            code = 0 if stop.count else _print_error(label, exc, 1)
        except Exception:
            if not stop.count:  # a bug: keep its traceback
                raise
            # else: the context was shut down under the node by the signal: a normal stop
        finally:
            stop.armed = False  # from here on no signal interrupts the teardown
            code = _teardown(node, close, label) or code
            stop.ignore()  # after rclpy.try_shutdown, which put `stop` back in place
    except KeyboardInterrupt:  # the first signal, just as the node ended by itself; torn down already
        pass
    return code


def _print_error(label: str, exc: BaseException, code: int) -> int:
    print(error_line(label, exc), file=sys.stderr, flush=True)
    return code


def _teardown(node: Node | None, close: Callable[[Node], None] | None, label: str) -> int:
    """close, destroy_node, shutdown, each also when the one before failed; 1 when one did."""
    import rclpy

    code = 0
    try:
        if node is not None:
            try:
                if close is not None:
                    close(node)
            finally:
                node.destroy_node()
    except Exception as exc:  # noqa: BLE001 - report it in one line; the process is ending anyway
        code = _print_error(label, RuntimeError(f"shutting down: {exc}"), 1)
    finally:
        rclpy.try_shutdown()  # puts back the handlers rclpy chained to: _StopSignals
    return code


@contextlib.contextmanager
def spinning(node: Node, executor: Any = None) -> Iterator[Any]:
    """Spin `node` in a background thread for the `with` block (a node whose main thread runs its
    own loop); the executor (default: single-threaded) is shut down on leaving the block, so no
    callback runs while the node is torn down."""
    from rclpy.executors import ExternalShutdownException, ShutdownException, SingleThreadedExecutor

    executor = executor or SingleThreadedExecutor(context=node.context)
    executor.add_node(node)

    def spin() -> None:
        try:
            executor.spin()
        except (ExternalShutdownException, ShutdownException):
            pass

    thread = threading.Thread(target=spin, daemon=True, name=f"{node.get_name()}-executor")
    thread.start()
    try:
        yield executor
    finally:
        # generous: on a loaded machine the executor may take seconds to wake, and a thread still
        # spinning when the interpreter finalizes crashes it (a segfault instead of exit 0)
        executor.shutdown(timeout_sec=30.0)
        thread.join(timeout=30.0)


def error_line(label: str, exc: BaseException) -> str:
    """'<label>: <error>' on one line (a ParameterError already starts with the node name)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if text.startswith(f"{label}:") else f"{label}: {text}"


def _level_byte(level: int) -> bytes:
    return level if isinstance(level, bytes) else bytes([int(level)])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class _RosLogHandler(logging.Handler):
    """Forwards a plain-Python core's `logging` records to a node's ROS logger."""

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


def forward_python_logging(node: Node, logger_name: str, level: int = logging.INFO) -> None:
    """Send the records of Python logger `logger_name` (a core module's) to `node`'s ROS log."""
    core_log = logging.getLogger(logger_name)
    core_log.addHandler(_RosLogHandler(node))
    core_log.setLevel(level)
    core_log.propagate = False
