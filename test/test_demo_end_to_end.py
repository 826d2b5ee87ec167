"""`so100_demo` end to end: sim node + policy node as separate processes over real DDS."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mujoco", reason="mujoco not installed (make setup installs the sim extra)")
pytest.importorskip("rclpy", reason="rclpy not installed (make setup installs the ROS 2 Jazzy wheels)")
pytest.importorskip("lerobot", reason="lerobot not installed (make setup installs the policy extra)")
pytest.importorskip("imageio", reason="imageio not installed (make setup installs the sim extra)")

from so100_bringup.viewer.child import rerun_installed  # noqa: E402
from support.ros import interrupt_launcher, stop_process  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def demo(out: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "so100_bringup.demo", "--out", str(out), *args],
                            env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    # RTF 0.5: the whole loop (policy node on use_sim_time included) runs slower than real time.
    proc = demo(out, "--policy", "random", "--seed", "0", "--duration", "3", "--width", "160", "--height", "120",
                "--rtf", "0.5")
    try:
        output, _ = proc.communicate(timeout=400)
    finally:
        stop_process(proc)  # after a timeout: SIGTERM, which the demo passes on to its nodes
    return out, proc.returncode, output


def test_the_demo_runs_a_closed_loop_episode_and_writes_video_and_summary(demo_run):
    import imageio.v2 as imageio

    out, code, output = demo_run
    assert code == 0, output
    summary_path = Path(re.search(r"summary: (\S+)", output).group(1))
    video_path = Path(re.search(r"video: +(\S+)", output).group(1))
    assert "t=" in output  # progress lines while running
    s = json.loads(summary_path.read_text())
    assert s["sim_duration_s"] >= 3.0
    assert s["real_time_factor"] < 0.75  # slower than real time, yet rates below hold in sim time
    assert s["policy"]["random_init"] is True
    assert s["control"]["trajectories"] >= 1  # the policy's chunks reached the sim
    assert s["joint_travel_rad"] > 0.01  # and moved the arm
    assert s["control"]["joint_state_rate_hz"] == pytest.approx(100, abs=20)
    assert s["control"]["front_camera_rate_hz"] == pytest.approx(30, abs=8)
    assert s["latency_ms"]["policy_inference"]["n"] >= 1
    assert s["success"] in (True, False)
    frames = imageio.mimread(video_path, memtest=False)
    # front | wrist, each scaled from the policy's 160x120 to 480 px high
    assert len(frames) == s["video_frames"] > 30 and frames[0].shape[:2] == (480, 1280)
    assert video_path.name == "demo.mp4" and s["video"] == str(video_path)
    if rerun_installed():  # the Rerun recording, by default, next to the video
        rrd = video_path.with_name("demo.rrd")
        assert s["rerun_recording"] == str(rrd) and rrd.stat().st_size > 10_000
    # The random policy was built once and cached for the next run.
    assert (out / "policies" / "random_act_160x120_seed0" / "config.json").is_file()


def test_ctrl_c_stops_every_child(demo_run):
    out, code, _ = demo_run
    assert code == 0
    proc = demo(out, "--policy", "random", "--seed", "0", "--duration", "300", "--width", "160", "--height", "120")
    pids, output = interrupt_launcher(proc, "episode running")
    assert len(pids) == (3 if rerun_installed() else 2), output  # sim, policy, and the viewer writing demo.rrd
    assert proc.returncode == 130, output
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
