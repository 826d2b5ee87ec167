"""rosbag2 recordings -> LeRobot dataset episodes, by the recorder's own rules (no rclpy).

A bag of the recorder's inputs (cameras, /joint_states, the trajectory topics or
/leader/joint_states, /vla/instruction) becomes what the recorder node writes while the bag
plays (`ros2 bag play` + so100_recorder), without the timing jitter of playing it:

* Time is the bag's: when rosbag2 received each message (sim time with
  `ros2 bag record --use-sim-time`). Messages are taken in that order, as `ros2 bag play` plays
  them. Frames fall every 1/fps from the start of each episode and take the latest of every
  input received at or before the frame, by the recorder's rule (`core.RecorderInputs`): a
  missing input, or one older than `max_age_s`, skips the frame (counted, never padded).
* Trajectories are timed on the robot's clock, as the controller and the recorder (node clock)
  time them: the header stamps of /joint_states, carried forward by bag time between two
  messages (bag time when the first ten are all unstamped). A stamp that goes back (a restarted
  sim, a clock step) voids the running trajectories; the follower is seeded again from the
  arm's position.
* Episodes come from the recorder's services when the bag has their calls (service
  introspection, recorded with `ros2 bag record --all-services`, ROS 2 Iron or newer), else from
  gaps in /joint_states longer than `gap_s` (a paused or restarted recording), or from a list of
  time ranges. The task of an episode is the latest /vla/instruction before its start, else
  `task`. Bag time that runs backwards (a bag read file by file) ends the episode there.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from so100_bringup.control.follower import TrajectoryRejected, points_from_msg
from so100_bringup.recorder.bag_io import TRIGGER_EVENT, BagError, BagSource, cdr_type, typestore
from so100_bringup.recorder.core import (DEFAULT_ROBOT_TYPE, DatasetSession, FrameBuilder, FrameError, FrameInputs,
                                         RecorderError, RecorderInputs, StillFollowerCheck, camera_shapes_of,
                                         dataset_features, joint_positions)
from so100_common.images import ImageConversionError, check_encoding, compressed_msg_to_rgb, image_msg_to_rgb
from so100_description.calibration import (ArmUnits, CalibrationError, JointUnitConverter, load_calibration,
                                           nominal_calibration)
from so100_description.joints import JOINT_NAMES

SPLIT_MODES = ("auto", "services", "gaps")
EPISODE_SERVICES = ("start_episode", "pause_episode", "stop_episode", "discard_episode")
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
JOINT_STATE = "sensor_msgs/msg/JointState"
TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
STRING = "std_msgs/msg/String"
RESPONSES = (2, 3)  # service_msgs/ServiceEventInfo RESPONSE_SENT (server), RESPONSE_RECEIVED (client)
NS = 1_000_000_000


@dataclass
class BagOptions:
    """What to convert and how. Fields named like the recorder's parameters mean the same and
    default the same (test_bag2lerobot checks them against its PARAMS)."""
    root: Path
    repo_id: str = "local/so101_recording"
    resume: bool = False
    fps: int = 30
    cameras: Sequence[str] | None = None  # None: every topic that matches camera_topic
    camera_topic: str = "camera/{name}/image_raw"
    image_width: int = 0
    image_height: int = 0
    joint_states_topic: str = "joint_states"
    action_source: str = "trajectory"
    leader_topic: str = "leader/joint_states"
    arm_trajectory_topic: str = "arm_controller/joint_trajectory"
    gripper_trajectory_topic: str = "gripper_controller/joint_trajectory"
    instruction_topic: str = "vla/instruction"
    task: str = ""
    joint_prefix: str | None = None  # None: detected from the joint names
    variant: str = "so101"
    calibration_file: str = ""
    arm_units: str = "degrees"
    max_age_s: float = 0.5
    max_episode_s: float = 0.0
    use_videos: bool = True
    video_codec: str = "libsvtav1"
    robot_type: str = DEFAULT_ROBOT_TYPE
    image_writer_threads: int = 4
    still_follower_window_s: float = 2.0
    # bag only
    namespace: str = "/"  # relative topic names resolve in it, as the recorder's do in its namespace
    recorder_node: str = "recorder"  # whose ~/start_episode ... calls split episodes
    split: str = "auto"  # auto: services when recorded, else gaps; overridden by `episodes`
    gap_s: float = 1.0
    episodes: Sequence[tuple[float, float]] | None = None  # [(start, end)] s from the bag's start


def resolve_name(name: str, namespace: str = "/") -> str:
    """A relative topic or node name in `namespace`, as ROS resolves it."""
    if name.startswith("/"):
        return name
    return namespace.rstrip("/") + "/" + name if namespace.strip("/") else "/" + name


def parse_ranges(text: str) -> list[tuple[float, float]]:
    """'0-12.5,14-30' -> [(0.0, 12.5), (14.0, 30.0)]: seconds from the bag's first message."""
    ranges: list[tuple[float, float]] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            start_text, end_text = part.split("-")
            start, end = float(start_text), float(end_text)
        except ValueError:
            raise ValueError(f"episode range {part!r}: expected START-END in seconds, e.g. 0-12.5") from None
        if not (0 <= start < end) or not math.isfinite(end):
            raise ValueError(f"episode range {part!r}: needs 0 <= START < END")
        if ranges and start < ranges[-1][1]:
            raise ValueError(f"episode range {part!r} starts before the previous one ends; list them in order")
        ranges.append((start, end))
    if not ranges:
        raise ValueError(f"no episode range in {text!r}; expected e.g. 0-12.5,14-30")
    return ranges


