"""What a running arm sees and does, logged to Rerun (plain Python, no rclpy).

`ViewerLog` takes plain values (stamps in seconds, numpy arrays); the node `so100_viewer` feeds
it from the topics. Its entities are on one timeline of the messages' header stamps: `sim_time`
when they are sim time (a simulator's clock starts at 0: stamps before 2001), else `ros_time`
(wall clock). An unstamped message takes the latest stamp seen. So the node needs no
use_sim_time, and no /clock subscription (250 messages/s from the sim).

  camera/<name>                     each camera image (JPEG unless jpeg_quality is 0)
  joints/<joint>/measured           joint_states position, rad
  joints/<joint>/commanded          the latest commanded trajectory's position at that instant, rad
  world/arm                         the arm's links as a polyline (URDF forward kinematics), m
  world/tool                        the tool point (URDF frame `tcp`) now
  world/executed                    the tool point's path over the last `trail_s` seconds
  world/chunk                       the tool point's path planned by the latest action chunk
  latency/policy_inference_ms       policy inference time (the policy node's /diagnostics)
  latency/image_to_publish_ms       camera frame stamp -> chunk published (same)
  rates/joint_states_hz, rates/camera_<name>_hz, rates/chunks_hz   message rates, per stamp second
  rates/sim_rtf                     the sim's measured real-time factor (its /diagnostics)
  instruction                       the task text
  diagnostics/<status>              a node's diagnostic message, when it changes

`world` is the arm's base_link frame (z up, metres).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from so100_common.images import rgb_to_compressed_bytes
from so100_description.joints import ARM_JOINTS, JOINT_NAMES, strip_prefix

# Link frames of the URDF from the base to the tool point: the polyline drawn as the arm.
ARM_LINKS = ("base_link", "shoulder_link", "upper_arm_link", "lower_arm_link", "wrist_link", "gripper_link", "tcp")
MEASURED_COLOR = (31, 119, 180)
COMMANDED_COLOR = (255, 127, 14)
CHUNK_COLOR = (255, 127, 14)
EXECUTED_COLOR = (31, 119, 180)
ARM_COLOR = (150, 150, 150)
RATE_EVERY_S = 0.5  # a rate is logged at most this often (stamp time)
SIM_STAMP_LIMIT_S = 1e9  # stamps below (before 2001-09-09) are a simulator's clock, not wall time
_LEVELS = {0: "INFO", 1: "WARN", 2: "ERROR", 3: "WARN"}  # diagnostic_msgs levels OK, WARN, ERROR, STALE


class ArmKinematics:
    """Link positions of the project's URDF by forward kinematics (pinocchio)."""

    def __init__(self, variant: str = "so101"):
        from so100_description.ik import PinocchioIK, project_urdf

        self._ik = PinocchioIK(project_urdf(variant), variant=variant)

    def tool_position(self, q: Sequence[float]) -> np.ndarray:
        """The `tcp` frame's origin in base_link, m, for the arm joints q (ARM_JOINTS order, rad)."""
        return self._ik.fk(q)[:3, 3]

    def link_positions(self, q: Sequence[float]) -> np.ndarray:
        """(len(ARM_LINKS), 3): every link frame's origin in base_link, m."""
        return np.array([self._ik.frame_pose(link, q)[:3, 3] for link in ARM_LINKS])


class RateMeter:
    """Messages per second of stamp time over the last `window_s`."""

    def __init__(self, window_s: float = 1.0):
        self.window_s = window_s
        self._stamps: deque[float] = deque()

    def add(self, t: float) -> None:
        if self._stamps and t < self._stamps[-1]:
            self._stamps.clear()  # the clock went back (a restarted sim): start over
        self._stamps.append(t)
        while t - self._stamps[0] > self.window_s:
            self._stamps.popleft()

    def rate(self) -> float | None:
        if len(self._stamps) < 2 or self._stamps[-1] <= self._stamps[0]:
            return None
        return (len(self._stamps) - 1) / (self._stamps[-1] - self._stamps[0])


