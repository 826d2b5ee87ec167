"""Remote backend against LeRobot's real async-inference PolicyServer on loopback."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch is not installed (pip install so100_vla[policy])")
pytest.importorskip("lerobot", reason="lerobot is not installed (pip install so100_vla[policy])")
pytest.importorskip("grpc", reason="grpcio is not installed (pip install so100_vla[remote])")
pytest.importorskip("lerobot.transport.services_pb2_grpc",
                    reason="lerobot's gRPC stubs do not import (grpcio/protobuf versions)")

from vla_policy_node.backends import CheckpointError  # noqa: E402
from vla_policy_node.backends.base import PolicyInput  # noqa: E402
from vla_policy_node.backends.local import LocalLeRobotBackend  # noqa: E402
from vla_policy_node.backends.remote import RemotePolicyServerBackend  # noqa: E402
from support.ros import stop_process  # noqa: E402
from so100_bringup.learning.random_act import make_random_act  # noqa: E402

HW = (48, 64)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def act_dir(tmp_path_factory):
    return make_random_act(tmp_path_factory.mktemp("act") / "policy", cameras=("front", "wrist"),
                           image_hw=HW, chunk_size=10, seed=5)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    cwd = tmp_path_factory.mktemp("server")  # the server writes logs/ into its working directory
    env = os.environ.copy()
    env.update(OMP_NUM_THREADS="1")
    log = open(cwd / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "lerobot.async_inference.policy_server", "--host=127.0.0.1",
                             f"--port={port}", "--fps=30", "--inference_latency=0", "--obs_queue_timeout=5"],
                            cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, (cwd / "server.log").read_text()
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(proc)
        log.close()


def _obs(seed):
    rng = np.random.default_rng(seed)
    return PolicyInput(state=np.array([5, -10, 20, 0, 3, 30], np.float32),
                       images={f"observation.images.{c}": rng.integers(0, 255, (*HW, 3), dtype=np.uint8)
                               for c in ("front", "wrist")}, task="pick")


def test_remote_chunk_equals_local_chunk(server, act_dir):
    remote = RemotePolicyServerBackend(server, str(act_dir), device="cpu")
    local = LocalLeRobotBackend(act_dir)
    try:
        assert remote.spec.camera_names == ["front", "wrist"]
        first = remote.predict_chunk(_obs(0))
        assert first.shape == (10, 6)
        assert first == pytest.approx(local.predict_chunk(_obs(0)), abs=1e-3)
        # the same state twice still gets a fresh inference (no similarity filter skips it)
        second = remote.predict_chunk(_obs(1))
        assert second == pytest.approx(local.predict_chunk(_obs(1)), abs=1e-3)
        assert not np.allclose(first, second)
        remote.reset()
        assert remote.predict_chunk(_obs(0)) == pytest.approx(first, abs=1e-5)
    finally:
        remote.close()


def test_remote_errors_are_clear(server, act_dir):
    with pytest.raises(CheckpointError, match="not reachable"):
        RemotePolicyServerBackend(f"127.0.0.1:{_free_port()}", str(act_dir), connect_timeout=1.0)
    with pytest.raises(CheckpointError, match="set remote_policy_type"):
        RemotePolicyServerBackend(server, "some/hub-id")
    # a checkpoint the server cannot load is refused at startup, naming the server and the path
    with pytest.raises(CheckpointError, match=r"refused the policy '/nonexistent/on/server'"):
        RemotePolicyServerBackend(server, "/nonexistent/on/server", policy_type="act", cameras=("front",))


@pytest.mark.ros
def test_node_with_remote_backend_publishes_trajectories(server, act_dir, rclpy_context, tmp_path):
    pytest.importorskip("rclpy", reason="rclpy not installed")
    from so100_description.joints import ARM_JOINTS
    from support.ros import Spinner, make_fake_io_node, start_policy_node, wait_for

    cams = {c: (f"/camera/{c}/image_raw", (96, 128), "rgb8") for c in ("front", "wrist")}
    io = make_fake_io_node(cams, context=rclpy_context)
    spin = Spinner([io], rclpy_context)
    log = tmp_path / "node.log"
    proc = start_policy_node({"backend": "remote", "server_address": server, "policy_path": str(act_dir),
                              "autostart": True, "fps": 30.0}, log_path=str(log))
    try:
        assert wait_for(lambda: len(io.recorder.arm) >= 3, 90), log.read_text()
        traj = io.recorder.arm[-1]
        assert traj.joint_names == list(ARM_JOINTS)
        assert np.all(np.isfinite(traj.positions))
        assert traj.times == pytest.approx(np.arange(1, len(traj.times) + 1) / 30.0, abs=1e-6)
    finally:
        stop_process(proc)
        spin.stop()
        io.destroy_node()