def detect_prefix(names: Sequence[str], joints: Sequence[str] = JOINT_NAMES) -> str | None:
    """The prefix that turns the most of `names` into SO-100 joint names ('' when they are bare)."""
    votes = Counter(n[: len(n) - len(j)] for n in names for j in joints if n.endswith(j))
    if not votes:
        return None
    best = max(votes.values())
    return "" if votes.get("", 0) == best else votes.most_common(1)[0][0]


@dataclass
class EpisodeReport:
    start_s: float  # bag time from the bag's first message
    end_s: float
    task: str
    frames: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> frames
    index: int | None = None  # dataset episode index once saved
    note: str = ""  # why it was not saved, or a warning

    @property
    def saved(self) -> bool:
        return self.index is not None

    def line(self) -> str:
        span = f"{self.start_s:.2f}-{self.end_s:.2f} s"
        skipped = sum(self.skipped.values())
        why = "; ".join(f"{reason} x{n}" for reason, n in self.skipped.most_common(3))
        text = (f"episode {self.index}: {span}, {self.frames} frames, {skipped} skipped" if self.saved
                else f"not saved: {span}, {self.note}")
        if self.saved and skipped:
            text += f" ({why})"
        if self.saved and self.note:
            text += f"; {self.note}"
        return text + (f"; task {self.task!r}" if self.task else "")


