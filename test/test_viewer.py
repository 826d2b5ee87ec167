"""The Rerun viewer: the core on synthetic inputs and the node over real DDS write a recording
(.rrd) that, read back with Rerun's own reader, holds the camera, joint, chunk-path, latency and
rate entities with the values that went in."""
from __future__ import annotations

import argparse
import os
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

rr = pytest.importorskip("rerun", reason="rerun-sdk not installed (make setup installs the viewer extra)")
pytest.importorskip("pinocchio", reason="pinocchio not installed (the kinematics extra; make setup)")

from so100_bringup.viewer.child import (SERVE, WINDOW, add_viewer_argument, recording_path,  # noqa: E402
                                        viewer_params)
from so100_bringup.viewer.log import ARM_LINKS, ArmKinematics, ViewerLog  # noqa: E402
from so100_description.joints import ARM_JOINTS, JOINT_NAMES  # noqa: E402

POLICY_STATUS = "vla_policy_node: policy"
SIM_STATUS = "mujoco_sim: simulation"


# -- reading a recording back ------------------------------------------------------------------
def read_rrd(path: Path) -> dict[str, dict[str, list]]:
    """{entity path: {column: values}} of the temporal data in an .rrd, rows in time order of
    the recording's timeline column (sim_time or ros_time, as seconds)."""
    from rerun.experimental import RrdReader

    rows: dict[str, list[dict]] = defaultdict(list)
    for chunk in RrdReader(path).stream():
        if chunk.is_static:
            continue
        table = chunk.to_record_batch().to_pydict()
        for i in range(chunk.num_rows):
            rows[chunk.entity_path].append({k: v[i] for k, v in table.items()})
    out: dict[str, dict[str, list]] = {}
    for entity, items in rows.items():
        timeline = "sim_time" if "sim_time" in items[0] else "ros_time"
        items.sort(key=lambda r: _seconds(r[timeline]))
        out[entity] = {k: [r.get(k) for r in items] for k in items[0]}
        out[entity]["t"] = [_seconds(r[timeline]) for r in items]
    return out


def _seconds(value) -> float:
    if hasattr(value, "total_seconds"):  # duration (timedelta)
        return value.total_seconds()
    if hasattr(value, "timestamp"):  # timestamp (datetime)
        return value.timestamp()
    return float(value)


def scalars(entity: dict) -> np.ndarray:
    return np.array([v[0] for v in entity["Scalars:scalars"]])


def texts(entity: dict, column: str = "TextLog:text") -> list[str]:
    return [v[0] for v in entity[column]]


def strip_points(entity: dict, row: int = -1) -> np.ndarray:
    """The points of the first line strip of one row."""
    return np.array(entity["LineStrips3D:strips"][row][0], dtype=float)


# -- the core on synthetic inputs --------------------------------------------------------------
def sine_state(t: float) -> np.ndarray:
    return 0.3 * np.sin(t + np.arange(len(JOINT_NAMES)))


def chunk_at(t: float) -> tuple[np.ndarray, np.ndarray]:
    """(times_from_start, positions K x 5) of a 10-knot arm chunk sent at t."""
    tfs = np.arange(1, 11) / 30.0
    return tfs, np.stack([sine_state(t + x)[:5] + 0.2 for x in tfs])


