"""Inverse kinematics for the 5-DOF SO-100 / SO-101 arm (no rclpy import).

A 5-DOF arm cannot reach an arbitrary 6-D pose: for a given tool position the approach
direction (where the jaws point) can only pitch in the arm's vertical plane, and the roll
about it is the wrist_roll joint. Targets are therefore *position first, orientation second*:

- the tool position (3 constraints) comes first;
- an approach direction, or a full rotation, is weighted below it and finished by a
  position-only polish, so it never costs position accuracy and is met as well as the
  kinematics allow (exactly when the target came from the arm's own forward kinematics).

Solvers are seeded from the current joint state, respect joint limits, and can bound the
per-joint step from the seed (`max_step`): an unreachable target then yields the best pose
reachable within that box plus a warning, never a jump.

`PinocchioIK` is a Levenberg-Marquardt solver on the project's URDF (pinocchio), started from the
closed-form solution of the arm's pan + planar-triangle geometry (measured on the model) when no
step bound is given. It implements `IKSolver`, as does the MoveIt backend in
`so100_description.moveit.ik` (a ROS 2 machine with moveit_py; the ROS layer chooses between the
two). docs/moveit.md has the design and measured figures.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Iterator, NamedTuple, Protocol, Sequence

import numpy as np

from so100_description.joints import ARM_JOINTS, LimitArrays

LOG = logging.getLogger(__name__)

DEFAULT_TIP_FRAME = "tcp"
DEFAULT_BASE_FRAME = "base_link"


@dataclass(frozen=True)
class IKTarget:
    """A tool target in the base frame. `approach` and `rotation` are mutually exclusive."""

    position: np.ndarray  # (3,) m
    approach: np.ndarray | None = None  # (3,) direction the jaws point (normalised here)
    rotation: np.ndarray | None = None  # (3, 3) full tool orientation, met as far as 5 DOF allow

    def __post_init__(self) -> None:
        pos = np.asarray(self.position, dtype=float).reshape(-1)
        if pos.shape != (3,) or not np.all(np.isfinite(pos)):
            raise ValueError(f"IK target position must be 3 finite numbers, got {self.position!r}")
        object.__setattr__(self, "position", pos)
        if self.approach is not None and self.rotation is not None:
            raise ValueError("give either an approach direction or a rotation, not both")
        if self.approach is not None:
            a = np.asarray(self.approach, dtype=float).reshape(-1)
            norm = float(np.linalg.norm(a)) if a.shape == (3,) else 0.0
            if not np.isfinite(norm) or norm < 1e-9:
                raise ValueError(f"IK approach must be a non-zero 3-vector, got {self.approach!r}")
            object.__setattr__(self, "approach", a / norm)
        if self.rotation is not None:
            r = np.asarray(self.rotation, dtype=float)
            if r.shape != (3, 3) or not np.all(np.isfinite(r)):
                raise ValueError("IK target rotation must be a finite 3x3 matrix")
            if np.abs(r.T @ r - np.eye(3)).max() > 1e-9:
                u, _, vt = np.linalg.svd(r)  # re-orthonormalise (policies output approximate rotations)
                r = u @ vt
            if np.linalg.det(r) < 0:
                raise ValueError("IK target rotation is a reflection, not a rotation")
            object.__setattr__(self, "rotation", r)


@dataclass
class IKResult:
    q: np.ndarray  # (5,) rad, in the solver's `joint_names` order (ARM_JOINTS)
    position_error: float  # m, |target - achieved|
    approach_error: float  # rad, angle between target and achieved approach (0 when not asked)
    rotation_error: float  # rad, geodesic angle to the target rotation (0 when not asked)
    reached: bool  # position (and approach, when asked) within tolerance
    step_limited: bool = False  # the max_step box was active at the solution
    message: str = ""
    iterations: int = 0


class IKSolver(Protocol):
    joint_names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    approach_axis: np.ndarray  # the tool's approach direction in the tip frame

    def fk(self, q: Sequence[float]) -> np.ndarray: ...  # 4x4 tip pose in the base frame

    def solve(self, target: IKTarget, seed: Sequence[float],
              max_step: float | Sequence[float] | None = None, warn: bool = True) -> IKResult: ...

    def solve_path(self, targets: Sequence[IKTarget], seed: Sequence[float],
                   max_step: float | Sequence[float] | None = None) -> list[IKResult]: ...

    def frame_pose(self, frame: str, q: Sequence[float]) -> np.ndarray: ...  # 4x4 in the base frame


def approach_of(pose: np.ndarray, approach_axis: np.ndarray) -> np.ndarray:
    return pose[:3, :3] @ approach_axis


def _angle_between(a: np.ndarray, b: np.ndarray) -> float:
    (ax, ay, az), (bx, by, bz) = a.tolist(), b.tolist()  # floats: np.cross costs ~20 us
    cx, cy, cz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
    return math.atan2(math.sqrt(cx * cx + cy * cy + cz * cz), ax * bx + ay * by + az * bz)


def _rotation_angle(r: np.ndarray) -> float:
    return float(np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)))


def _rotation_log(r: np.ndarray) -> np.ndarray:
    """so(3) log of a rotation matrix (axis * angle), robust near 0 and pi."""
    angle = _rotation_angle(r)
    if angle < 1e-9:
        return np.zeros(3)
    if np.pi - angle < 1e-6:
        # axis from the symmetric part: R = I + 2 n n^T - ... at pi
        m = (r + np.eye(3)) / 2.0
        n = m[:, int(np.argmax(np.diag(m)))]
        return n / np.linalg.norm(n) * angle
    w = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    return w * (angle / (2.0 * np.sin(angle)))


def _wrap(angle: float) -> float:
    """angle in [-pi, pi)."""
    return (float(angle) + math.pi) % (2.0 * math.pi) - math.pi


def _skew(v: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def _lm_step(jac: np.ndarray, r: np.ndarray, lam: float, eye: np.ndarray) -> np.ndarray:
    """Levenberg-Marquardt step with Marquardt's diagonal scaling: (J'J + lam (I + diag J'J)) dq = -J'r."""
    a = jac.T @ jac
    d = np.einsum("ii->i", a)  # a view of the diagonal
    d *= 1.0 + lam
    d += lam
    return -np.linalg.solve(a, jac.T @ r)


def _damped_pinv(j: np.ndarray, damping: float) -> np.ndarray:
    return j.T @ np.linalg.inv(j @ j.T + (damping ** 2) * np.eye(j.shape[0]))


Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class PlanarArm:
    """The arm as a pan joint carrying a planar chain, measured on the model at q = 0 in the
    base frame: shoulder_lift, elbow_flex and wrist_flex turn about axes parallel to `normal`
    (the arm plane's normal at pan 0), wrist_roll about an axis inside that plane. 2-D vectors
    are plane coordinates along (`forward`, `pan_axis`). Built by `PinocchioIK` from the URDF, so
    the SO-100's and the SO-101's different link lengths and offsets come from their models.
    Plain floats: the closed form runs on every cold solve and numpy's per-call overhead on
    3-vectors would dominate it."""

    pan_origin: Vec3  # a point on the pan axis
    pan_axis: Vec3  # unit; positive pan turns the arm about it
    normal: Vec3  # unit, the shoulder_lift axis at pan 0
    forward: Vec3  # unit, pan_axis x normal: "out along the arm" in the plane
    signs: tuple[float, float, float]  # +-1: lift, elbow and wrist_flex axes relative to `normal`
    shoulder: tuple[float, float]  # shoulder_lift joint relative to pan_origin
    upper_arm: tuple[float, float]  # shoulder_lift -> elbow_flex
    forearm: tuple[float, float]  # elbow_flex -> wrist_flex
    wrist: Vec3  # wrist_flex joint position
    tcp_terms: tuple[Vec3, Vec3, Vec3]  # tcp(roll) = t0 + cos(roll) t1 + sin(roll) t2, others 0
    approach_angle: float  # plane angle of the approach direction at q = 0
    roll_axis_tip: np.ndarray  # (3,) the wrist_roll axis in the tip frame

    def tcp_at_roll(self, roll: float) -> Vec3:
        c, s = math.cos(roll), math.sin(roll)
        t0, t1, t2 = self.tcp_terms
        return (t0[0] + c * t1[0] + s * t2[0], t0[1] + c * t1[1] + s * t2[1],
                t0[2] + c * t1[2] + s * t2[2])


class _ClosedForm(NamedTuple):
    q: list[float]  # [pan, lift, elbow, wrist_flex, roll], wrapped to [-pi, pi)
    feasible: bool  # the lift/elbow triangle closes (the wrist point is within reach)
    branch: int  # 2 * (reaching backwards) + (elbow bent the other way)
    pitch: float  # plane angle of the tool relative to q = 0
    off_plane: float  # sine of the target approach's angle out of this pan's arm plane


def _dot3(a: Sequence[float], b: Sequence[float]) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _two_link(gx: float, gy: float, first: tuple[float, float], second: tuple[float, float],
              bend: float) -> tuple[float, float, bool]:
    """Planar angles (a1, a2) with rot(a1) (first + rot(a2) second) = (gx, gy); `bend` +-1 picks
    the branch (elbow up/down). Out of reach: stretched (or folded) towards the goal, False."""
    l1, l2 = math.hypot(*first), math.hypot(*second)
    c = (gx * gx + gy * gy - l1 * l1 - l2 * l2) / (2.0 * l1 * l2)
    feasible = -1.0 <= c <= 1.0
    between = bend * math.acos(min(1.0, max(-1.0, c)))  # angle from first to second
    a2 = between - (math.atan2(second[1], second[0]) - math.atan2(first[1], first[0]))
    ca, sa = math.cos(a2), math.sin(a2)
    kx, ky = first[0] + ca * second[0] - sa * second[1], first[1] + sa * second[0] + ca * second[1]
    return math.atan2(gy, gx) - math.atan2(ky, kx), a2, feasible


@dataclass
class SolverSettings:
    position_tolerance: float = 1e-3  # m: success threshold reported in IKResult.reached
    approach_tolerance: float = np.deg2rad(1.0)  # rad
    max_iterations: int = 100
    restarts: int = 8  # random seeds after the structured ones when the seeded solve fails
    restarts_in_box: int = 2  # random seeds inside the step box (max_step given)
    damping: float = 1e-5  # initial Levenberg-Marquardt damping (adapted: x4 on failure, /3 on success)
    orientation_weight: float = 0.1  # m per rad: 1 deg of approach error weighs like 1.7 mm
    first_pass_weight_ratio: float = 0.05  # light orientation weight of the first pass
    first_pass_iterations: int = 30
    polish_iterations: int = 20  # position-only steps when the orientation cannot be met
    polish_damping: float = 0.01
    max_iteration_step: float = 0.4  # rad per iteration: keeps Newton steps in the linear range
    # (shoulder_lift, elbow_flex) shapes tried with the target's pan angle before random restarts
    restart_postures: tuple[tuple[float, float], ...] = ((-1.0, 1.0), (1.0, -1.0), (-1.0, -1.0),
                                                         (1.0, 1.0))
    seed: int = 0  # RNG seed for restarts (deterministic results)
    converge_position: float = 1e-5  # m: stop iterating below these
    converge_angle: float = 1e-4  # rad
    # relative cost decrease per step below which a (best-reachable) minimum is declared:
    # unreachable targets otherwise crawl along flat valleys for micrometres
    converge_relative: float = 1e-6
    # Where an unbounded solve starts: "geometric" = the closed-form solution of the arm's
    # pan + planar-triangle geometry (derived from the model), refined by the LM below;
    # "seed" = the given seed, then the structured/random restarts (the original scheme, kept
    # as the benchmark baseline and as the fallback when the model is not a pan + planar arm).
    initial_guess: str = "geometric"


class PinocchioIK:
    """Levenberg-Marquardt IK on a pinocchio model of the project's URDF (gripper locked).

    Residual: tool position (m) and, weighted by `orientation_weight`, the approach direction or
    the full rotation; a final position-only polish keeps position first when the orientation is
    out of reach. Joint limits and the optional step box around the seed are enforced by
    projection with an active set.

    Starts: without a step box (`initial_guess="geometric"`, the default) the closed-form
    solutions of the pan + planar chain (`planar_arm`, measured on the URDF: every elbow and
    reach-over branch within the limits, the one nearest the seed first) need one or two
    refining iterations; with a step box (chunk following) the seed itself comes first. A failed
    start is retried from the other branches, the seed, then structured and random starts inside
    the same box; the best result (reached first, then closest to the seed) wins.
    `initial_guess="seed"` is the original seed-first scheme (benchmark baseline).
    Deterministic for a given call. Not thread-safe: one instance per thread (pinocchio Data).
    """

    def __init__(self, urdf_xml: str, tip_frame: str = DEFAULT_TIP_FRAME,
                 base_frame: str = DEFAULT_BASE_FRAME, joint_names: Sequence[str] = ARM_JOINTS,
                 variant: str = "so101", prefix: str = "",
                 settings: SolverSettings | None = None,
                 approach_axis: Sequence[float] | None = None) -> None:
        import pinocchio as pin

        self._pin = pin
        self.settings = settings or SolverSettings()
        full = pin.buildModelFromXML(urdf_xml)
        self.joint_names = tuple(joint_names)
        self._prefix = prefix
        wanted = [prefix + j for j in self.joint_names]
        missing = [j for j in wanted if not full.existJointName(j)]
        if missing:
            raise ValueError(f"URDF has no joint(s) {missing}; joints: {list(full.names)[1:]}")
        # Lock every joint that is not an arm joint (the gripper) at its neutral position.
        locked = [full.getJointId(n) for n in full.names[1:] if n not in wanted]
        self.model = pin.buildReducedModel(full, locked, pin.neutral(full)) if locked else full
        self.data = self.model.createData()
        self._eye = np.eye(len(self.joint_names))
        self._max_geometric_starts = 8  # all branches of an approach target; position only: best 8
        self._pitch_sweep = tuple(np.linspace(-np.pi, np.pi, 16, endpoint=False).tolist())
        for name in (tip_frame, base_frame):
            if not self.model.existFrame(prefix + name):
                raise ValueError(f"URDF has no frame {prefix + name!r}")
        self.tip_id = self.model.getFrameId(prefix + tip_frame)
        self.base_id = self.model.getFrameId(prefix + base_frame)
        # Map our joint order onto pinocchio's configuration vector (all revolute: nq == nv == 5).
        self._idx = np.array([self.model.joints[self.model.getJointId(j)].idx_q for j in wanted])
        self._natural_order = self.model.nq == len(wanted) and bool(np.all(self._idx == np.arange(len(wanted))))
        limits = LimitArrays.for_joints(self.joint_names, variant)
        lower, upper = limits.lower, limits.upper
        # The tighter of the URDF's and joint_limits.yaml's limits (they should be identical).
        self.lower = np.maximum(lower, self.model.lowerPositionLimit[self._idx])
        self.upper = np.minimum(upper, self.model.upperPositionLimit[self._idx])
        self.approach_axis = (np.asarray(approach_axis, dtype=float) / np.linalg.norm(approach_axis)
                              if approach_axis is not None else self._derive_approach_axis(wanted[-1]))
        self._base_is_world = False
        base0, _ = self._placements(np.zeros(len(self.joint_names)))
        self._base_is_world = bool(self.model.frames[self.base_id].parentJoint == 0 and
                                   np.allclose(base0.homogeneous, np.eye(4)))
        self._pan_offset, self._pan_sign = self._pan_azimuth_map()
        self._reach_center, self._max_reach = self._reach()
        if self.settings.initial_guess not in ("geometric", "seed"):
            raise ValueError(f"initial_guess must be 'geometric' or 'seed', "
                             f"got {self.settings.initial_guess!r}")
        self.planar_arm = self._derive_planar_arm()
        if self.planar_arm is None and self.settings.initial_guess == "geometric":
            LOG.info("IK: the model is not a pan joint + planar chain + roll; geometric seeds off")

    # -- kinematics -------------------------------------------------------------------------
    def _to_pin(self, q: np.ndarray) -> np.ndarray:
        if self._natural_order:
            return q
        qp = np.zeros(self.model.nq)
        qp[self._idx] = q
        return qp

    def _placements(self, q: np.ndarray):
        pin = self._pin
        pin.framesForwardKinematics(self.model, self.data, self._to_pin(q))
        return self.data.oMf[self.base_id], self.data.oMf[self.tip_id]

    def fk(self, q: Sequence[float]) -> np.ndarray:
        base, tip = self._placements(np.asarray(q, dtype=float))
        return (base.actInv(tip)).homogeneous

    def _derive_approach_axis(self, roll_joint: str) -> np.ndarray:
        """The jaws point along the wrist_roll axis, away from the wrist: that axis in the tip
        frame (the angular column of the tip's LOCAL Jacobian for that joint)."""
        pin = self._pin
        qp = self._to_pin(np.zeros(len(self.joint_names)))
        pin.computeJointJacobians(self.model, self.data, qp)
        pin.updateFramePlacements(self.model, self.data)
        jac = pin.getFrameJacobian(self.model, self.data, self.tip_id, pin.LOCAL)
        col = self.model.joints[self.model.getJointId(roll_joint)].idx_v
        axis = np.array(jac[3:, col])
        tip = self.data.oMf[self.tip_id]
        joint = self.data.oMi[self.model.getJointId(roll_joint)]
        if np.dot(tip.rotation @ axis, tip.translation - joint.translation) < 0:
            axis = -axis
        return axis / np.linalg.norm(axis)

    def _pan_azimuth_map(self) -> tuple[float, float]:
        """azimuth(approach) = offset + sign * pan for the first (vertical, pan) joint, measured on
        the model: used to seed restarts with the pan angle that points the arm's plane at the
        target, the one joint a local solver cannot find from far away."""
        def azimuth(pan: float) -> float:
            q = np.zeros(len(self.joint_names))
            q[1] = 0.5  # lift a little: keeps the approach off the vertical
            q[0] = pan
            a = self.fk(q)[:3, :3] @ self.approach_axis
            return float(np.arctan2(a[1], a[0]))
        a0, a1 = azimuth(0.0), azimuth(0.1)
        sign = 1.0 if _wrap(a1 - a0) > 0 else -1.0
        return a0, sign

    def _worth_restarting(self, target: IKTarget, best: IKResult, boxed: bool) -> bool:
        """Restarts cost up to ~20 solves; skip them where they cannot help: a position beyond
        the arm's reach (the local solve already ends stretched towards it), or, inside a step
        box, a target whose position is met and only its orientation is out of reach."""
        if float(np.linalg.norm(target.position - self._reach_center)) > self._max_reach:
            return False
        return not (boxed and best.position_error <= self.settings.position_tolerance)

    def _reach(self, samples: int = 1000) -> tuple[np.ndarray, float]:
        """(pan-joint origin in the base frame, farthest tcp distance from it over random
        configurations, +2 %): targets farther away are out of reach."""
        rng = np.random.default_rng(0)
        self._pin.framesForwardKinematics(self.model, self.data, self._to_pin(np.zeros(len(self.joint_names))))
        base = self.data.oMf[self.base_id]
        center = base.actInv(self.data.oMi[self.model.getJointId(self._prefix + self.joint_names[0])]).translation
        far = max(float(np.linalg.norm(self.fk(rng.uniform(self.lower, self.upper))[:3, 3] - center))
                  for _ in range(samples))
        return np.array(center), far * 1.02

    def _candidate_seeds(self, target: IKTarget, seed: np.ndarray, lo: np.ndarray,
                         hi: np.ndarray, boxed: bool = False) -> list[np.ndarray]:
        """Restart seeds: the seed with pan turned towards the target (both ways round), then
        the same with other lift/elbow postures, then random configurations. Inside a step box
        (chunk following) only a few random ones: the structured seeds lie outside it."""
        rng = np.random.default_rng(self.settings.seed)  # same restarts for the same call
        if boxed:
            geometric = list(self._geometric_seeds(target, seed, lo, hi)) if (
                self.planar_arm is not None and self.settings.initial_guess == "geometric") else []
            return geometric + [rng.uniform(lo, hi) for _ in range(self.settings.restarts_in_box)]
        azimuths = [float(np.arctan2(target.position[1], target.position[0]))]
        direction = target.approach if target.approach is not None else (
            target.rotation @ self.approach_axis if target.rotation is not None else None)
        if direction is not None and np.hypot(direction[0], direction[1]) > 0.05:
            azimuths.insert(0, float(np.arctan2(direction[1], direction[0])))
        seeds: list[np.ndarray] = []
        mid = np.clip((self.lower + self.upper) / 2.0, lo, hi)
        pans = []
        for az in azimuths:
            for flip in (0.0, np.pi):
                pan = _wrap((az + flip - self._pan_offset) * self._pan_sign)
                if lo[0] <= pan <= hi[0] and all(abs(pan - p) > 0.05 for p in pans):
                    pans.append(pan)
        # postures: the seed's, then elbow-up/elbow-down/folded shapes of lift and elbow
        postures = [seed, mid]
        for lift, elbow in self.settings.restart_postures:
            posture = mid.copy()
            posture[1], posture[2] = lift, elbow
            postures.append(np.clip(posture, lo, hi))
        for posture in postures:
            for pan in pans:
                cand = posture.copy()
                cand[0] = pan
                seeds.append(np.clip(cand, lo, hi))
        seeds += [rng.uniform(lo, hi) for _ in range(self.settings.restarts)]
        return seeds

    # -- geometric (closed-form) starts -----------------------------------------------------
    def _derive_planar_arm(self, tol: float = 1e-3) -> PlanarArm | None:
        """Measure the pan + planar chain + roll structure on the model at q = 0, or None when
        the joints do not have it (then only the seed and the restarts are used)."""
        if len(self.joint_names) != 5:
            return None
        pin = self._pin
        pin.computeJointJacobians(self.model, self.data, self._to_pin(np.zeros(5)))
        pin.updateFramePlacements(self.model, self.data)
        jac = pin.getFrameJacobian(self.model, self.data, self.tip_id, pin.WORLD)
        base = self.data.oMf[self.base_id]
        rb, tb = base.rotation.T, base.translation.copy()
        jids = [self.model.getJointId(self._prefix + j) for j in self.joint_names]
        # a revolute joint's axis is its angular Jacobian column (WORLD: any reference point)
        axes = [rb @ np.array(jac[3:, self.model.joints[j].idx_v]) for j in jids]
        origins = [rb @ (self.data.oMi[j].translation - tb) for j in jids]
        if any(abs(float(np.linalg.norm(a)) - 1.0) > tol for a in axes):
            return None  # not all revolute
        u = axes[0] / np.linalg.norm(axes[0])
        n = axes[1] - float(axes[1] @ u) * u
        if float(np.linalg.norm(n)) < 1.0 - tol:
            return None  # lift axis not perpendicular to the pan axis
        n /= np.linalg.norm(n)
        if any(np.linalg.norm(np.cross(axes[i], n)) > tol for i in (2, 3)) or abs(axes[4] @ n) > tol:
            return None  # elbow/wrist_flex not parallel to the lift, or roll out of the plane
        h = np.cross(u, n)
        tip = self.data.oMf[self.tip_id]
        r_tip, p_tip = rb @ tip.rotation, rb @ (tip.translation - tb)
        approach = r_tip @ self.approach_axis
        if abs(float(approach @ n)) > tol:
            return None

        def plane(v: np.ndarray) -> tuple[float, float]:
            return float(h @ v), float(u @ v)

        def vec(v: np.ndarray) -> Vec3:
            return float(v[0]), float(v[1]), float(v[2])

        upper, fore = plane(origins[2] - origins[1]), plane(origins[3] - origins[2])
        if min(math.hypot(*upper), math.hypot(*fore)) < 1e-4:
            return None
        z5 = axes[4] / np.linalg.norm(axes[4])
        off = p_tip - origins[4]
        along = float(off @ z5) * z5
        perp = off - along  # the tcp's offset from the roll axis turns with wrist_roll
        return PlanarArm(pan_origin=vec(origins[0]), pan_axis=vec(u), normal=vec(n), forward=vec(h),
                         signs=(1.0, float(np.sign(axes[2] @ n)), float(np.sign(axes[3] @ n))),
                         shoulder=plane(origins[1] - origins[0]), upper_arm=upper, forearm=fore,
                         wrist=vec(origins[3]),
                         tcp_terms=(vec(origins[4] + along), vec(perp), vec(np.cross(z5, perp))),
                         approach_angle=math.atan2(float(u @ approach), float(h @ approach)),
                         roll_axis_tip=r_tip.T @ z5)

    def _arm_solutions(self, position: Vec3, direction: Vec3 | None, roll: float,
                       seed_pitch: float, pitches: Sequence[float] = ()) -> list[_ClosedForm]:
        """Closed-form solutions with wrist_roll at `roll`: pan turning the arm plane onto the
        target (reaching forwards, and backwards over the top), the plane pitch of the approach
        `direction` (position only: `pitches`, by default the seed's pitch and the pitch
        pointing the tool along the shoulder -> target line), both elbow branches."""
        g = self.planar_arm
        tcp = g.tcp_at_roll(roll)
        lateral = _dot3(g.normal, tcp) - _dot3(g.normal, g.pan_origin)  # tcp's offset from the plane
        tw = (tcp[0] - g.wrist[0], tcp[1] - g.wrist[1], tcp[2] - g.wrist[2])
        tool = (_dot3(g.forward, tw), _dot3(g.pan_axis, tw))  # wrist_flex -> tcp at q = 0
        rel = (position[0] - g.pan_origin[0], position[1] - g.pan_origin[1],
               position[2] - g.pan_origin[2])
        height, fx, nx = _dot3(g.pan_axis, rel), _dot3(g.forward, rel), _dot3(g.normal, rel)
        # azimuth about the pan axis in the basis (forward, pan_axis x forward = -normal)
        azimuth = math.atan2(-nx, fx)
        radial = math.sqrt(max(fx * fx + nx * nx - lateral * lateral, 0.0))
        sh, (s1, s2, s3) = g.shoulder, g.signs
        out: list[_ClosedForm] = []
        for reach, x in enumerate((radial, -radial)):
            pan = _wrap(azimuth - math.atan2(-lateral, x))
            off_plane = 0.0
            if direction is not None:
                cp, sp = math.cos(pan), math.sin(pan)
                d_h, d_n = _dot3(g.forward, direction), _dot3(g.normal, direction)
                # the direction in the turned plane (forward, pan_axis) and out of it (normal)
                plane_pitch = math.atan2(_dot3(g.pan_axis, direction), cp * d_h - sp * d_n)
                pitch_list: Sequence[float] = (plane_pitch - g.approach_angle,)
                off_plane = abs(cp * d_n + sp * d_h)
            elif pitches:
                pitch_list = pitches
            else:
                pitch_list = (seed_pitch, math.atan2(height - sh[1], x - sh[0]) - math.atan2(tool[1], tool[0]))
            for pitch in pitch_list:
                cb, sb = math.cos(pitch), math.sin(pitch)
                gx = x - (cb * tool[0] - sb * tool[1]) - sh[0]  # where wrist_flex must be
                gy = height - (sb * tool[0] + cb * tool[1]) - sh[1]
                for elbow, bend in enumerate((1.0, -1.0)):
                    a1, a2, feasible = _two_link(gx, gy, g.upper_arm, g.forearm, bend)
                    q = [pan, _wrap(a1 * s1), _wrap(a2 * s2), _wrap((pitch - a1 - a2) * s3), roll]
                    out.append(_ClosedForm(q, feasible, 2 * reach + elbow, pitch, off_plane))
        return out

    def _roll_for(self, q: list[float], rotation: np.ndarray) -> float:
        """wrist_roll turning the tool at q (roll 0) closest to `rotation`: the twist of
        R(q)^T R_target about the roll axis (swing-twist decomposition)."""
        m = (self.fk(np.array(q[:4] + [0.0]))[:3, :3].T @ rotation).tolist()
        kx, ky, kz = self.planar_arm.roll_axis_tip.tolist()
        sin_part = 0.5 * (kx * (m[2][1] - m[1][2]) + ky * (m[0][2] - m[2][0]) + kz * (m[1][0] - m[0][1]))
        k_m_k = sum(k1 * m[a][b] * k2 for a, k1 in enumerate((kx, ky, kz))
                    for b, k2 in enumerate((kx, ky, kz)))
        return math.atan2(sin_part, 0.5 * (m[0][0] + m[1][1] + m[2][2] - k_m_k))

    def _geometric_seeds(self, target: IKTarget, seed: np.ndarray, lo: np.ndarray,
                         hi: np.ndarray) -> Iterator[np.ndarray]:
        """Closed-form starts inside [lo, hi]: exact ones within the limits first (the most
        accurate, then the branch nearest the seed: the one closest to the current state), then
        clipped ones, least clipped first."""
        g = self.planar_arm
        direction = target.approach if target.approach is not None else (
            target.rotation @ self.approach_axis if target.rotation is not None else None)
        position = tuple(target.position.tolist())
        dir3 = tuple(direction.tolist()) if direction is not None else None
        seed_l = seed.tolist()
        seed_pitch = g.signs[0] * seed_l[1] + g.signs[1] * seed_l[2] + g.signs[2] * seed_l[3]
        sols = self._arm_solutions(position, dir3, seed_l[4], seed_pitch)
        if target.rotation is not None:
            off_axis = any(abs(v) > 1e-7 for v in g.tcp_terms[1])
            rolls: dict[int, float] = {}  # both elbow branches share pan and pitch: one roll
            for i, c in enumerate(sols):
                if c.branch // 2 not in rolls:
                    rolls[c.branch // 2] = _wrap(self._roll_for(c.q, target.rotation))
                roll = rolls[c.branch // 2]
                if off_axis:  # the tcp moves with roll: this branch again at the new roll
                    c = self._arm_solutions(position, dir3, roll, seed_pitch)[i]
                c.q[4] = roll
                sols[i] = c
        lo_l, hi_l = lo.tolist(), hi.tolist()

        def excess(c: _ClosedForm) -> float:
            """How far outside the limits (rad; +1 when the triangle does not close)."""
            worst = 0.0 if c.feasible else 1.0
            for v, a, b in zip(c.q, lo_l, hi_l):
                if v < a:
                    worst = max(worst, a - v + (0.0 if c.feasible else 1.0))
                elif v > b:
                    worst = max(worst, v - b + (0.0 if c.feasible else 1.0))
            return worst

        scored = [(excess(c), c) for c in sols]
        if direction is None and min(e for e, _ in scored) > 1e-9:
            # position only, and neither pitch fits the limits: try pitches all round, then
            # narrow down the pitch of the two least clipped branches (the window can be small)
            sweep = [(excess(c), c) for c in
                     self._arm_solutions(position, None, seed_l[4], seed_pitch, self._pitch_sweep)]
            sweep.sort(key=lambda t: t[0])
            scored += sweep[:self._max_geometric_starts]
            if sweep[0][0] > 1e-9:
                for e, c in sweep[:2]:
                    refined = self._refine_pitch(position, seed_l[4], c, excess)
                    scored.append((excess(refined), refined))

        def distance(q: list[float]) -> float:
            return sum((v - w) ** 2 for v, w in zip(q, seed_l))

        exact = [c for e, c in scored if e <= 1e-9]
        if exact:
            # the nearest to the seed (no needless reconfiguration) among those that can meet
            # the approach within tolerance; the others by how far out of their plane it is
            tol = math.sin(self.settings.approach_tolerance)
            exact.sort(key=lambda c: (c.off_plane if c.off_plane > tol else 0.0, distance(c.q)))
            clipped = sorted((t for t in scored if t[0] > 1e-9), key=lambda t: t[0])
            ordered = [c.q for c in exact] + [c.q for _, c in clipped]
        else:
            ordered = [c.q for _, c in sorted(scored, key=lambda t: t[0])]
        seen: list[list[float]] = []
        for q in ordered:  # lazily: the first start usually suffices
            q = [min(max(v, a), b) for v, a, b in zip(q, lo_l, hi_l)]
            if all(max(abs(v - w) for v, w in zip(q, other)) > 1e-6 for other in seen):
                seen.append(q)
                yield np.array(q)
                if len(seen) == self._max_geometric_starts:
                    return

    def geometric_starts(self, target: IKTarget, seed: Sequence[float] | None = None) -> list[np.ndarray]:
        """The closed-form configurations (within the joint limits) an unbounded solve refines,
        best first: exact ones within the limits nearest `seed` (default zeros) first, then
        clipped ones. Exact when the target is reachable with the requested approach (e.g. it
        came from this arm's FK). Empty when the model is not a pan + planar chain + roll."""
        if self.planar_arm is None:
            return []
        seed_a = np.zeros(len(self.joint_names)) if seed is None else np.clip(
            np.asarray(seed, dtype=float).reshape(-1), self.lower, self.upper)
        return list(self._geometric_seeds(target, seed_a, self.lower, self.upper))

    def _refine_pitch(self, position: Vec3, roll: float, start: _ClosedForm, excess) -> _ClosedForm:
        """Golden-section search of the plane pitch (one sweep step either side) minimising how
        far `start`'s branch lies outside the joint limits."""
        step = 2.0 * math.pi / len(self._pitch_sweep)
        a, b = start.pitch - step, start.pitch + step
        best, best_e = start, excess(start)
        ratio = (math.sqrt(5.0) - 1.0) / 2.0
        at = {}

        def evaluate(p: float) -> float:
            nonlocal best, best_e
            c = self._arm_solutions(position, None, roll, 0.0, (p,))[start.branch]
            e = excess(c)
            if e < best_e:
                best, best_e = c, e
            at[p] = e
            return e

        x1, x2 = b - ratio * (b - a), a + ratio * (b - a)
        f1, f2 = evaluate(x1), evaluate(x2)
        for _ in range(6):
            if best_e <= 1e-9:
                break
            if f1 < f2:
                b, x2, f2 = x2, x1, f1
                x1 = b - ratio * (b - a)
                f1 = evaluate(x1)
            else:
                a, x1, f1 = x1, x2, f2
                x2 = a + ratio * (b - a)
                f2 = evaluate(x2)
        return best

    def _jacobians(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(tip rotation, tip position, 6x5 Jacobian in base-frame axes at the tip), copies."""
        pin = self._pin
        # one call: forward kinematics, the tip's placement and its Jacobian
        jac = pin.computeFrameJacobian(self.model, self.data, self._to_pin(q), self.tip_id,
                                       pin.LOCAL_WORLD_ALIGNED)
        if not self._natural_order:
            jac = jac[:, self._idx]
        if self._base_is_world:  # base_link is the URDF root: no change of frame
            tip = self.data.oMf[self.tip_id]  # a reference into Data: copy what we keep
            return tip.rotation.copy(), tip.translation.copy(), jac
        pin.updateFramePlacement(self.model, self.data, self.base_id)
        base = self.data.oMf[self.base_id]
        rb = base.rotation.T
        pose = base.actInv(self.data.oMf[self.tip_id])
        return pose.rotation.copy(), pose.translation.copy(), np.vstack([rb @ jac[:3], rb @ jac[3:]])

    # -- solving ----------------------------------------------------------------------------
    def _errors(self, rot: np.ndarray, pos: np.ndarray, target: IKTarget) -> tuple[float, float, float]:
        e = target.position - pos
        pos_err = math.sqrt(float(e @ e))
        app_err = rot_err = 0.0
        if target.approach is not None:
            app_err = _angle_between(rot @ self.approach_axis, target.approach)
        if target.rotation is not None:
            rot_err = _rotation_angle(rot.T @ target.rotation)
            app_err = _angle_between(rot @ self.approach_axis, target.rotation @ self.approach_axis)
        return pos_err, app_err, rot_err

    def _residual(self, q: np.ndarray, target: IKTarget, w: float):
        """Weighted residual r(q) (position in m; orientation in rad times `w`), its Jacobian
        (both in base-frame axes), and the tip's rotation and position at q."""
        rot, pos, jac = self._jacobians(q)
        if target.approach is not None:
            a = rot @ self.approach_axis
            r = np.concatenate([pos - target.position, w * (a - target.approach)])
            return r, np.vstack([jac[:3], -w * _skew(a) @ jac[3:]]), rot, pos  # da/dq = -[a]x J_omega
        if target.rotation is not None:
            e = rot @ _rotation_log(target.rotation.T @ rot)
            # first order: the log's derivative is J_omega
            return np.concatenate([pos - target.position, w * e]), np.vstack([jac[:3], w * jac[3:]]), rot, pos
        return pos - target.position, jac[:3], rot, pos

    def _iterate(self, target: IKTarget, q0: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 two_pass: bool = True):
        """Two weightings of projected Levenberg-Marquardt, then a position polish; returns
        (q, iterations, tip rotation, tip position).

        The approach direction of a 5-DOF arm is badly conditioned (its azimuth follows the
        pan joint; only wrist_roll's few-mm tool offset changes it independently), so a first
        pass with a light orientation weight settles the position and pitch, and the second
        pass with the full weight fixes the rest from that basin. If the orientation could not
        be met, minimal-norm position-only steps finish: position always comes first.
        """
        s = self.settings
        q = np.clip(q0, lo, hi)
        it = 0
        if two_pass and (target.approach is not None or target.rotation is not None):
            q, it, _, _, _ = self._lm(target, q, lo, hi, s.orientation_weight * s.first_pass_weight_ratio,
                                      s.first_pass_iterations)
        q, it2, rot, pos, jac = self._lm(target, q, lo, hi, s.orientation_weight, s.max_iterations)
        it += it2
        if target.approach is not None or target.rotation is not None:
            e = target.position - pos
            tol2 = s.converge_position ** 2
            for _ in range(s.polish_iterations):
                e2 = float(e @ e)
                if e2 < tol2:
                    break
                # damped (near the stretched-out singularity plain steps are huge) and only
                # while the position error falls: no drifting along an unreachable direction
                q_new = np.clip(q + _damped_pinv(jac[:3], s.polish_damping) @ e, lo, hi)
                rot_new, pos_new, jac_new = self._jacobians(q_new)
                e_new = target.position - pos_new
                if math.sqrt(float(e_new @ e_new)) >= math.sqrt(e2) - 1e-7:
                    break
                q, e, jac, rot, pos = q_new, e_new, jac_new, rot_new, pos_new
                it += 1
        return q, it, rot, pos

    def _lm(self, target: IKTarget, q: np.ndarray, lo: np.ndarray, hi: np.ndarray, w: float,
            iterations: int):
        """Projected LM; returns (q, iterations, tip rotation, tip position, residual Jacobian)
        at the final q (its first three rows, the position Jacobian, serve the polish)."""
        s = self.settings
        r, jac, rot, pos = self._residual(q, target, w)
        cost = float(r @ r)
        lam = s.damping
        it = 0
        eye = self._eye
        pos_tol2, ang_tol2 = s.converge_position ** 2, (s.converge_angle * w) ** 2
        for it in range(1, iterations + 1):
            rp = r[:3]
            if float(rp @ rp) < pos_tol2 and (len(r) == 3 or cost - float(rp @ rp) < ang_tol2):
                break
            dq = _lm_step(jac, r, lam, eye)
            # Active set: joints resting on a bound and pushed outwards are frozen and the step
            # re-solved without them (plain clipping would stall the descent at the limits).
            blocked = ((q <= lo + 1e-12) & (dq < 0)) | ((q >= hi - 1e-12) & (dq > 0))
            if blocked.any():
                free = ~blocked
                dq = np.zeros_like(q)
                if free.any():
                    dq[free] = _lm_step(jac[:, free], r, lam, eye[np.ix_(free, free)])
            step = float(np.abs(dq).max())
            if step > s.max_iteration_step:
                dq *= s.max_iteration_step / step
            q_new = np.clip(q + dq, lo, hi)
            moved = q_new - q
            if float(np.abs(moved).max()) < 1e-10:
                break  # every useful direction is blocked by a limit or the step box
            if np.array_equal(moved, dq):
                # unclipped step: when even the linear model promises no real decrease, this is
                # a (best-reachable) minimum; more damping would only shorten the step
                lin = r + jac @ dq
                if cost - float(lin @ lin) <= s.converge_relative * cost + 1e-16:
                    break
            r_new, jac_new, rot_new, pos_new = self._residual(q_new, target, w)
            cost_new = float(r_new @ r_new)
            if cost_new < cost:
                converged = cost - cost_new < s.converge_relative * cost + 1e-16
                q, r, jac, cost, rot, pos = q_new, r_new, jac_new, cost_new, rot_new, pos_new
                lam = max(lam / 3.0, 1e-9)
                if converged:  # a (best-reachable) minimum: no further progress to make
                    break
            else:
                lam *= 4.0
                if lam > 1e4:  # no descent direction left inside the box: a local optimum
                    break
        return q, it, rot, pos, jac

    def _result(self, target: IKTarget, q: np.ndarray, it: int, lo: np.ndarray, hi: np.ndarray,
                box_active: bool, rot: np.ndarray | None = None,
                pos: np.ndarray | None = None) -> IKResult:
        """The result at q; `rot`, `pos`: the tip pose at q when the caller has it already."""
        if rot is None or pos is None:
            base, tip = self._placements(q)
            pose = base.actInv(tip)
            rot, pos = pose.rotation.copy(), pose.translation.copy()
        pos_err, app_err, rot_err = self._errors(rot, pos, target)
        s = self.settings
        reached = pos_err <= s.position_tolerance and (
            (target.approach is None and target.rotation is None) or app_err <= s.approach_tolerance)
        limited = box_active and bool(np.any(((q <= lo + 1e-9) & (lo > self.lower))
                                             | ((q >= hi - 1e-9) & (hi < self.upper))))
        return IKResult(q=q, position_error=pos_err, approach_error=app_err, rotation_error=rot_err,
                        reached=reached, step_limited=limited, iterations=it)

    def _step_box(self, seed: np.ndarray, max_step) -> tuple[np.ndarray, np.ndarray, bool]:
        if max_step is None:
            return self.lower.copy(), self.upper.copy(), False
        step = np.broadcast_to(np.asarray(max_step, dtype=float), seed.shape)
        if np.any(step < 0) or not np.all(np.isfinite(step)):
            raise ValueError(f"max_step must be finite and >= 0, got {max_step!r}")
        return np.maximum(self.lower, seed - step), np.minimum(self.upper, seed + step), True

    def solve(self, target: IKTarget, seed: Sequence[float],
              max_step: float | Sequence[float] | None = None, warn: bool = True) -> IKResult:
        """Joint positions reaching `target`, starting from `seed` (the current joint state).

        max_step: per-joint bound (rad, scalar or one per joint) on |q - seed|; None: only the
        joint limits. Unreachable targets give the best reachable pose, reached=False and a
        warning (suppress with warn=False, e.g. when a caller summarises a chunk).
        """
        seed = np.asarray(seed, dtype=float).reshape(-1)
        if seed.shape != (len(self.joint_names),) or not np.all(np.isfinite(seed)):
            raise ValueError(f"IK seed must be {len(self.joint_names)} finite joint positions "
                             f"({', '.join(self.joint_names)}), got {seed!r}")
        seed = np.clip(seed, self.lower, self.upper)
        lo, hi, boxed = self._step_box(seed, max_step)
        best = None
        if not boxed and self.planar_arm is not None and self.settings.initial_guess == "geometric":
            # No step box: start from the closed-form solutions (the branch nearest the seed
            # first); each needs only a few refining iterations.
            for start in self._geometric_seeds(target, seed, lo, hi):
                q, it, rot, pos = self._iterate(target, start, lo, hi, two_pass=False)
                cand = self._result(target, q, it, lo, hi, boxed, rot, pos)
                if best is None or _better(cand, best, seed):
                    best = cand
                if best.reached:
                    break
        if best is None or not best.reached:
            # From the seed: one full-weight pass (the seed is usually close: the previous point
            # of a chunk or the current state); restarts use the two-pass scheme.
            q, it, rot, pos = self._iterate(target, seed, lo, hi, two_pass=False)
            cand = self._result(target, q, it, lo, hi, boxed, rot, pos)
            if best is None or _better(cand, best, seed):
                best = cand
        # Restarts: not when the step box binds (the target lies beyond it: other starts inside
        # the box cannot get closer) nor for positions beyond the arm's reach.
        if not best.reached and not best.step_limited and self._worth_restarting(target, best, boxed):
            for start in self._candidate_seeds(target, seed, lo, hi, boxed):
                q, it, rot, pos = self._iterate(target, start, lo, hi)
                cand = self._result(target, q, it, lo, hi, boxed, rot, pos)
                if _better(cand, best, seed):
                    best = cand
                if best.reached:
                    break
        if not best.reached:
            best.message = (f"IK target unreachable{' within the step limit' if best.step_limited else ''}: "
                            f"best pose is {best.position_error * 1000:.1f} mm / "
                            f"{np.rad2deg(best.approach_error):.1f} deg away")
            if warn:
                LOG.warning(best.message)
        return best

    def solve_path(self, targets: Sequence[IKTarget], seed: Sequence[float],
                   max_step: float | Sequence[float] | None = None) -> list[IKResult]:
        return _solve_path(self, targets, seed, max_step)

    def frame_pose(self, frame: str, q: Sequence[float]) -> np.ndarray:
        """4x4 pose of a URDF frame (link) in the base frame at arm configuration q."""
        name = self._prefix + frame
        if not self.model.existFrame(name):
            raise ValueError(f"unknown frame {frame!r}: not a link/frame of the URDF")
        base, _ = self._placements(np.asarray(q, dtype=float))
        return base.actInv(self.data.oMf[self.model.getFrameId(name)]).homogeneous


def _solve_path(solver, targets: Sequence[IKTarget], seed: Sequence[float],
                max_step: float | Sequence[float] | None) -> list[IKResult]:
    """Solve a chunk of targets, each seeded from the previous solution (continuity); one
    summary warning for the unreachable ones instead of one per point."""
    results: list[IKResult] = []
    q = np.asarray(seed, dtype=float)
    for target in targets:
        res = solver.solve(target, q, max_step, warn=False)
        results.append(res)
        q = res.q
    missed = [i for i, r in enumerate(results) if not r.reached]
    if missed:
        worst_pos = max(results[i].position_error for i in missed)
        worst_app = max(results[i].approach_error for i in missed)
        LOG.warning("IK: %d of %d targets unreachable (first at index %d; worst %.1f mm, "
                    "%.1f deg of approach): using the best reachable poses", len(missed),
                    len(results), missed[0], worst_pos * 1000.0, np.degrees(worst_app))
    return results


def _better(cand: IKResult, best: IKResult, seed: np.ndarray) -> bool:
    if cand.reached != best.reached:
        return cand.reached
    if cand.reached:  # both reached: stay close to the seed (no needless reconfiguration)
        return float(np.linalg.norm(cand.q - seed)) < float(np.linalg.norm(best.q - seed))
    c = cand.position_error + 0.01 * cand.approach_error  # 1 deg ~ 0.17 mm: position first
    b = best.position_error + 0.01 * best.approach_error
    return c < b - 1e-9


def _align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking unit vector a onto unit vector b (Rodrigues)."""
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    if np.linalg.norm(v) < 1e-12:
        if c > 0:
            return np.eye(3)
        perp = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(perp) < 1e-6:
            perp = np.cross(a, [0.0, 1.0, 0.0])
        perp /= np.linalg.norm(perp)
        return 2.0 * np.outer(perp, perp) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def project_urdf(variant: str = "so101", prefix: str = "") -> str:
    """The project's URDF (mock hardware: kinematics are the same for every hardware)."""
    from so100_description import robot_description

    return robot_description(variant, "mock", prefix=prefix)


__all__ = ["IKTarget", "IKResult", "IKSolver", "PinocchioIK", "SolverSettings", "PlanarArm", "approach_of",
           "project_urdf"]
