"""rosbag2 bags of the recorder's inputs made in the MuJoCo sim, without ROS: the scripted expert
drives `ArmSim` (as so100_record_direct does), `CameraRenderer` renders the cameras, and rosbags
serializes the messages the sim node, the expert and the recorder's services would publish.

Bag time (receive time) runs on its own clock, ahead of the sim clock in the header stamps, as a
bag recorded in wall time while the sim runs on /clock. Between episodes the recording pauses
(`gap_s` of bag time without a message) while the sim is reset.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

NS = 1_000_000_000
BAG_EPOCH_NS = 1_767_225_600 * NS  # bag time of sim time 0
TASK = "pick the cube and place it in the target area"
PLAN_DELAY_NS = 20_000_000  # bag time from an episode's first message to the expert's plan


class Message(NamedTuple):
    topic: str
    msgtype: str
    t: int  # bag time, ns
    msg: object


@dataclass
class SimBagSpec:
    episodes: int = 2
    episode_s: float = 1.5  # of the expert's plan, from its start
    cameras: tuple[str, ...] = ("front",)
    width: int = 64
    height: int = 48
    camera_hz: float = 30.0
    joint_state_hz: float = 50.0
    gap_s: float = 2.0  # bag time without messages between episodes
    services: bool = False  # the recorder's start/stop calls around each episode (introspection events)
    prefix: str = ""
    compressed: bool = False  # CompressedImage (jpeg) on <camera topic>/compressed
    restart_stamps: bool = False  # header stamps start again at 0 each episode (a restarted sim)
    seed: int = 3
    latency_ns: int = 2_000_000  # receive time after the header stamp
    extra: list[Message] = field(default_factory=list)  # more messages to write


@dataclass
class SimRecording:
    messages: list[Message]  # sorted by bag time
    episodes: list[tuple[int, int]]  # (first, last) bag time of each episode's messages
    plans: list[list]  # the expert's TrajectoryPoints of each episode


class Stamper:
    """rosbags message objects for the topics of the sim, expert and recorder."""

    def __init__(self):
        from so100_bringup.recorder.bag_io import typestore

        self.store = typestore()
        t = self.store.types
        self.types = t
        self.empty = np.zeros(0, np.float64)

    def header(self, stamp_ns: int, frame_id: str = ""):
        t = self.types
        return t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=stamp_ns // NS, nanosec=stamp_ns % NS),
                                        frame_id=frame_id)

    def joint_state(self, stamp_ns: int, names, positions):
        return self.types["sensor_msgs/msg/JointState"](header=self.header(stamp_ns), name=list(names),
                                                        position=np.asarray(positions, np.float64),
                                                        velocity=self.empty, effort=self.empty)

    def image(self, stamp_ns: int, camera: str, rgb: np.ndarray):
        from so100_common.images import rgb_to_image_fields

        fields = rgb_to_image_fields(rgb)
        fields["data"] = np.frombuffer(fields["data"], np.uint8)
        return self.types["sensor_msgs/msg/Image"](header=self.header(stamp_ns, camera), **fields)

    def compressed(self, stamp_ns: int, camera: str, rgb: np.ndarray):
        from so100_common.images import rgb_to_compressed_bytes

        return self.types["sensor_msgs/msg/CompressedImage"](
            header=self.header(stamp_ns, camera), format="jpeg",
            data=np.frombuffer(rgb_to_compressed_bytes(rgb, "jpeg", 95), np.uint8))

    def trajectory(self, names, points):
        t = self.types
        msg_points = [t["trajectory_msgs/msg/JointTrajectoryPoint"](
            positions=np.asarray(p[0], np.float64), velocities=self.empty, accelerations=self.empty,
            effort=self.empty, time_from_start=t["builtin_interfaces/msg/Duration"](
                sec=int(p[1] * NS) // NS, nanosec=int(p[1] * NS) % NS)) for p in points]
        return t["trajectory_msgs/msg/JointTrajectory"](header=self.header(0), joint_names=list(names), points=msg_points)

    def string(self, text: str):
        return self.types["std_msgs/msg/String"](data=text)

    def service_event(self, sequence: int, success: bool, stamp_ns: int, message: str = ""):
        from so100_bringup.recorder.bag_io import TRIGGER_EVENT_ALIAS

        t = self.types
        info = t["service_msgs/msg/ServiceEventInfo"](event_type=2, stamp=self.header(stamp_ns).stamp,
                                                     client_gid=np.arange(16, dtype=np.uint8),
                                                     sequence_number=sequence)
        response = t["std_srvs/msg/Trigger_Response"](success=success, message=message)
        return t[TRIGGER_EVENT_ALIAS](info=info, request=[], response=[response])

    def request_event(self, sequence: int, stamp_ns: int):
        from so100_bringup.recorder.bag_io import TRIGGER_EVENT_ALIAS

        t = self.types
        info = t["service_msgs/msg/ServiceEventInfo"](event_type=1, stamp=self.header(stamp_ns).stamp,
                                                     client_gid=np.arange(16, dtype=np.uint8),
                                                     sequence_number=sequence)
        return t[TRIGGER_EVENT_ALIAS](info=info, request=[t["std_srvs/msg/Trigger_Request"](
            structure_needs_at_least_one_member=0)], response=[])


JOINT_STATE = "sensor_msgs/msg/JointState"
TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
TRIGGER = "std_srvs/srv/Trigger_Event"


def service_message(stamper: Stamper, name: str, sequence: int, t: int, success: bool = True) -> list[Message]:
    """The recorder's request and response events of one ~/<name> call at bag time `t`."""
    topic = f"/recorder/{name}/_service_event"
    return [Message(topic, TRIGGER, t, stamper.request_event(sequence, t)),
            Message(topic, TRIGGER, t + 1000, stamper.service_event(sequence, success, t))]


