"""The README's "Real arm quick start", run word for word against the STS3215 emulator.

The commands are read from the README itself; only the machine-specific values change: the port
becomes the emulator's pty link, the policy a random ACT, LeRobot's calibration folder a
temporary one holding the follower file `robot_id` names, and everything runs in a namespace of
its own (`-r __ns:=`, `so100_ctl -n`) so other ROS processes on the machine cannot interfere. The long-running commands (driver,
policy node) start in the background as a user would in their own shells; every `so100_ctl`
command must exit 0, and `so100_ctl nodes` must show the driver publishing joint_states.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (make setup installs the ROS 2 Jazzy wheels)")
pytest.importorskip("scservo_sdk", reason="feetech-servo-sdk not installed")
pytest.importorskip("lerobot", reason="lerobot not installed (the policy node needs it)")

from support.ros import stop_process, wait_for  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CALIBRATION = REPO / "test" / "data" / "so101_follower_calibration.json"
LONG_RUNNING = ("so100_driver", "vla_policy_node")


def quick_start_commands() -> list[str]:
    """The README's real-arm block: one command a line (continuations joined, comments dropped)."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Real arm quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line.split("  #")[0].strip() for line in joined.splitlines() if line.strip()]


def program(command: str) -> str:
    return Path(shlex.split(command)[0]).name


def test_the_block_is_what_this_test_expects():
    names = [program(c) for c in quick_start_commands()]
    assert names[0] == "make" and set(LONG_RUNNING) <= set(names), names
    assert all(n in ("make", *LONG_RUNNING, "so100_ctl") for n in names), names


@pytest.mark.slow
def test_readme_real_arm_quick_start_against_the_emulator(tmp_path):
    from so100_bringup.learning.random_act import make_random_act

    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "so100_ctl").exists():
        pytest.skip(f"console scripts not installed in {bin_dir} (make setup)")
    calibration_root = tmp_path / "calibration"
    (calibration_root / "robots" / "so_follower").mkdir(parents=True)
    commands = quick_start_commands()
    robot_id = re.search(r"robot_id:=(\S+)", commands[1]).group(1)
    shutil.copy(CALIBRATION, calibration_root / "robots" / "so_follower" / f"{robot_id}.json")
    policy = make_random_act(tmp_path / "act", cameras=("front", "wrist"), image_hw=(48, 64), chunk_size=10)
    link = tmp_path / "so101"
    env = dict(os.environ, HF_LEROBOT_CALIBRATION=str(calibration_root), PYTHONUNBUFFERED="1")

    namespace = f"readme_{uuid.uuid4().hex[:8]}"  # apart from any other ROS process on this machine

    def as_run_here(command: str) -> list[str]:
        command = command.replace("/dev/ttyACM0", str(link)).replace("/path/to/act", str(policy))
        argv = shlex.split(command)
        argv[0] = str(bin_dir / Path(argv[0]).name)  # the README's .venv/bin/<script>
        if program(command) in LONG_RUNNING:
            return argv + ["-r", f"__ns:=/{namespace}"]
        return argv + ["-n", namespace]

    background: list[tuple[subprocess.Popen, Path]] = []
    emulator = subprocess.Popen([str(bin_dir / "so100_sts3215_emulator"), "--link", str(link),
                                 "--calibration", str(CALIBRATION)], env=env, cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(link.exists, 30), "the emulator did not create its link"
        for command in commands:
            name = program(command)
            if name == "make":
                continue  # the venv this test runs in is what `make setup` made
            if name in LONG_RUNNING:
                log = tmp_path / f"{name}.log"
                background.append((subprocess.Popen(as_run_here(command), env=env, cwd=REPO,
                                                    stdout=log.open("w"), stderr=subprocess.STDOUT), log))
                continue
            # as a user would: look at the other shells until the driver and the policy are up
            assert wait_for(lambda: all(ready in log.read_text() for (_, log), ready in
                                        zip(background, ("connected to", "ready"))), 120), \
                "\n".join(log.read_text() for _, log in background)
            out = subprocess.run(as_run_here(command) + ["--timeout", "120"], env=env, cwd=REPO,
                                 capture_output=True, text=True, timeout=300)
            logs = "\n".join(f"--- {log.name}\n{log.read_text()}" for _, log in background)
            assert out.returncode == 0, f"{command}\n{out.stdout}\n{out.stderr}\n{logs}"
            if command.endswith(" nodes"):
                assert f"/{namespace}/so100_driver" in out.stdout and "joint_states" in out.stdout, out.stdout
        for proc, log in background:
            assert proc.poll() is None, f"{log.name} ended:\n{log.read_text()}"
        driver_log = background[0][1].read_text()
        assert "connected to" in driver_log and "Traceback" not in driver_log, driver_log
    finally:
        for proc, _ in background:
            stop_process(proc)
        emulator.terminate()
        emulator.wait(timeout=10)
