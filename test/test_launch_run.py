"""The launch plan run on a pip-only machine (`python -m so100_bringup.launch_plan --run`): the
real-arm plan in standalone control, namespaced, started as a process tree against the STS3215
emulator; its driver publishes joint states and follows a trajectory over real DDS."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from so100_bringup import launch_plan as lp
from so100_description import JOINT_NAMES

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (make setup installs the ROS 2 Jazzy wheels)")
from sensor_msgs.msg import JointState  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

from support.ros import Spinner, stop_process, wait_for  # noqa: E402

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parent.parent
CALIBRATION = REPO / "test" / "data" / "so101_follower_calibration.json"
WAIT_S = 60.0  # discovery and node start on a loaded 2-core machine; not a performance figure


def test_node_command_carries_name_namespace_and_parameters():
    plan = lp.bringup_plan(lp.parse_args({"hardware": "real", "control": "standalone", "namespace": "lab",
                                          "port": "/dev/ttyUSB7"}))
    driver = next(n for n in plan.nodes if n.package == lp.PACKAGE)
    argv = lp.command_for(driver)
    assert argv[0] == sys.executable and argv[1:4] == ["-m", "so100_bringup.driver_node", "--ros-args"]
    assert "__node:=so100_driver" in argv and "__ns:=/lab" in argv
    files = [argv[i + 1] for i, a in enumerate(argv) if a == "--params-file"]
    import yaml

    overrides = yaml.safe_load(Path(files[-1]).read_text())
    assert overrides == {"/lab/so100_driver": {"ros__parameters": {
        "variant": "so101", "mode": "standalone", "port": "/dev/ttyUSB7", "use_sim_time": False}}}
    with pytest.raises(ValueError):
        lp.command_for(plan.nodes[0])  # robot_state_publisher: not ours


def test_run_real_plan_standalone_against_the_emulator(tmp_path, rclpy_context):
    from so100_description.calibration import load_calibration
    from so100_bringup.feetech.emulator import Sts3215Emulator

    link = tmp_path / "arm"
    emulator = Sts3215Emulator(ids=[1, 2, 3, 4, 5, 6], link=str(link))
    emulator.apply_calibration(load_calibration(CALIBRATION))
    emulator.start()
    log = open(tmp_path / "launch.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "so100_bringup.launch_plan", "--run", "hardware:=real", "control:=standalone",
         "namespace:=lab", f"port:={link}", f"calibration_file:={CALIBRATION}"],
        env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT)
    node = rclpy.create_node("launch_run_probe", context=rclpy_context)
    states: list[JointState] = []
    node.create_subscription(JointState, "/lab/joint_states", states.append, 10)
    pub = node.create_publisher(JointTrajectory, "/lab/arm_controller/joint_trajectory", 10)
    spinner = Spinner([node], rclpy_context)
    try:
        wait_for(lambda: states or proc.poll() is not None, WAIT_S, poll=0.1)
        assert states, f"no /lab/joint_states; launch log:\n{(tmp_path / 'launch.log').read_text()[-3000:]}"
        assert list(states[-1].name) == list(JOINT_NAMES)
        start = np.array(states[-1].position)
        goal = start.copy()
        goal[0] += 0.3  # shoulder_pan
        msg = JointTrajectory(joint_names=list(JOINT_NAMES[:5]))
        msg.points = [JointTrajectoryPoint(positions=[float(x) for x in goal[:5]])]
        msg.points[0].time_from_start.sec = 1

        def reached() -> bool:
            pub.publish(msg)  # again every poll, until discovery has matched the driver
            return abs(states[-1].position[0] - goal[0]) < 0.03

        assert wait_for(reached, WAIT_S, poll=0.5), f"pan at {states[-1].position[0]:.3f}, goal {goal[0]:.3f}"
    finally:
        stop_process(proc, timeout=20)
        spinner.stop()
        node.destroy_node()
        emulator.stop()
        log.close()
    assert proc.returncode is not None
