"""Evaluation command: the same checkpoint through the policy node in the sim over DDS and
directly in the plain-Python sim, same seeds, rates side by side."""
from __future__ import annotations

import pytest

pytest.importorskip("mujoco", reason="mujoco not installed (make setup)")
pytest.importorskip("lerobot", reason="lerobot not installed (make setup)")

from so100_bringup.learning import evaluate as E  # noqa: E402


def test_table_reports_ratio():
    ros, direct = E.EvalResult("ros", [True, False, True, True]), E.EvalResult("direct", [True, True, True, False])
    text = E.table([ros, direct])
    assert "ros / direct = 1.00" in text
    assert "3/4" in text
    assert "nan" in E.table([E.EvalResult("ros", [False]), E.EvalResult("direct", [False])])


def test_refuses_non_checkpoint(tmp_path, capsys):
    assert E.main(["--policy", str(tmp_path)]) == 2
    assert "not a LeRobot checkpoint" in capsys.readouterr().err


@pytest.mark.ros
@pytest.mark.slow
def test_ros_and_direct_run_the_same_checkpoint(tmp_path, capsys):
    from so100_bringup.learning.random_act import make_random_act

    policy = tmp_path / "act"
    make_random_act(policy, cameras=("front",), image_hw=(120, 160), chunk_size=10)
    out = tmp_path / "res.json"
    rc = E.main(["--policy", str(policy), "--episodes", "2", "--episode-s", "1.0", "--seed", "3",
                 "--log-dir", str(tmp_path / "logs"), "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "[ros] episode 2/2" in text and "[direct] episode 2/2" in text
    import json

    results = {r["mode"]: r for r in json.loads(out.read_text())["results"]}
    assert set(results) == {"ros", "direct"}
    assert all(len(r["successes"]) == 2 for r in results.values())
    # a random policy does not solve the task; what matters is that both paths ran it
    assert results["ros"]["rate"] == results["direct"]["rate"] == 0.0
    policy_log = (tmp_path / "logs" / "policy.log").read_text()
    assert "policy enabled" in policy_log


@pytest.mark.ros
@pytest.mark.slow
def test_ctrl_c_stops_the_sim_and_policy_nodes(tmp_path):
    import os
    import subprocess
    import sys

    from support.ros import interrupt_launcher
    from so100_bringup.learning.random_act import make_random_act

    policy = tmp_path / "act"
    make_random_act(policy, cameras=("front",), image_hw=(120, 160), chunk_size=10)
    proc = subprocess.Popen([sys.executable, "-m", "so100_bringup.learning.evaluate", "--policy", str(policy),
                             "--episodes", "100", "--episode-s", "2", "--modes", "ros",
                             "--log-dir", str(tmp_path / "logs")],
                            env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    pids, output = interrupt_launcher(proc, "[ros] episode 1/100")  # both nodes up and running
    assert len(pids) == 2, output
    assert proc.returncode == 130, output
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
