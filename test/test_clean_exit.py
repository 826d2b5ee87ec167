"""Every node console script stops cleanly: one SIGINT (Ctrl-C), two in quick succession (`ros2
launch` on Ctrl-C: the terminal's SIGINT to the process group, then its own) or SIGTERM (launch
after its timeout, systemd, `kill`) ends it with exit status 0 and no traceback, also while it is
tearing down. Each script runs as its own process without hardware: the driver and the leader on
the STS3215 emulator, the sim with one small camera, the recorder into a tmp directory, the
scripted expert waiting for a sim that is not there, the policy node on a random ACT checkpoint."""
from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (make setup installs the ROS 2 Jazzy wheels)")

from so100_bringup.feetech.emulator import Sts3215Emulator  # noqa: E402
from so100_description.calibration import load_calibration  # noqa: E402
from support.ros import wait_for  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CAL_FILE = REPO / "test" / "data" / "so101_follower_calibration.json"
STOPS = {"sigint": (signal.SIGINT,), "sigint_twice": (signal.SIGINT, signal.SIGINT), "sigterm": (signal.SIGTERM,)}
SECOND_SIGNAL_AFTER_S = 0.05  # the second SIGINT lands while the first one's teardown runs


class Case:
    """What one console script needs to start without hardware, and the log line that says it is up."""

    def __init__(self, args: Callable[[Path, dict], list[str]], ready: str, needs: tuple[str, ...] = ()):
        self.args, self.ready, self.needs = args, ready, needs


def _ros(**params: object) -> list[str]:
    return ["--ros-args", *[a for k, v in params.items() for a in ("-p", f"{k}:={v}")]]


CASES: dict[str, Case] = {
    "so100_driver": Case(lambda tmp, res: _ros(port=res["emulator"], calibration_file=CAL_FILE, timeout_ms=50.0,
                                               reconnect_period=0.2),
                         "connected to", needs=("emulator",)),
    "so100_leader_arm": Case(lambda tmp, res: _ros(port=res["emulator"], reconnect_period=0.2),
                             "connected to", needs=("emulator",)),
    "so100_mujoco_sim": Case(lambda tmp, res: _ros(cameras="[front]", image_width=64, image_height=48,
                                                   camera_rate_hz=10.0),
                             "MuJoCo scene ready"),
    "so100_recorder": Case(lambda tmp, res: _ros(root=tmp / "dataset", cameras="[front]"), "recording into"),
    "so100_expert": Case(lambda tmp, res: _ros(episodes=1), "running 1 episodes"),  # waits for the sim's reset
    "vla_policy_node": Case(lambda tmp, res: _ros(policy_path=res["checkpoint"]), "ready: cameras",
                            needs=("checkpoint",)),
    "so100_viewer": Case(lambda tmp, res: _ros(save_path=tmp / "viewer.rrd"), "logging to Rerun"),
    "so100_sts3215_emulator": Case(lambda tmp, res: ["--link", str(tmp / "emulated_arm")], "STS3215 emulator:"),
}
# Console scripts that are not long-running nodes: one-shot tools and launchers. A launcher stops
# its children in order on Ctrl-C and exits 130, the shell's code for "interrupted" (its own tests
# check that); so100_calibrate and so100_ctl do the same.
TOOLS = {"so100_calibrate", "so100_demo", "so100_train", "so100_evaluate", "so100_record_direct",
         "so100_record_sim", "so100_record", "so100_ctl", "so100_bag2lerobot", "so100_lerobot2bag",
         "so100_soak"}


def _console_scripts() -> dict[str, str]:
    """name -> "module:function" of setup.py's console_scripts."""
    tree = ast.parse((REPO / "setup.py").read_text())
    entries = next(n for n in ast.walk(tree) if isinstance(n, ast.Dict)
                   and any(isinstance(k, ast.Constant) and k.value == "console_scripts" for k in n.keys))
    scripts = next(v for k, v in zip(entries.keys, entries.values) if k.value == "console_scripts")
    pairs = (e.value.split("=", 1) for e in scripts.elts)
    return {name.strip(): target.strip() for name, target in pairs}


def test_every_console_script_is_covered_and_every_node_uses_spin_node_main():
    scripts = _console_scripts()
    assert set(scripts) <= set(CASES) | TOOLS, f"add {sorted(set(scripts) - set(CASES) - TOOLS)} to CASES or TOOLS"
    for name in set(CASES) - {"so100_sts3215_emulator"}:  # the emulator is no ROS node
        module = scripts[name].split(":")[0]
        source = (REPO / (module.replace(".", "/") + ".py")).read_text()
        assert "spin_node_main(" in source and "rclpy.init(" not in source, \
            f"{name} ({module}) must start through so100_common.ros_node.spin_node_main"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    pytest.importorskip("lerobot", reason="lerobot not installed: no policy checkpoint")
    from so100_bringup.learning.random_act import make_random_act

    return make_random_act(tmp_path_factory.mktemp("act") / "random", cameras=("front",), image_hw=(48, 64),
                           chunk_size=10)


def _script(name: str) -> Path:
    path = Path(sys.executable).parent / name
    if not path.is_file():
        pytest.skip(f"console script {name} not installed (make setup)")
    return path


@pytest.mark.parametrize("stop", list(STOPS))
@pytest.mark.parametrize("script", list(CASES))
def test_console_script_exits_cleanly(script, stop, tmp_path, request):
    case = CASES[script]
    resources: dict[str, object] = {}
    emulator = None
    if "emulator" in case.needs:
        emulator = Sts3215Emulator(link=tmp_path / "arm")
        emulator.apply_calibration(load_calibration(CAL_FILE))
        emulator.start()
        resources["emulator"] = emulator.port
    if "checkpoint" in case.needs:
        resources["checkpoint"] = request.getfixturevalue("checkpoint")
    # the source tree first: an editable install made before a package was added does not map it
    env = dict(os.environ, PYTHONUNBUFFERED="1", RCUTILS_COLORIZED_OUTPUT="0",
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
    log = tmp_path / f"{script}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(_script(script)), *case.args(tmp_path, resources)], env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        up = wait_for(lambda: case.ready in log.read_text() or proc.poll() is not None, timeout=180, poll=0.1)
        assert up and proc.poll() is None, f"{script} did not come up:\n{log.read_text()[-3000:]}"
        for k, sig in enumerate(STOPS[stop]):
            if k:
                time.sleep(SECOND_SIGNAL_AFTER_S)
            proc.send_signal(sig)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if emulator is not None:
            emulator.stop()
    output = log.read_text()
    assert code == 0, f"{script} exited {code} after {stop}:\n{output[-3000:]}"
    assert "Traceback" not in output and "ExternalShutdownException" not in output, output[-3000:]
