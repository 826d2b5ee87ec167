"""so100_record: lerobot-record's episode loop on the real arm, driving the running recorder node.

    so100_record --task "pick up the cube" --episodes 50 --episode-time-s 20 --reset-time-s 10

For each episode: start recording (the recorder's ~/start_episode), record for
--episode-time-s, stop taking frames (~/pause_episode) while the operator resets the scene for
--reset-time-s, then save it (~/stop_episode) or drop it (~/discard_episode). Keys, as in
lerobot-record: right arrow (or n) ends the episode or the reset early, left arrow (or r)
re-records the episode (during it or during the reset that follows it), Esc (or q) stops after
saving the episode in progress. The last episode has no reset phase. Without a terminal on stdin,
one command per line: n / r / q (or next / redo / stop).

The task goes to the recorder's `task` parameter before the first episode. --resume adds
episodes to a dataset that already holds some (the recorder must run with resume:=true for a
root that held a dataset when it started); without it a non-empty dataset is refused.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from so100_bringup.learning.keys import KeySource

PREFIX = "[so100_record]"
NEXT, REDO, STOP = "next", "redo", "stop"
KEY_ACTIONS = {"right": NEXT, "n": NEXT, "left": REDO, "r": REDO, "esc": STOP, "q": STOP}
SAVE_TIMEOUT_S = 600.0  # saving encodes the episode's videos: minutes for long episodes on a small CPU


class RecordError(RuntimeError):
    """The recorder refused a step; the message is its reply."""


class Recorder(Protocol):
    """The recorder node's episode services; each returns the node's message or raises RecordError."""

    def start(self) -> str: ...

    def pause(self) -> str: ...

    def save(self) -> str: ...

    def discard(self) -> str: ...


@dataclass(frozen=True)
class LoopSettings:
    episodes: int  # to record in this run
    episode_time_s: float
    reset_time_s: float
    first: int = 0  # episodes already in the dataset (--resume): numbering continues after them


@dataclass
class LoopResult:
    saved: int = 0
    rerecorded: int = 0
    stopped: bool = False  # Esc: ended before `episodes` were saved


def key_help(tty: bool) -> tuple[str, str, str]:
    """How to say next / re-record / stop on this input."""
    return ("→", "←", "Esc") if tty else ("n", "r", "q")


class RecordLoop:
    """The episode / reset / save cycle of lerobot-record as a state machine over a recorder,
    a key source and a clock (all injected: tests drive it with scripted keys and a fake clock)."""

    def __init__(self, recorder: Recorder, keys: KeySource, settings: LoopSettings,
                 clock: Callable[[], float] = time.monotonic, say: Callable[[str], None] = print):
        self.recorder = recorder
        self.keys = keys
        self.s = settings
        self.clock = clock
        self.say = say
        self.next_key, self.redo_key, self.stop_key = key_help(getattr(keys, "is_tty", True))
        self._open = False  # an episode is started and neither saved nor discarded

    def run(self) -> LoopResult:
        result = LoopResult()
        total = self.s.first + self.s.episodes
        try:
            while result.saved < self.s.episodes:
                number = self.s.first + result.saved + 1
                self.say(f"Recording episode {number}/{total} ({self.s.episode_time_s:g} s) — "
                         f"{self.next_key} next, {self.redo_key} re-record, {self.stop_key} stop")
                self.recorder.start()
                self._open = True
                event = self._wait(self.s.episode_time_s)
                self.recorder.pause()
                redo, stop = event == REDO, event == STOP
                last = result.saved == self.s.episodes - 1
                if not stop and (not last or redo) and self.s.reset_time_s > 0:
                    self.say(f"Reset the scene ({self.s.reset_time_s:g} s) — {self.next_key} done, "
                             f"{self.redo_key} re-record episode {number}, {self.stop_key} stop")
                    event = self._wait(self.s.reset_time_s)
                    redo, stop = redo or event == REDO, event == STOP
                if redo:
                    self.say(f"Re-record episode {number}: {self.recorder.discard()}")
                    self._open = False
                    result.rerecorded += 1
                else:
                    self.say(f"Saving episode {number}...")
                    text = self.recorder.save()
                    self._open = False
                    result.saved += 1
                    self.say(text)
                if stop:
                    result.stopped = result.saved < self.s.episodes
                    break
        finally:
            if self._open:  # Ctrl-C or a refused step: the recorder must not record on
                try:
                    self.say(f"Discarding the open episode: {self.recorder.discard()}")
                except Exception as exc:  # report; the original error is the one that matters
                    self.say(f"could not discard the open episode: {exc}")
                self._open = False
        self.say(f"Stop recording: {result.saved} episode(s) saved"
                 + (f", {result.rerecorded} re-recorded" if result.rerecorded else ""))
        return result

    def _wait(self, seconds: float) -> str | None:
        """NEXT, REDO or STOP when such a key comes within `seconds`, else None."""
        deadline = self.clock() + seconds
        while (remaining := deadline - self.clock()) > 0:
            event = KEY_ACTIONS.get(self.keys.get(remaining) or "")
            if event is not None:
                return event
        return None


# --------------------------------------------------------------------------------------------
# the recorder node over ROS
# --------------------------------------------------------------------------------------------
class RosRecorder:
    """The recorder node's Trigger services through a RosClient."""

    def __init__(self, client, node: str):
        from so100_bringup.ros_client import full_name

        self.client = client
        self.node = full_name(node)

    def _trigger(self, service: str, timeout_s: float | None = None) -> str:
        from std_srvs.srv import Trigger

        reply = self.client.call(Trigger, f"{self.node}/{service}", Trigger.Request(), timeout_s)
        if not reply.success:
            raise RecordError(f"{self.node}/{service}: {reply.message}")
        return reply.message

    def start(self) -> str:
        return self._trigger("start_episode")

    def pause(self) -> str:
        return self._trigger("pause_episode")

    def save(self) -> str:
        return self._trigger("stop_episode", max(self.client.timeout_s, SAVE_TIMEOUT_S))

    def discard(self) -> str:
        return self._trigger("discard_episode")


