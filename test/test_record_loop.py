"""so100_record: lerobot-record's episode loop over the recorder node, driven by scripted keys on
a fake clock; the terminal key reader; and one run against the real recorder node over DDS."""
from __future__ import annotations

import os

import pytest

from so100_bringup.learning.keys import TerminalKeys
from so100_bringup.learning.record_loop import (LoopSettings, RecordError, RecordLoop, episodes_to_continue,
                                                parse_args)
from support.keys import FakeClock, ScriptedKeys


class FakeRecorder:
    """The recorder's episode services, logging (call, clock time)."""

    def __init__(self, clock: FakeClock, refuse: str = ""):
        self.clock = clock
        self.refuse = refuse
        self.calls: list[tuple[str, float]] = []

    def _call(self, name: str) -> str:
        self.calls.append((name, self.clock.now))
        if name == self.refuse:
            raise RecordError(f"/recorder/{name}: refused")
        return f"{name} ok"

    def start(self) -> str:
        return self._call("start")

    def pause(self) -> str:
        return self._call("pause")

    def save(self) -> str:
        return self._call("save")

    def discard(self) -> str:
        return self._call("discard")


def run_loop(script=(), episodes=2, episode_s=20.0, reset_s=10.0, first=0, refuse=""):
    clock = FakeClock()
    recorder = FakeRecorder(clock, refuse)
    said: list[str] = []
    loop = RecordLoop(recorder, ScriptedKeys(clock, script), LoopSettings(episodes, episode_s, reset_s, first),
                      clock=clock, say=said.append)
    return loop, recorder, said


def test_timers_drive_episode_reset_and_save():
    loop, rec, said = run_loop()
    result = loop.run()
    assert rec.calls == [("start", 0), ("pause", 20), ("save", 30),  # reset 20..30, then saved
                         ("start", 30), ("pause", 50), ("save", 50)]  # no reset after the last one
    assert (result.saved, result.rerecorded, result.stopped) == (2, 0, False)
    assert said[0] == "Recording episode 1/2 (20 s) — → next, ← re-record, Esc stop"
    assert said[1].startswith("Reset the scene (10 s)")
    assert any(line.startswith("Recording episode 2/2") for line in said)
    assert sum(line.startswith("Reset") for line in said) == 1


def test_right_arrow_and_n_end_the_episode_and_the_reset_early():
    loop, rec, _ = run_loop([(5, "right"), (8, "n")])
    loop.run()
    assert rec.calls[:4] == [("start", 0), ("pause", 5), ("save", 8), ("start", 8)]


@pytest.mark.parametrize("key", ["left", "r"])
def test_rerecord_during_the_episode_discards_it_after_the_reset(key):
    loop, rec, said = run_loop([(5, key)])
    result = loop.run()
    assert rec.calls[:4] == [("start", 0), ("pause", 5), ("discard", 15), ("start", 15)]
    assert [c for c, _ in rec.calls].count("save") == 2  # still two episodes in the end
    assert result.rerecorded == 1
    assert sum(line.startswith("Recording episode 1/2") for line in said) == 2


def test_rerecord_during_the_reset_discards_the_episode_just_recorded():
    loop, rec, _ = run_loop([(25, "left")])
    loop.run()
    assert rec.calls[:4] == [("start", 0), ("pause", 20), ("discard", 25), ("start", 25)]


@pytest.mark.parametrize("key", ["esc", "q"])
def test_stop_saves_the_episode_in_progress_and_ends(key):
    loop, rec, said = run_loop([(3, key)], episodes=5)
    result = loop.run()
    assert rec.calls == [("start", 0), ("pause", 3), ("save", 3)]
    assert (result.saved, result.stopped) == (1, True)
    assert said[-1].startswith("Stop recording: 1 episode(s) saved")


def test_stop_during_the_reset_saves_and_ends():
    loop, rec, _ = run_loop([(25, "esc")], episodes=5)
    assert loop.run().saved == 1
    assert rec.calls == [("start", 0), ("pause", 20), ("save", 25)]


def test_rerecord_then_stop_discards_and_ends():
    loop, rec, _ = run_loop([(5, "left"), (7, "esc")], episodes=5)
    result = loop.run()
    assert rec.calls == [("start", 0), ("pause", 5), ("discard", 7)]
    assert result.saved == 0


def test_resume_continues_the_numbering():
    loop, _, said = run_loop(episodes=2, first=5)
    loop.run()
    recording = [line.split(" (")[0] for line in said if line.startswith("Recording")]
    assert recording == ["Recording episode 6/7", "Recording episode 7/7"]


def test_unknown_keys_change_nothing():
    loop, rec, _ = run_loop([(1, "up"), (2, "x"), (3, "enter")], episodes=1)
    loop.run()
    assert rec.calls == [("start", 0), ("pause", 20), ("save", 20)]


def test_a_refused_save_discards_the_open_episode():
    loop, rec, _ = run_loop(refuse="save")
    with pytest.raises(RecordError, match="refused"):
        loop.run()
    assert [c for c, _ in rec.calls] == ["start", "pause", "save", "discard"]


def test_ctrl_c_discards_the_open_episode():
    clock = FakeClock()
    rec = FakeRecorder(clock)

    class Interrupting(ScriptedKeys):
        def get(self, timeout):
            raise KeyboardInterrupt

    loop = RecordLoop(rec, Interrupting(clock, []), LoopSettings(3, 20, 10), clock=clock, say=lambda _: None)
    with pytest.raises(KeyboardInterrupt):
        loop.run()
    assert [c for c, _ in rec.calls] == ["start", "discard"]


