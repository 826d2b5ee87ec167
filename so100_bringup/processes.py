"""Child node processes for the one-command tools (`so100_demo`, `so100_record_sim`,
`so100_evaluate`): what `ros2 launch` does on a full ROS machine, for a pip-only one.

Each child is a separate ROS 2 process (real DDS between them) with its output in a log
file; `check()` turns a child that died into an error carrying its last log lines, and
`stop()` ends them in order (SIGINT, then SIGTERM, then SIGKILL).
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping


class Children:
    """The launched nodes; stopped with SIGINT, then SIGTERM, then SIGKILL."""

    def __init__(self, log_dir: Path, env: Mapping[str, str], grace_s: float = 5.0,
                 say: Callable[[str], None] | None = None):
        self.log_dir = Path(log_dir)
        self.env = dict(env)
        self.grace_s = grace_s  # per escalation step
        self.say = say or (lambda text: None)
        self.procs: dict[str, subprocess.Popen] = {}

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path(name), "w") as out:
            proc = subprocess.Popen(args, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # our Ctrl-C handling stops them in order
        self.procs[name] = proc
        self.say(f"started {name} (pid {proc.pid}), log: {self.log_path(name)}")
        return proc

    def tail(self, name: str, lines: int = 15) -> list[str]:
        try:
            return self.log_path(name).read_text(errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            return []

    def check(self, allow_exit: tuple[str, ...] = ()) -> None:
        """Raise RuntimeError (with its log tail) when a child other than `allow_exit` has exited."""
        for name, proc in self.procs.items():
            if name not in allow_exit and proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode}:\n  " + "\n  ".join(self.tail(name)))

    def stop(self, names: tuple[str, ...] | None = None) -> None:
        """Stop `names` (default: all), in that order of escalation: SIGINT, SIGTERM, SIGKILL."""
        targets = [p for n, p in self.procs.items() if names is None or n in names]
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            alive = [p for p in targets if p.poll() is None]
            if not alive:
                return
            for p in alive:
                try:
                    p.send_signal(sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + self.grace_s
            for p in alive:
                try:
                    p.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """While inside: SIGINT and SIGTERM both raise KeyboardInterrupt in the main thread, so a
    launcher stops its children in order however it is asked to stop. SIGINT explicitly: a
    background job of a non-interactive shell starts with it ignored (Python leaves it so)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def child_env() -> dict[str, str]:
    """This process's environment for ROS children: ament prefix for the package's share files,
    no hub lookups, unbuffered output so the logs are current."""
    from so100_description.paths import ensure_ament_prefix

    ensure_ament_prefix()
    env = os.environ.copy()
    env.setdefault("HF_HUB_OFFLINE", "1")
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
    return env


def params_file_args(name: str) -> list[str]:
    """--params-file for config/<name> when the package has it (defaults live there)."""
    from so100_description.paths import config_path

    try:
        return ["--params-file", str(config_path(name))]
    except FileNotFoundError:
        return []


def ros_param_args(params: Mapping[str, Any]) -> list[str]:
    """-p name:=value arguments; booleans as true/false, sequences as [a,b], "" as ''."""
    out: list[str] = []
    for key, value in params.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            value = "[" + ",".join(str(v) for v in value) + "]"
        elif value == "":
            value = "''"  # `-p name:=` alone is not a value
        out += ["-p", f"{key}:={value}"]
    return out


def node_command(module: str, params_file: str | None = None, params: Mapping[str, Any] | None = None) -> list[str]:
    """The command line of one of the package's nodes, run with this interpreter."""
    args = [sys.executable, "-m", module, "--ros-args"]
    if params_file:
        args += params_file_args(params_file)
    return args + ros_param_args(params or {})
