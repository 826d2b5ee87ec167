"""The MuJoCo arm as an `ArmHardware` (plain Python, no rclpy): goals become the position
actuators' targets, readings are the simulated joints. Always connected with torque on; a scene
reset asks the controller to resync from the home pose."""
from __future__ import annotations

import numpy as np

from so100_bringup.control.hardware import HardwareError, HardwareStatus, JointReading
from so100_bringup.sim.physics import ArmSim, EpisodeInfo


class MujocoArm:
    def __init__(self, sim: ArmSim):
        self.sim = sim
        self.joint_names = sim.joint_names
        self._status = HardwareStatus(connected=True, torque_enabled=True)
        self._fresh = np.ones(len(self.joint_names), dtype=bool)
        self._resync = 1

    @property
    def status(self) -> HardwareStatus:
        return self._status

    @property
    def resync_count(self) -> int:
        return self._resync

    def read(self) -> JointReading:
        sim = self.sim
        return JointReading(sim.time, sim.joint_positions(), sim.joint_velocities(), sim.joint_efforts(), self._fresh)

    def write(self, goal: np.ndarray) -> None:
        self.sim.set_targets(goal)

    def set_torque(self, enabled: bool) -> None:
        if not enabled:
            raise HardwareError("the simulated arm has no torque switch")

    def reset(self, seed: int | None = None) -> EpisodeInfo:
        """New episode (arm home, objects re-placed); the controller restarts from home."""
        episode = self.sim.reset(seed)
        self._resync += 1
        return episode

    def close(self, disable_torque: bool = False) -> None:
        pass
