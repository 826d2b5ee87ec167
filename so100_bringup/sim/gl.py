"""Pick a headless OpenGL backend for MuJoCo before mujoco is imported.

MuJoCo reads MUJOCO_GL once, when `mujoco` is first imported, so the choice has to be made
up front. An explicit MUJOCO_GL is respected. Otherwise each candidate is probed in a
child interpreter (a failed EGL/OSMesa init can leave the process unusable) and the first
that creates a context wins. "glfw" needs a display and is only tried when one exists.
"""
from __future__ import annotations

import os
import subprocess
import sys

HEADLESS_BACKENDS = ("egl", "osmesa")
# What a Debian/Ubuntu machine needs for each backend (software rendering through Mesa).
APT_PACKAGES = {"egl": "libegl1 libgl1-mesa-dri", "osmesa": "libosmesa6", "glfw": "libglfw3"}

_PROBE = (
    "import mujoco\n"
    "ctx = mujoco.GLContext(16, 16)\n"
    "ctx.make_current()\n"
    "ctx.free()\n"
)


class NoRenderingBackend(RuntimeError):
    pass


def probe_backend(backend: str, timeout_s: float = 60.0) -> bool:
    """True if MuJoCo can create an OpenGL context with `backend` on this machine."""
    env = dict(os.environ, MUJOCO_GL=backend, PYOPENGL_PLATFORM=backend if backend != "glfw" else "")
    try:
        result = subprocess.run([sys.executable, "-c", _PROBE], env=env, timeout=timeout_s,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def ensure_gl_backend(prefer_window: bool = False) -> str:
    """Set MUJOCO_GL (and PYOPENGL_PLATFORM) to a working backend and return its name.

    Must run before the first `import mujoco` in this process. Raises NoRenderingBackend with
    the packages to install when nothing works.
    """
    chosen = os.environ.get("MUJOCO_GL", "").strip().lower()
    if chosen:
        if chosen in HEADLESS_BACKENDS:
            os.environ.setdefault("PYOPENGL_PLATFORM", chosen)
        return chosen
    candidates = list(HEADLESS_BACKENDS)
    if prefer_window and os.environ.get("DISPLAY"):
        candidates.insert(0, "glfw")
    for backend in candidates:
        if probe_backend(backend):
            os.environ["MUJOCO_GL"] = backend
            if backend in HEADLESS_BACKENDS:
                os.environ["PYOPENGL_PLATFORM"] = backend
            return backend
    hint = "; ".join(f"{b}: apt-get install {APT_PACKAGES[b]}" for b in candidates)
    raise NoRenderingBackend(f"no OpenGL backend works for MuJoCo offscreen rendering ({hint})")
