"""so100_ctl: switch the suite's nodes from a shell with only the pip ROS wheels (no `ros2` CLI).

    so100_ctl enable | disable | estop [--node NAME]   policy node (or --node so100_driver)
    so100_ctl torque on|off [--node NAME]               driver
    so100_ctl record start|stop|discard [--node NAME]   recorder episodes
    so100_ctl instruction "pick up the cube"            std_msgs/String on vla/instruction
    so100_ctl nodes [--window S]                        running nodes, their topics and rates

Names are relative to `--namespace` unless they start with "/". Exit status: 0 done, 1 the
service answered success=false, 2 nothing answered in time (the message says what to start),
130 Ctrl-C.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from rclpy.node import Node, NodeNameNonExistentError
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger

from so100_bringup.ros_client import NodeUnavailable, RosClient, ServiceNotFound, full_name
from so100_common.ros_node import COMMAND_QOS

EXIT_OK, EXIT_REFUSED, EXIT_NO_ANSWER, EXIT_INTERRUPTED = 0, 1, 2, 130

POLICY, DRIVER, RECORDER, SIM = "vla_policy_node", "so100_driver", "recorder", "mujoco_sim"
# What to start when a node's service is missing (keyed by the node's base name).
HOW_TO_START = {
    POLICY: "the policy node: vla_policy_node --ros-args --params-file config/policy.yaml "
            "-p policy_path:=<checkpoint>",
    DRIVER: "the driver: so100_driver --ros-args --params-file config/driver.yaml -p port:=<port> "
            "-p robot_id:=<arm>",
    RECORDER: "the recorder: so100_recorder --ros-args --params-file config/recorder.yaml -p root:=<dataset dir>",
    SIM: "the simulation: so100_mujoco_sim --ros-args --params-file config/sim.yaml",
}
INSTRUCTION_TOPIC = "vla/instruction"
# Every node has these; `nodes` leaves them out.
HIDDEN_TOPICS = ("/rosout", "/parameter_events")
HIDDEN_SERVICES = ("describe_parameters", "get_parameter_types", "get_parameters", "get_type_description",
                   "list_parameters", "set_parameters", "set_parameters_atomically")
GRAPH_SETTLE_S = 0.5  # the node list must stay unchanged this long before `nodes` measures


class NoAnswer(Exception):
    """Nothing answered within the timeout; the text says what to check or start (exit 2)."""


# -- names ------------------------------------------------------------------------------------
def split_node_name(name: str) -> tuple[str, str]:
    """"/left/recorder" -> ("/left", "recorder")."""
    namespace, _, base = name.rpartition("/")
    return namespace or "/", base


def in_namespace(node_namespace: str, namespace: str) -> bool:
    root = "/" + namespace.strip("/")
    return root == "/" or node_namespace == root or node_namespace.startswith(root + "/")


def interface_type(type_name: str) -> Any:
    """The Python class of "pkg/msg/Name" (what rosidl_runtime_py's get_message does, which the
    pip wheels lack). ImportError or AttributeError when that package is not installed here."""
    package, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


def rate_hz(stamps_ns: Sequence[int]) -> float | None:
    """Mean rate of messages received at `stamps_ns` (sorted); None below two messages."""
    if len(stamps_ns) < 2 or stamps_ns[-1] <= stamps_ns[0]:
        return None
    return (len(stamps_ns) - 1) / ((stamps_ns[-1] - stamps_ns[0]) * 1e-9)


# -- the ROS side (through a RosClient) ------------------------------------------------------
def missing_service_text(node: Node, name: str, srv_type: Any, timeout: float) -> str:
    """Why `name` did not answer, from the graph: another type there, the same service in
    another namespace, or what to start."""
    type_name = _type_name(srv_type)
    text = f"no service {name} ({type_name}) within {timeout:g} s"
    services = offered_services(node)
    if name in services:
        return f"{text}: {name} is a {', '.join(services[name])}; is --node right?"
    node_base, service = name.split("/")[-2:]
    elsewhere = sorted(s for s in services if s.endswith(f"/{node_base}/{service}") and s != name)
    if elsewhere:
        namespaces = [split_node_name(s.rsplit("/", 1)[0])[0] for s in elsewhere]
        return (f"{text}; it runs in another namespace: {', '.join(elsewhere)} (give --namespace "
                f"{' or '.join(namespaces)})")
    node_namespace = split_node_name(name.rsplit("/", 1)[0])[0]
    start = HOW_TO_START.get(node_base, f"the node {name.rsplit('/', 1)[0]}")
    if node_base in HOW_TO_START and node_namespace != "/":
        start += f" -r __ns:={node_namespace}"
    return (f"{text}: start {start} (`so100_ctl nodes` lists what runs; every process needs the same "
            "ROS_DOMAIN_ID)")


def offered_services(node: Node) -> dict[str, list[str]]:
    """{service: types} of the services other nodes offer (the graph's own list also names the
    services this tool's clients wait for)."""
    own = node.get_fully_qualified_name()
    offered: dict[str, list[str]] = {}
    for base, ns in node.get_node_names_and_namespaces():
        if full_name(base, ns) == own:
            continue
        try:
            offered.update(node.get_service_names_and_types_by_node(base, ns))
        except NodeNameNonExistentError:  # it left between the graph queries
            continue
    return offered


def _type_name(interface: Any) -> str:
    module = interface.__module__.split(".")  # std_srvs.srv._set_bool
    return f"{module[0]}/{module[1]}/{interface.__name__}"


def publish_instruction(client: RosClient, topic: str, text: str, timeout: float, answer_timeout: float) -> str:
    """Publish `text` once on `topic` when its subscribers matched and wait for their
    acknowledgement (RosClient.publish_when_matched). Returns what happened."""
    sent = client.publish_when_matched(String(data=text), topic, COMMAND_QOS, timeout, answer_timeout)
    if sent.matched == 0:
        raise NoAnswer(f"nobody subscribes to {sent.topic} within {timeout:g} s: start {HOW_TO_START[POLICY]} "
                       "(or the recorder); check --namespace")
    if not sent.acked:
        raise NoAnswer(f"published {text!r} on {sent.topic}, but its subscribers did not acknowledge it within "
                       f"{answer_timeout:g} s")
    note = "" if sent.matched >= sent.known else f" ({sent.known - sent.matched} more did not match in time)"
    return f"{sent.topic}: {text!r} delivered to {sent.matched} subscriber{'s' * (sent.matched != 1)}{note}"


@dataclass
class NodeInfo:
    name: str  # full name, "/left/recorder"
    publishes: list[tuple[str, str]] = field(default_factory=list)  # (topic, type)
    services: list[tuple[str, str]] = field(default_factory=list)  # (service, type)


@dataclass
class TopicRate:
    type_name: str
    publishers: int
    stamps_ns: list[int] = field(default_factory=list)
    error: str = ""  # why it is not measured

    def text(self, window: float) -> str:
        if self.error:
            return self.error
        hz = rate_hz(self.stamps_ns)
        if hz is not None:
            text = f"{hz:.3g} Hz"
        else:
            text = f"{len(self.stamps_ns)} msg in {window:g} s"
        return text + (f" (all {self.publishers} publishers)" if self.publishers > 1 else "")


def graph_nodes(node: Node, namespace: str) -> list[NodeInfo]:
    own = node.get_fully_qualified_name()
    found = []
    for base, ns in node.get_node_names_and_namespaces():
        full = full_name(base, ns)
        if full == own or not in_namespace(ns, namespace):
            continue
        info = NodeInfo(full)
        try:
            publishers = node.get_publisher_names_and_types_by_node(base, ns)
            services = node.get_service_names_and_types_by_node(base, ns)
        except NodeNameNonExistentError:  # it left between the graph queries
            continue
        info.publishes = sorted((t, types[0]) for t, types in publishers if t not in HIDDEN_TOPICS)
        info.services = sorted((s, types[0]) for s, types in services if s.rsplit("/", 1)[-1] not in HIDDEN_SERVICES)
        found.append(info)
    return sorted(found, key=lambda n: n.name)


def wait_for_graph(client: RosClient, namespace: str, timeout: float) -> list[NodeInfo]:
    """The nodes in `namespace` once discovery has settled: at least one of them seen and their
    list unchanged for GRAPH_SETTLE_S, or `timeout`. Nodes elsewhere on the domain (another lab's,
    another test's) neither count nor unsettle it: discovery reaches them and ours in no fixed order."""
    own = client.node.get_fully_qualified_name()
    seen: list[str] = []
    since = time.monotonic()

    def settled() -> bool:
        nonlocal seen, since
        names = sorted(full for full, ns in ((full_name(n, ns), ns) for n, ns in
                                              client.node.get_node_names_and_namespaces())
                       if full != own and in_namespace(ns, namespace))
        if names != seen:
            seen, since = names, time.monotonic()
        return bool(seen) and time.monotonic() - since >= GRAPH_SETTLE_S

    client.wait_until(settled, timeout)
    return graph_nodes(client.node, namespace)


def measure_rates(client: RosClient, nodes: Sequence[NodeInfo], window: float) -> dict[str, TopicRate]:
    """Subscribe (raw: no deserialisation) to every topic the nodes publish, count for `window` s."""
    node = client.node
    rates: dict[str, TopicRate] = {}
    for info in nodes:
        for topic, type_name in info.publishes:
            if topic in rates:
                continue
            publishers = node.get_publishers_info_by_topic(topic)
            rate = rates[topic] = TopicRate(type_name, len(publishers))
            try:
                msg_type = interface_type(type_name)
            except (ImportError, AttributeError, ValueError):
                rate.error = f"not measured: {type_name} is not installed here"
                continue
            node.create_subscription(msg_type, topic, _stamp_recorder(rate.stamps_ns),
                                     rate_qos([p.qos_profile.reliability for p in publishers]), raw=True)
    time.sleep(window)  # the client's executor thread receives meanwhile
    for rate in rates.values():
        rate.stamps_ns = sorted(rate.stamps_ns)  # a copy: messages still arrive into the original
    return rates


def rate_qos(publisher_reliabilities: Sequence[ReliabilityPolicy]) -> QoSProfile:
    """Reliable when every publisher is (as `ros2 topic hz` chooses): a best-effort reader loses
    large messages such as camera images. Best effort otherwise, which matches every publisher."""
    reliable = bool(publisher_reliabilities) and all(
        r == ReliabilityPolicy.RELIABLE for r in publisher_reliabilities)
    return QoSProfile(depth=20, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT)


def _stamp_recorder(stamps: list[int]) -> Callable[[bytes, dict], None]:
    """A (message, info) callback (two parameters: rclpy then passes the info) that keeps the
    middleware's reception time of each message."""
    def on_message(_raw: bytes, info: dict) -> None:
        stamps.append(info.get("received_timestamp") or time.time_ns())
    return on_message


def format_nodes(nodes: Sequence[NodeInfo], rates: dict[str, TopicRate], window: float) -> str:
    lines = []
    for info in nodes:
        lines.append(info.name)
        for topic, type_name in info.publishes:
            rate = rates.get(topic)
            lines.append(f"  pub  {topic} [{type_name}] {rate.text(window) if rate else ''}".rstrip())
        for service, type_name in info.services:
            lines.append(f"  srv  {service} [{type_name}]")
    return "\n".join(lines)


# -- command line -----------------------------------------------------------------------------
def _add_common(parser: argparse.ArgumentParser, subcommand: bool) -> None:
    """The shared options, accepted before and after the subcommand; on a subcommand they default
    to SUPPRESS so they do not overwrite a value given before it."""
    def default(value):
        return argparse.SUPPRESS if subcommand else value

    parser.add_argument("-n", "--namespace", default=default(""),
                        help="namespace of the nodes (default: the root); relative names go under it")
    parser.add_argument("--timeout", type=float, default=default(5.0),
                        help="seconds to wait for the service, subscriber or nodes to appear (default 5)")
    parser.add_argument("--answer-timeout", type=float, default=default(60.0),
                        help="seconds to wait for an answer once sent (default 60: saving an episode "
                             "encodes its video)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="so100_ctl", description=__doc__.split("\n\n")[0],
        epilog="exit status: 0 done, 1 the service refused (its message is printed), 2 nothing answered "
               "in time, 130 Ctrl-C", formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_common(parser, subcommand=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    def command(name: str, help_text: str, node: str | None = None) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _add_common(p, subcommand=True)
        if node is not None:
            p.add_argument("--node", default=node,
                           help=f"node offering the service (default {node}; relative to --namespace)")
        return p

    command("enable", "run the policy (~/enable true); with --node so100_driver: torque on and follow "
            "commands, clearing an e-stop", POLICY)
    command("disable", "stop and hold (~/enable false)", POLICY)
    command("estop", "emergency stop: hold, latched until the next enable (~/estop)", POLICY)
    command("torque", "driver torque on (goal = measured pose first) or off (limp) (~/torque)",
            DRIVER).add_argument("state", choices=("on", "off"))
    command("record", "recorder episode: start, pause (stop taking frames, keep it open), stop (save) or "
            "discard (~/start_episode, ~/pause_episode, ~/stop_episode, ~/discard_episode)",
            RECORDER).add_argument("action", choices=("start", "pause", "stop", "discard"))
    command("reset", "reset the simulated scene: new cube and target layout (~/reset)", SIM)
    p = command("instruction", "publish a task instruction (std_msgs/String) once its subscribers matched")
    p.add_argument("text")
    p.add_argument("--topic", default=INSTRUCTION_TOPIC, help=f"default {INSTRUCTION_TOPIC}")
    p = command("nodes", "list running nodes with the rate of every topic they publish and their services")
    p.add_argument("--window", type=float, default=2.0, help="seconds to measure the rates over (default 2)")
    return parser


def service_request(args: argparse.Namespace) -> tuple[str, Any, Any]:
    """(service name relative to the node, type, request) of a service subcommand."""
    if args.command in ("enable", "disable"):
        return "enable", SetBool, SetBool.Request(data=args.command == "enable")
    if args.command in ("estop", "reset"):
        return args.command, Trigger, Trigger.Request()
    if args.command == "torque":
        return "torque", SetBool, SetBool.Request(data=args.state == "on")
    if args.command == "record":
        return f"{args.action}_episode", Trigger, Trigger.Request()
    raise ValueError(f"{args.command} calls no service")


def run(args: argparse.Namespace, client: RosClient) -> int:
    if args.command == "instruction":
        print(publish_instruction(client, args.topic, args.text, args.timeout, args.answer_timeout))
        return EXIT_OK
    if args.command == "nodes":
        nodes = wait_for_graph(client, args.namespace, args.timeout)
        if not nodes:
            where = f" in namespace /{args.namespace.strip('/')}" if args.namespace.strip("/") else ""
            own = client.node.get_fully_qualified_name()
            elsewhere = sorted(full for full in (full_name(n, ns) for n, ns in
                                                 client.node.get_node_names_and_namespaces()) if full != own)
            seen = (f"; nodes elsewhere on this domain: {', '.join(elsewhere[:8])}"
                    + (f" and {len(elsewhere) - 8} more" if len(elsewhere) > 8 else "")) if elsewhere else ""
            raise NoAnswer(f"no ROS nodes found{where} within {args.timeout:g} s: start them, and check that "
                           "ROS_DOMAIN_ID (and ROS_LOCALHOST_ONLY / ROS_AUTOMATIC_DISCOVERY_RANGE) match "
                           f"theirs{seen}")
        print(format_nodes(nodes, measure_rates(client, nodes, args.window), args.window))
        return EXIT_OK
    service, srv_type, request = service_request(args)
    name = full_name(f"{args.node.rstrip('/')}/{service}", args.namespace)
    try:
        response = client.call(srv_type, name, request, args.timeout, args.answer_timeout)
    except ServiceNotFound:
        raise NoAnswer(missing_service_text(client.node, name, srv_type, args.timeout)) from None
    except NodeUnavailable:
        raise NoAnswer(f"{name} was found but did not answer within {args.answer_timeout:g} s; it may still be "
                       "working (saving an episode encodes its video): see that node's log, or give a longer "
                       "--answer-timeout") from None
    print(f"{name}: {response.message or ('done' if response.success else 'refused')}",
          file=sys.stdout if response.success else sys.stderr)
    return EXIT_OK if response.success else EXIT_REFUSED


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    client = None
    try:
        client = RosClient(f"so100_ctl_{os.getpid()}", timeout_s=args.timeout, namespace=args.namespace)
        return run(args, client)
    except NoAnswer as exc:
        print(f"so100_ctl: {exc}", file=sys.stderr)
        return EXIT_NO_ANSWER
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        if client is not None:
            client.close()


if __name__ == "__main__":
    sys.exit(main())