@dataclass
class ConversionReport:
    bag: str
    root: str
    split: str
    cameras: dict[str, str]  # camera -> topic
    prefix: str
    bag_seconds: float = 0.0
    messages: int = 0
    episodes: list[EpisodeReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def saved(self) -> list[EpisodeReport]:
        return [e for e in self.episodes if e.saved]

    def lines(self, episodes: bool = True) -> list[str]:
        out = [f"{self.bag}: {self.bag_seconds:.1f} s, {self.messages} messages read; episodes from {self.split}; "
               f"cameras {self.cameras}; joint prefix {self.prefix!r}"]
        out += [e.line() for e in self.episodes] if episodes else []
        out += [f"warning: {w}" for w in self.warnings]
        frames = sum(e.frames for e in self.saved)
        out.append(f"-> {self.root}: {len(self.saved)} episodes, {frames} frames saved")
        return out


class _BagImage:
    """A camera message, decoded to RGB only when a frame uses it (the recorder's conversion)."""
    __slots__ = ("msg", "compressed", "_rgb")

    def __init__(self, msg, compressed: bool):
        self.msg, self.compressed, self._rgb = msg, compressed, None

    def rgb(self):
        if self._rgb is None:
            self._rgb = compressed_msg_to_rgb(self.msg) if self.compressed else image_msg_to_rgb(self.msg)
        return self._rgb


def _stamp_s(msg) -> float:
    return float(msg.header.stamp.sec) + float(msg.header.stamp.nanosec) * 1e-9


class BagConverter:
    """One bag -> episodes of one dataset. `run()` converts and returns the report; inputs the
    bag lacks raise BagError before anything is written."""

    def __init__(self, source: BagSource, opts: BagOptions, log: Callable[[str], None] = print):
        self.source, self.opts, self.log = source, opts, log
        if opts.fps <= 0:
            raise ValueError(f"fps must be positive, got {opts.fps}")
        if opts.split not in SPLIT_MODES:
            raise ValueError(f"split {opts.split!r}: expected one of {SPLIT_MODES}")
        self.store = typestore()
        self.topics = source.topics
        ns = opts.namespace
        self.state_topic = self._require(resolve_name(opts.joint_states_topic, ns), (JOINT_STATE,), "observation.state")
        self.cameras = self._camera_topics()
        self._camera_of = {topic: cam for cam, topic in self.cameras.items()}
        self.trajectory_topics: list[str] = []
        self.leader_topic = ""
        if opts.action_source == "leader":
            self.leader_topic = self._require(resolve_name(opts.leader_topic, ns), (JOINT_STATE,),
                                              "the action (action_source leader)")
        else:
            wanted = [resolve_name(t, ns) for t in (opts.arm_trajectory_topic, opts.gripper_trajectory_topic) if t]
            self.trajectory_topics = [t for t in wanted if self.topics.get(t) == TRAJECTORY]
            if not self.trajectory_topics:
                raise BagError(f"{source.path}: no JointTrajectory on {' or '.join(wanted)}, where the actions come "
                               f"from (action_source trajectory); record them, or use --action-source leader with "
                               f"{resolve_name(opts.leader_topic, ns)}. {self._topic_list()}")
        self.instruction_topic = resolve_name(opts.instruction_topic, ns) if opts.instruction_topic else ""
        node = resolve_name(opts.recorder_node, ns)
        self.service_topics = {f"{node}/{name}/_service_event": name for name in EPISODE_SERVICES}
        recorded = [t for t in self.service_topics if self.topics.get(t) == TRIGGER_EVENT]
        if opts.episodes:
            self.split = "ranges"
        elif opts.split == "services" or (opts.split == "auto" and recorded):
            if not recorded:
                raise BagError(f"{source.path}: split by services, but the bag has none of "
                               f"{sorted(self.service_topics)}; record with `ros2 bag record --all-services` "
                               "(ROS 2 Iron or newer), or split by gaps or --episodes")
            self.split = "services"
        else:
            self.split = "gaps"
        self.prefix, self.stamped = self._first_joint_states()
        self.converter = self._converter()
        self.inputs = RecorderInputs(list(self.cameras), opts.action_source, opts.max_age_s, self.prefix,
                                     opts.variant)
        self.session: DatasetSession | None = None
        self.builder: FrameBuilder | None = None

    # -- what the bag holds ---------------------------------------------------------------------
    def _topic_list(self) -> str:
        return "The bag has: " + ", ".join(f"{t} ({m})" for t, m in sorted(self.topics.items()))

    def _require(self, topic: str, types: Sequence[str], what: str) -> str:
        found = self.topics.get(topic)
        if found is None:
            raise BagError(f"{self.source.path}: no topic {topic} ({what}); record it, or name the topic this bag "
                           f"has. {self._topic_list()}")
        if found not in types:
            raise BagError(f"{self.source.path}: {topic} is {found}, expected {' or '.join(types)} ({what})")
        return topic

    def _camera_topics(self) -> dict[str, str]:
        """camera -> topic: Image on camera_topic, else CompressedImage there or on <topic>/compressed."""
        opts = self.opts
        pattern = resolve_name(opts.camera_topic, opts.namespace)
        names = list(opts.cameras) if opts.cameras is not None else self._detect_cameras(pattern)
        out: dict[str, str] = {}
        for cam in (c for c in names if c):
            topic = pattern.format(name=cam)
            candidates = [t for t in (topic, topic + "/compressed") if self.topics.get(t) in (IMAGE, COMPRESSED_IMAGE)]
            if not candidates:
                raise BagError(f"{self.source.path}: no Image or CompressedImage on {topic} (camera {cam!r}); "
                               f"record it, or leave the camera out (--cameras). {self._topic_list()}")
            out[cam] = candidates[0]
        return out

    def _detect_cameras(self, pattern: str) -> list[str]:
        head, _, tail = pattern.partition("{name}")
        regex = re.compile(re.escape(head) + r"([^/]+)" + re.escape(tail) + r"(/compressed)?$")
        found = sorted({m.group(1) for t, kind in self.topics.items() if kind in (IMAGE, COMPRESSED_IMAGE)
                        for m in [regex.match(t)] if m})
        if not found:
            raise BagError(f"{self.source.path}: no camera topic matches {pattern} (Image or CompressedImage); "
                           f"give --camera-topic or --cameras. {self._topic_list()}")
        return found

    def _first_joint_states(self) -> tuple[str, bool]:
        """The joint prefix, detected (or checked) on the first joint states, and whether they are
        stamped (a sim starts at time 0: one zero stamp does not make a topic unstamped)."""
        head = [self.store.deserialize_cdr(raw, JOINT_STATE) for _t, raw in self.source.head(self.state_topic, 10)]
        if not head:
            raise BagError(f"{self.source.path}: {self.state_topic} has no message")
        stamped = any(_stamp_s(msg) > 0 for msg in head)
        names = list(head[0].name)
        given = self.opts.joint_prefix
        prefix = detect_prefix(names) if given is None else given
        if prefix is None or not any(n == prefix + j for n in names for j in JOINT_NAMES):
            how = f"with prefix {given!r}" if given is not None else "with or without a common prefix"
            raise BagError(f"{self.source.path}: joint names on {self.state_topic} are {names}; {how} none is an "
                           f"SO-100 joint ({', '.join(JOINT_NAMES)}); give the prefix with --joint-prefix")
        return prefix, stamped

    def _converter(self) -> JointUnitConverter:
        opts = self.opts
        cal = load_calibration(opts.calibration_file) if opts.calibration_file else nominal_calibration(opts.variant)
        return JointUnitConverter(cal, ArmUnits(opts.arm_units), opts.variant)

    def _camera_shapes(self) -> dict[str, tuple[int, int]]:
        """image_width x image_height, else each camera's first frame, as the recorder sizes them."""
        fixed = (int(self.opts.image_height), int(self.opts.image_width))
        shapes = {}
        for cam, topic in self.cameras.items():
            if fixed[0] > 0 and fixed[1] > 0:
                shapes[cam] = fixed
                continue
            msgtype, raw = self.topics[topic], self.source.head(topic, 1)[0][1]
            try:
                shapes[cam] = _BagImage(self.store.deserialize_cdr(raw, msgtype), msgtype == COMPRESSED_IMAGE).rgb().shape[:2]
            except ImageConversionError as exc:
                raise BagError(f"{self.source.path}: first frame on {topic}: {exc}") from None
        return shapes

    def _open_session(self) -> None:
        opts = self.opts
        session = DatasetSession(opts.root, opts.repo_id, opts.fps, None, robot_type=opts.robot_type,
                                 use_videos=opts.use_videos, video_codec=opts.video_codec,
                                 image_writer_threads=opts.image_writer_threads)
        if DatasetSession.exists(session.root):
            if not opts.resume:
                raise BagError(f"{session.root} already holds a LeRobot dataset: add --resume to add episodes to it, "
                               "or give another --root")
        else:
            session.features = dataset_features(self._camera_shapes(), opts.use_videos)
        try:
            session.open()
        except RecorderError as exc:
            raise BagError(str(exc)) from None
        shapes = camera_shapes_of(session.features)
        if set(shapes) != set(self.cameras):
            session.close()
            raise BagError(f"dataset at {session.root} has cameras {sorted(shapes)}, the bag gives "
                           f"{sorted(self.cameras)}; choose them with --cameras")
        self.session = session
        self.builder = FrameBuilder(self.converter, shapes)

    # -- conversion -------------------------------------------------------------------------------
    def run(self) -> ConversionReport:
        opts = self.opts
        self.report = ConversionReport(str(self.source.path), str(opts.root), self._split_text(), dict(self.cameras),
                                       self.prefix, warnings=list(self.source.notes))
        self._open_session()
        window = int(round(opts.still_follower_window_s * opts.fps))
        self.still = StillFollowerCheck(max(2, window)) if window > 0 else None
        self._task = opts.task.strip()
        self._ep: EpisodeReport | None = None
        self._ep_end: int | None = None
        self._end_note = ""
        self._paused = False
        self._t0: int | None = None
        self._last_t: int | None = None
        self._last_state: int | None = None
        self._stamp: tuple[float, int] | None = None  # (last /joint_states stamp, its bag time)
        self._ranges = [(round(a * NS), round(b * NS)) for a, b in opts.episodes or ()]
        self._answered: set[tuple[bytes, int]] = set()
        self._dropped: Counter = Counter()  # (topic, reason) -> messages
        topics = [self.state_topic, *self.cameras.values(), *self.trajectory_topics]
        topics += [t for t in (self.leader_topic, self.instruction_topic) if t]
        topics += list(self.service_topics) if self.split == "services" else []
        try:
            for topic, msgtype, t, raw in self.source.messages(topics):
                t = self._bag_time(t)
                self.report.messages += 1
                self._advance(t)
                if topic == self.state_topic and self.split == "gaps" and self._ep is None and not self._in_segment(t):
                    self._start(t)  # the first joint state after a gap starts an episode
                self._handle(topic, msgtype, t, raw)
            if self._last_t is not None:
                self._advance(self._last_t + 1)  # the frames at or before the last message
            self._end_of_bag()
        finally:
            self.session.close()
        self.report.bag_seconds = 0.0 if self._t0 is None else (self._last_t - self._t0) / NS
        for (topic, reason), n in sorted(self._dropped.items()):
            self.report.warnings.append(f"{n} message(s) on {topic} not used: {reason}")
        return self.report

    def _split_text(self) -> str:
        if self.split == "ranges":
            return "the given time ranges"
        if self.split == "services":
            return f"the recorder's service calls ({resolve_name(self.opts.recorder_node, self.opts.namespace)})"
        return f"gaps in {self.state_topic} longer than {self.opts.gap_s} s"

    def _rel(self, t: int) -> float:
        return (t - self._t0) / NS

    def _bag_time(self, t: int) -> int:
        """The message's bag time; a step back by more than max_age_s is a clock jump."""
        if self._t0 is None:
            self._t0 = self._last_t = t
            return t
        if t < self._last_t - self.opts.max_age_s * NS:
            self.report.warnings.append(
                f"bag time goes back by {(self._last_t - t) / NS:.2f} s at {self._rel(self._last_t):.2f} s (clock "
                "jump, or files out of order): the episode ends there and every input starts again")
            self._advance(self._last_t + 1)
            if self._ep is not None:
                self._finish(save=self.split != "services", note="ended at a bag clock jump")
            self.inputs.reset()
            self._last_state, self._stamp, self._last_t = None, None, t
            return t
        self._last_t = max(self._last_t, t)  # a small reordering between topics: as received
        return self._last_t

    def _robot_clock(self, t: int) -> float:
        if self._stamp is None:
            return t / NS
        stamp, at = self._stamp
        return stamp + (t - at) / NS

    def _in_segment(self, t: int) -> bool:
        """Whether bag time `t` lies within `gap_s` of the last joint state (no gap since)."""
        return self._last_state is not None and t - self._last_state <= self.opts.gap_s * NS

    def _start(self, t: int, end: int | None = None) -> None:
        if self._ep is not None:
            return  # the recorder refuses a start while recording
        limit = t + round(self.opts.max_episode_s * NS) if self.opts.max_episode_s > 0 else None
        self._end_note = "max_episode_s reached" if limit is not None and (end is None or limit < end) else ""
        end = end if self._end_note == "" else limit
        if not self._task:
            where = f"{self.instruction_topic} or " if self.instruction_topic else ""
            self._record(EpisodeReport(self._rel(t), self._rel(end if end is not None else t), "",
                                       note=f"no task: give {where}--task"))
            return
        self.session.start(self._task)
        self._ep = EpisodeReport(self._rel(t), self._rel(t), self._task)
        self._ep_start, self._ep_end, self._k, self._tick = t, end, 0, t
        self._paused = False
        if self.still is not None:
            self.still.reset()

    def _advance(self, t: int) -> None:
        """Take every frame due before bag time `t`; end episodes whose end has passed."""
        if self.split == "gaps" and self._ep is not None and not self._in_segment(t):
            # no joint state for gap_s: the episode ended with the last one
            if self._ep_end is None or self._last_state < self._ep_end:
                self._ep_end, self._end_note = self._last_state, ""
        while True:
            if self._ep is None:
                if self._ranges and self._ranges[0][0] + self._t0 < t:
                    start, end = self._ranges.pop(0)
                    self._start(start + self._t0, end + self._t0)
                    continue
                return
            if self._ep_end is not None and self._tick > self._ep_end:
                self._finish(save=True, note=self._end_note)
                continue
            if self._tick >= t:
                return
            if not self._paused:
                self._frame(self._tick)
            self._k += 1
            self._tick = self._ep_start + round(self._k * NS / self.opts.fps)

    def _frame(self, tick: int) -> None:
        ep = self._ep
        ep.end_s = self._rel(tick)
        taken = self.inputs.take(self._rel(tick), self._robot_clock(tick))
        if not isinstance(taken, FrameInputs):
            ep.skipped[taken] += 1
            return
        try:
            images = {cam: img.rgb() for cam, img in taken.images.items()}
            frame = self.builder.build(taken.state, taken.action, images, ep.task)
        except (FrameError, ImageConversionError) as exc:
            ep.skipped[str(exc)] += 1
            return
        self.session.add(frame)
        ep.frames += 1
        if self.still is not None:
            self.still.add([taken.state[j] for j in JOINT_NAMES], [taken.action[j] for j in JOINT_NAMES])

    def _finish(self, save: bool, note: str = "") -> None:
        ep, self._ep = self._ep, None
        self._paused = False
        if save and self.session.episode_frames > 0:
            saved = self.session.save()
            ep.index = saved.index
            still = self.still.summary(self.opts.fps) if self.still is not None else ""
            ep.note = "; ".join(x for x in (note, f"WARNING: {still}" if still else "") if x)
        else:
            self.session.discard()
            top = ep.skipped.most_common(1)
            ep.note = note or ("no frames" + (f": {top[0][0]}" if top else ""))
        self._record(ep)

    def _record(self, ep: EpisodeReport) -> None:
        self.report.episodes.append(ep)
        self.log(ep.line())

    def _end_of_bag(self) -> None:
        if self._ep is not None:
            if self.split == "services":
                self._finish(save=False, note="no stop_episode before the bag ends: discarded, as the recorder "
                                              "discards an unsaved episode when it closes; give --episodes to keep it")
            else:
                self._finish(save=True)
        for start, end in self._ranges:
            self._record(EpisodeReport(start / NS, end / NS, self._task, note="after the end of the bag"))

    # -- messages ---------------------------------------------------------------------------------
    def _handle(self, topic: str, msgtype: str, t: int, raw: bytes) -> None:
        try:
            msg = self.store.deserialize_cdr(raw, cdr_type(msgtype))
        except Exception as exc:  # rosbags raises plain exceptions for malformed CDR
            self._dropped[(topic, f"undecodable {msgtype} ({type(exc).__name__})")] += 1
            return
        now = self._rel(t)
        if topic == self.state_topic:
            self._on_state(msg, t)
        elif topic == self.leader_topic:
            try:
                self.inputs.add_leader(joint_positions(msg, self.prefix), now)
            except FrameError as exc:
                self._dropped[(topic, str(exc))] += 1
        elif topic in self.trajectory_topics:
            try:
                names, points, start = points_from_msg(msg)
                self.inputs.follower.set_trajectory(names, points, start, self._robot_clock(t))
            except (TrajectoryRejected, ValueError) as exc:
                self._dropped[(topic, f"trajectory rejected: {exc}")] += 1
        elif topic == self.instruction_topic:
            text = str(msg.data).strip()
            if text:
                self._task = text
        elif topic in self.service_topics:
            self._on_service(self.service_topics[topic], msg, t)
        else:
            cam = self._camera_of[topic]
            try:
                if msgtype == IMAGE:
                    check_encoding(msg)
                self.inputs.add_image(cam, _BagImage(msg, msgtype == COMPRESSED_IMAGE), now)
            except ImageConversionError as exc:
                self._dropped[(topic, str(exc))] += 1

    def _on_state(self, msg, t: int) -> None:
        try:
            positions = joint_positions(msg, self.prefix)
        except FrameError as exc:
            self._dropped[(self.state_topic, str(exc))] += 1
            return
        if self._ep is not None and self.split != "gaps" and (self._last_state or -1) >= self._ep_start:
            gap = (t - self._last_state) / NS
            if gap > max(self.opts.gap_s, self.opts.max_age_s):
                self.report.warnings.append(f"no {self.state_topic} for {gap:.2f} s before {self._rel(t):.2f} s: the "
                                            "frames there are skipped")
        self._last_state = t
        stamp = _stamp_s(msg)
        if self.stamped:
            if self._stamp is not None and stamp < self._stamp[0] - self.opts.max_age_s:
                self.report.warnings.append(
                    f"header stamps on {self.state_topic} go back by {self._stamp[0] - stamp:.2f} s at "
                    f"{self._rel(t):.2f} s (a restarted sim or a clock step): running trajectories are dropped "
                    "and the follower starts again from the arm's position")
                self.inputs.reseed_follower()
            self._stamp = (stamp, t)
        self.inputs.add_state(positions, self._rel(t), self._robot_clock(t))

    def _on_service(self, name: str, msg, t: int) -> None:
        info = msg.info
        key = (bytes(info.client_gid), int(info.sequence_number))
        if info.event_type not in RESPONSES or key in self._answered:
            return  # requests, and the client's copy of a response the server's already gave
        self._answered.add(key)
        if len(msg.response) and not msg.response[0].success:
            return  # the recorder refused (no task, nothing recorded, ...)
        if name == "start_episode":
            self._start(t)
        elif self._ep is None:
            return
        elif name == "pause_episode":
            self._paused = True
        else:
            self._finish(save=name == "stop_episode", note="" if name == "stop_episode" else "discarded (discard_episode)")


def convert_bag(bag: str | Path, opts: BagOptions, log: Callable[[str], None] = print) -> ConversionReport:
    """Convert one bag (a rosbag2 folder or its .mcap / .db3 file) into the dataset at opts.root."""
    from so100_bringup.recorder.bag_io import open_bag

    try:
        with open_bag(bag) as source:
            return BagConverter(source, opts, log).run()
    except CalibrationError as exc:
        raise BagError(f"calibration: {exc}") from None
