"""Recorder core (no rclpy): LeRobot frames from SI joint positions and images, written as
episodes through lerobot's own `LeRobotDataset` API.

Keys and units are those of a LeRobot SO-100/SO-101 dataset recorded with `lerobot-record`:
``observation.state`` and ``action`` name ``<motor>.pos`` in LeRobot units (degrees or
-100..100 for the arm, 0..100 for the gripper) through the project's one unit converter,
``observation.images.<camera>`` are H x W x 3 uint8 RGB, one task string per episode.

Durability: LeRobot keeps its data and episode-metadata parquet writers open across episodes
and only writes their footers in ``finalize()``; a process killed mid-recording would leave
every episode of the open file unreadable. `DatasetSession` therefore finalizes the dataset
after each saved episode and re-opens it with ``LeRobotDataset.resume`` for the next one
(each episode lands in its own data/video/meta file), so a crash only ever loses the episode
being recorded.
"""
from __future__ import annotations

import logging
import math
import os
import shutil
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from so100_bringup.control.follower import TrajectoryFollower
from so100_description.joints import JOINT_NAMES, LimitArrays, strip_prefix

log = logging.getLogger(__name__)

STATE_KEY = "observation.state"
ACTION_KEY = "action"
IMAGE_PREFIX = "observation.images."
DEFAULT_ROBOT_TYPE = "so_follower"  # what lerobot 0.6.1's SO-100/SO-101 follower records
# Video decoder of every dataset this project opens. LeRobot's default (None) tries torchcodec
# first, which needs FFmpeg's shared libraries and, without them, logs a traceback per FFmpeg
# version before falling back to PyAV; PyAV brings its own FFmpeg (LeRobot's encoder uses it too).
VIDEO_BACKEND = "pyav"
ACTION_SOURCES = ("trajectory", "leader")


class RecorderError(RuntimeError):
    """An operation the recorder cannot do right now; the message says why."""


class FrameError(ValueError):
    """Inputs that cannot become a dataset frame (missing joint, NaN, wrong image)."""


def motor_feature_names(joints: Sequence[str] = JOINT_NAMES) -> list[str]:
    return [f"{j}.pos" for j in joints]


def dataset_features(camera_shapes: Mapping[str, tuple[int, int]], use_videos: bool = True,
                     joints: Sequence[str] = JOINT_NAMES) -> dict[str, dict]:
    """LeRobot feature spec for state + action (`<motor>.pos`) and one RGB stream per camera.

    Built with lerobot's own `hw_to_dataset_features`, as `lerobot-record` does."""
    from lerobot.utils.feature_utils import hw_to_dataset_features

    motors = {name: float for name in motor_feature_names(joints)}
    cams = {}
    for name, hw in camera_shapes.items():
        height, width = int(hw[0]), int(hw[1])
        if height <= 0 or width <= 0:
            raise ValueError(f"camera {name!r} needs a positive image size, got {hw}")
        cams[name] = (height, width, 3)
    features = hw_to_dataset_features(motors, "action", use_videos)
    features.update(hw_to_dataset_features({**motors, **cams}, "observation", use_videos))
    return features


def camera_shapes_of(features: Mapping[str, dict]) -> dict[str, tuple[int, int]]:
    return {key[len(IMAGE_PREFIX):]: (int(ft["shape"][0]), int(ft["shape"][1]))
            for key, ft in features.items() if key.startswith(IMAGE_PREFIX)}


def _positions_vector(converter, positions: Mapping[str, float], joints: Sequence[str], what: str) -> np.ndarray:
    missing = [j for j in joints if j not in positions]
    if missing:
        raise FrameError(f"{what} lacks joint(s) {missing}")
    bad = [j for j in joints if not math.isfinite(float(positions[j]))]
    if bad:
        raise FrameError(f"{what} has non-finite values for {bad}")
    return converter.state_vector(positions, joints).astype(np.float32)


