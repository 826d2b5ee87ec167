"""A LeRobot dataset -> an MCAP rosbag2 of standard messages, to scrub through in Foxglove or
replay with `ros2 bag play` (no rclpy: rosbags writes the bag).

What each frame becomes, stamped (header and bag time) on the dataset's timestamps:
* ``observation.images.<camera>`` -> sensor_msgs/Image rgb8 on camera/<camera>/image_raw;
* ``observation.state`` -> sensor_msgs/JointState on joint_states, radians;
* ``action`` -> trajectory_msgs/JointTrajectory on the arm and gripper controller topics
  (`action_as` trajectory: one point each, received half a frame early and reached at the
  frame, so a controller, or the recorder's follower, commands the action at the frame), or
  sensor_msgs/JointState on leader/joint_states (`action_as` joint_state), radians;
* the episode's task -> std_msgs/String on vla/instruction, before the episode.

Episodes follow each other with `episode_gap_s` of silence (so100_bag2lerobot splits them
there again). Each one starts with its first joint state one frame early: a follower seeds
itself from the arm's position before the first trajectory arrives.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from so100_bringup.recorder.bag_io import BagError, typestore
from so100_bringup.recorder.bag_to_dataset import resolve_name
from so100_bringup.recorder.core import ACTION_KEY, IMAGE_PREFIX, STATE_KEY, VIDEO_BACKEND, motor_feature_names
from so100_common.images import rgb_to_image_fields
from so100_description.calibration import ArmUnits, JointUnitConverter, load_calibration, nominal_calibration
from so100_description.joints import ARM_JOINTS, GRIPPER_JOINTS, JOINT_NAMES

ACTION_AS = ("trajectory", "joint_state")
NS = 1_000_000_000


@dataclass
class ExportOptions:
    output: Path  # the bag folder to create
    repo_id: str = "local/so101_recording"
    episodes: Sequence[int] | None = None  # None: all
    action_as: str = "trajectory"
    camera_topic: str = "camera/{name}/image_raw"
    joint_states_topic: str = "joint_states"
    leader_topic: str = "leader/joint_states"
    arm_trajectory_topic: str = "arm_controller/joint_trajectory"
    gripper_trajectory_topic: str = "gripper_controller/joint_trajectory"
    instruction_topic: str = "vla/instruction"
    joint_prefix: str = ""
    namespace: str = "/"
    variant: str = "so101"
    calibration_file: str = ""  # the dataset's units: the follower's calibration (nominal: sim)
    arm_units: str = "degrees"
    start_s: float = 1.0  # bag time of the first episode's lead-in (its task comes a frame earlier)
    episode_gap_s: float = 2.0


@dataclass
class ExportReport:
    output: str
    episodes: int = 0
    frames: int = 0
    messages: int = 0
    topics: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        return (f"-> {self.output}: {self.episodes} episodes, {self.frames} frames, {self.messages} messages on "
                + ", ".join(f"{t} ({m.rsplit('/', 1)[-1]})" for t, m in self.topics.items()))


class _Messages:
    """Builds the standard messages from rosbags' Jazzy types."""

    def __init__(self):
        self.store = typestore()
        t = self.store.types
        self.Time, self.Header = t["builtin_interfaces/msg/Time"], t["std_msgs/msg/Header"]
        self.Duration = t["builtin_interfaces/msg/Duration"]
        self.Image, self.JointState = t["sensor_msgs/msg/Image"], t["sensor_msgs/msg/JointState"]
        self.Trajectory = t["trajectory_msgs/msg/JointTrajectory"]
        self.Point = t["trajectory_msgs/msg/JointTrajectoryPoint"]
        self.String = t["std_msgs/msg/String"]
        self.empty = np.zeros(0, dtype=np.float64)

    def header(self, stamp_ns: int, frame_id: str = ""):
        return self.Header(stamp=self.Time(sec=stamp_ns // NS, nanosec=stamp_ns % NS), frame_id=frame_id)

    def joint_state(self, stamp_ns: int, names: list[str], positions: Sequence[float]):
        return self.JointState(header=self.header(stamp_ns), name=names, position=np.asarray(positions, np.float64),
                               velocity=self.empty, effort=self.empty)

    def trajectory(self, names: list[str], positions: Sequence[float], reach_ns: int):
        """Unstamped (stamp 0: start on receipt), one point reached `reach_ns` after receipt."""
        point = self.Point(positions=np.asarray(positions, np.float64), velocities=self.empty,
                           accelerations=self.empty, effort=self.empty,
                           time_from_start=self.Duration(sec=reach_ns // NS, nanosec=reach_ns % NS))
        return self.Trajectory(header=self.header(0), joint_names=names, points=[point])

    def image(self, stamp_ns: int, camera: str, rgb: np.ndarray):
        fields = rgb_to_image_fields(rgb)
        fields["data"] = np.frombuffer(fields["data"], dtype=np.uint8)
        return self.Image(header=self.header(stamp_ns, camera), **fields)

    def serialize(self, msg) -> bytes:
        return self.store.serialize_cdr(msg, msg.__msgtype__)


def _hwc_uint8(image) -> np.ndarray:
    """A dataset image (C x H x W, uint8 or float 0..1) -> H x W x 3 uint8."""
    arr = image.numpy() if hasattr(image, "numpy") else np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(np.round(arr.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr.transpose(1, 2, 0))


def export_dataset(root: str | Path, opts: ExportOptions, log: Callable[[str], None] = print) -> ExportReport:
    """Write the dataset at `root` (its chosen episodes) as an MCAP bag at opts.output."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from rosbags.rosbag2 import StoragePlugin, Writer

    if opts.action_as not in ACTION_AS:
        raise ValueError(f"action_as {opts.action_as!r}: expected one of {ACTION_AS}")
    out = Path(opts.output).expanduser()
    if out.exists():
        raise BagError(f"{out} exists; give a new folder for the bag")
    ds = LeRobotDataset(opts.repo_id, root=Path(root).expanduser(), episodes=list(opts.episodes) if opts.episodes
                        else None, video_backend=VIDEO_BACKEND, return_uint8=True)
    features = ds.meta.features
    for key in (STATE_KEY, ACTION_KEY):
        names = list((features.get(key) or {}).get("names") or [])
        if names != motor_feature_names(JOINT_NAMES):
            raise BagError(f"{root}: {key} names {names}, expected {motor_feature_names(JOINT_NAMES)} (an SO-100/"
                           "SO-101 dataset)")
    cameras = [key[len(IMAGE_PREFIX):] for key in features if key.startswith(IMAGE_PREFIX)]
    cal = load_calibration(opts.calibration_file) if opts.calibration_file else nominal_calibration(opts.variant)
    converter = JointUnitConverter(cal, ArmUnits(opts.arm_units), opts.variant)
    m = _Messages()
    ns = opts.namespace
    joints = [opts.joint_prefix + j for j in JOINT_NAMES]
    arm = [opts.joint_prefix + j for j in ARM_JOINTS]
    grip = [opts.joint_prefix + j for j in GRIPPER_JOINTS]
    topic = {"state": (resolve_name(opts.joint_states_topic, ns), "sensor_msgs/msg/JointState"),
             "task": (resolve_name(opts.instruction_topic, ns), "std_msgs/msg/String")}
    topic.update({f"camera {c}": (resolve_name(opts.camera_topic.format(name=c), ns), "sensor_msgs/msg/Image")
                  for c in cameras})
    if opts.action_as == "trajectory":
        topic["arm"] = (resolve_name(opts.arm_trajectory_topic, ns), "trajectory_msgs/msg/JointTrajectory")
        topic["gripper"] = (resolve_name(opts.gripper_trajectory_topic, ns), "trajectory_msgs/msg/JointTrajectory")
    else:
        topic["action"] = (resolve_name(opts.leader_topic, ns), "sensor_msgs/msg/JointState")
    report = ExportReport(str(out), topics={name: kind for name, kind in topic.values()})
    frame_ns = round(NS / ds.fps)
    if opts.start_s * NS < frame_ns:
        raise ValueError(f"start_s must leave a frame ({1 / ds.fps:.3f} s) for the first task message")
    with Writer(out, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {key: writer.add_connection(name, kind, typestore=m.store) for key, (name, kind) in topic.items()}

        def write(key: str, t: int, msg) -> None:
            writer.write(conns[key], t, m.serialize(msg))
            report.messages += 1

        lead = round(opts.start_s * NS)  # bag time of the current episode's lead-in, one frame before its first
        episode, last_t = None, lead
        for i in range(len(ds)):
            item = ds[i]
            ep = int(item["episode_index"])
            # frame n of an episode lies at lead + (n + 1) / fps in whole ns, where a converter
            # sampling every 1/fps from the lead-in finds it (float32 timestamps would miss by ns)
            n = round(float(item["timestamp"]) * ds.fps)
            state = converter.positions_from_action(item[STATE_KEY].numpy())
            action = converter.positions_from_action(item[ACTION_KEY].numpy())
            if ep != episode:
                if episode is not None:
                    lead = last_t + round(opts.episode_gap_s * NS)
                    log(f"episode {episode} written")
                episode = ep
                report.episodes += 1
                write("task", lead - frame_ns, m.String(data=str(item["task"])))
                write("state", lead, m.joint_state(lead, joints, [state[j] for j in JOINT_NAMES]))
            t = lead + round((n + 1) * NS / ds.fps)
            if opts.action_as == "trajectory":
                half = frame_ns // 2
                write("arm", t - half, m.trajectory(arm, [action[j] for j in ARM_JOINTS], half))
                write("gripper", t - half, m.trajectory(grip, [action[j] for j in GRIPPER_JOINTS], half))
            else:
                write("action", t, m.joint_state(t, joints, [action[j] for j in JOINT_NAMES]))
            write("state", t, m.joint_state(t, joints, [state[j] for j in JOINT_NAMES]))
            for cam in cameras:
                write(f"camera {cam}", t, m.image(t, cam, _hwc_uint8(item[IMAGE_PREFIX + cam])))
            report.frames += 1
            last_t = t
        if episode is not None:
            log(f"episode {episode} written")
    return report
