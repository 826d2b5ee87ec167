"""End-effector action chunks -> joint chunks through IK (no rclpy import).

OpenVLA-style policies output, per step, a tool pose (x, y, z, roll, pitch, yaw) and a gripper
command. The policy node (action_space ee_absolute / ee_delta) hands each chunk (T x 7) to
`EndEffectorActionConverter.to_joint_chunk` and gets T x 6 joint positions (rad, JOINT_NAMES
order) back, which then go through its usual chunk splicing and safety limits.

Conventions
- Position in metres, angles in radians; roll/pitch/yaw are fixed-axis X-Y-Z (URDF/ROS RPY:
  R = Rz(yaw) Ry(pitch) Rx(roll)), of the `tcp` frame (between the jaws).
- `frame`: the frame the poses are expressed in. base_link (default) or any link of the URDF;
  a moving link (e.g. a wrist camera's link) is taken at the chunk's current joint state and
  held fixed for the whole chunk.
- mode "absolute": each row is the tcp pose in `frame`.
  mode "delta": each row is a step from the previous row's pose (the first from the current tcp
  pose): translation added in `frame` axes, rotation applied in `frame` axes
  (R_k = R_delta,k R_(k-1)), as Bridge/OpenVLA deltas are.
- Gripper (column 6): `gripper_unit` "rad" (default) is the URDF gripper joint angle;
  "fraction" is 0 = closed (lower limit) .. 1 = open (upper limit), linear in the joint angle.
- A 5-DOF arm cannot reach every orientation: position is solved first, the orientation as
  closely as the kinematics allow ("full": the whole rotation; "approach": only where the jaws
  point, roll free; "none": position only). Each step moves each joint at most
  velocity limit x velocity_scale / fps, so an unreachable or far-away target yields the best
  reachable pose and a warning, never a jump.
"""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from so100_description.joints import ARM_JOINTS, JOINT_NAMES, LimitArrays

from so100_description.ik import IKResult, IKSolver, IKTarget, PinocchioIK, project_urdf

LOG = logging.getLogger(__name__)

MODES = ("absolute", "delta")
GRIPPER_UNITS = ("rad", "fraction")
ORIENTATION_MODES = ("full", "approach", "none")
EE_DIM = 7


def rpy_to_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """URDF/ROS fixed-axis roll-pitch-yaw: R = Rz(yaw) Ry(pitch) Rx(roll)."""
    cr, sr = np.cos(roll), np.sin(roll)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


def matrix_to_rpy(r: np.ndarray) -> np.ndarray:
    """Inverse of rpy_to_matrix (pitch in [-pi/2, pi/2])."""
    pitch = float(np.arcsin(np.clip(-r[2, 0], -1.0, 1.0)))
    if abs(np.cos(pitch)) > 1e-9:
        roll = float(np.arctan2(r[2, 1], r[2, 2]))
        yaw = float(np.arctan2(r[1, 0], r[0, 0]))
    else:  # gimbal lock: put everything in yaw
        roll = 0.0
        yaw = float(np.arctan2(-r[0, 1], r[1, 1]))
    return np.array([roll, pitch, yaw])


