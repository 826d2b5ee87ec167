"""The demo launcher's plain-Python pieces: statistics, child processes (so100_bringup.processes,
shared by every launcher), policy lookup."""
from __future__ import annotations

import sys
import time

import pytest

from so100_bringup.demo import EpisodeLog, ensure_policy, series_stats
from so100_bringup.processes import Children


def test_episode_summary_rates_and_latencies():
    ep = EpisodeLog(start=10.0, now=12.0)
    ep.image_stamps = [10.0 + k / 30 for k in range(60)]
    ep.trajectory_times = [10.5, 11.0, 11.5, 9.0]  # one before the episode started
    for k in range(200):
        ep.add_joint_state(10.0 + k / 100, [0.01 * k, 0, 0, 0, 0, 0])
    ep.inference_ms = [100.0, 120.0, 300.0]
    ep.success_at = 11.25
    s = ep.summary(wall_s=4.0)
    assert s["sim_duration_s"] == pytest.approx(2.0)
    assert s["real_time_factor"] == pytest.approx(0.5)
    assert s["control"]["front_camera_rate_hz"] == pytest.approx(30.0)
    assert s["control"]["joint_state_rate_hz"] == pytest.approx(100.0)
    assert s["control"]["trajectory_rate_hz"] == pytest.approx(1.5)
    assert s["success"] and s["success_at_s"] == pytest.approx(1.25)
    assert s["latency_ms"]["policy_inference"]["p50"] == pytest.approx(120.0)
    assert s["latency_ms"]["policy_image_to_publish"] is None
    assert s["joint_travel_rad"] == pytest.approx(1.99)


def test_series_stats():
    assert series_stats([]) is None
    st = series_stats(list(range(1, 101)))
    assert st["max"] == 100 and st["n"] == 100 and st["p50"] == pytest.approx(50.5)


