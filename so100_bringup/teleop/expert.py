"""Scripted expert for the sim pick-and-place task (no rclpy).

Given the cube position and the target area, it plans a timed joint-space trajectory with the
project's IK (`so100_description.ik`, pinocchio on the project's URDF): hover over the cube with
the jaws pointing down, descend, close, lift, carry over the target, lower, open, retreat.
Wrist roll is turned so the jaws close across two faces of the (axis-aligned) cube.

The plan is a list of `TrajectoryPoint`s, i.e. what a policy publishes: the ROS node sends it
as JointTrajectory messages and the recorder records it like any other commanded action;
`run_direct` executes it in the plain-Python sim through the same follower the sim node uses.

World frame = the arm's base_link frame (the sim puts base_link at the origin, table at z = 0).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from so100_bringup.control.follower import TrajectoryPoint
from so100_description.joints import ARM_JOINTS, JOINT_NAMES, LimitArrays

DOWN = np.array([0.0, 0.0, -1.0])


class PlanningError(RuntimeError):
    """The expert cannot reach a waypoint of the task (cube or target out of reach)."""


@dataclass(frozen=True)
class ExpertSettings:
    hover_m: float = 0.07  # tcp height above the cube centre before descending
    grasp_offset_m: float = 0.0  # tcp height relative to the cube centre when closing
    carry_m: float = 0.09  # cube-centre height while carrying
    release_clearance_m: float = 0.006  # cube bottom above the table when opening
    gripper_open: float = 1.0  # rad (upper limit 1.745 is wider than needed)
    gripper_closed: float = -0.1  # rad; the jaws stall on the cube before reaching it
    move_s: float = 1.4  # free-space moves
    descend_s: float = 0.9
    close_s: float = 0.5
    lift_s: float = 0.9
    carry_s: float = 1.4
    lower_s: float = 0.9
    open_s: float = 0.5
    retreat_s: float = 0.7
    home_s: float = 1.2
    # Pauses with the arm still. None after closing: a policy cannot tell the moments of a
    # pause apart (same image, same state), so one that re-plans often would wait there for
    # ever; the lift starts as the close ends (the jaws have stalled on the cube by then).
    grasp_settle_s: float = 0.0
    release_settle_s: float = 0.3  # after opening: the cube comes to rest before the retreat
    position_tolerance_m: float = 0.004  # IK miss allowed before planning fails
    # The tcp sits at the fixed jaw: the cube must lie towards the moving jaw, this far from
    # the tcp (cube half size + clearance).
    jaw_clearance_m: float = 0.005
    align_roll: bool = True


def _wrap(a: float, period: float) -> float:
    """a wrapped into [-period/2, period/2)."""
    return (a + period / 2) % period - period / 2


class PickPlaceExpert:
    def __init__(self, ik=None, settings: ExpertSettings | None = None, variant: str = "so101",
                 cube_size_m: float = 0.03, gripper_link: str = "gripper_link"):
        if ik is None:
            from so100_description.ik import PinocchioIK, project_urdf

            ik = PinocchioIK(project_urdf(variant), variant=variant)
        self.ik = ik
        self.s = settings or ExpertSettings()
        self.cube_half = cube_size_m / 2
        limits = LimitArrays.for_joints(JOINT_NAMES, variant)
        self.lower, self.upper = limits.lower, limits.upper
        self._roll_index = list(self.ik.joint_names).index("wrist_roll")
        self.gripper_link = gripper_link

    # -- kinematics helpers -------------------------------------------------------------------
    def _jaw_dir(self, q5: np.ndarray) -> np.ndarray:
        """Unit direction (world, in the table plane) from the fixed jaw towards the moving one:
        the x axis of the gripper link, where the moving jaw sits."""
        r = self.ik.frame_pose(self.gripper_link, q5)[:3, :3]
        axis = r[:, 0] - DOWN * (r[:, 0] @ DOWN)
        norm = float(np.linalg.norm(axis))
        return axis / norm if norm > 1e-9 else np.array([1.0, 0.0, 0.0])

    def _jaw_yaw(self, q5: np.ndarray) -> float:
        axis = self._jaw_dir(q5)
        return math.atan2(axis[1], axis[0])

    def _align_roll(self, q5: np.ndarray, cube_yaw: float) -> np.ndarray:
        """Turn wrist_roll so the jaws square up with the cube faces (90-degree symmetric)."""
        i = self._roll_index
        yaw = self._jaw_yaw(q5)
        probe = q5.copy()
        probe[i] += 0.1
        sign = 1.0 if _wrap(self._jaw_yaw(probe) - yaw, 2 * math.pi) > 0 else -1.0
        delta = _wrap(yaw - cube_yaw, math.pi / 2)
        out = q5.copy()
        roll = q5[i] - sign * delta
        lo, hi = self.ik.lower[i], self.ik.upper[i]
        for candidate in (roll, roll + math.pi / 2, roll - math.pi / 2, roll + math.pi, roll - math.pi):
            if lo <= candidate <= hi:
                out[i] = candidate
                break
        return out

    def _solve(self, xyz: Sequence[float], seed5: np.ndarray, what: str) -> np.ndarray:
        from so100_description.ik import IKTarget

        res = self.ik.solve(IKTarget(position=np.asarray(xyz, float), approach=DOWN), seed5, warn=False)
        if res.position_error > self.s.position_tolerance_m:
            raise PlanningError(f"{what} at {np.round(xyz, 3).tolist()} is out of reach "
                                f"({res.position_error * 1000:.1f} mm off)")
        return res.q

    # -- planning ---------------------------------------------------------------------------
    def plan(self, q_now: Sequence[float], cube_xyz: Sequence[float], target_xy: Sequence[float],
             cube_yaw: float = 0.0, home: Sequence[float] | None = None) -> list[TrajectoryPoint]:
        """Timed waypoints (JOINT_NAMES order, rad) from `q_now` through the whole task."""
        s = self.s
        q_now = np.asarray(q_now, float)
        if q_now.shape != (len(JOINT_NAMES),) or not np.all(np.isfinite(q_now)):
            raise ValueError(f"q_now must be {len(JOINT_NAMES)} finite joint positions")
        cube = np.asarray(cube_xyz, float)
        target = np.asarray(target_xy, float)
        arm = [JOINT_NAMES.index(j) for j in ARM_JOINTS]
        seed = q_now[arm]

        grasp_z = cube[2] + s.grasp_offset_m
        place_z = self.cube_half + s.release_clearance_m + s.grasp_offset_m
        carry_z = s.carry_m + s.grasp_offset_m
        hover = self._solve((cube[0], cube[1], grasp_z + s.hover_m), seed, "hover over the cube")
        if s.align_roll:
            hover = self._align_roll(hover, cube_yaw)
        roll = hover[self._roll_index]
        # Put the fixed jaw beside the cube, on the side away from the moving jaw.
        shift = -(self.cube_half + s.jaw_clearance_m) * self._jaw_dir(hover)
        gx, gy = cube[0] + shift[0], cube[1] + shift[1]
        hover = self._solve((gx, gy, grasp_z + s.hover_m), hover, "hover over the cube")
        hover[self._roll_index] = roll
        grasp = self._solve((gx, gy, grasp_z), hover, "grasp")
        grasp[self._roll_index] = roll
        lift = self._solve((gx, gy, carry_z), grasp, "lift")
        lift[self._roll_index] = roll
        # Carried, the cube centre sits between the jaws: half the shift from the tcp.
        tx, ty = target[0] + 0.5 * shift[0], target[1] + 0.5 * shift[1]
        over = self._solve((tx, ty, carry_z), lift, "carry over the target")
        lower = self._solve((tx, ty, place_z), over, "lower into the target")
        over[self._roll_index] = lower[self._roll_index] = lift[self._roll_index]
        retreat = self._solve((tx, ty, place_z + s.hover_m), lower, "retreat")
        retreat[self._roll_index] = lower[self._roll_index]
        home_q = np.asarray(home if home is not None else np.zeros(len(JOINT_NAMES)), float)

        o, c = s.gripper_open, s.gripper_closed
        steps = [(s.move_s, hover, o), (s.descend_s, grasp, o), (s.close_s, grasp, c), (s.grasp_settle_s, grasp, c),
                 (s.lift_s, lift, c), (s.carry_s, over, c), (s.lower_s, lower, c), (s.open_s, lower, o),
                 (s.release_settle_s, lower, o), (s.retreat_s, retreat, o)]
        points, t = [], 0.0
        for duration, q5, grip in steps:
            if duration <= 0:  # no pause: no repeated waypoint
                continue
            t += duration
            q = np.empty(len(JOINT_NAMES))
            q[arm] = q5
            q[JOINT_NAMES.index("gripper")] = grip
            points.append(TrajectoryPoint(time_from_start=t, positions=np.clip(q, self.lower, self.upper)))
        t += s.home_s
        points.append(TrajectoryPoint(time_from_start=t, positions=np.clip(home_q, self.lower, self.upper)))
        return points


def plan_duration(points: Sequence[TrajectoryPoint]) -> float:
    return float(points[-1].time_from_start) if points else 0.0


def run_direct(sim, expert: PickPlaceExpert, extra_s: float = 1.0) -> bool:
    """Execute the expert on a plain-Python `ArmSim` (no ROS, no rendering) from its current
    state; True when the sim reports task success at the end."""
    from so100_bringup.control.follower import TrajectoryFollower

    names = list(sim.joint_names)
    follower = TrajectoryFollower(names, sim.targets(), sim.lower, sim.upper)
    points = expert.plan(sim.joint_positions(), sim.cube_position(), sim.target_position()[:2])
    start = sim.time
    follower.set_trajectory(names, points, start, start)
    end = start + plan_duration(points) + extra_s
    while sim.time < end:
        target, _ = follower.sample(sim.time)
        sim.set_targets(target)
        sim.step()
    return sim.task_success()