def simulate(spec: SimBagSpec) -> SimRecording:
    """The messages of `spec.episodes` expert demonstrations in the sim."""
    from so100_bringup.control.follower import TrajectoryFollower
    from so100_bringup.sim.gl import ensure_gl_backend

    ensure_gl_backend()
    from so100_bringup.sim.physics import ArmSim
    from so100_bringup.sim.render import CameraRenderer
    from so100_bringup.sim.scene import SceneConfig, build_scene
    from so100_bringup.sim.schedule import Periodic
    from so100_bringup.teleop.expert import PickPlaceExpert
    from so100_description.joints import ARM_JOINTS, JOINT_NAMES

    stamper = Stamper()
    cfg = SceneConfig(image_width=spec.width, image_height=spec.height)
    model, names = build_scene(cfg)
    sim = ArmSim(model, names, cfg, task="place", seed=spec.seed)
    renderer = CameraRenderer(model, spec.cameras, spec.width, spec.height)
    expert = PickPlaceExpert(cube_size_m=cfg.cube_size_m)
    joints = list(sim.joint_names)
    prefixed = [spec.prefix + j for j in JOINT_NAMES]
    messages: list[Message] = []
    spans: list[tuple[int, int]] = []
    plans: list[list] = []
    offset = BAG_EPOCH_NS  # bag time - sim time
    sequence = 0
    try:
        for episode in range(spec.episodes):
            sim.reset()
            if spec.restart_stamps:  # the sim's clock starts again; bag time runs on
                offset += round(sim.time * NS)
                sim.data.time = 0.0
            points = expert.plan(sim.joint_positions(), sim.cube_position(), sim.target_position()[:2])
            follower = TrajectoryFollower(joints, sim.targets(), sim.lower, sim.upper)
            follower.set_trajectory(joints, points, sim.time, sim.time)  # the sim's controller
            start_sim = sim.time
            first = round(start_sim * NS) + offset
            messages.append(Message("/vla/instruction", "std_msgs/msg/String", first, stamper.string(TASK)))
            if spec.services:
                sequence += 1
                messages += service_message(stamper, "start_episode", sequence, first + 10_000_000)
            # the expert publishes its plan (arm and gripper, unstamped: "now") as the episode starts
            plan_t = first + PLAN_DELAY_NS
            for topic, cols in (("/arm_controller/joint_trajectory", range(len(ARM_JOINTS))),
                                ("/gripper_controller/joint_trajectory", [len(ARM_JOINTS)])):
                traj = stamper.trajectory([prefixed[c] for c in cols],
                                          [([p.positions[c] for c in cols], p.time_from_start) for p in points])
                messages.append(Message(topic, TRAJECTORY, plan_t, traj))
            joints_due, camera_due = Periodic(spec.joint_state_hz), Periodic(spec.camera_hz)
            while sim.time - start_sim < spec.episode_s:
                stamp = round(sim.time * NS)
                if joints_due.due(sim.time):
                    messages.append(Message("/joint_states", JOINT_STATE, stamp + offset + spec.latency_ns,
                                            stamper.joint_state(stamp, prefixed, sim.joint_positions())))
                if camera_due.due(sim.time):
                    for cam in spec.cameras:
                        rgb = renderer.render(sim.data, cam)
                        if spec.compressed:
                            messages.append(Message(f"/camera/{cam}/image_raw/compressed",
                                                    "sensor_msgs/msg/CompressedImage",
                                                    stamp + offset + 2 * spec.latency_ns,
                                                    stamper.compressed(stamp, cam, rgb)))
                        else:
                            messages.append(Message(f"/camera/{cam}/image_raw", "sensor_msgs/msg/Image",
                                                    stamp + offset + 2 * spec.latency_ns,
                                                    stamper.image(stamp, cam, rgb)))
                sim.set_targets(follower.sample(sim.time)[0])
                sim.step()
            last = round(sim.time * NS) + offset
            if spec.services:
                sequence += 1
                messages += service_message(stamper, "stop_episode", sequence, last)
            spans.append((first, last))
            plans.append(points)
            sim.data.time += spec.gap_s  # the recording pauses; the sim's clock runs on
    finally:
        renderer.close()
    messages += spec.extra
    messages.sort(key=lambda m: m.t)
    return SimRecording(messages, spans, plans)


