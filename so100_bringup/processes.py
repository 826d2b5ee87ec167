"""Child node processes, what `ros2 launch` does on a full ROS machine, for a pip-only one: the
one way this package starts its nodes as processes (`so100_demo`, `so100_record_sim`,
`so100_evaluate`, `python -m so100_bringup.launch_plan --run`).

`node_command` is the command line of one node (this interpreter, `python -m <module>`, ROS
arguments). `Children` runs them: each child is a separate ROS 2 process (real DDS between
them) whose output goes to a log file, or to this process's terminal for a foreground tool;
`check()` turns a child that died into an error carrying its last log lines, and `stop()` ends
them in order (SIGINT, then SIGTERM, then SIGKILL).
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
from typing import Any, Callable, Iterator, Mapping, Sequence


class Children:
    """The launched nodes; stopped with SIGINT, then SIGTERM, then SIGKILL.

    log_dir: each child's output (stdout and stderr) goes to `<log_dir>/<name>.log`; None: the
    children write to this process's stdout/stderr (a foreground tool run on a terminal).
    Either way a child runs in its own session, so a Ctrl-C on the terminal reaches only this
    process, which stops the children in order (see stop_on_signals)."""

    def __init__(self, log_dir: Path | None, env: Mapping[str, str], grace_s: float = 5.0,
                 say: Callable[[str], None] | None = None):
        self.log_dir = None if log_dir is None else Path(log_dir)
        self.env = dict(env)
        self.grace_s = grace_s  # per escalation step
        self.say = say or (lambda text: None)
        self.procs: dict[str, subprocess.Popen] = {}

    def log_path(self, name: str) -> Path | None:
        return None if self.log_dir is None else self.log_dir / f"{name}.log"

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        if name in self.procs:
            raise ValueError(f"a child named {name!r} was already started")
        log = self.log_path(name)
        if log is None:
            proc = subprocess.Popen(args, env=self.env, stdin=subprocess.DEVNULL,
                                    start_new_session=True)  # our Ctrl-C handling stops them in order
            self.say(f"started {name} (pid {proc.pid})")
        else:
            log.parent.mkdir(parents=True, exist_ok=True)
            env = {"RCUTILS_COLORIZED_OUTPUT": "0", **self.env}  # no colour codes in a file
            with open(log, "w") as out:
                proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            self.say(f"started {name} (pid {proc.pid}), log: {log}")
        self.procs[name] = proc
        return proc

    def tail(self, name: str, lines: int = 15) -> list[str]:
        """The last lines of a child's log ([] when its output is not in a file)."""
        log = self.log_path(name)
        try:
            return [] if log is None else log.read_text(errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            return []

    def exited(self, allow_exit: tuple[str, ...] = ()) -> list[str]:
        """Names of the children, other than `allow_exit`, that have exited."""
        return [name for name, proc in self.procs.items()
                if name not in allow_exit and proc.poll() is not None]

    def check(self, allow_exit: tuple[str, ...] = ()) -> None:
        """Raise RuntimeError (with its log tail) when a child other than `allow_exit` has exited."""
        for name in self.exited(allow_exit):
            tail = self.tail(name)
            raise RuntimeError(f"{name} exited with code {self.procs[name].returncode}"
                               + (":\n  " + "\n  ".join(tail) if tail else ""))

    def wait_any(self, poll_s: float = 0.2) -> str:
        """Block until a child exits; its name."""
        while not (done := self.exited()):
            time.sleep(poll_s)
        return done[0]

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


def node_command(module: str, params_file: str | None = None, params: Mapping[str, Any] | None = None, *,
                 name: str | None = None, namespace: str = "", remappings: Sequence[tuple[str, str]] = (),
                 param_files: Sequence[str] = (), arguments: Sequence[str] = ()) -> list[str]:
    """The command line of one of the package's nodes: `python -m <module>` with this interpreter.

    params_file: a file name under the package's config/ (the node's defaults; left out when the
    package has none). param_files: further parameter files (paths), in order after it.
    params: `-p name:=value` overrides (see ros_param_args). name, namespace, remappings: what
    launch_ros passes as `-r __node:=`, `-r __ns:=`, `-r from:=to`. arguments: the node's own
    arguments, before `--ros-args`."""
    args = [sys.executable, "-m", module, *arguments, "--ros-args"]
    if name:
        args += ["-r", f"__node:={name}"]
    if namespace.strip("/"):
        args += ["-r", f"__ns:=/{namespace.strip('/')}"]
    for src, dst in remappings:
        args += ["-r", f"{src}:={dst}"]
    if params_file:
        args += params_file_args(params_file)
    for path in param_files:
        args += ["--params-file", str(path)]
    return args + ros_param_args(params or {})