def test_children_are_stopped_even_when_they_ignore_sigint(tmp_path):
    stubborn = ("import signal, time\n"
                "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                "print('up', flush=True)\n"
                "time.sleep(60)\n")
    kids = Children(tmp_path, env={}, grace_s=0.5)
    a = kids.start("stubborn", [sys.executable, "-c", stubborn])
    b = kids.start("polite", [sys.executable, "-c", "import time; time.sleep(60)"])
    deadline = time.monotonic() + 20
    while "up" not in (tmp_path / "stubborn.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    kids.check()  # both alive: no error
    kids.stop()
    assert a.poll() is not None and b.poll() is not None


def test_a_dead_child_is_reported_with_its_log(tmp_path):
    kids = Children(tmp_path, env={})
    proc = kids.start("broken", [sys.executable, "-c", "print('checkpoint is corrupt'); raise SystemExit(3)"])
    proc.wait(timeout=20)
    with pytest.raises(RuntimeError, match="broken exited with code 3(.|\n)*checkpoint is corrupt"):
        kids.check()


def test_children_without_a_log_dir_write_to_this_terminal(capfd):
    kids = Children(None, env={})  # what `launch_plan --run` uses: output on the terminal
    kids.start("chatty", [sys.executable, "-c", "print('hello from the child', flush=True)"])
    assert kids.wait_any(poll_s=0.05) == "chatty"
    assert "hello from the child" in capfd.readouterr().out
    assert kids.log_path("chatty") is None and kids.tail("chatty") == []
    with pytest.raises(RuntimeError, match="^chatty exited with code 0$"):
        kids.check()
    kids.stop()


def test_a_policy_path_without_a_checkpoint_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        ensure_policy(str(tmp_path / "empty"), tmp_path, 320, 240, 0)


def test_the_default_policy_is_the_shipped_trained_one(tmp_path):
    from so100_description.paths import model_path

    folder, is_random = ensure_policy("", tmp_path, 320, 240, 100)
    assert folder == model_path() and not is_random
    assert not (tmp_path / "policies").exists()  # nothing built


def test_launchers_stop_on_ctrl_c_even_when_started_with_sigint_ignored():
    # A background job of a non-interactive shell (CI, `cmd &` in a script) starts with SIGINT
    # ignored; a launcher must still turn Ctrl-C / SIGTERM into its clean shutdown.
    import signal
    import subprocess
    import sys

    code = ("import sys, time\nfrom so100_bringup.processes import stop_on_signals\ntry:\n"
            "    with stop_on_signals():\n        print('ready', flush=True)\n        time.sleep(60)\n"
            "except KeyboardInterrupt:\n    sys.exit(130)\n")
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(sig)
        assert proc.wait(timeout=20) == 130


def test_node_command_lines():
    from so100_bringup.processes import node_command, ros_param_args

    assert ros_param_args({"a": True, "b": [1, 2], "c": "", "d": 0.5, "e": "pick it"}) == [
        "-p", "a:=true", "-p", "b:=[1,2]", "-p", "c:=''", "-p", "d:=0.5", "-p", "e:=pick it"]
    cmd = node_command("so100_bringup.sim.node", "sim.yaml", {"seed": 3})
    assert cmd[1:4] == ["-m", "so100_bringup.sim.node", "--ros-args"] and cmd[-2:] == ["-p", "seed:=3"]
    assert cmd[4] == "--params-file" and cmd[5].endswith("sim.yaml")


# --------------------------------------------------------------------------------------------
# The demo video: both cameras, scaled up, with the instruction, the sim time and success
# --------------------------------------------------------------------------------------------
INSTRUCTION = "pick the cube and place it in the target area"


def _camera(rgb: tuple[int, int, int], hw=(240, 320)):
    import numpy as np

    return np.full((*hw, 3), rgb, np.uint8)


def test_the_demo_video_shows_both_cameras_side_by_side_at_480_px(tmp_path):
    pytest.importorskip("imageio_ffmpeg", reason="imageio-ffmpeg not installed (make setup installs the sim extra)")
    import imageio.v2 as imageio

    from so100_bringup.demo_video import DemoVideo

    video = DemoVideo(tmp_path / "demo", fps=30.0, instruction=INSTRUCTION)
    video.add_front(_camera((200, 40, 40)), 0.0, None)  # before any wrist frame
    video.set_wrist(_camera((40, 40, 200), hw=(120, 160)))  # another size: scaled to the same height
    for k in range(1, 5):
        video.add_front(_camera((200, 40, 40)), k / 30, None)
    video.close()
    assert video.path == tmp_path / "demo.mp4"
    frames = imageio.mimread(video.path, memtest=False)
    assert len(frames) == 5 and frames[-1].shape == (480, 1280, 3)
    mid = frames[-1][240]  # a row below the text band and above the camera names
    assert mid[320, 0] > 150 and mid[320, 2] < 90  # left: front (red)
    assert mid[960, 2] > 150 and mid[960, 0] < 90  # right: wrist (blue)
    assert abs(int(frames[0][240, 960, 0]) - int(frames[0][240, 960, 2])) < 20  # grey until a wrist frame


def test_the_overlay_draws_the_instruction_and_the_time_on_the_cameras():
    import numpy as np

    from so100_bringup.demo_video import compose_frame

    front, wrist = _camera((180, 180, 180)), _camera((180, 180, 180))
    img = compose_frame(front, wrist, INSTRUCTION, 3.4, None)
    raw = np.full_like(img, 180)  # the scaled cameras without overlay
    band = slice(0, 40)
    assert not np.array_equal(img[band], raw[band])
    assert (img[band] == 255).any()  # white text on the darkened band
    assert np.array_equal(img[200:280], raw[200:280])  # the middle of the scene is untouched
    other = compose_frame(front, wrist, "stack the blocks", 3.4, None)
    later = compose_frame(front, wrist, INSTRUCTION, 9.9, None)
    assert not np.array_equal(img[band, :900], other[band, :900])  # the instruction is drawn
    assert not np.array_equal(img[band, 900:], later[band, 900:])  # the sim time is drawn


def test_success_puts_a_green_banner_on_the_video():
    import numpy as np

    from so100_bringup.demo_video import compose_frame

    front, wrist = _camera((90, 90, 90)), _camera((90, 90, 90))
    running = compose_frame(front, wrist, INSTRUCTION, 7.0, None)
    done = compose_frame(front, wrist, INSTRUCTION, 7.0, 6.5)
    changed = np.any(running != done, axis=2)
    rows = np.flatnonzero(changed.any(axis=1))
    assert rows.size > 30  # a banner, not a pixel
    banner = done[rows.min():rows.max() + 1].reshape(-1, 3).astype(int)
    green = (banner[:, 1] > banner[:, 0] + 60) & (banner[:, 1] > banner[:, 2] + 60)
    assert green.mean() > 0.5


def test_without_ffmpeg_the_video_is_a_half_size_gif(tmp_path, monkeypatch):
    import imageio.v2 as imageio

    from so100_bringup.demo_video import DemoVideo

    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # `import imageio_ffmpeg` fails
    video = DemoVideo(tmp_path / "demo", fps=10.0, instruction=INSTRUCTION)
    video.set_wrist(_camera((40, 40, 200)))
    for k in range(3):
        video.add_front(_camera((200, 40, 40)), k / 10, None)
    video.close()
    assert video.path == tmp_path / "demo.gif"
    frames = imageio.mimread(video.path)
    assert len(frames) == 3 and frames[0].shape[:2] == (240, 640)
