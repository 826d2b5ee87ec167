"""so100_evaluate --hardware real: the operator loop (scripted keys, fake clock) over a fake
policy switch and over a fake policy node's ~/enable service; Wilson intervals in the results."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from so100_bringup.learning import evaluate as E
from support.keys import FakeClock, ScriptedKeys


class FakePolicy:
    def __init__(self, clock: FakeClock):
        self.clock = clock
        self.calls: list[tuple[bool, float]] = []

    def enable(self, on: bool) -> str:
        self.calls.append((on, self.clock.now))
        return "policy enabled" if on else "policy disabled"


def operate(script, episodes=3, episode_s=20.0):
    clock = FakeClock()
    policy = FakePolicy(clock)
    said: list[str] = []
    result = E.evaluate_with_operator(policy, ScriptedKeys(clock, script), episodes, episode_s, clock, said.append)
    return result, policy, said


def test_operator_starts_each_episode_and_marks_it():
    result, policy, said = operate([(1, "enter"), (30, "y"),  # runs its full 20 s, then marked
                                    (35, "right"), (40, "n"),  # y / n during the run end it and mark it
                                    (50, "enter"), (55, "right"), (57, "n")])  # ended early, then marked
    assert result.successes == [True, False, False]
    assert policy.calls == [(True, 1), (False, 21), (True, 35), (False, 40), (True, 50), (False, 55)]
    assert "[real] episode 1/3: success" in said and "[real] episode 3/3: fail" in said
    assert result.mode == "real" and result.seconds == 57


@pytest.mark.parametrize("redo_at", [5, 21.5])  # during the run, or when asked for the mark
def test_redo_runs_the_episode_again_without_counting_it(redo_at):
    result, policy, said = operate([(1, "enter"), (redo_at, "r"), (22, "enter"), (23, "y")], episodes=1)
    assert result.successes == [True]
    assert [on for on, _ in policy.calls] == [True, False, True, False]
    assert sum("reset the scene for episode 1/1" in line for line in said) == 2


def test_mark_keys_do_not_start_the_arm():
    # a second "n" typed while the scene is being reset must not start the next episode
    result, policy, _ = operate([(1, "enter"), (21, "n"), (22, "n"), (23, "y"), (24, "q")], episodes=2)
    assert result.successes == [False]
    assert [on for on, _ in policy.calls] == [True, False]


@pytest.mark.parametrize("when", [5, 25])
def test_stop_ends_the_evaluation_with_the_policy_off(when):
    # Esc during the run (5) or at the mark (25): that episode is not counted
    result, policy, said = operate([(1, "enter"), (when, "esc")])
    assert result.successes == []
    assert policy.calls[-1][0] is False
    assert said[-1] == "[real] stopped after 0 of 3 episodes"


def test_closed_input_stops_and_ctrl_c_switches_the_policy_off():
    result, policy, _ = operate([])  # stdin at its end before the first episode
    assert result.successes == [] and policy.calls == []

    clock = FakeClock()
    policy = FakePolicy(clock)

    class InterruptWhileRunning(ScriptedKeys):
        def get(self, timeout):
            if policy.calls and policy.calls[-1][0]:
                raise KeyboardInterrupt
            return super().get(timeout)

    with pytest.raises(KeyboardInterrupt):
        E.evaluate_with_operator(policy, InterruptWhileRunning(clock, [(1, "enter")]), 3, 20.0, clock,
                                 lambda _: None)
    assert [on for on, _ in policy.calls] == [True, False]


def test_wilson_interval():
    assert E.wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert E.wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert E.wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert E.wilson_interval(0, 0) == (0.0, 1.0)
    assert "[0.72, 1.00]" in E.table([E.EvalResult("real", [True] * 10)])


def test_real_policy_command_starts_the_node_off_under_its_name():
    s = E.EvalSettings(Path("models/act"), instruction="stack the cube", policy_node="/arm1/vla_policy_node",
                       node_params={"calibration_file": "/cal/follower.json"})
    cmd = E.real_policy_command(s)
    for part in ("policy_path:=models/act", "autostart:=false", "task:=stack the cube", "__node:=vla_policy_node",
                 "__ns:=/arm1", "calibration_file:=/cal/follower.json"):
        assert part in cmd, cmd
    assert not any("use_sim_time" in arg for arg in cmd)


def test_sim_still_needs_a_policy(capsys):
    with pytest.raises(SystemExit):
        E.main(["--episodes", "1"])
    assert "--policy is required in the sim" in capsys.readouterr().err


@pytest.mark.ros
def test_real_evaluation_switches_a_running_policy_node(rclpy_context, tmp_path):
    """Against a stand-in policy node (its ~/enable and its task parameter), over DDS."""
    from rclpy.node import Node
    from std_srvs.srv import SetBool

    from support.ros import Spinner

    class FakePolicyNode(Node):
        def __init__(self):
            super().__init__("fake_policy", context=rclpy_context)
            self.declare_parameter("task", "")
            self.requests: list[bool] = []
            self.create_service(SetBool, "~/enable", self.on_enable)

        def on_enable(self, request, response):
            self.requests.append(bool(request.data))
            response.success, response.message = True, f"policy {'enabled' if request.data else 'disabled'}"
            return response

    node = FakePolicyNode()
    spinner = Spinner([node], rclpy_context)
    try:
        s = E.EvalSettings(None, episodes=2, episode_s=10.0, instruction="stack the cube", policy_node="/fake_policy")
        clock = FakeClock()
        keys = ScriptedKeys(clock, [(1, "enter"), (3, "y"), (5, "enter"), (20, "n")])
        result = E.evaluate_real(s, tmp_path / "logs", keys, progress=lambda _: None, clock=clock, timeout_s=30)
        assert node.requests == [False, True, False, True, False]
        assert node.get_parameter("task").value == "stack the cube"
        with pytest.raises(RuntimeError, match="no policy node.*pass --policy"):
            E.evaluate_real(E.EvalSettings(None, policy_node="/nobody"), tmp_path / "logs", keys, timeout_s=0.5)
    finally:
        spinner.stop()
        node.destroy_node()
    assert result.successes == [True, False]
    E.write_json(tmp_path / "res.json", s, [result])
    saved = json.loads((tmp_path / "res.json").read_text())["results"][0]
    assert saved["mode"] == "real" and saved["rate"] == 0.5 and saved["successes"] == [True, False]
    assert saved["ci95"] == pytest.approx(E.wilson_interval(1, 2))