def write_bag(messages: list[Message], path: Path, storage: str = "mcap") -> Path:
    """A rosbag2 folder at `path` holding `messages`."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from so100_bringup.recorder.bag_io import TRIGGER_EVENT, TRIGGER_EVENT_ALIAS, cdr_type

    stamper = Stamper()
    store = stamper.store
    plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conns = {}
        for m in messages:
            if m.topic not in conns:
                if m.msgtype == TRIGGER_EVENT:
                    conns[m.topic] = writer.add_connection(
                        m.topic, TRIGGER_EVENT, msgdef=store.generate_msgdef(TRIGGER_EVENT_ALIAS)[0],
                        rihs01=store.hash_rihs01(TRIGGER_EVENT_ALIAS))
                else:
                    conns[m.topic] = writer.add_connection(m.topic, m.msgtype, typestore=store)
            writer.write(conns[m.topic], m.t, store.serialize_cdr(m.msg, cdr_type(m.msgtype)))
    return path


def write_killed_mcap(messages: list[Message], path: Path, flush_after: list[int], cut_bytes: int) -> Path:
    """An MCAP bag whose recorder was killed: chunks flushed after the messages numbered in
    `flush_after` (as rosbag2's writer flushes its cache), then no summary, no footer and no
    metadata.yaml, and the last `cut_bytes` of the file lost mid-record."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    stamper = Stamper()
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    conns = {}
    for n, m in enumerate(messages):
        if m.topic not in conns:
            conns[m.topic] = writer.add_connection(m.topic, m.msgtype, typestore=stamper.store)
        writer.write(conns[m.topic], m.t, stamper.store.serialize_cdr(m.msg, m.msgtype))
        if n in flush_after:
            writer.storage.close_chunk()
    writer.abort()
    mcap = next(path.glob("*.mcap"))
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) - cut_bytes])
    return path