def episodes_to_continue(status: dict[str, str], resume: bool, node: str) -> int:
    """Episodes already in the recorder's dataset that this run continues after; RecordError
    when it is recording, or holds episodes and --resume was not given."""
    if status.get("recording") == "True":
        raise RecordError(f"{node} is recording an episode already: save or discard it first "
                          f"(its ~/stop_episode or ~/discard_episode)")
    saved = int(status.get("episodes_saved", "0"))
    if saved and not resume:
        raise RecordError(f"the dataset of {node} ({status.get('root', '?')}) already holds {saved} episode(s): "
                          "pass --resume to add to it, or start the recorder on another root")
    return saved


def speaker(enabled: bool) -> Callable[[str], None]:
    """print, and with `enabled` also speak each prompt (spd-say or say, as lerobot's log_say)."""
    tool = next((t for t in ("spd-say", "say") if shutil.which(t)), None) if enabled else None
    if enabled and tool is None:
        print(f"{PREFIX} --play-sounds: neither spd-say nor say is installed; prompts are printed only",
              file=sys.stderr)

    def say(text: str) -> None:
        print(f"{PREFIX} {text}", flush=True)
        if tool is not None:
            subprocess.Popen([tool, text.split(" — ")[0]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    return say


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="so100_record", description=__doc__.split("\n\n")[0],
                                 epilog="Keys: right arrow / n = end the episode or reset early, left arrow / r = "
                                        "re-record the episode, Esc / q = stop (the episode in progress is "
                                        "saved).")
    ap.add_argument("--task", required=True, help="task string of every episode (e.g. \"pick up the cube\")")
    ap.add_argument("--episodes", type=int, default=50, help="episodes to record in this run")
    ap.add_argument("--episode-time-s", type=float, default=60.0, help="length of an episode")
    ap.add_argument("--reset-time-s", type=float, default=60.0, help="time to reset the scene between episodes")
    ap.add_argument("--resume", action="store_true", help="add episodes to a dataset that already holds some")
    ap.add_argument("--recorder", default="/recorder", help="the recorder node (its services are <name>/...)")
    ap.add_argument("--timeout", type=float, default=30.0, help="how long to wait for the recorder's services")
    ap.add_argument("--play-sounds", action="store_true", help="also speak the prompts (spd-say or say)")
    a = ap.parse_args(argv)
    a.task = a.task.strip()
    if not a.task:
        ap.error("--task is empty: give the task the episodes show, e.g. --task \"pick up the cube\"")
    if a.episodes < 1:
        ap.error("--episodes must be >= 1")
    if a.episode_time_s <= 0 or a.reset_time_s < 0:
        ap.error("--episode-time-s must be > 0 and --reset-time-s >= 0")
    return a


def run(a: argparse.Namespace, keys: KeySource, say: Callable[[str], None]) -> int:
    from so100_bringup.ros_client import NodeUnavailable, RosClient, full_name

    node = full_name(a.recorder)
    with RosClient("so100_record", timeout_s=a.timeout) as client:
        client.watch_diagnostics()
        try:
            first = episodes_to_continue(client.diagnostics_of(node), a.resume, node)
            client.set_parameters(node, {"task": a.task})
        except NodeUnavailable as exc:
            say(f"{exc}: is the recorder running? (so100_recorder --ros-args -p root:=<dataset dir> ...; "
                "see docs/learning_loop.md)")
            return 2
        except RuntimeError as exc:  # recording already, episodes without --resume, task refused
            say(str(exc))
            return 2
        if a.resume:
            say(f"resuming: the dataset holds {first} episode(s)" if first else
                "--resume: the dataset holds no episode yet; starting at episode 1")
        loop = RecordLoop(RosRecorder(client, node), keys,
                          LoopSettings(a.episodes, a.episode_time_s, a.reset_time_s, first), say=say)
        try:
            loop.run()
        except (RecordError, NodeUnavailable) as exc:
            say(f"stopped: {exc}")
            return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from so100_bringup.learning.keys import TerminalKeys
    from so100_bringup.processes import stop_on_signals

    a = parse_args(sys.argv[1:] if argv is None else argv)
    say = speaker(a.play_sounds)
    try:
        with stop_on_signals(), TerminalKeys() as keys:
            if not keys.is_tty:
                say("stdin is not a terminal: type n (next), r (re-record) or q (stop), then Enter")
            return run(a, keys, say)
    except KeyboardInterrupt:
        say("interrupted (the episode in progress was discarded; saved episodes stay)")
        return 130


if __name__ == "__main__":
    sys.exit(main())
