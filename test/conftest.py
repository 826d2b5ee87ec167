"""Test isolation: every test session gets its own ROS domain, log and home directories."""
from __future__ import annotations

import os
import random
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "test") not in sys.path:  # `support` (test helpers) under any --import-mode
    sys.path.insert(0, str(REPO / "test"))
_TMP = Path(tempfile.mkdtemp(prefix="so100_vla_test_"))
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 101)))
os.environ["ROS_LOG_DIR"] = str(_TMP / "ros_log")
os.environ["ROS_HOME"] = str(_TMP / "ros_home")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("OMP_NUM_THREADS", "2")
if sys.prefix not in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
    os.environ["AMENT_PREFIX_PATH"] = os.pathsep.join(
        p for p in (sys.prefix, os.environ.get("AMENT_PREFIX_PATH", "")) if p)


@pytest.fixture(scope="session")
def session_tmp() -> Path:
    return _TMP


@pytest.fixture()
def rclpy_context():
    """An initialised rclpy context, shut down after the test."""
    rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (make setup installs the ROS 2 Jazzy wheels)")
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    try:
        rclpy.shutdown(context=context)
    except Exception:
        pass
