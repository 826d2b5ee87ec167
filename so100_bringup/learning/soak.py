"""so100_soak: run the closed loop for a given time and report what a long lab day would show.

The graph is the evaluation's: the MuJoCo sim node and the policy node (the shipped ACT by
default) as processes over real DDS on sim time, the sim reset and the policy re-enabled every
episode. Per process it prints RSS when the first episode ends and at the end, the CPU it used,
and the exceptions its log shows; then the sim's missed deadlines (steps that began more than one
camera period behind the wall clock), the joint-state rate over each sampling window, and the
policy's input stalls (an inference was due and an image or the joint state was missing or
stale).

    so100_soak --minutes 60 --json outputs/soak/soak.json     # docs/reliability.md's run
    so100_soak --minutes 1 --policy /path/to/checkpoint

Exit status: 0 ran and met the goals, 1 ran and missed a goal (the report says which), 2 could
not run (a node died or refused).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from so100_bringup.learning.evaluate import EvalSettings, RosEpisodes, wilson_interval
from so100_bringup.processes import stop_on_signals
from so100_description.paths import DEFAULT_POLICY, model_path

RSS_GROWTH_GOAL = 0.05  # per process, from the end of the first episode to the end
MISSED_DEADLINE_GOAL = 0.01  # fraction of the sim's steps
EXCEPTION = re.compile(r"^Traceback \(most recent call last\)|\[ERROR\]", re.MULTILINE)


@dataclass
class ProcessFigures:
    name: str
    pid: int
    rss_first_episode_mb: float = float("nan")
    rss_end_mb: float = float("nan")
    rss_peak_mb: float = 0.0
    cpu_percent: float = float("nan")  # of one core, over the run after the first episode
    exceptions: int = 0  # tracebacks and [ERROR] lines in its log
    log: str = ""

    @property
    def rss_growth(self) -> float:
        return self.rss_end_mb / self.rss_first_episode_mb - 1.0


@dataclass
class SoakReport:
    seconds: float = 0.0
    episodes: int = 0
    successes: int = 0
    processes: list[ProcessFigures] = field(default_factory=list)
    sim_steps: int = 0
    sim_late_steps: int = 0
    sim_rtf_min: float = float("nan")
    joint_state_hz: list[float] = field(default_factory=list)  # one per sampling window (wall)
    policy_stalls: int = 0
    policy_image_stalls: int = 0
    policy_inferences: int = 0

    @property
    def missed_deadlines(self) -> float:
        return self.sim_late_steps / self.sim_steps if self.sim_steps else float("nan")

    def goals(self) -> list[tuple[str, bool]]:
        out = [(f"{p.name}: RSS growth {100 * p.rss_growth:+.1f} % after the first episode (< 5 %)",
                p.rss_growth < RSS_GROWTH_GOAL) for p in self.processes]
        out.append((f"sim missed deadlines {100 * self.missed_deadlines:.2f} % of {self.sim_steps} steps (< 1 %)",
                    self.missed_deadlines < MISSED_DEADLINE_GOAL))
        exceptions = sum(p.exceptions for p in self.processes)
        out.append((f"exceptions logged: {exceptions} (0)", exceptions == 0))
        return out


class ProcessWatch:
    """RSS and CPU time of the child processes, read with psutil."""

    def __init__(self, pids: dict[str, int]):
        import psutil

        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.figures = {name: ProcessFigures(name, pid) for name, pid in pids.items()}
        self._cpu0: dict[str, float] = {}
        self._t0 = 0.0

    def _rss_mb(self, name: str) -> float:
        rss = self.procs[name].memory_info().rss / 2**20
        self.figures[name].rss_peak_mb = max(self.figures[name].rss_peak_mb, rss)
        return rss

    def _cpu_s(self, name: str) -> float:
        t = self.procs[name].cpu_times()
        return t.user + t.system

    def first_episode_done(self) -> None:
        self._t0 = time.monotonic()
        for name in self.procs:
            self.figures[name].rss_first_episode_mb = self._rss_mb(name)
            self._cpu0[name] = self._cpu_s(name)

    def sample(self) -> None:
        for name in self.procs:
            self._rss_mb(name)

    def end(self) -> None:
        wall = max(time.monotonic() - self._t0, 1e-9)
        for name in self.procs:
            f = self.figures[name]
            f.rss_end_mb = self._rss_mb(name)
            f.cpu_percent = 100.0 * (self._cpu_s(name) - self._cpu0.get(name, 0.0)) / wall


class GraphWatch:
    """Counts /joint_states messages and keeps the latest diagnostics values of each status."""

    def __init__(self, node):
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import JointState

        from so100_common.ros_node import STATE_QOS

        self._lock = threading.Lock()
        self._joint_states = 0
        self.diagnostics: dict[str, dict[str, str]] = {}
        node.create_subscription(JointState, "/joint_states", self._on_state, STATE_QOS)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)

    def _on_state(self, _msg) -> None:
        with self._lock:
            self._joint_states += 1

    def _on_diagnostics(self, msg) -> None:
        with self._lock:
            for status in msg.status:
                self.diagnostics[status.name] = {kv.key: kv.value for kv in status.values}

    def take_joint_states(self) -> int:
        with self._lock:
            n, self._joint_states = self._joint_states, 0
            return n

    def values(self, suffix: str) -> dict[str, str]:
        with self._lock:
            return next((dict(v) for k, v in self.diagnostics.items() if k.endswith(suffix)), {})


def count_exceptions(log: Path | None) -> int:
    if log is None or not log.exists():
        return 0
    return len(EXCEPTION.findall(log.read_text(errors="replace")))


def soak(s: EvalSettings, seconds: float, log_dir: Path, sample_s: float = 10.0, progress=print) -> SoakReport:
    report = SoakReport()
    t0 = time.monotonic()
    with RosEpisodes(s, log_dir, progress) as episodes:
        children, client = episodes.children, episodes.client
        graph = GraphWatch(client.node)
        procs = ProcessWatch({name: proc.pid for name, proc in children.procs.items()})
        rtfs: list[float] = []
        last_sample = time.monotonic()
        graph.take_joint_states()
        while True:
            success = episodes.run()
            report.episodes += 1
            report.successes += success
            if report.episodes == 1:
                procs.first_episode_done()
                graph.take_joint_states()
                last_sample = time.monotonic()
            now = time.monotonic()
            if report.episodes > 1 and now - last_sample >= sample_s:
                report.joint_state_hz.append(graph.take_joint_states() / (now - last_sample))
                last_sample = now
                procs.sample()
                rtf = float(graph.values("simulation").get("real_time_factor", "nan"))
                if rtf == rtf:
                    rtfs.append(rtf)
            elapsed = now - t0
            progress(f"[soak] episode {report.episodes}: {'success' if success else 'fail'}; "
                     f"{elapsed / 60:.1f} of {seconds / 60:.1f} min")
            if elapsed >= seconds:
                break
        procs.end()
        sim, policy = graph.values("simulation"), graph.values("policy")
        report.sim_steps, report.sim_late_steps = int(sim.get("steps", 0)), int(sim.get("late_steps", 0))
        report.sim_rtf_min = min(rtfs, default=float("nan"))
        report.policy_stalls = int(policy.get("stalls", 0))
        report.policy_image_stalls = int(policy.get("image_stalls", 0))
        report.policy_inferences = int(policy.get("inferences", 0))
        logs = {name: children.log_path(name) for name in children.procs}
    for name, figures in procs.figures.items():
        figures.exceptions = count_exceptions(logs[name])
        figures.log = str(logs[name])
        report.processes.append(figures)
    report.seconds = time.monotonic() - t0
    return report


def format_report(r: SoakReport) -> str:
    lo, hi = wilson_interval(r.successes, r.episodes)
    hz = r.joint_state_hz
    lines = [f"soak: {r.seconds / 60:.1f} min, {r.episodes} episodes, success {r.successes}/{r.episodes} "
             f"({100 * r.successes / max(r.episodes, 1):.0f} %, 95 % CI {100 * lo:.0f}-{100 * hi:.0f} %)",
             f"{'process':<10}{'RSS 1st ep MB':>15}{'RSS end MB':>12}{'growth':>9}{'peak MB':>10}{'CPU %':>8}"
             f"{'exceptions':>12}"]
    for p in r.processes:
        lines.append(f"{p.name:<10}{p.rss_first_episode_mb:>15.0f}{p.rss_end_mb:>12.0f}{100 * p.rss_growth:>8.1f}%"
                     f"{p.rss_peak_mb:>10.0f}{p.cpu_percent:>8.0f}{p.exceptions:>12}")
    lines += [f"sim: {r.sim_steps} steps, {r.sim_late_steps} missed deadlines "
              f"({100 * r.missed_deadlines:.2f} %), lowest RTF over a window {r.sim_rtf_min:.2f}",
              (f"joint states: {min(hz):.1f} to {max(hz):.1f} Hz over {len(hz)} windows (mean {sum(hz) / len(hz):.1f})"
               if hz else "joint states: run too short for a sampling window"),
              f"policy: {r.policy_inferences} inferences, {r.policy_stalls} input stalls "
              f"({r.policy_image_stalls} waiting for an image)"]
    lines += [f"[{'ok' if ok else 'MISSED'}] {text}" for text, ok in r.goals()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    d = EvalSettings(None)
    ap.add_argument("--minutes", type=float, default=60.0, help="how long to run (the last episode finishes)")
    ap.add_argument("--policy", type=Path, help=f"LeRobot checkpoint folder (default: the shipped {DEFAULT_POLICY})")
    ap.add_argument("--seed", type=int, default=7000, help="the sim's layout seed")
    ap.add_argument("--episode-s", type=float, default=d.episode_s, help="episode length (sim time)")
    ap.add_argument("--sample-s", type=float, default=10.0, help="sampling window for RSS and rates (wall s)")
    ap.add_argument("--image-width", type=int, default=None, help="camera width (default: the checkpoint's)")
    ap.add_argument("--image-height", type=int, default=None, help="camera height (default: the checkpoint's)")
    ap.add_argument("--log-dir", type=Path, default=Path("outputs/soak"))
    ap.add_argument("--json", type=Path, help="also write the report here")
    a = ap.parse_args(argv)
    try:
        a.policy = a.policy or model_path()
    except FileNotFoundError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    if not (a.policy / "config.json").is_file():
        print(f"soak: {a.policy} is not a LeRobot checkpoint (no config.json)", file=sys.stderr)
        return 2
    s = EvalSettings(policy=a.policy, seed=a.seed, episode_s=a.episode_s)
    if a.image_width:
        s.image_width = a.image_width
    if a.image_height:
        s.image_height = a.image_height
    try:
        with stop_on_signals():
            report = soak(s, 60.0 * a.minutes, a.log_dir, a.sample_s)
    except KeyboardInterrupt:
        print("soak: interrupted; the nodes were stopped", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        data = asdict(report)
        data.update(missed_deadlines=report.missed_deadlines, goals=[{"goal": t, "met": ok} for t, ok in report.goals()],
                    rss_growth={p.name: p.rss_growth for p in report.processes},
                    command=" ".join(sys.argv))
        a.json.write_text(json.dumps(data, indent=2, default=float))
    return 0 if all(ok for _, ok in report.goals()) else 1


if __name__ == "__main__":
    sys.exit(main())
