"""Recorder node: cameras + /joint_states + commanded actions -> LeRobot dataset episodes.

Actions come from one of two sources (parameter `action_source`):
* "trajectory": the JointTrajectory topics a policy or the scripted expert publishes, fed into
  the shared TrajectoryFollower and sampled at each recorded frame (what the follower would
  command at that instant, on the node clock / sim time);
* "leader": a leader arm's /leader/joint_states (teleoperation).

A timer at `fps` takes the latest of every input; a frame whose inputs are missing or older
than `max_age_s` is skipped and counted (the rule lives in `recorder.core.RecorderInputs`, shared
with so100_bag2lerobot). Services (std_srvs/Trigger) ~/start_episode, ~/pause_episode (stop
taking frames, e.g. while the scene is reset; the episode stays open), ~/stop_episode (save) and
~/discard_episode; their calls also go out on <service>/_service_event (service introspection),
which `ros2 bag record --all-services` keeps. An episode needs a task string: the latest of the
`task` parameter (also set at run time, as so100_record does) and the instruction topic; there
is no default. A follower whose state stays still while the action moves is reported (log,
/diagnostics, the save message). Progress goes to the log and /diagnostics.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Sequence

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from so100_description.calibration import (ArmUnits, CalibrationError, JointUnitConverter, load_calibration,
                                       nominal_calibration)
from so100_bringup.follower_ros import TrajectoryFollowerBridge
from so100_bringup.recorder.core import (ACTION_SOURCES, DEFAULT_ROBOT_TYPE, DatasetSession, FrameBuilder,
                                         FrameError, FrameInputs, RecorderError, RecorderInputs,
                                         StillFollowerCheck, camera_shapes_of, dataset_features, joint_positions)
from so100_common.ros_node import (spin_node_main, ERROR, IMAGE_QOS, OK, STATE_QOS, WARN, declare_params, diagnostic_array,
                                      diagnostic_status, now_seconds)
from so100_common.params import Param, ParameterError, schema
from so100_description.joints import JOINT_NAMES, VARIANTS

# What LeRobot 0.6.1's video encoder accepts (lerobot.configs.video: VALID_VIDEO_CODECS and the
# alias av1); test_node_params checks this list against the installed lerobot.
VIDEO_CODECS = ("libsvtav1", "h264", "hevc", "libaom-av1", "av1", "auto", "h264_videotoolbox",
                "hevc_videotoolbox", "h264_nvenc", "hevc_nvenc", "h264_vaapi", "h264_qsv")

PARAMS = schema("recorder", [
    Param("root", "", "dataset directory (required; created, or added to with resume:=true when it already "
          "holds a LeRobot dataset)"),
    Param("resume", False, "add episodes to the dataset already at root (lerobot-record's --resume); false "
          "refuses a root that holds one"),
    Param("repo_id", "local/so101_recording", "dataset repo id stored in its metadata (never pushed)"),
    Param("fps", 30, "recording rate; the dataset's fps", min=1, unit="Hz"),
    Param("cameras", ["front", "wrist"], "camera names; images come from camera_topic with {name} filled in"),
    Param("camera_topic", "camera/{name}/image_raw", "sensor_msgs/Image topic pattern per camera"),
    Param("image_width", 0, "stored image width; 0 = size of the first frame received", min=0, unit="px"),
    Param("image_height", 0, "stored image height; 0 = size of the first frame received", min=0, unit="px"),
    Param("joint_states_topic", "joint_states", "follower arm state (observation.state)"),
    Param("action_source", "trajectory", "where actions come from: trajectory (the commanded JointTrajectory "
          "of a policy or the scripted expert, sampled at record time) or leader (a teleop arm's "
          "/leader/joint_states)", choices=ACTION_SOURCES),
    Param("leader_topic", "leader/joint_states", "leader arm joint states (action_source leader)"),
    Param("arm_trajectory_topic", "arm_controller/joint_trajectory", "arm JointTrajectory (action_source "
          "trajectory)"),
    Param("gripper_trajectory_topic", "gripper_controller/joint_trajectory", "gripper JointTrajectory "
          "(action_source trajectory)"),
    Param("instruction_topic", "vla/instruction", "std_msgs/String; the latest one is the next episode's task "
          "(empty: no subscription)"),
    Param("task", "", "task string of the next episode (settable at run time; a message on instruction_topic "
          "replaces it, the latest wins); an episode does not start without one", read_only=False),
    Param("joint_prefix", "", "prefix of the joint names on the topics"),
    Param("variant", "so101", "arm variant (joint limits, gripper range)", choices=VARIANTS),
    Param("calibration_file", "", "LeRobot calibration JSON of the follower; empty = nominal (sim)"),
    Param("arm_units", "degrees", "LeRobot arm units (degrees is LeRobot's default since 2026; range_m100_100 "
          "for older datasets)", choices=tuple(u.value for u in ArmUnits)),
    Param("max_age_s", 0.5, "skip a frame when any input is older than this since receipt",
          min=0.0, min_exclusive=True, unit="s"),
    Param("max_episode_s", 0.0, "save the episode automatically after this long; 0 = never", min=0.0, unit="s"),
    Param("use_videos", True, "store cameras as MP4 video (LeRobot default) instead of PNG images"),
    Param("video_codec", "libsvtav1", "video codec (libsvtav1 is LeRobot's default)", choices=VIDEO_CODECS),
    Param("robot_type", DEFAULT_ROBOT_TYPE, "robot_type written to the dataset metadata"),
    Param("image_writer_threads", 4, "threads writing camera frames during an episode (0: written in the "
          "recording thread)", min=0),
    Param("still_follower_window_s", 2.0, "warn when over this long the action moves (> 0.05 rad on a joint) "
          "while the state stays still (< 0.005 rad on every joint): a follower that does not follow; 0 = off",
          min=0.0, unit="s"),
    Param("diagnostics_period_s", 1.0, "period of /diagnostics and the progress log line",
          min=0.0, min_exclusive=True, unit="s"),
], title="Recorder node (so100_bringup.recorder.node, console script so100_recorder): ROS topics -> LeRobot "
         "dataset")


def missed_slots(last: float | None, now: float, period: float) -> int:
    """Frame slots of `period` s that passed between two timer runs without a run of their own
    (a timer that fires late runs once, not once per slot it missed)."""
    if last is None or now <= last:
        return 0
    return max(0, int(round((now - last) / period)) - 1)


class RecorderNode(Node):
    def __init__(self, **kwargs):
        super().__init__("recorder", **kwargs)
        p = declare_params(self, PARAMS, self._on_params)  # first: a bad value stops here
        self.p = p
        if not p["root"]:
            raise ParameterError(f"{self.get_name()}: parameter root is empty; give the dataset directory "
                                 "(-p root:=<dir>)")
        self.prefix: str = p["joint_prefix"]
        self.joints = tuple(JOINT_NAMES)
        self.converter = JointUnitConverter(self._calibration(p), ArmUnits(p["arm_units"]), p["variant"])
        self.cameras: list[str] = [c for c in p["cameras"] if c]
        # The frame rule (latest inputs, max_age_s on receipt, the follower's setpoint as action) is
        # shared with so100_bag2lerobot; receipt is timed on the monotonic clock, trajectories on
        # the node clock.
        self.inputs = RecorderInputs(self.cameras, p["action_source"], float(p["max_age_s"]), self.prefix,
                                     p["variant"], self.joints)
        self._task: str = p["task"].strip()  # the next episode's: the latest of the parameter and the topic
        window = int(round(float(p["still_follower_window_s"]) * int(p["fps"])))
        self.still_check = StillFollowerCheck(max(2, window)) if window > 0 else None
        self.still_episodes = 0  # saved episodes in which the follower did not follow
        self.paused = False
        self.skipped = 0
        self.skip_reason = ""
        self.missed = 0  # frame slots the timer did not run for (the process lacked CPU)
        self._last_tick: float | None = None
        self.last_error = ""
        self.last_saved = None
        self._episode_started = 0.0

        size = (int(p["image_height"]), int(p["image_width"]))
        self._fixed_size = size if size[0] > 0 and size[1] > 0 else None
        self.session = DatasetSession(Path(p["root"]).expanduser(), p["repo_id"], int(p["fps"]), None,
                                      robot_type=p["robot_type"], use_videos=bool(p["use_videos"]),
                                      video_codec=p["video_codec"],
                                      image_writer_threads=int(p["image_writer_threads"]))
        self.builder: FrameBuilder | None = None
        if DatasetSession.exists(self.session.root):  # resume now: counts and sizes are known
            if not p["resume"]:
                raise RecorderError(f"{self.session.root} already holds a LeRobot dataset: add -p resume:=true "
                                    "to add episodes to it, or give another root")
            self._open_session(None)

        self.create_subscription(JointState, p["joint_states_topic"], self._on_state, STATE_QOS)
        for cam in self.cameras:
            topic = p["camera_topic"].format(name=cam)
            self.create_subscription(Image, topic, lambda msg, c=cam: self._on_image(c, msg), IMAGE_QOS)
        if p["instruction_topic"]:
            self.create_subscription(String, p["instruction_topic"], self._on_instruction, STATE_QOS)
        if p["action_source"] == "leader":
            self.create_subscription(JointState, p["leader_topic"], self._on_leader, STATE_QOS)
        else:
            self.bridge = TrajectoryFollowerBridge(self, self.inputs.follower, p["arm_trajectory_topic"],
                                                   p["gripper_trajectory_topic"])

        for name, handler in (("start_episode", self._srv_start), ("pause_episode", self._srv_pause),
                              ("stop_episode", self._srv_stop), ("discard_episode", self._srv_discard)):
            self._introspect(self.create_service(Trigger, f"~/{name}", handler))
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0 / float(p["fps"]), self._tick)
        self.create_timer(float(p["diagnostics_period_s"]), self._report)
        self.get_logger().info(
            f"recording into {self.session.root} at {p['fps']} fps, cameras {self.cameras}, actions from "
            f"{p['action_source']}; {self.session.total_episodes} episodes on disk")

    # -- setup --------------------------------------------------------------------------------
    def _introspect(self, service) -> None:
        """Publish the service's calls on <service>/_service_event, so that `ros2 bag record
        --all-services` keeps the episode boundaries and so100_bag2lerobot splits a bag there."""
        try:
            from rclpy.qos import qos_profile_system_default
            from rclpy.service_introspection import ServiceIntrospectionState

            service.configure_introspection(self.get_clock(), qos_profile_system_default,
                                            ServiceIntrospectionState.CONTENTS)
        except (ImportError, AttributeError):  # rclpy before Iron has no service introspection
            pass

    @staticmethod
    def _calibration(p):
        if p["calibration_file"]:
            return load_calibration(p["calibration_file"])
        return nominal_calibration(p["variant"])

    def _open_session(self, camera_shapes) -> None:
        if not DatasetSession.exists(self.session.root):
            self.session.features = dataset_features(camera_shapes, bool(self.p["use_videos"]), self.joints)
        self.session.open()
        shapes = camera_shapes_of(self.session.features)
        if set(shapes) != set(self.cameras):
            found = sorted(shapes)
            self.session.close()
            raise RecorderError(f"dataset at {self.session.root} has cameras {found}, this recorder "
                                f"records {sorted(self.cameras)}")
        self.builder = FrameBuilder(self.converter, shapes, self.joints)

    # -- inputs -------------------------------------------------------------------------------
    def _positions(self, msg: JointState) -> dict[str, float] | None:
        try:
            return joint_positions(msg, self.prefix)
        except FrameError as exc:
            self._input_error(str(exc))
            return None

    def _input_error(self, text: str) -> None:
        self.last_error = text
        self.get_logger().warn(text, throttle_duration_sec=2.0)

    def _on_state(self, msg: JointState) -> None:
        pos = self._positions(msg)
        if pos is not None:
            self.inputs.add_state(pos, time.monotonic(), now_seconds(self))

    def _on_leader(self, msg: JointState) -> None:
        pos = self._positions(msg)
        if pos is not None:
            self.inputs.add_leader(pos, time.monotonic())

    def _on_image(self, cam: str, msg: Image) -> None:
        from so100_common.images import image_msg_to_rgb

        try:
            rgb = image_msg_to_rgb(msg)
        except ValueError as exc:
            self._input_error(f"camera {cam}: {exc}")
            return
        self.inputs.add_image(cam, rgb, time.monotonic())

    def _on_instruction(self, msg: String) -> None:
        text = msg.data.strip()
        if text:
            self._task = text

    def _on_params(self, changed: dict) -> None:
        """A run-time parameter set the schema accepted (only `task` is not read-only)."""
        if "task" in changed:
            self._task = changed["task"].strip()
            self.get_logger().info(f"task of the next episode: {self._task!r}")

    # -- recording ----------------------------------------------------------------------------
    def _tick(self) -> None:
        if not self.session.recording or self.paused:
            return
        clock = now_seconds(self)
        self.missed += missed_slots(self._last_tick, clock, 1.0 / float(self.p["fps"]))
        self._last_tick = clock
        taken = self.inputs.take(time.monotonic(), clock)
        reason = taken if isinstance(taken, str) else ""
        if isinstance(taken, FrameInputs):
            try:
                frame = self.builder.build(taken.state, taken.action, taken.images, self.session.task)
                self.session.add(frame)
            except FrameError as exc:
                reason = str(exc)
            else:
                self._check_follower(taken.state, taken.action)
        if reason:
            self.skipped += 1
            self.skip_reason = reason
            self.get_logger().warn(f"frame skipped: {reason}", throttle_duration_sec=2.0)
        max_s = float(self.p["max_episode_s"])
        if max_s > 0 and time.monotonic() - self._episode_started >= max_s:
            ok, text = self.stop_episode()
            (self.get_logger().info if ok else self.get_logger().error)(f"max_episode_s reached: {text}")

    def _check_follower(self, state: dict[str, float], action: dict[str, float]) -> None:
        if self.still_check is None:
            return
        still = self.still_check.add([state[j] for j in self.joints], [action[j] for j in self.joints])
        if still:
            self.get_logger().warn(self.still_check.summary(float(self.p["fps"])), throttle_duration_sec=5.0)

    def start_episode(self) -> tuple[bool, str]:
        if self.session.recording:
            return False, f"already recording episode {self.session.total_episodes}"
        task = self._task
        if not task:
            topic = self.p["instruction_topic"]
            text = ("no task for the episode: set one with -p task:=\"...\" (or at run time), "
                    + (f"publish a std_msgs/String on {topic}, " if topic else "")
                    + "or record with so100_record --task \"...\"")
            self.last_error = text
            return False, text
        try:
            if self.builder is None:
                missing = [c for c in self.cameras if not self.inputs.has_image(c)]
                shapes = {c: self._fixed_size or self.inputs.latest_image(c).shape[:2] for c in self.cameras
                          if self.inputs.has_image(c)}
                if missing and self._fixed_size is None:
                    return False, (f"no frame yet from camera(s) {missing}: image sizes unknown (set "
                                   "image_width/image_height or wait for the cameras)")
                self._open_session({c: self._fixed_size or shapes[c] for c in self.cameras})
            self.session.start(task)
        except (RecorderError, ValueError, OSError) as exc:
            self.last_error = str(exc)
            return False, str(exc)
        self.skipped = 0
        self.missed, self._last_tick = 0, None
        self.paused = False
        if self.still_check is not None:
            self.still_check.reset()
        self._episode_started = time.monotonic()
        text = f"recording episode {self.session.total_episodes}: {task!r}"
        self.get_logger().info(text)
        return True, text

    def pause_episode(self) -> tuple[bool, str]:
        if not self.session.recording:
            return False, "no episode is being recorded"
        self.paused = True
        text = (f"episode {self.session.total_episodes} paused at {self.session.episode_frames} frames; "
                "~/stop_episode saves it, ~/discard_episode drops it")
        self.get_logger().info(text)
        return True, text

    def stop_episode(self) -> tuple[bool, str]:
        try:
            t0 = time.monotonic()
            saved = self.session.save()
        except (RecorderError, ValueError, OSError, RuntimeError) as exc:
            self.last_error = str(exc)
            return False, str(exc)
        self.last_saved = saved
        self.paused = False
        resized = sorted(self.builder.resized_cameras) if self.builder else []
        text = (f"saved episode {saved.index} ({saved.frames} frames, {saved.frames / float(self.p['fps']):.1f} s, "
                f"{self.skipped} skipped, {self.missed} missed) in {time.monotonic() - t0:.1f} s; "
                f"{self.session.total_episodes} episodes, {self.session.total_frames} frames in {self.session.root}")
        if resized:
            text += f"; frames of {resized} were resized to the dataset size"
        still = self.still_check.summary(float(self.p["fps"])) if self.still_check is not None else ""
        if still:
            self.still_episodes += 1
            text += f"; WARNING: {still}"
            self.get_logger().warn(text)
        else:
            self.get_logger().info(text)
        return True, text

    def discard_episode(self) -> tuple[bool, str]:
        try:
            dropped = self.session.discard()
        except RecorderError as exc:
            return False, str(exc)
        self.paused = False
        text = f"discarded the episode ({dropped} frames); {self.session.total_episodes} episodes kept"
        self.get_logger().info(text)
        return True, text

    def _srv(self, fn, response):
        response.success, response.message = fn()
        return response

    def _srv_start(self, _req, response):
        return self._srv(self.start_episode, response)

    def _srv_pause(self, _req, response):
        return self._srv(self.pause_episode, response)

    def _srv_stop(self, _req, response):
        return self._srv(self.stop_episode, response)

    def _srv_discard(self, _req, response):
        return self._srv(self.discard_episode, response)

    # -- reporting ----------------------------------------------------------------------------
    def _report(self) -> None:
        recording = self.session.recording
        level, message = OK, "idle"
        if recording:
            message = (f"{'paused' if self.paused else 'recording'} episode {self.session.total_episodes} "
                       f"({self.session.episode_frames} frames)")
            still = self.still_check.summary(float(self.p["fps"])) if self.still_check is not None else ""
            if still:
                level, message = WARN, f"{message}; {still}"
            if self.skipped:
                level, message = WARN, f"{message}; {self.skipped} frames skipped: {self.skip_reason}"
            if self.missed:
                level, message = WARN, (f"{message}; {self.missed} frame slots missed (the recorder did not get "
                                        "the CPU in time: frames are further apart than 1/fps there)")
            self.get_logger().info(message)
        elif self.last_error:
            level, message = ERROR, f"idle; last error: {self.last_error}"
        values = {"episodes_saved": self.session.total_episodes, "frames_saved": self.session.total_frames,
                  "recording": recording, "episode_frames": self.session.episode_frames,
                  "skipped_frames": self.skipped, "missed_frame_slots": self.missed,
                  "still_follower_frames": self.still_check.still_frames if self.still_check is not None else 0,
                  "episodes_with_still_follower": self.still_episodes, "paused": self.paused,
                  "root": str(self.session.root), "node": self.get_fully_qualified_name(),
                  "task": self.session.task or self._task}
        self._diag_pub.publish(diagnostic_array(self, [diagnostic_status(
            f"{self.get_name()}: recorder", level, message, values)]))

    def close(self) -> None:
        try:
            self.session.close()
        except Exception as exc:  # shutdown: report, do not mask the original exit
            self.get_logger().error(f"closing the dataset failed: {exc}")


def main(argv: Sequence[str] | None = None) -> int:
    return spin_node_main(argv, RecorderNode, "recorder", (ValueError, RecorderError, CalibrationError),
                          close=lambda node: node.close())


if __name__ == "__main__":
    sys.exit(main())
