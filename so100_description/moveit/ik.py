"""MoveIt's IK for the 5-DOF arm, and the choice of IK backend (ROS layer: needs moveit_py).

`MoveItIK` sends targets to MoveIt's RobotState.set_from_ik with the robot's own MoveIt config
(pick_ik); step bounding and the result bookkeeping reuse the pinocchio model of the same URDF.
`make_ik_solver` picks it when moveit_py imports ("auto"), else the plain-Python `PinocchioIK`
of `so100_description.ik`, which every layer below ROS uses directly.
"""
from __future__ import annotations

import importlib.util
import logging
from typing import Sequence

import numpy as np

from so100_description.ik import (DEFAULT_TIP_FRAME, IKResult, IKSolver, IKTarget, PinocchioIK, SolverSettings,
                                  _align, _solve_path, project_urdf)

LOG = logging.getLogger(__name__)


def moveit_available() -> bool:
    """True when MoveIt's Python bindings (ROS package moveit_py, module `moveit`) import."""
    try:
        return importlib.util.find_spec("moveit") is not None and \
            importlib.util.find_spec("moveit.planning") is not None
    except (ImportError, ValueError):
        return False




class MoveItIK:
    """IK through MoveIt's RobotState.set_from_ik with the robot's own MoveIt config (pick_ik).

    Needs a ROS 2 machine with moveit_py; constructed by `make_ik_solver` when `moveit` imports.
    The target is sent as a pose: the approach direction (or rotation) becomes the orientation,
    and pick_ik's rotation_scale in kinematics.yaml weighs it below position. Step bounding and
    the result bookkeeping reuse the pinocchio model of the same URDF (FK is the same maths).
    """

    def __init__(self, urdf_xml: str, variant: str = "so101", group: str = "arm",
                 tip_frame: str = DEFAULT_TIP_FRAME, timeout: float = 0.005,
                 settings: SolverSettings | None = None) -> None:
        from moveit.core.robot_state import RobotState  # noqa: F401  (fail early)
        from moveit.planning import MoveItPy

        from so100_description.moveit.config import moveit_config_dict

        self._fk = PinocchioIK(urdf_xml, tip_frame=tip_frame, variant=variant, settings=settings)
        self.joint_names = self._fk.joint_names
        self.lower, self.upper = self._fk.lower, self._fk.upper
        self.approach_axis = self._fk.approach_axis
        self.settings = self._fk.settings
        self._group, self._tip, self._timeout = group, tip_frame, timeout
        self._moveit = MoveItPy(node_name="so100_ik", config_dict=moveit_config_dict(variant, urdf_xml))
        self._model = self._moveit.get_robot_model()

    def fk(self, q: Sequence[float]) -> np.ndarray:
        return self._fk.fk(q)

    def frame_pose(self, frame: str, q: Sequence[float]) -> np.ndarray:
        return self._fk.frame_pose(frame, q)

    def solve(self, target: IKTarget, seed: Sequence[float],
              max_step: float | Sequence[float] | None = None, warn: bool = True) -> IKResult:
        from geometry_msgs.msg import Pose
        from moveit.core.robot_state import RobotState

        seed = np.clip(np.asarray(seed, dtype=float), self.lower, self.upper)
        rot = target.rotation
        if rot is None:
            # current orientation, turned so its approach axis matches the target's
            current = self.fk(seed)[:3, :3]
            rot = current if target.approach is None else \
                _align(current @ self.approach_axis, target.approach) @ current
        state = RobotState(self._model)
        state.set_joint_group_positions(self._group, seed)
        pose = Pose()
        pose.position.x, pose.position.y, pose.position.z = (float(v) for v in target.position)
        qx, qy, qz, qw = _quat_xyzw(rot)
        pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = qx, qy, qz, qw
        ok = state.set_from_ik(self._group, pose, self._tip, self._timeout)
        q = np.asarray(state.get_joint_group_positions(self._group), dtype=float) if ok else seed
        lo, hi, boxed = self._fk._step_box(seed, max_step)
        if boxed and np.any((q < lo) | (q > hi)):
            # MoveIt jumped further than allowed: fall back to the bounded local solver
            return self._fk.solve(target, seed, max_step, warn)
        res = self._fk._result(target, np.clip(q, lo, hi), 0, lo, hi, boxed)
        if not res.reached:
            return self._fk.solve(target, seed, max_step, warn)
        return res

    def solve_path(self, targets: Sequence[IKTarget], seed: Sequence[float],
                   max_step: float | Sequence[float] | None = None) -> list[IKResult]:
        return _solve_path(self, targets, seed, max_step)


def _quat_xyzw(r: np.ndarray) -> tuple[float, float, float, float]:
    import pinocchio as pin

    q = pin.Quaternion(r)
    return float(q.x), float(q.y), float(q.z), float(q.w)


def make_ik_solver(variant: str = "so101", backend: str = "auto", urdf_xml: str | None = None,
                   **kwargs) -> IKSolver:
    """`backend`: "auto" (MoveIt when moveit_py imports, else pinocchio), "moveit" or "pinocchio"."""
    if backend not in ("auto", "moveit", "pinocchio"):
        raise ValueError(f"unknown IK backend {backend!r}; expected auto, moveit or pinocchio")
    urdf = urdf_xml if urdf_xml is not None else project_urdf(variant)
    if backend == "moveit" or (backend == "auto" and moveit_available()):
        try:
            return MoveItIK(urdf, variant=variant, **kwargs)
        except Exception as exc:  # noqa: BLE001 - a broken MoveIt install must not stop the arm
            if backend == "moveit":
                raise
            LOG.warning("MoveIt IK unavailable (%s); using the pinocchio solver", exc)
    return PinocchioIK(urdf, variant=variant, **kwargs)


__all__ = ["MoveItIK", "make_ik_solver", "moveit_available"]
