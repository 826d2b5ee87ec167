"""A command-line tool's window onto running nodes (rclpy): call their services, set their
parameters, read their /diagnostics values, publish a message once its subscribers matched, and
query the ROS graph through `node`. Used by so100_ctl, so100_record and so100_evaluate --hardware
real, which drive nodes an operator started, as `ros2 service call` / `ros2 param set` /
`ros2 topic pub --once -w` would.
"""
from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

POLL_S = 0.02  # how often the caller's thread checks what the executor thread did


class NodeUnavailable(RuntimeError):
    """A service that did not appear or did not answer within the timeout."""


class ServiceNotFound(NodeUnavailable):
    """The service did not appear within the timeout: nothing offers it (yet)."""


def full_name(name: str, namespace: str = "") -> str:
    """`name` in `namespace` as ROS resolves it: an absolute name stays, a relative one goes under
    the namespace ("recorder" -> "/recorder"; "vla_policy_node/enable" in "left" ->
    "/left/vla_policy_node/enable")."""
    if name.startswith("/"):
        return "/" + name.strip("/")
    return "/" + "/".join(p for p in (namespace.strip("/"), name.strip("/")) if p)


@dataclass
class Delivery:
    """What RosClient.publish_when_matched did."""
    topic: str  # resolved name
    matched: int  # subscribers matched when it published; 0: not published
    known: int  # subscribers the graph showed then
    acked: bool  # every matched subscriber acknowledged the message


class RosClient:
    """A private rclpy context and node, spun in a background thread. Ctrl-C stays a
    KeyboardInterrupt in the main thread (no rclpy signal handler, which would shut the context
    down and turn Ctrl-C into a "not found"), so the tool can clean up (discard an open episode,
    switch the policy off) before it exits. Relative names resolve under `namespace`.
    `use_sim_time`: the node's clock follows /clock. `check` runs at every poll of a wait and
    may raise to end it (e.g. a child process that died)."""

    def __init__(self, name: str, timeout_s: float = 30.0, namespace: str = "", use_sim_time: bool = False,
                 check: Callable[[], None] = lambda: None):
        import rclpy
        from rclpy.parameter import Parameter
        from rclpy.signals import SignalHandlerOptions

        from so100_common.ros_node import spinning

        self.timeout_s = float(timeout_s)
        self.check = check
        self._clients: dict[str, Any] = {}
        self._diagnostics: dict[str, dict[str, str]] = {}  # by the "node" value of a status
        self._lock = threading.Lock()
        self.context = rclpy.Context()
        self.node = None
        self._spinning = contextlib.ExitStack()  # the executor thread, shut down by close()
        rclpy.init(args=[], context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        try:
            self.node = rclpy.create_node(name, namespace=full_name(namespace), context=self.context,
                                          start_parameter_services=False,
                                          parameter_overrides=[Parameter("use_sim_time", value=use_sim_time)])
            self._spinning.enter_context(spinning(self.node))
        except BaseException:  # Ctrl-C while starting: a half-built client must not hang the exit
            self.close()
            raise

    def __enter__(self) -> RosClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        import rclpy

        self._spinning.close()
        if self.node is not None:
            self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Whether `predicate` came true within `timeout_s` while the executor thread handled
        callbacks. Short sleeps keep Ctrl-C responsive."""
        deadline = time.monotonic() + timeout_s
        while not predicate():
            self.check()
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_S)
        return True

    def now(self) -> float:
        """The node's clock in seconds (sim time with use_sim_time)."""
        return self.node.get_clock().now().nanoseconds * 1e-9

    def call(self, srv_type, service: str, request, timeout_s: float | None = None,
             answer_timeout_s: float | None = None):
        """The response of `service`; ServiceNotFound when it does not appear within `timeout_s`
        (default: the client's), NodeUnavailable when it does not answer within
        `answer_timeout_s` (default: `timeout_s`)."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        answer_timeout = timeout if answer_timeout_s is None else answer_timeout_s
        client = self._clients.get(service)
        if client is None:
            client = self._clients[service] = self.node.create_client(srv_type, service)
        if not self.wait_until(client.service_is_ready, timeout):
            raise ServiceNotFound(f"service {service} is not available after {timeout:g} s")
        future = client.call_async(request)
        if not self.wait_until(future.done, answer_timeout):
            raise NodeUnavailable(f"service {service} did not answer in {answer_timeout:g} s")
        return future.result()

    def publish_when_matched(self, msg, topic: str, qos, timeout_s: float, ack_timeout_s: float) -> Delivery:
        """Publish `msg` once on `topic` after every subscriber the graph shows has matched (at
        least one; up to `timeout_s`), then wait up to `ack_timeout_s` until they acknowledged it
        (reliable `qos`), so it is not lost to discovery (`ros2 topic pub --once -w`). Nothing is
        published when no subscriber matched."""
        from rclpy.duration import Duration

        publisher = self.node.create_publisher(type(msg), topic, qos)
        resolved = publisher.topic_name

        def all_matched() -> bool:
            matched = publisher.get_subscription_count()
            return matched >= 1 and matched >= self.node.count_subscribers(resolved)

        try:
            self.wait_until(all_matched, timeout_s)
            sent = Delivery(resolved, publisher.get_subscription_count(), self.node.count_subscribers(resolved),
                            acked=False)
            if sent.matched:
                publisher.publish(msg)
                sent.acked = publisher.wait_for_all_acked(Duration(seconds=ack_timeout_s))
            return sent
        finally:
            self.node.destroy_publisher(publisher)

    def set_parameters(self, node: str, values: Mapping[str, Any]) -> None:
        """Set parameters of a running node (as `ros2 param set`); RuntimeError with the node's
        reason when it refuses one."""
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        request = SetParameters.Request(parameters=[Parameter(k, value=v).to_parameter_msg()
                                                    for k, v in values.items()])
        reply = self.call(SetParameters, f"{full_name(node)}/set_parameters", request)
        for name, result in zip(values, reply.results):
            if not result.successful:
                raise RuntimeError(f"{full_name(node)} refused parameter {name}: {result.reason}")

    def watch_diagnostics(self) -> None:
        """Keep the latest /diagnostics values of every status that names its node."""
        from diagnostic_msgs.msg import DiagnosticArray

        def on_diagnostics(msg: DiagnosticArray) -> None:
            for status in msg.status:
                values = {kv.key: kv.value for kv in status.values}
                if "node" in values:
                    with self._lock:
                        self._diagnostics[values["node"]] = values

        self.node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)

    def diagnostics_of(self, node: str, timeout_s: float | None = None) -> dict[str, str]:
        """The latest /diagnostics values of `node` (after watch_diagnostics), waiting for the
        first ones; NodeUnavailable when none came in time."""
        def latest() -> dict[str, str] | None:
            with self._lock:
                values = self._diagnostics.get(full_name(node))
            return None if values is None else dict(values)

        if not self.wait_until(lambda: latest() is not None, self.timeout_s if timeout_s is None else timeout_s):
            raise NodeUnavailable(f"no /diagnostics from {full_name(node)}")
        return latest()
