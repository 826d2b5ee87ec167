"""Stepping the SO-101 table scene, seeded resets and the task-success signal (no rclpy)."""
from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from so100_bringup.sim.scene import SceneConfig, SceneNames

TASKS = ("lift", "place")
LIFT_HEIGHT_M = 0.05  # "lifted": cube centre this far above its resting height ...
HOLD_DISTANCE_M = 0.06  # ... and this close to the tcp (held, not thrown)
CARRY_RISE_M = 0.03  # "place" needs the cube to have been carried at least this high
REST_TOLERANCE_M = 0.01  # placed: back on the table within this height
REST_SPEED_M_S = 0.05  # placed: and nearly still


@dataclass(frozen=True)
class EpisodeInfo:
    index: int
    seed: int | None
    cube_xy: tuple[float, float]
    target_xy: tuple[float, float]


class ArmSim:
    """The scene's physics: position targets in, joint state and task state out.

    Sim time (`time`) only ever increases, also across resets, so /clock never jumps back.
    """

    def __init__(self, model: mujoco.MjModel, names: SceneNames, cfg: SceneConfig,
                 task: str = "lift", seed: int | None = 0, randomize: bool = True):
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        self.model = model
        self.data = mujoco.MjData(model)
        self.names = names
        self.cfg = cfg
        self.task = task
        self.randomize = randomize
        self.joint_names = tuple(names.joints)
        self._qpos = np.array([model.joint(j).qposadr[0] for j in self.joint_names])
        self._qvel = np.array([model.joint(j).dofadr[0] for j in self.joint_names])
        self._act = np.array([model.actuator(j).id for j in self.joint_names])
        self.lower = model.actuator_ctrlrange[self._act, 0].copy()
        self.upper = model.actuator_ctrlrange[self._act, 1].copy()
        self._cube_qpos = model.joint(names.cube_joint).qposadr[0]
        self._cube_qvel = model.joint(names.cube_joint).dofadr[0]
        self._cube_body = model.body(names.cube_body).id
        self._tcp_body = model.body(names.tcp_body).id
        self._target_mocap = model.body(names.target_body).mocapid[0]
        self._rng = np.random.default_rng(seed)
        self._seed = seed
        self._episodes = 0
        self._rest_z = cfg.cube_size_m / 2
        self._carried = False
        self.episode = self.reset(seed)

    # -- commands ---------------------------------------------------------------------------
    def set_targets(self, positions) -> np.ndarray:
        """Position targets (rad, joint order) for the actuators, clamped to the joint limits.

        Non-finite values are refused (ValueError) and the previous targets stay.
        """
        target = np.asarray(positions, dtype=float)
        if target.shape != (len(self.joint_names),) or not np.all(np.isfinite(target)):
            raise ValueError(f"need {len(self.joint_names)} finite joint targets, got {target.tolist()}")
        target = np.clip(target, self.lower, self.upper)
        self.data.ctrl[self._act] = target
        return target

    def step(self, n: int = 1) -> None:
        mujoco.mj_step(self.model, self.data, nstep=n)
        self._carried = self._carried or self.cube_position()[2] - self._rest_z > CARRY_RISE_M

    def reset(self, seed: int | None = None) -> EpisodeInfo:
        """Arm to home, cube and target to new (seeded) places; sim time keeps running."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        now = float(self.data.time)
        mujoco.mj_resetData(self.model, self.data)
        self.data.time = now
        home = np.clip(np.asarray(self.cfg.home_positions, float), self.lower, self.upper)
        self.data.qpos[self._qpos] = home
        self.data.ctrl[self._act] = home
        cube_xy, target_xy = self._sample_layout()
        self.data.qpos[self._cube_qpos:self._cube_qpos + 3] = (*cube_xy, self._rest_z)
        self.data.qpos[self._cube_qpos + 3:self._cube_qpos + 7] = (1.0, 0.0, 0.0, 0.0)
        self.data.mocap_pos[self._target_mocap] = (*target_xy, 0.0)
        mujoco.mj_forward(self.model, self.data)
        self._carried = False
        self._episodes += 1
        self.episode = EpisodeInfo(self._episodes, seed, tuple(map(float, cube_xy)), tuple(map(float, target_xy)))
        return self.episode

    def _sample_layout(self) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.cfg
        if not self.randomize:
            return np.mean(cfg.cube_xy_range, axis=0), np.array(cfg.target_xy_range[1]) * (1.0, 0.8)
        cube = self._rng.uniform(*cfg.cube_xy_range)
        for _ in range(100):
            target = self._rng.uniform(*cfg.target_xy_range)
            if np.linalg.norm(target - cube) >= cfg.min_target_distance_m:
                break
        return cube, target

    # -- state ------------------------------------------------------------------------------
    @property
    def time(self) -> float:
        return float(self.data.time)

    @property
    def timestep(self) -> float:
        return float(self.model.opt.timestep)

    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self._qpos].copy()

    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[self._qvel].copy()

    def joint_efforts(self) -> np.ndarray:
        return self.data.actuator_force[self._act].copy()

    def targets(self) -> np.ndarray:
        return self.data.ctrl[self._act].copy()

    def cube_position(self) -> np.ndarray:
        return self.data.xpos[self._cube_body].copy()

    def tcp_position(self) -> np.ndarray:
        return self.data.xpos[self._tcp_body].copy()

    def target_position(self) -> np.ndarray:
        return self.data.mocap_pos[self._target_mocap].copy()

    def set_cube_position(self, xyz) -> None:
        """Teleport the cube (evaluation and tests), at rest."""
        self.data.qpos[self._cube_qpos:self._cube_qpos + 3] = xyz
        self.data.qvel[self._cube_qvel:self._cube_qvel + 6] = 0.0
        mujoco.mj_forward(self.model, self.data)
        self._carried = self._carried or float(xyz[2]) - self._rest_z > CARRY_RISE_M

    def task_success(self) -> bool:
        cube = self.cube_position()
        if self.task == "lift":
            held = np.linalg.norm(cube - self.tcp_position()) < HOLD_DISTANCE_M
            return bool(cube[2] - self._rest_z > LIFT_HEIGHT_M and held)
        half = self.cfg.target_size_m / 2
        inside = np.all(np.abs(cube[:2] - self.target_position()[:2]) < half)
        speed = np.linalg.norm(self.data.qvel[self._cube_qvel:self._cube_qvel + 3])
        resting = abs(cube[2] - self._rest_z) < REST_TOLERANCE_M and speed < REST_SPEED_M_S
        return bool(self._carried and inside and resting)