class EndEffectorActionConverter:
    def __init__(self, variant: str = "so101", mode: str = "absolute", frame: str = "base_link", *,
                 fps: float = 30.0, velocity_scale: float = 1.0, gripper_unit: str = "rad",
                 orientation: str = "full", solver: IKSolver | None = None) -> None:
        """`solver`: an IK backend (the ROS layer may pass MoveIt's); default: pinocchio on the
        project's URDF."""
        if mode not in MODES:
            raise ValueError(f"unknown end-effector action mode {mode!r}; expected one of {MODES}")
        if gripper_unit not in GRIPPER_UNITS:
            raise ValueError(f"unknown gripper_unit {gripper_unit!r}; expected one of {GRIPPER_UNITS}")
        if orientation not in ORIENTATION_MODES:
            raise ValueError(f"unknown orientation {orientation!r}; expected one of {ORIENTATION_MODES}")
        if not (fps > 0 and np.isfinite(fps)) or not (0 < velocity_scale <= 1.0):
            raise ValueError(f"fps must be > 0 and velocity_scale in (0, 1], got {fps}, {velocity_scale}")
        self.variant, self.mode, self.frame = variant, mode, frame
        self.gripper_unit, self.orientation = gripper_unit, orientation
        self.solver = solver if solver is not None else PinocchioIK(project_urdf(variant), variant=variant)
        if tuple(self.solver.joint_names) != ARM_JOINTS:
            raise ValueError(f"IK solver joints {self.solver.joint_names} != {ARM_JOINTS}")
        limits = LimitArrays.for_joints(JOINT_NAMES, variant, velocity_scale=velocity_scale)
        self.lower, self.upper = limits.lower, limits.upper
        # per-step joint bound: what the velocity limits allow between two actions
        self.max_step = limits.velocity[:len(ARM_JOINTS)] / fps
        self.max_gripper_step = float(limits.velocity[JOINT_NAMES.index("gripper")]) / fps
        self.frame_pose(np.zeros(len(JOINT_NAMES)))  # unknown frame -> error at construction
        self.last_results: list[IKResult] = []

    # -- helpers ----------------------------------------------------------------------------
    def frame_pose(self, current_q: np.ndarray) -> np.ndarray:
        """Pose of `frame` in base_link at the current joint state."""
        if self.frame == "base_link":
            return np.eye(4)
        return self.solver.frame_pose(self.frame, np.asarray(current_q, dtype=float)[:len(ARM_JOINTS)])

    def tcp_pose(self, q: Sequence[float]) -> np.ndarray:
        """4x4 tcp pose in `frame` at joint state q (6 joints)."""
        q = np.asarray(q, dtype=float)
        base_tcp = self.solver.fk(q[:len(ARM_JOINTS)])
        return np.linalg.inv(self.frame_pose(q)) @ base_tcp

    def ee_action_of(self, q: Sequence[float]) -> np.ndarray:
        """The absolute 7-vector (x, y, z, roll, pitch, yaw, gripper) of joint state q (6,):
        what an absolute-mode policy would output to stay there."""
        q = np.asarray(q, dtype=float)
        pose = self.tcp_pose(q)
        g = q[len(ARM_JOINTS)]
        gripper = g if self.gripper_unit == "rad" else (g - self.lower[-1]) / (self.upper[-1] - self.lower[-1])
        return np.concatenate([pose[:3, 3], matrix_to_rpy(pose[:3, :3]), [gripper]])

    def _gripper_rad(self, values: np.ndarray) -> np.ndarray:
        lo, hi = self.lower[-1], self.upper[-1]
        rad = values if self.gripper_unit == "rad" else lo + np.clip(values, 0.0, 1.0) * (hi - lo)
        return np.clip(np.array(rad, dtype=float), lo, hi)

    def _targets(self, chunk: np.ndarray, current_q: np.ndarray) -> list[IKTarget]:
        frame = self.frame_pose(current_q)
        rf, pf = frame[:3, :3], frame[:3, 3]
        targets: list[IKTarget] = []
        if self.mode == "delta":
            start = self.solver.fk(current_q[:len(ARM_JOINTS)])
            pos, rot = start[:3, 3].copy(), start[:3, :3].copy()
        for row in chunk:
            r = rpy_to_matrix(*row[3:6])
            if self.mode == "absolute":
                pos, rot = rf @ row[:3] + pf, rf @ r
            else:
                pos = pos + rf @ row[:3]
                rot = (rf @ r @ rf.T) @ rot
            if self.orientation == "full":
                targets.append(IKTarget(pos, rotation=rot))
            elif self.orientation == "approach":
                targets.append(IKTarget(pos, approach=rot @ self.solver.approach_axis))
            else:
                targets.append(IKTarget(pos))
        return targets

    # -- the call the policy node makes -----------------------------------------------------
    def to_joint_chunk(self, ee_chunk: np.ndarray, current_q: np.ndarray) -> np.ndarray:
        """T x 7 end-effector chunk + current joint state (6,) rad -> T x 6 joint chunk (rad,
        JOINT_NAMES order), within the joint limits and the per-step bound. Raises ValueError for
        a chunk of the wrong shape or with NaN/inf (the node then holds position)."""
        chunk = np.asarray(ee_chunk, dtype=float)
        if chunk.ndim == 1 and chunk.shape[0] == EE_DIM:
            chunk = chunk[None, :]
        if chunk.ndim != 2 or chunk.shape[1] != EE_DIM or chunk.shape[0] == 0:
            raise ValueError(f"end-effector chunk must be T x {EE_DIM} (x, y, z, roll, pitch, yaw, "
                             f"gripper), got shape {chunk.shape}")
        if not np.all(np.isfinite(chunk)):
            raise ValueError("end-effector chunk contains NaN or inf")
        q = np.asarray(current_q, dtype=float).reshape(-1)
        if q.shape != (len(JOINT_NAMES),) or not np.all(np.isfinite(q)):
            raise ValueError(f"current joint state must be {len(JOINT_NAMES)} finite positions "
                             f"({', '.join(JOINT_NAMES)}), got {current_q!r}")
        q = np.clip(q, self.lower, self.upper)
        targets = self._targets(chunk, q)
        self.last_results = self.solver.solve_path(targets, q[:len(ARM_JOINTS)], self.max_step)
        arm = np.array([r.q for r in self.last_results])
        gripper = self._gripper_rad(chunk[:, 6])
        g = q[-1]
        for i, value in enumerate(gripper):  # the same per-step bound as the arm joints
            g = float(np.clip(value, g - self.max_gripper_step, g + self.max_gripper_step))
            gripper[i] = g
        out = np.column_stack([arm, gripper])
        return np.clip(out, self.lower, self.upper)


__all__ = ["EndEffectorActionConverter", "rpy_to_matrix", "matrix_to_rpy", "MODES",
           "GRIPPER_UNITS", "ORIENTATION_MODES", "EE_DIM"]