def fit_rgb(rgb: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Resize an H x W x 3 uint8 frame to hw = (height, width) (no-op when it already fits),
    with the policy node's own resize, so a policy trained on the dataset sees the same pixels
    when it runs on the live camera."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise FrameError(f"expected an H x W x 3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
    from so100_common.images import fit_image

    return fit_image(rgb, hw)


class FrameBuilder:
    """SI positions + RGB images -> one LeRobot frame dict (the keys `add_frame` expects)."""

    def __init__(self, converter, camera_shapes: Mapping[str, tuple[int, int]],
                 joints: Sequence[str] = JOINT_NAMES):
        self.converter = converter
        self.camera_shapes = {k: (int(v[0]), int(v[1])) for k, v in camera_shapes.items()}
        self.joints = tuple(joints)
        self.resized_cameras: set[str] = set()  # cameras whose frames had to be resized

    def build(self, state: Mapping[str, float], action: Mapping[str, float],
              images: Mapping[str, np.ndarray], task: str) -> dict:
        if not task:
            raise FrameError("empty task string")
        frame: dict = {STATE_KEY: _positions_vector(self.converter, state, self.joints, "joint state"),
                       ACTION_KEY: _positions_vector(self.converter, action, self.joints, "action")}
        for cam, hw in self.camera_shapes.items():
            if cam not in images or images[cam] is None:
                raise FrameError(f"no image from camera {cam!r}")
            rgb = np.asarray(images[cam])
            if rgb.shape[:2] != hw:
                self.resized_cameras.add(cam)
            frame[IMAGE_PREFIX + cam] = fit_rgb(rgb, hw)
        frame["task"] = task
        return frame


class StillFollowerCheck:
    """Spots a follower that does not follow: over the last `window` frames of an episode the
    action moves (range > `action_moves` rad on some joint) while the state stays still (range
    < `state_still` rad on every joint). A leader-arm recording whose follower was not driven
    (driver down, torque off) otherwise saves a constant observation.state without a word.

    The window is short enough to catch a follower that stops halfway and long enough that a
    grasp (the gripper squeezes an object, the arm holds still) does not count."""

    def __init__(self, window: int, action_moves: float = 0.05, state_still: float = 0.005):
        if window < 2:
            raise ValueError(f"the window needs at least 2 frames, got {window}")
        self.window = int(window)
        self.action_moves = float(action_moves)
        self.state_still = float(state_still)
        self.reset()

    def reset(self) -> None:
        """A new episode."""
        self._states: deque[np.ndarray] = deque(maxlen=self.window)
        self._actions: deque[np.ndarray] = deque(maxlen=self.window)
        self.still_frames = 0  # frames at which the window showed a still follower
        self.largest_action_range = 0.0  # rad, over the flagged windows

    def add(self, state: Sequence[float], action: Sequence[float]) -> bool:
        """One recorded frame (SI positions, same joint order); True when the window ending
        here shows a still follower."""
        self._states.append(np.asarray(state, dtype=float))
        self._actions.append(np.asarray(action, dtype=float))
        if len(self._states) < 2:
            return False
        state_range = np.ptp(np.stack(self._states), axis=0)
        action_range = np.ptp(np.stack(self._actions), axis=0)
        still = bool(np.all(state_range < self.state_still) and np.any(action_range > self.action_moves))
        if still:
            self.still_frames += 1
            self.largest_action_range = max(self.largest_action_range, float(action_range.max()))
        return still

    def summary(self, fps: float) -> str:
        """'' when the follower followed; else what happened and what to check."""
        if not self.still_frames:
            return ""
        return (f"follower did not follow for {self.still_frames} frames ({self.still_frames / fps:.1f} s): "
                f"observation.state still (< {self.state_still} rad on every joint) while the action moved "
                f"(up to {self.largest_action_range:.2f} rad); is the follower driven (driver running, torque "
                "on, something relaying the leader to it)?")


class LatestInput:
    """The latest value of one input with the time it was received (s, on the caller's clock)."""
    __slots__ = ("value", "received")

    def __init__(self) -> None:
        self.value: Any = None
        self.received = -math.inf

    def set(self, value: Any, received: float) -> None:
        self.value, self.received = value, float(received)

    def age(self, now: float) -> float:
        return math.inf if self.value is None else now - self.received


def joint_positions(msg, prefix: str = "") -> dict[str, float]:
    """sensor_msgs/JointState (duck-typed) -> {joint without `prefix`: rad}."""
    if len(msg.position) != len(msg.name):
        raise FrameError(f"JointState with {len(msg.name)} names but {len(msg.position)} positions")
    return {strip_prefix(n, prefix): float(x) for n, x in zip(msg.name, msg.position)}


def action_follower(prefix: str = "", variant: str = "so101",
                    joints: Sequence[str] = JOINT_NAMES) -> TrajectoryFollower:
    """The follower the recorder samples its trajectory actions from: the controllers' joint
    names (with `prefix`) and the variant's position limits, as the controllers clamp them."""
    limits = LimitArrays.for_joints(joints, variant)
    return TrajectoryFollower([prefix + j for j in joints], [0.0] * len(joints), lower=limits.lower,
                              upper=limits.upper)


@dataclass(frozen=True)
class FrameInputs:
    state: dict[str, float]  # rad
    action: dict[str, float]  # rad
    images: dict[str, Any]  # camera -> what `add_image` was given


class RecorderInputs:
    """The recorder's inputs and its rule for one frame, shared by the recorder node (live) and
    the bag converter (so100_bag2lerobot).

    A frame takes the latest value of every input. When any is missing or older than
    `max_age_s` (since it was received) the frame is skipped with a reason, never padded. The
    action is the follower's setpoint at the frame's time (`action_source` trajectory: the
    JointTrajectory topics fed into the shared follower, seeded with the first complete joint
    state so that it commands where the arm is until a trajectory arrives) or the latest leader
    state (`action_source` leader). Two clocks: `now` times receipt and age, `clock` is the
    robot's clock on which trajectories are stamped (the node clock, sim time with use_sim_time).
    """

    def __init__(self, cameras: Sequence[str], action_source: str = "trajectory", max_age_s: float = 0.5,
                 prefix: str = "", variant: str = "so101", joints: Sequence[str] = JOINT_NAMES):
        if action_source not in ACTION_SOURCES:
            raise ValueError(f"action_source {action_source!r}: expected one of {ACTION_SOURCES}")
        if not max_age_s > 0:
            raise ValueError(f"max_age_s must be positive, got {max_age_s}")
        self.cameras = [c for c in cameras if c]
        self.action_source = action_source
        self.max_age_s = float(max_age_s)
        self.prefix = prefix
        self.variant = variant
        self.joints = tuple(joints)
        self._lock = threading.Lock()
        self.follower = action_follower(prefix, variant, self.joints) if action_source == "trajectory" else None
        self.reset()

    def reset(self) -> None:
        """Forget every input (the bag's clock jumped: nothing before the jump may reach a frame)."""
        with self._lock:
            self._state = LatestInput()
            self._leader = LatestInput()
            self._images = {c: LatestInput() for c in self.cameras}
            self.follower_seeded = False

    def reseed_follower(self) -> None:
        """Seed the follower again from the next complete joint state (the robot's clock jumped,
        so trajectories timed on the old clock are void)."""
        with self._lock:
            self.follower_seeded = False

    # -- inputs -------------------------------------------------------------------------------
    def add_state(self, positions: Mapping[str, float], now: float, clock: float) -> None:
        """Positions of some joints (/joint_states may come in parts, e.g. arm and gripper)."""
        with self._lock:
            merged = dict(self._state.value or {})
            merged.update(positions)
            self._state.set(merged, now)
            seed = (self.follower is not None and not self.follower_seeded
                    and all(j in merged for j in self.joints))
            if seed:
                self.follower.hold(clock, [merged[j] for j in self.joints])
                self.follower_seeded = True

    def add_leader(self, positions: Mapping[str, float], now: float) -> None:
        with self._lock:
            merged = dict(self._leader.value or {})
            merged.update(positions)
            self._leader.set(merged, now)

    def add_image(self, camera: str, image: Any, now: float) -> None:
        with self._lock:
            if camera in self._images:
                self._images[camera].set(image, now)

    def has_image(self, camera: str) -> bool:
        return camera in self._images and self._images[camera].value is not None

    def latest_image(self, camera: str) -> Any:
        return self._images[camera].value if camera in self._images else None

    # -- the frame rule ---------------------------------------------------------------------------
    def take(self, now: float, clock: float) -> FrameInputs | str:
        """The inputs of a frame at `now`, or why there is none."""
        with self._lock:
            inputs = [("joint_states", self._state)] + [(f"camera {c}", self._images[c]) for c in self.cameras]
            stale = [name for name, slot in inputs if slot.age(now) > self.max_age_s]
            if stale:
                return f"stale or missing input: {', '.join(stale)}"
            state = dict(self._state.value)
            images = {c: self._images[c].value for c in self.cameras}
            if self.follower is not None:
                if not self.follower_seeded:
                    return "no /joint_states yet to seed the commanded position"
                positions, _vel = self.follower.sample(clock)
                return FrameInputs(state, {j: float(x) for j, x in zip(self.joints, positions)}, images)
            age = self._leader.age(now)
            if age > self.max_age_s:
                return f"leader joint states {'missing' if age == math.inf else f'{age:.2f} s old'}"
            return FrameInputs(state, dict(self._leader.value), images)


@dataclass(frozen=True)
class SavedEpisode:
    index: int
    frames: int
    task: str


class DatasetSession:
    """One LeRobot dataset on disk, recorded episode by episode.

    ``open()`` creates the dataset (or resumes an existing one at `root` after checking that
    fps and features agree), ``start(task)`` / ``add(frame)`` / ``save()`` / ``discard()``
    record episodes, ``close()`` finalizes. Every saved episode is on disk and readable before
    ``save()`` returns.
    """

    def __init__(self, root: str | Path, repo_id: str, fps: int, features: Mapping[str, dict] | None,
                 robot_type: str = DEFAULT_ROBOT_TYPE, use_videos: bool = True,
                 video_codec: str = "libsvtav1", image_writer_threads: int = 4):
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.root = Path(root).expanduser()
        self.repo_id = repo_id
        self.fps = int(fps)
        self.features = dict(features) if features is not None else None
        self.robot_type = robot_type
        self.use_videos = use_videos
        self.video_codec = video_codec
        self.image_writer_threads = int(image_writer_threads)
        self._ds = None
        self._task: str | None = None
        self._frames = 0

    # -- state ------------------------------------------------------------------------------
    @staticmethod
    def exists(root: str | Path) -> bool:
        return (Path(root).expanduser() / "meta" / "info.json").is_file()

    @property
    def recording(self) -> bool:
        return self._task is not None

    @property
    def episode_frames(self) -> int:
        return self._frames

    @property
    def total_episodes(self) -> int:
        return int(self._ds.meta.total_episodes) if self._ds is not None else 0

    @property
    def total_frames(self) -> int:
        return int(self._ds.meta.total_frames) if self._ds is not None else 0

    @property
    def task(self) -> str | None:
        return self._task

    # -- lifecycle --------------------------------------------------------------------------
    def _encoder(self):
        from lerobot.configs.video import RGBEncoderConfig

        # SVT-AV1 (the default codec) writes a 20-line banner and a thread-priority warning to
        # stderr for every video; keep its errors only, unless the user set SVT_LOG.
        os.environ.setdefault("SVT_LOG", "1")
        return RGBEncoderConfig(vcodec=self.video_codec)

    def open(self) -> None:
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        if self._ds is not None:
            return
        if self.exists(self.root):
            self._ds = self._resume()
            found = {k: v for k, v in self._ds.meta.features.items() if k == STATE_KEY or k == ACTION_KEY
                     or k.startswith(IMAGE_PREFIX)}
            found_fps = int(self._ds.meta.fps)
            if found_fps != self.fps:
                self._abandon()
                raise RecorderError(f"dataset at {self.root} was recorded at {found_fps} fps, not {self.fps}; "
                                    "use another root or the same fps")
            if self.features is not None:
                problem = _feature_mismatch(found, self.features)
                if problem:
                    self._abandon()
                    raise RecorderError(f"dataset at {self.root} does not match this recorder: {problem}; "
                                        "use another root")
            self.features = found
            # Frames of an episode interrupted by a crash are still in the staging dir.
            self._clean_staging()
            log.info("resumed dataset %s: %d episodes, %d frames", self.root, self.total_episodes,
                     self.total_frames)
        else:
            if self.features is None:
                raise RecorderError("cannot create a dataset without its features (camera sizes unknown)")
            if self.root.exists() and any(self.root.iterdir()):
                raise RecorderError(f"{self.root} exists, is not empty and holds no LeRobot dataset "
                                    "(meta/info.json); pick an empty or new directory")
            if self.root.exists():
                self.root.rmdir()  # LeRobot's create() insists on making the directory itself
            self._ds = LeRobotDataset.create(
                repo_id=self.repo_id, fps=self.fps, features=self.features, root=self.root,
                robot_type=self.robot_type, use_videos=self.use_videos,
                image_writer_threads=self.image_writer_threads,
                rgb_encoder=self._encoder() if self.use_videos else None,
                metadata_buffer_size=1, video_backend=VIDEO_BACKEND)
            log.info("created dataset %s", self.root)

    def _resume(self):
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        return LeRobotDataset.resume(self.repo_id, root=self.root,
                                     image_writer_threads=self.image_writer_threads,
                                     rgb_encoder=self._encoder() if self.use_videos else None,
                                     video_backend=VIDEO_BACKEND)

    def _abandon(self) -> None:
        ds, self._ds = self._ds, None
        if ds is not None:
            try:
                ds.finalize()
            except Exception:  # nothing was written by this session
                pass

    def _clean_staging(self) -> None:
        staging = self.root / "images"
        if staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)

    def start(self, task: str) -> None:
        if self._ds is None:
            raise RecorderError("dataset is not open")
        if self._task is not None:
            raise RecorderError(f"already recording episode {self.total_episodes}")
        if not task or not task.strip():
            raise RecorderError("an episode needs a non-empty task string")
        self._task = task.strip()
        self._frames = 0

    def add(self, frame: dict) -> None:
        if self._task is None:
            raise RecorderError("no episode is being recorded")
        frame = dict(frame)
        frame["task"] = self._task
        self._ds.add_frame(frame)
        self._frames += 1

    def save(self) -> SavedEpisode:
        """Write the current episode; it is readable on disk when this returns."""
        if self._task is None:
            raise RecorderError("no episode is being recorded")
        if self._frames == 0:
            raise RecorderError("the episode has no frames yet (are all inputs arriving?)")
        index, frames, task = self.total_episodes, self._frames, self._task
        self._ds.save_episode(parallel_encoding=False)  # no process pool inside a DDS process
        self._task, self._frames = None, 0
        # Close the parquet writers (footers) so this episode survives a crash, then reopen.
        self._ds.finalize()
        self._ds = self._resume()
        return SavedEpisode(index=index, frames=frames, task=task)

    def discard(self) -> int:
        """Drop the current episode's frames; returns how many were dropped."""
        if self._task is None:
            raise RecorderError("no episode is being recorded")
        dropped = self._frames
        self._ds.clear_episode_buffer(delete_images=True)
        self._task, self._frames = None, 0
        return dropped

    def close(self) -> None:
        """Discard an unfinished episode and finalize the dataset."""
        if self._ds is None:
            return
        if self._task is not None:
            log.warning("closing with an unsaved episode of %d frames: discarded", self._frames)
            try:
                self.discard()
            except Exception as exc:  # still finalize what is saved
                log.error("discarding the open episode failed: %s", exc)
        self._ds.finalize()
        self._ds = None


def _feature_mismatch(found: Mapping[str, dict], wanted: Mapping[str, dict]) -> str:
    if set(found) != set(wanted):
        return f"features {sorted(found)} vs {sorted(wanted)}"
    for key, ft in wanted.items():
        if tuple(found[key]["shape"]) != tuple(ft["shape"]):
            return f"{key} has shape {tuple(found[key]['shape'])}, recorder wants {tuple(ft['shape'])}"
        if list(found[key].get("names") or []) != list(ft.get("names") or []) and not key.startswith(IMAGE_PREFIX):
            return f"{key} names {found[key].get('names')} vs {ft.get('names')}"
        if found[key]["dtype"] != ft["dtype"]:
            return f"{key} dtype {found[key]['dtype']} vs {ft['dtype']}"
    return ""