class Throttle:
    """True at most once per `period_s` of stamp time (0: always); a clock that goes back resets it."""

    def __init__(self, period_s: float):
        self.period_s = period_s
        self._last: float | None = None

    def due(self, t: float) -> bool:
        # 10 % slack: a 30 Hz source throttled to 15 Hz keeps every second frame despite jitter
        if self._last is not None and self._last <= t < self._last + 0.9 * self.period_s:
            return False
        self._last = t
        return True


@dataclass
class _Commanded:
    times: np.ndarray  # absolute stamp times of the knots, s
    positions: np.ndarray  # (K,) rad

    def at(self, t: float) -> float:
        return float(np.interp(t, self.times, self.positions))  # held at the ends


class ViewerLog:
    """Logs the arm's inputs and outputs to a Rerun recording stream.

    rec: a `rerun.RecordingStream` with its sinks set. kinematics: an `ArmKinematics` (None: no
    3D view). sim_time: stamps are sim seconds (a `duration` timeline) or wall time (a
    `timestamp` one); None: told by the first stamp. Every method takes the message's stamp `t`
    in s, or None for an unstamped message: it then takes the latest stamp seen, and is dropped
    when there is none yet. Not thread-safe: call it from one thread (the node's executor)."""

    def __init__(self, rec: Any, kinematics: ArmKinematics | None = None, *, sim_time: bool | None = None,
                 joint_prefix: str = "", image_rate_hz: float = 15.0, jpeg_quality: int = 75,
                 update_rate_hz: float = 30.0, trail_s: float = 3.0):
        import rerun as rr

        if not 0 <= jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [0, 100] (0 = raw RGB), got {jpeg_quality}")
        self.rr = rr
        self.rec = rec
        self.kinematics = kinematics
        self._sim_time = sim_time
        self.latest: float | None = None  # the latest stamp seen, s
        self.joint_prefix = joint_prefix
        self.jpeg_quality = int(jpeg_quality)
        self.trail_s = trail_s
        self._image_period = 1.0 / image_rate_hz if image_rate_hz > 0 else 0.0
        self._image_throttle: dict[str, Throttle] = {}
        self._update = Throttle(1.0 / update_rate_hz if update_rate_hz > 0 else 0.0)
        self._rates: dict[str, RateMeter] = {}
        self._rate_throttle: dict[str, Throttle] = {}
        self._commanded: dict[str, _Commanded] = {}
        self._trail: deque[tuple[float, np.ndarray]] = deque()
        self._messages: dict[str, str] = {}
        self._log_static()

    # -- inputs --------------------------------------------------------------------------------
    @property
    def timeline(self) -> str | None:
        """The timeline's name; None until the first stamp when sim_time was not given."""
        return None if self._sim_time is None else ("sim_time" if self._sim_time else "ros_time")

    def image(self, camera: str, t: float | None, rgb: np.ndarray | Callable[[], np.ndarray]) -> bool:
        """Log a camera frame (H x W x 3 uint8 RGB, or a function returning it: called only for the
        frames the image rate keeps) stamped `t`; False when it was skipped."""
        if (t := self._at(t)) is None:
            return False
        self._count(f"camera_{camera}", t)
        throttle = self._image_throttle.setdefault(camera, Throttle(self._image_period))
        if not throttle.due(t):
            return False
        if callable(rgb):
            rgb = rgb()
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"camera {camera}: expected an H x W x 3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
        self._set_time(t)
        if self.jpeg_quality:
            image = self.rr.EncodedImage(contents=rgb_to_compressed_bytes(rgb, "jpeg", self.jpeg_quality),
                                         media_type="image/jpeg")
        else:
            image = self.rr.Image(rgb, color_model="RGB")
        self.rec.log(f"camera/{camera}", image)
        return True

    def joint_state(self, t: float | None, names: Sequence[str], positions: Sequence[float]) -> None:
        """Log measured positions (rad) against the commanded ones, and the arm and tool point in 3D."""
        state = self._by_joint(names, positions, "joint state")
        if (t := self._at(t)) is None:
            return
        self._count("joint_states", t)
        if not self._update.due(t):
            return
        self._set_time(t)
        for joint, value in state.items():
            self.rec.log(f"joints/{joint}/measured", self.rr.Scalars(value))
            commanded = self._commanded.get(joint)
            if commanded is not None:
                self.rec.log(f"joints/{joint}/commanded", self.rr.Scalars(commanded.at(t)))
        if self.kinematics is None or not all(j in state for j in ARM_JOINTS):
            return
        q = [state[j] for j in ARM_JOINTS]
        links = self.kinematics.link_positions(q)
        tool = links[-1]
        while self._trail and (t < self._trail[-1][0] or t - self._trail[0][0] > self.trail_s):
            self._trail.popleft()
        self._trail.append((t, tool))
        self.rec.log("world/arm", self.rr.LineStrips3D([links], radii=0.006, colors=[ARM_COLOR]))
        self.rec.log("world/tool", self.rr.Points3D([tool], radii=0.01, colors=[EXECUTED_COLOR]))
        if len(self._trail) >= 2:
            path = np.array([p for _, p in self._trail])
            self.rec.log("world/executed", self.rr.LineStrips3D([path], radii=0.003, colors=[EXECUTED_COLOR]))

    def trajectory(self, t: float | None, names: Sequence[str], times_from_start: Sequence[float],
                   positions: np.ndarray) -> None:
        """A commanded JointTrajectory stamped `t` (None: starting now): knot times (s after t) and
        positions (K x joints, rad). An arm trajectory (all of ARM_JOINTS) is drawn as the tool point's
        planned path."""
        tfs = np.asarray(times_from_start, dtype=float).reshape(-1)
        if not len(tfs):  # no points: the controller stops and holds; nothing is commanded any more
            for name in names:
                self._commanded.pop(strip_prefix(name, self.joint_prefix), None)
            return
        pos = np.asarray(positions, dtype=float)
        if pos.ndim != 2 or pos.shape != (len(tfs), len(names)):
            raise ValueError(f"trajectory: positions must be (points x joints) = ({len(tfs)} x {len(names)}), "
                             f"got shape {pos.shape}")
        if not (np.all(np.isfinite(tfs)) and np.all(np.isfinite(pos))):
            raise ValueError("trajectory: non-finite time or position")
        if (t := self._at(t)) is None:
            return
        joints = [strip_prefix(n, self.joint_prefix) for n in names]
        for k, joint in enumerate(joints):
            if joint in JOINT_NAMES:
                self._commanded[joint] = _Commanded(t + tfs, pos[:, k].copy())
        if not all(j in joints for j in ARM_JOINTS):
            return
        self._count("chunks", t)
        if self.kinematics is None:
            return
        arm = pos[:, [joints.index(j) for j in ARM_JOINTS]]
        path = np.array([self.kinematics.tool_position(q) for q in arm])
        self._set_time(t)
        self.rec.log("world/chunk", self.rr.LineStrips3D([path], radii=0.004, colors=[CHUNK_COLOR]))

    def diagnostics(self, t: float | None, statuses: Iterable[tuple[str, int, str, Mapping[str, str]]]) -> None:
        """Diagnostic statuses (name, level, message, values): the policy node's latencies, the sim's RTF,
        and each status message when it changes."""
        if (t := self._at(t)) is None:
            return
        self._set_time(t)
        for name, level, message, values in statuses:
            inferences = _number(values.get("inferences"))
            if "inference_latency_ms" in values and inferences is not None and inferences > 0:
                self._positive("latency/policy_inference_ms", values.get("inference_latency_ms"))
                self._positive("latency/image_to_publish_ms", values.get("image_to_publish_ms"))
            if "real_time_factor" in values and "sim_time_s" in values:
                self._positive("rates/sim_rtf", values.get("real_time_factor"))
            if self._messages.get(name) != message:
                self._messages[name] = message
                self.rec.log(f"diagnostics/{_entity_part(name)}",
                             self.rr.TextLog(message, level=_LEVELS.get(int(level), "INFO")))

    def instruction(self, t: float | None, text: str) -> None:
        if (t := self._at(t)) is None:
            return
        self._set_time(t)
        self.rec.log("instruction", self.rr.TextLog(text))

    # -- helpers -------------------------------------------------------------------------------
    def _log_static(self) -> None:
        rr = self.rr
        self.rec.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
        for joint in JOINT_NAMES:
            self.rec.log(f"joints/{joint}/measured", rr.SeriesLines(colors=[MEASURED_COLOR], names=["measured"]),
                         static=True)
            self.rec.log(f"joints/{joint}/commanded", rr.SeriesLines(colors=[COMMANDED_COLOR], names=["commanded"]),
                         static=True)

    def _at(self, t: float | None) -> float | None:
        """The stamp to log a message at (see the class); the first one also sets the timeline."""
        if t is None:
            return self.latest
        if self._sim_time is None:
            self._sim_time = t < SIM_STAMP_LIMIT_S
        elif self._sim_time != (t < SIM_STAMP_LIMIT_S):
            return self.latest  # e.g. a node off sim time in a sim: its wall stamp is no time here
        self.latest = t
        return t

    def _set_time(self, t: float) -> None:
        if self._sim_time:
            self.rec.set_time(self.timeline, duration=t)
        else:
            self.rec.set_time(self.timeline, timestamp=t)

    def _by_joint(self, names: Sequence[str], positions: Sequence[float], what: str) -> dict[str, float]:
        if len(names) != len(positions):
            raise ValueError(f"{what}: {len(names)} names but {len(positions)} positions")
        out = {}
        for name, value in zip(names, positions):
            joint = strip_prefix(name, self.joint_prefix)
            if joint in JOINT_NAMES and math.isfinite(value):
                out[joint] = float(value)
        return out

    def _count(self, what: str, t: float) -> None:
        meter = self._rates.setdefault(what, RateMeter())
        meter.add(t)
        rate = meter.rate()
        if rate is not None and self._rate_throttle.setdefault(what, Throttle(RATE_EVERY_S)).due(t):
            self._set_time(t)
            self.rec.log(f"rates/{what}_hz", self.rr.Scalars(rate))

    def _positive(self, entity: str, text: str | None) -> None:
        value = _number(text)
        if value is not None and value > 0:  # 0: nothing measured yet
            self.rec.log(entity, self.rr.Scalars(value))


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _entity_part(name: str) -> str:
    """A diagnostic status name ("vla_policy_node: policy") as one entity path part."""
    return "_".join("".join(c if c.isalnum() else " " for c in name).split()) or "status"


def blueprint(cameras: Sequence[str]) -> Any:
    """The default layout: cameras | 3D arm and paths | joint plots, latencies and rates."""
    import rerun.blueprint as rrb

    return rrb.Blueprint(
        rrb.Horizontal(
            rrb.Vertical(*[rrb.Spatial2DView(origin=f"camera/{c}", name=c) for c in cameras]
                         or [rrb.TextLogView(origin="instruction", name="instruction")]),
            rrb.Vertical(rrb.Spatial3DView(origin="world", name="arm, chunk and executed tool path"),
                         rrb.TextLogView(name="instruction and diagnostics"), row_shares=[3, 1]),
            rrb.Vertical(
                rrb.Grid(*[rrb.TimeSeriesView(origin=f"joints/{j}", name=j) for j in JOINT_NAMES]),
                rrb.TimeSeriesView(origin="latency", name="policy latency, ms"),
                rrb.TimeSeriesView(origin="rates", name="rates, Hz (sim_rtf: ratio)"),
                row_shares=[3, 1, 1]),
            column_shares=[1, 2, 2]),
        collapse_panels=True)