@pytest.fixture(scope="module")
def kinematics():
    return ArmKinematics("so101")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory, kinematics):
    """2 s of sim time: joint states at 100 Hz, two cameras at 30 Hz, a chunk and diagnostics every
    0.5 s, one instruction; the recording read back."""
    path = tmp_path_factory.mktemp("viewer") / "core.rrd"
    rec = rr.RecordingStream("so100_vla_test")
    rec.save(str(path))
    view = ViewerLog(rec, kinematics, sim_time=True, image_rate_hz=15.0, update_rate_hz=30.0, trail_s=1.0)
    chunks = []
    for i in range(200):
        t = 0.01 * i
        if i % 50 == 0:
            tfs, pos = chunk_at(t)
            view.trajectory(t, ARM_JOINTS, tfs, pos)
            chunks.append((t, tfs, pos))
            view.diagnostics(t, [
                (POLICY_STATUS, 0, "running", {"inferences": str(i // 50 + 1), "inference_latency_ms": "41.5",
                                               "image_to_publish_ms": "60.25"}),
                (SIM_STATUS, 1 if i >= 100 else 0, "slower" if i >= 100 else "running",
                 {"sim_time_s": str(t), "real_time_factor": "0.75"})])
        if i % 3 == 0:
            for cam, colour in (("front", 200), ("wrist", 40)):
                view.image(cam, t, np.full((48, 64, 3), colour, np.uint8))
        view.joint_state(t, JOINT_NAMES, sine_state(t))
    view.instruction(1.0, "pick the cube")
    rec.flush()
    rec.disconnect()
    return read_rrd(path), chunks


def test_core_recording_holds_every_entity(synthetic):
    data, _ = synthetic
    expected = {"/camera/front", "/camera/wrist", "/world/arm", "/world/tool", "/world/executed", "/world/chunk",
                "/latency/policy_inference_ms", "/latency/image_to_publish_ms", "/rates/joint_states_hz",
                "/rates/camera_front_hz", "/rates/chunks_hz", "/rates/sim_rtf", "/instruction",
                "/diagnostics/vla_policy_node_policy", "/diagnostics/mujoco_sim_simulation",
                *(f"/joints/{j}/measured" for j in JOINT_NAMES), *(f"/joints/{j}/commanded" for j in ARM_JOINTS)}
    assert expected <= set(data), sorted(expected - set(data))
    assert "/joints/gripper/commanded" not in data  # no gripper trajectory was sent


def test_core_images_are_jpeg_at_the_image_rate_with_their_pixels(synthetic):
    import cv2

    data, _ = synthetic
    front = data["/camera/front"]
    assert 28 <= len(front["t"]) <= 34  # 2 s of a 33 Hz camera throttled to 15 Hz: every second frame
    assert all(m == ["image/jpeg"] for m in front["EncodedImage:media_type"])
    for cam, colour in (("front", 200), ("wrist", 40)):
        blob = np.array(data[f"/camera/{cam}"]["EncodedImage:blob"][-1][0], dtype=np.uint8)
        rgb = cv2.imdecode(blob, cv2.IMREAD_COLOR)
        assert rgb.shape == (48, 64, 3) and abs(float(rgb.mean()) - colour) < 3


def test_core_joints_measured_and_commanded(synthetic):
    data, chunks = synthetic
    for k, joint in enumerate(JOINT_NAMES):
        measured = data[f"/joints/{joint}/measured"]
        t = np.array(measured["t"])
        assert 55 <= len(t) <= 70  # the 100 Hz states at the 30 Hz update rate
        np.testing.assert_allclose(scalars(measured), [sine_state(x)[k] for x in t], atol=1e-9)
    # commanded = the latest chunk's position at that instant, held at its ends
    elbow = ARM_JOINTS.index("elbow_flex")
    commanded = data["/joints/elbow_flex/commanded"]
    for t, value in zip(commanded["t"], scalars(commanded)):
        t0, tfs, pos = [c for c in chunks if c[0] <= t + 1e-9][-1]
        assert value == pytest.approx(np.interp(t, t0 + tfs, pos[:, elbow]), abs=1e-9)
    assert not np.allclose(scalars(commanded), scalars(data["/joints/elbow_flex/measured"]))


def test_core_chunk_path_is_the_tool_point_of_each_knot(synthetic, kinematics):
    data, chunks = synthetic
    chunk = data["/world/chunk"]
    assert chunk["t"] == pytest.approx([c[0] for c in chunks])
    for row, (_t, _tfs, pos) in enumerate(chunks):
        path = strip_points(chunk, row)
        assert path.shape == (10, 3)
        np.testing.assert_allclose(path, [kinematics.tool_position(q) for q in pos], atol=1e-5)
    # the arm polyline ends at the tool point; the executed path is the last trail_s of it
    arm = strip_points(data["/world/arm"])
    assert arm.shape == (len(ARM_LINKS), 3)
    tool_now = kinematics.tool_position(sine_state(data["/world/arm"]["t"][-1])[:5])
    np.testing.assert_allclose(arm[-1], tool_now, atol=1e-5)
    executed = strip_points(data["/world/executed"])
    np.testing.assert_allclose(executed[-1], tool_now, atol=1e-5)
    assert 25 <= len(executed) <= 35  # 1 s of trail at the 30 Hz update rate
    assert 0.05 < np.linalg.norm(tool_now) < 0.6  # metres from the base: the arm's reach


def test_core_latencies_rates_and_messages(synthetic):
    data, _ = synthetic
    assert set(scalars(data["/latency/policy_inference_ms"])) == {41.5}
    assert set(scalars(data["/latency/image_to_publish_ms"])) == {60.25}
    assert set(scalars(data["/rates/sim_rtf"])) == {0.75}
    assert scalars(data["/rates/joint_states_hz"])[-1] == pytest.approx(100.0, rel=0.02)
    assert scalars(data["/rates/camera_front_hz"])[-1] == pytest.approx(100 / 3, rel=0.05)
    assert scalars(data["/rates/chunks_hz"])[-1] == pytest.approx(2.0, rel=0.05)
    assert texts(data["/instruction"]) == ["pick the cube"]
    sim_messages = data["/diagnostics/mujoco_sim_simulation"]
    assert texts(sim_messages) == ["running", "slower"]  # only changes are logged
    assert texts(sim_messages, "TextLog:level") == ["INFO", "WARN"]
    assert max(max(e["t"]) for e in data.values()) <= 2.0


def test_core_refuses_bad_input_with_the_reason(tmp_path, kinematics):
    rec = rr.RecordingStream("so100_vla_test")
    rec.save(str(tmp_path / "bad.rrd"))
    view = ViewerLog(rec, kinematics, image_rate_hz=0.0)
    with pytest.raises(ValueError, match=r"positions must be \(points x joints\) = \(3 x 5\)"):
        view.trajectory(0.0, ARM_JOINTS, [0.1, 0.2, 0.3], np.zeros((3, 4)))
    with pytest.raises(ValueError, match="non-finite"):
        view.trajectory(0.0, ARM_JOINTS, [0.1], np.full((1, 5), np.nan))
    with pytest.raises(ValueError, match="6 names but 5 positions"):
        view.joint_state(0.0, JOINT_NAMES, [0.0] * 5)
    with pytest.raises(ValueError, match="H x W x 3 uint8 RGB"):
        view.image("front", 0.0, np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="jpeg_quality"):
        ViewerLog(rec, None, jpeg_quality=101)
    view.joint_state(0.1, ["left_shoulder_pan", "unknown"], [0.1, 0.2])  # unknown names: ignored
    rec.disconnect()


def test_core_an_empty_trajectory_ends_the_commanded_series(tmp_path):
    path = tmp_path / "empty.rrd"
    rec = rr.RecordingStream("so100_vla_test")
    rec.save(str(path))
    view = ViewerLog(rec, None, update_rate_hz=0.0)
    view.trajectory(0.2, ARM_JOINTS, [0.1], np.full((1, 5), 0.3))
    view.joint_state(0.25, JOINT_NAMES, sine_state(0.25))
    view.trajectory(0.3, ARM_JOINTS, [], [])  # no points: the controller stops and holds
    view.joint_state(0.35, JOINT_NAMES, sine_state(0.35))
    rec.disconnect()
    data = read_rrd(path)
    assert data["/joints/wrist_flex/measured"]["t"] == pytest.approx([0.25, 0.35])
    assert data["/joints/wrist_flex/commanded"]["t"] == pytest.approx([0.25])
    assert scalars(data["/joints/wrist_flex/commanded"]) == pytest.approx([0.3])


def test_core_unprefixes_joint_names_and_follows_a_clock_that_goes_back(tmp_path, kinematics):
    path = tmp_path / "prefix.rrd"
    rec = rr.RecordingStream("so100_vla_test")
    rec.save(str(path))
    view = ViewerLog(rec, kinematics, joint_prefix="left_", update_rate_hz=0.0)
    names = ["left_" + j for j in JOINT_NAMES]
    for t in (100.0, 100.01, 100.02, 5.0, 5.01):  # a sim's clock, then a restarted sim
        view.joint_state(t, names, sine_state(t))
    rec.disconnect()
    assert view.timeline == "sim_time"
    data = read_rrd(path)
    assert data["/joints/shoulder_pan/measured"]["t"] == pytest.approx([5.0, 5.01, 100.0, 100.01, 100.02])
    assert len(strip_points(data["/world/executed"], -1)) == 3  # the trail before the jump back
    assert len(strip_points(data["/world/executed"], 1)) == 2  # t=5.01: only the restarted clock's


def test_core_timeline_kind_comes_from_the_stamps_and_unstamped_messages_take_the_latest(tmp_path):
    path = tmp_path / "wall.rrd"
    rec = rr.RecordingStream("so100_vla_test")
    rec.save(str(path))
    view = ViewerLog(rec, None, update_rate_hz=0.0)
    view.instruction(None, "dropped: no stamp seen yet")
    assert view.timeline is None
    wall = 1.79e9
    view.joint_state(wall, JOINT_NAMES, sine_state(0.0))
    view.joint_state(wall + 0.5, JOINT_NAMES, sine_state(0.5))
    view.instruction(None, "stack the cube")  # std_msgs/String has no header
    view.joint_state(3.0, JOINT_NAMES, sine_state(1.0))  # a node on sim time among wall stamps
    rec.disconnect()
    assert view.timeline == "ros_time"
    data = read_rrd(path)
    assert texts(data["/instruction"]) == ["stack the cube"]
    assert data["/instruction"]["t"] == pytest.approx([wall + 0.5])
    assert data["/joints/shoulder_pan/measured"]["t"] == pytest.approx([wall, wall + 0.5, wall + 0.5])


def test_core_converts_only_the_frames_it_keeps(tmp_path):
    rec = rr.RecordingStream("so100_vla_test")
    rec.save(str(tmp_path / "lazy.rrd"))
    view = ViewerLog(rec, None, image_rate_hz=10.0)
    converted = []

    def frame() -> np.ndarray:
        converted.append(1)
        return np.zeros((8, 8, 3), np.uint8)

    kept = [view.image("front", i / 30.0, frame) for i in range(30)]  # 1 s of a 30 Hz camera
    rec.disconnect()
    assert sum(kept) == len(converted) == 10


# -- the tools' --viewer option ----------------------------------------------------------------
def test_viewer_option_values_and_node_parameters(tmp_path):
    ap = argparse.ArgumentParser()
    add_viewer_argument(ap)
    assert ap.parse_args([]).viewer is None
    assert ap.parse_args(["--viewer"]).viewer == WINDOW
    assert ap.parse_args(["--viewer", "serve"]).viewer == SERVE
    assert ap.parse_args(["--viewer", "run.rrd"]).viewer == "run.rrd"
    with pytest.raises(SystemExit):
        ap.parse_args(["--viewer", "browser"])
    default = tmp_path / "demo.rrd"
    assert viewer_params(None) is None
    assert viewer_params(None, default) == {"spawn": False, "serve": False, "save_path": str(default)}
    assert viewer_params(WINDOW, default) == {"spawn": True, "serve": False, "save_path": str(default)}
    assert viewer_params(SERVE, None, cameras=["front"]) == {"spawn": False, "serve": True, "save_path": "",
                                                             "cameras": ["front"]}
    assert recording_path("x.rrd", default) == Path("x.rrd") and recording_path(WINDOW, default) == default
    assert viewer_params("x.rrd", default)["save_path"] == str(Path("x.rrd").resolve())


def test_demo_saves_an_rrd_by_default_and_takes_the_viewer_option():
    from so100_bringup.demo import parse_args

    a = parse_args([])
    assert a.viewer is None and not a.no_rrd
    a = parse_args(["--viewer", "--no-rrd"])
    assert a.viewer == WINDOW and a.no_rrd


# -- the node over real DDS --------------------------------------------------------------------
def test_node_without_an_output_says_how_to_get_one():
    pytest.importorskip("rclpy", reason="rclpy not installed (make setup installs the ROS 2 Jazzy wheels)")
    from so100_bringup.processes import node_command

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run(node_command("so100_bringup.viewer.node", params={"spawn": True}), env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "no display" in proc.stdout + proc.stderr  # the warning for spawn without a display
    err = proc.stderr.strip().splitlines()[-1]
    assert "nothing to show the data on" in err and "serve:=true" in err and "save_path" in err
    assert "Traceback" not in proc.stderr


@pytest.mark.ros
def test_node_records_what_the_topics_carry(tmp_path):
    rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (make setup installs the ROS 2 Jazzy wheels)")
    from builtin_interfaces.msg import Duration
    from diagnostic_msgs.msg import DiagnosticArray
    from std_msgs.msg import String
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from so100_common.ros_node import diagnostic_array, diagnostic_status
    from support.ros import Spinner, initialized_context, make_fake_io_node, start_node_process, stop_process, \
        wait_for

    path = tmp_path / "node.rrd"
    state = [0.1, -0.4, 0.6, 0.2, -0.3, 0.5]
    proc = start_node_process("so100_bringup.viewer.node", {"save_path": str(path), "cameras": ["front"],
                                                            "image_rate_hz": 0.0, "update_rate_hz": 0.0},
                              log_path=tmp_path / "viewer.log")
    try:
        with initialized_context() as context:
            io = make_fake_io_node({"front": ("/camera/front/image_raw", (48, 64), "rgb8")}, rate=30.0,
                                   joint_positions=state, context=context)
            arm = io.create_publisher(JointTrajectory, "/arm_controller/joint_trajectory", 10)
            diag = io.create_publisher(DiagnosticArray, "/diagnostics", 10)
            instruction = io.create_publisher(String, "/vla/instruction", 10)
            spinner = Spinner([io], context)
            try:
                assert wait_for(lambda: io.count_subscribers("/camera/front/image_raw") > 0
                                and arm.get_subscription_count() > 0 and diag.get_subscription_count() > 0
                                and instruction.get_subscription_count() > 0, 60), \
                    (tmp_path / "viewer.log").read_text()
                chunk = JointTrajectory(joint_names=list(ARM_JOINTS))
                chunk.points = [JointTrajectoryPoint(positions=[0.1 * k] * 5, time_from_start=Duration(
                    nanosec=int(k * 1e8))) for k in range(1, 6)]
                status = diagnostic_status(POLICY_STATUS, 0, "running", {
                    "inferences": 4, "inference_latency_ms": 33.0, "image_to_publish_ms": 48.0})
                for _ in range(10):  # over a second: every subscription has seen some
                    chunk.header.stamp = io.get_clock().now().to_msg()
                    arm.publish(chunk)
                    diag.publish(diagnostic_array(io, [status]))
                    instruction.publish(String(data="stack the cube"))
                    time.sleep(0.1)
                wait_for(lambda: io.frame > 40, 30)
            finally:
                spinner.stop()
                io.destroy_node()
    finally:
        output = stop_process(proc)  # SIGTERM: the node closes the recording
    assert proc.returncode == 0, (tmp_path / "viewer.log").read_text() + output
    data = read_rrd(path)
    for entity in ("/camera/front", "/world/chunk", "/world/arm", "/world/executed", "/joints/elbow_flex/measured",
                   "/joints/elbow_flex/commanded", "/latency/policy_inference_ms", "/rates/joint_states_hz",
                   "/rates/camera_front_hz", "/instruction"):
        assert entity in data, (entity, sorted(data))
    assert "ros_time" in data["/camera/front"]  # the fake robot stamps with wall time
    np.testing.assert_allclose(scalars(data["/joints/elbow_flex/measured"]), state[2])
    assert set(scalars(data["/latency/policy_inference_ms"])) == {33.0}
    assert texts(data["/instruction"])[0] == "stack the cube"
    kin = ArmKinematics("so101")
    np.testing.assert_allclose(strip_points(data["/world/chunk"]), [kin.tool_position([0.1 * k] * 5)
                                                                    for k in range(1, 6)], atol=1e-5)
    assert scalars(data["/rates/joint_states_hz"])[-1] == pytest.approx(30.0, rel=0.3)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.ros
def test_node_serves_a_web_viewer_and_stops_it_with_itself(tmp_path):
    pytest.importorskip("rclpy", reason="rclpy not installed (make setup installs the ROS 2 Jazzy wheels)")
    import urllib.request

    from support.ros import start_node_process, stop_process, wait_for

    grpc_port, web_port = _free_port(), _free_port()
    proc = start_node_process("so100_bringup.viewer.node", {"serve": True, "grpc_port": grpc_port,
                                                            "web_port": web_port}, log_path=tmp_path / "serve.log")
    try:
        assert wait_for(lambda: _answers(web_port) and _answers(grpc_port), 60), (tmp_path / "serve.log").read_text()
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/", timeout=10) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
    finally:
        stop_process(proc)
    assert proc.returncode == 0, (tmp_path / "serve.log").read_text()
    assert wait_for(lambda: not _answers(web_port) and not _answers(grpc_port), 10)  # no server left behind