@pytest.mark.parametrize("task", ["", "   "])
def test_empty_task_is_refused(task, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args(["--task", task])
    assert exc.value.code == 2
    assert "--task is empty" in capsys.readouterr().err


def test_task_is_required(capsys):
    with pytest.raises(SystemExit):
        parse_args([])
    assert "--task" in capsys.readouterr().err


def test_a_dataset_with_episodes_needs_resume():
    status = {"episodes_saved": "3", "recording": "False", "root": "/data/x"}
    with pytest.raises(RecordError, match="--resume"):
        episodes_to_continue(status, resume=False, node="/recorder")
    assert episodes_to_continue(status, resume=True, node="/recorder") == 3
    assert episodes_to_continue({"episodes_saved": "0", "recording": "False"}, False, "/recorder") == 0
    with pytest.raises(RecordError, match="recording an episode already"):
        episodes_to_continue({"episodes_saved": "0", "recording": "True"}, True, "/recorder")


# --- the key reader ---------------------------------------------------------------------------
def test_line_commands_when_stdin_is_not_a_terminal():
    read, write = os.pipe()
    os.write(write, b"n\nredo\n\nQ\nyes\n")
    os.close(write)
    with TerminalKeys(read) as keys:
        assert not keys.is_tty
        got = [keys.get(5.0) for _ in range(5)]
        assert got == ["n", "left", "enter", "q", "y"]
        assert keys.get(0.01) is None and keys.closed
    os.close(read)


def test_keys_and_arrow_sequences_on_a_terminal():
    termios = pytest.importorskip("termios", reason="POSIX terminals only")
    master, slave = os.openpty()
    try:
        with TerminalKeys(slave) as keys:
            assert keys.is_tty
            assert not termios.tcgetattr(slave)[3] & termios.ECHO  # cbreak, no echo
            os.write(master, b"\x1b[C\x1bODnR\r\x1b")
            got = [keys.get(5.0) for _ in range(6)]
            assert got == ["right", "left", "n", "r", "enter", "esc"]
        assert termios.tcgetattr(slave)[3] & termios.ECHO  # restored
    finally:
        os.close(master)
        os.close(slave)


# --- against the recorder node over DDS ------------------------------------------------------
@pytest.mark.ros
@pytest.mark.slow
def test_so100_record_drives_the_recorder_node(rclpy_context, tmp_path):
    """Leader-arm recording whose follower does not move: the recorder refuses to start without
    a task, so100_record records two episodes with its task and the recorder warns about the
    still follower; a second run needs --resume and continues the numbering."""
    pytest.importorskip("datasets", reason="lerobot[dataset] not installed (make setup)")
    import math
    import time

    from sensor_msgs.msg import JointState
    from std_srvs.srv import Trigger

    from so100_bringup.learning.record_loop import run
    from so100_description.joints import JOINT_NAMES
    from support.ros import Spinner, call_service, make_fake_io_node, start_node_process, stop_process, wait_for

    robot = make_fake_io_node({"front": ("/camera/front/image_raw", (48, 64), "rgb8")}, rate=30.0,
                              joint_positions=[0.1, -0.2, 0.3, 0.0, 0.5, 0.2], context=rclpy_context)
    leader = robot.create_publisher(JointState, "/leader/joint_states", 10)
    t0 = time.monotonic()

    def publish_leader() -> None:  # the operator moves the leader; nothing moves the follower
        msg = JointState(name=list(JOINT_NAMES), position=[0.3 * math.sin(3 * (time.monotonic() - t0))] + [0.0] * 5)
        msg.header.stamp = robot.get_clock().now().to_msg()
        leader.publish(msg)

    robot.create_timer(1 / 30, publish_leader)
    spinner = Spinner([robot], rclpy_context)
    root, log = tmp_path / "ds", tmp_path / "recorder.log"
    rec = start_node_process("so100_bringup.recorder.node", {
        "root": str(root), "fps": 20, "cameras": ["front"], "use_videos": False, "action_source": "leader",
        "still_follower_window_s": 1.0, "diagnostics_period_s": 0.3}, log_path=log)
    said: list[str] = []
    try:
        assert wait_for(lambda: "recording into" in log.read_text(), 120), log.read_text()
        refused = call_service(robot, Trigger, "/recorder/start_episode", Trigger.Request(), timeout=30)
        assert not refused.success and "no task" in refused.message and "so100_record --task" in refused.message

        def record(*extra: str) -> int:
            args = parse_args(["--task", "stack the cube", "--episode-time-s", "1.5", "--reset-time-s", "0.3",
                               "--timeout", "30", *extra])
            read, write = os.pipe()
            os.close(write)  # no keys: the timers drive the loop
            with TerminalKeys(read) as keys:
                code = run(args, keys, said.append)
            os.close(read)
            return code

        assert record("--episodes", "2") == 0, said
        saved = [line for line in said if line.startswith("saved episode")]
        assert len(saved) == 2, said
        assert all("WARNING: follower did not follow" in line for line in saved), saved
        assert record("--episodes", "1") == 2 and "--resume" in said[-1], said
        assert record("--episodes", "1", "--resume") == 0, said
        assert "Recording episode 3/3" in "\n".join(said), said
    finally:
        output = stop_process(rec) or log.read_text()
        spinner.stop()
        robot.destroy_node()
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    ds = LeRobotDataset("local/so101_recording", root=root)
    assert ds.num_episodes == 3, output
    assert {ds[i]["task"] for i in (0, len(ds) - 1)} == {"stack the cube"}
    assert "follower did not follow" in log.read_text()
