"""Offscreen rendering of the scene's cameras (no rclpy).

Call so100_bringup.sim.gl.ensure_gl_backend() before the first `import mujoco` of a process
that renders (the node does), or set MUJOCO_GL yourself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import mujoco
import numpy as np


@dataclass(frozen=True)
class PinholeIntrinsics:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    def k(self) -> list[float]:
        return [self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0]

    def p(self) -> list[float]:
        return [self.fx, 0.0, self.cx, 0.0, 0.0, self.fy, self.cy, 0.0, 0.0, 0.0, 1.0, 0.0]


def camera_intrinsics(model: mujoco.MjModel, camera: str, width: int, height: int) -> PinholeIntrinsics:
    """Pinhole model of a MuJoCo camera: `fovy` is the vertical field of view, pixels are square."""
    fovy = math.radians(float(model.cam_fovy[model.camera(camera).id]))
    f = 0.5 * height / math.tan(0.5 * fovy)
    return PinholeIntrinsics(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0)


class CameraRenderer:
    """Renders named cameras to rgb8 arrays (H, W, 3). One GL context for all cameras.

    shadows: shadow mapping (costs ~10x per frame with software rendering). MSAA is a model
    property (SceneConfig.msaa_samples).
    """

    def __init__(self, model: mujoco.MjModel, cameras: Sequence[str], width: int, height: int,
                 shadows: bool = False, reflections: bool = False):
        for cam in cameras:
            if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, cam) < 0:
                raise ValueError(f"no camera {cam!r} in the model")
        self.cameras = tuple(cameras)
        self.width, self.height = int(width), int(height)
        self._renderer = mujoco.Renderer(model, self.height, self.width)
        self._flags = {mujoco.mjtRndFlag.mjRND_SHADOW: bool(shadows),
                       mujoco.mjtRndFlag.mjRND_REFLECTION: bool(reflections)}
        self.intrinsics = {cam: camera_intrinsics(model, cam, self.width, self.height) for cam in cameras}

    def render(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        self._renderer.update_scene(data, camera)
        for flag, value in self._flags.items():
            self._renderer.scene.flags[flag] = value
        return self._renderer.render()

    def close(self) -> None:
        self._renderer.close()
