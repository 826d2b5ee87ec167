"""Choosing MuJoCo's OpenGL backend for headless rendering."""
from __future__ import annotations

import pytest

from so100_bringup.sim import gl


@pytest.fixture(autouse=True)
def restore_gl_env(monkeypatch):
    # ensure_gl_backend writes os.environ; give it a copy so later tests keep their backend.
    import os

    monkeypatch.setattr(os, "environ", dict(os.environ))


def test_an_explicit_mujoco_gl_is_respected(monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    monkeypatch.setattr(gl, "probe_backend", lambda b: pytest.fail("must not probe"))
    assert gl.ensure_gl_backend() == "osmesa"


def test_falls_back_to_osmesa_when_egl_fails(monkeypatch):
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    tried = []
    monkeypatch.setattr(gl, "probe_backend", lambda b: tried.append(b) or b == "osmesa")
    assert gl.ensure_gl_backend() == "osmesa"
    assert tried == ["egl", "osmesa"]
    import os

    assert os.environ["MUJOCO_GL"] == "osmesa" and os.environ["PYOPENGL_PLATFORM"] == "osmesa"


def test_no_backend_names_the_packages_to_install(monkeypatch):
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setattr(gl, "probe_backend", lambda b: False)
    with pytest.raises(gl.NoRenderingBackend, match="libosmesa6"):
        gl.ensure_gl_backend()


def test_probing_a_backend_that_cannot_exist_fails():
    pytest.importorskip("mujoco", reason="mujoco not installed (make setup installs the sim extra)")
    assert gl.probe_backend("no-such-backend") is False
