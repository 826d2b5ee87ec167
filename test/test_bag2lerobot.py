"""so100_bag2lerobot / so100_lerobot2bag: bags made in the MuJoCo sim (the scripted expert, the
cameras, the recorder's service calls; written with rosbags as MCAP and sqlite3) become the
recorder's dataset, read back with LeRobot's own LeRobotDataset; a dataset survives the round
trip through a bag; each kind of bad bag gives a clear error or converts what is readable."""
from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rosbags", reason="rosbags not installed (make setup)")
pytest.importorskip("mujoco", reason="mujoco not installed (make setup)")
pytest.importorskip("datasets", reason="lerobot[dataset] not installed (make setup)")
pytest.importorskip("pinocchio", reason="pin (pinocchio) not installed (make setup)")

from support.sim_bag import (NS, PLAN_DELAY_NS, TASK, Message, SimBagSpec, Stamper, service_message,  # noqa: E402
                             simulate, write_bag, write_killed_mcap)

from so100_bringup.control.follower import TrajectoryFollower  # noqa: E402
from so100_bringup.recorder.bag_io import BagError  # noqa: E402
from so100_bringup.recorder.bag_to_dataset import BagOptions, convert_bag, parse_ranges  # noqa: E402
from so100_bringup.recorder.core import dataset_features  # noqa: E402
from so100_description.calibration import JointUnitConverter, nominal_calibration  # noqa: E402
from so100_description.joints import JOINT_NAMES, joint_limits  # noqa: E402

FPS = 30
CONVERTER = JointUnitConverter(nominal_calibration())
STATE_TOPIC = "/joint_states"
CAMERA_TOPIC = "/camera/front/image_raw"


@pytest.fixture(scope="module")
def recording():
    """Two expert episodes of 1.5 s, 2 s of bag time apart; front camera at 64x48."""
    return simulate(SimBagSpec(episodes=2, episode_s=1.5))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bags")


@pytest.fixture(scope="module")
def mcap_bag(recording, workdir) -> Path:
    return write_bag(recording.messages, workdir / "sim_mcap", "mcap")


@pytest.fixture(scope="module")
def converted(mcap_bag, workdir):
    """The bag as a dataset with PNG frames: pixels exact, so frame alignment shows."""
    root = workdir / "from_mcap"
    report = convert_bag(mcap_bag, options(root), log=lambda _line: None)
    return report, load(root)


def load(root: Path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    return LeRobotDataset("local/so101_recording", root=root, video_backend="pyav")


def options(root: Path, **kw) -> BagOptions:
    return BagOptions(root=root, use_videos=False, image_writer_threads=0, **kw)


def episodes_of(ds) -> list[dict[str, np.ndarray]]:
    """Per episode: state, action (float64) and front images (N x H x W x 3 in 0..1)."""
    out = []
    for ep in range(ds.num_episodes):
        rows = [ds[i] for i in range(len(ds)) if int(ds[i]["episode_index"]) == ep]
        out.append({"state": np.stack([r["observation.state"].numpy() for r in rows]).astype(np.float64),
                    "action": np.stack([r["action"].numpy() for r in rows]).astype(np.float64),
                    "image": np.stack([r["observation.images.front"].numpy().transpose(1, 2, 0) for r in rows]),
                    "task": {r["task"] for r in rows}})
    return out


def latest(messages: list[Message], topic: str, t: int) -> Message | None:
    found = None
    for m in messages:
        if m.t > t:
            break
        if m.topic == topic:
            found = m
    return found


def stamp_s(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def expected_frames(recording, episode: int, fps: int = FPS, max_age_s: float = 0.5) -> list[dict]:
    """The recorder's rule, worked out here: ticks every 1/fps from the episode's first joint
    state; a tick with a missing or too old input is no frame; the action is the expert's plan
    through a follower seeded at the first joint state, on the clock of the joint state stamps."""
    msgs = recording.messages
    first, last = recording.episodes[episode]
    states = [m for m in msgs if m.topic == STATE_TOPIC and first <= m.t <= last]
    start = states[0]
    lims = joint_limits("so101")
    follower = TrajectoryFollower(list(JOINT_NAMES), [0.0] * 6, [lims[j].lower for j in JOINT_NAMES],
                                  [lims[j].upper for j in JOINT_NAMES])
    follower.hold(stamp_s(start.msg), list(start.msg.position))
    plan_clock = stamp_s(start.msg) + (first + PLAN_DELAY_NS - start.t) / NS
    follower.set_trajectory(list(JOINT_NAMES), recording.plans[episode], None, plan_clock)
    frames = []
    k = 0
    while (tick := start.t + round(k * NS / fps)) <= states[-1].t:
        k += 1
        state, image = latest(msgs, STATE_TOPIC, tick), latest(msgs, CAMERA_TOPIC, tick)
        if image is None or image.t < first or tick - image.t > max_age_s * NS:
            continue
        clock = stamp_s(state.msg) + (tick - state.t) / NS
        action = follower.sample(clock)[0]
        rgb = np.frombuffer(image.msg.data, np.uint8).reshape(image.msg.height, image.msg.width, 3)
        frames.append({"state": CONVERTER.state_vector(dict(zip(JOINT_NAMES, state.msg.position))),
                       "action": CONVERTER.state_vector(dict(zip(JOINT_NAMES, action))),
                       "image": rgb / 255.0})
    return frames


def pixels(images: np.ndarray) -> np.ndarray:
    return np.round(images * 255).astype(np.uint8)


def one_tick(values: np.ndarray) -> np.ndarray:
    """Per joint, one servo tick (2*pi/4096 rad) in LeRobot units at these values."""
    out = []
    for j, v in zip(JOINT_NAMES, values):
        rad = CONVERTER.lerobot_to_radians(j, v)
        step = CONVERTER.radians_per_tick(j)
        out.append(abs(CONVERTER.radians_to_lerobot(j, rad + step) - CONVERTER.radians_to_lerobot(j, rad - step)) / 2)
    return np.array(out)


# --- the recorder's dataset from a bag ----------------------------------------------------------

def test_mcap_bag_becomes_the_recorders_dataset(recording, converted):
    report, ds = converted
    assert [e.saved for e in report.episodes] == [True, True] and not report.warnings, report.lines()
    assert ds.fps == FPS and ds.num_episodes == 2 and ds.meta.robot_type == "so_follower"
    wanted = dataset_features({"front": (48, 64)}, use_videos=False)
    for key, ft in wanted.items():  # the recorder's keys, shapes, names and dtypes
        assert tuple(ds.meta.features[key]["shape"]) == tuple(ft["shape"]), key
        assert ds.meta.features[key]["dtype"] == ft["dtype"] and ds.meta.features[key].get("names") == ft.get("names")
    for ep, got in enumerate(episodes_of(ds)):
        want = expected_frames(recording, ep)
        assert len(got["state"]) == len(want) == [44, 45][ep]
        assert got["task"] == {TASK}
        np.testing.assert_allclose(got["state"], [f["state"] for f in want], atol=1e-3)
        if ep == 0:  # episode 1 starts from where the follower held the end of episode 0
            np.testing.assert_allclose(got["action"], [f["action"] for f in want], atol=1e-3)
        # each frame shows the camera image the recorder would take, to the pixel
        np.testing.assert_array_equal(pixels(got["image"]), pixels(np.stack([f["image"] for f in want])))
    # the action leads the state: the arm follows the commanded trajectory
    ep0 = episodes_of(ds)[0]
    lag = np.abs(ep0["state"][3:, :5] - ep0["action"][:-3, :5]).mean()
    assert lag < np.abs(ep0["state"][:-3, :5] - ep0["action"][3:, :5]).mean()


def test_video_frames_load_with_lerobots_pyav_backend(mcap_bag, workdir, converted):
    root = workdir / "from_mcap_video"
    report = convert_bag(mcap_bag, BagOptions(root=root, video_codec="h264"), log=lambda _line: None)
    assert [e.frames for e in report.saved] == [44, 45]
    ds = load(root)
    assert ds.meta.features["observation.images.front"]["dtype"] == "video"
    for video, png in zip(episodes_of(ds), episodes_of(converted[1])):
        np.testing.assert_array_equal(video["state"], png["state"])
        assert np.abs(video["image"] - png["image"]).mean(axis=(1, 2, 3)).max() < 0.05  # h264 at its default CRF


def test_sqlite3_bag_gives_the_same_frames(recording, workdir, converted):
    bag = write_bag(recording.messages, workdir / "sim_sqlite3", "sqlite3")
    assert (bag / "sim_sqlite3.db3").is_file() or list(bag.glob("*.db3"))
    report = convert_bag(bag, options(workdir / "from_sqlite3"), log=lambda _line: None)
    assert len(report.saved) == 2
    got, want = episodes_of(load(workdir / "from_sqlite3")), episodes_of(converted[1])
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a["state"], b["state"])
        np.testing.assert_array_equal(a["action"], b["action"])


def test_recorder_service_calls_split_the_episodes(recording, workdir):
    stamper = Stamper()
    (a0, _), (b0, _) = recording.episodes
    ms = lambda t0, s: t0 + round(s * NS)  # noqa: E731
    calls = [("start_episode", ms(a0, 0.2), True), ("pause_episode", ms(a0, 0.7), True),
             ("stop_episode", ms(a0, 1.0), True),
             ("stop_episode", ms(a0, 1.1), False),  # refused by the recorder: nothing to stop
             ("start_episode", ms(b0, 0.1), True), ("discard_episode", ms(b0, 0.5), True),
             ("start_episode", ms(b0, 0.6), True), ("stop_episode", ms(b0, 1.2), True),
             ("start_episode", ms(b0, 1.3), True)]  # never stopped: the bag ends
    extra = [m for n, (name, t, ok) in enumerate(calls) for m in service_message(stamper, name, n + 1, t, ok)]
    bag = write_bag(sorted(recording.messages + extra, key=lambda m: m.t), workdir / "services", "mcap")
    report = convert_bag(bag, options(workdir / "from_services"), log=lambda _line: None)
    assert report.split.startswith("the recorder's service calls")
    assert [(e.saved, e.frames) for e in report.episodes] == [(True, 15), (False, 12), (True, 18), (False, 7)]
    assert "discard_episode" in report.episodes[1].note and "no stop_episode" in report.episodes[3].note
    assert load(workdir / "from_services").num_episodes == 2


def test_time_ranges_are_the_episodes(recording, mcap_bag, workdir):
    assert parse_ranges("0-12.5, 14-30") == [(0.0, 12.5), (14.0, 30.0)]
    for bad in ("5-2", "1-3,2-4", "x", ""):
        with pytest.raises(ValueError):
            parse_ranges(bad)
    report = convert_bag(mcap_bag, options(workdir / "from_ranges", episodes=[(0.1, 0.6), (3.6, 4.1), (9, 10)]),
                         log=lambda _line: None)
    assert report.split == "the given time ranges"
    assert [(e.saved, e.frames) for e in report.episodes] == [(True, 16), (True, 16), (False, 0)]
    assert "after the end of the bag" in report.episodes[2].note


def test_max_episode_s_ends_an_episode(mcap_bag, workdir):
    report = convert_bag(mcap_bag, options(workdir / "from_max", max_episode_s=0.5), log=lambda _line: None)
    assert [e.frames for e in report.saved] == [15, 15]
    assert all("max_episode_s" in e.note for e in report.saved)


def test_compressed_images_convert_like_raw_ones(recording, workdir, converted):
    stamper = Stamper()
    messages = []
    for m in recording.messages:
        if m.topic == CAMERA_TOPIC:
            rgb = np.frombuffer(m.msg.data, np.uint8).reshape(m.msg.height, m.msg.width, 3)
            m = Message(CAMERA_TOPIC + "/compressed", "sensor_msgs/msg/CompressedImage", m.t,
                        stamper.compressed(int(stamp_s(m.msg) * NS), "front", rgb))
        messages.append(m)
    bag = write_bag(messages, workdir / "compressed", "mcap")
    report = convert_bag(bag, options(workdir / "from_compressed"), log=lambda _line: None)
    assert report.cameras == {"front": CAMERA_TOPIC + "/compressed"}
    got, want = episodes_of(load(workdir / "from_compressed")), episodes_of(converted[1])
    assert [len(e["state"]) for e in got] == [len(e["state"]) for e in want]
    assert np.abs(got[0]["image"] - want[0]["image"]).mean() < 0.03  # jpeg vs h264 of the same frames


# --- round trip: dataset -> bag -> dataset -----------------------------------------------------

@pytest.mark.parametrize("action_as", ["trajectory", "joint_state"])
def test_round_trip_keeps_values_within_a_tick_and_every_frame(converted, workdir, action_as):
    from so100_bringup.learning.lerobot2bag import main as lerobot2bag

    source = workdir / "from_mcap"
    bag = workdir / f"exported_{action_as}"
    assert lerobot2bag(["--root", str(source), "--output", str(bag), "--action-as", action_as]) == 0
    assert list(bag.glob("*.mcap")) and (bag / "metadata.yaml").is_file()
    root = workdir / f"round_trip_{action_as}"
    report = convert_bag(bag, options(root, action_source="leader" if action_as == "joint_state" else "trajectory"),
                         log=lambda _line: None)
    assert report.split.startswith("gaps") and len(report.saved) == 2, report.lines()
    before, after = episodes_of(converted[1]), episodes_of(load(root))
    assert [sum(e.skipped.values()) for e in report.saved] == [1, 1]  # the lead-in tick: no image yet
    for a, b in zip(before, after):
        assert len(a["state"]) == len(b["state"])
        n = len(a["state"])
        for key in ("state", "action"):
            assert np.all(np.abs(a[key][:n] - b[key][:n]) <= one_tick(a[key][:n].mean(axis=0))), key
        assert b["task"] == {TASK}
        np.testing.assert_array_equal(pixels(a["image"][:n]), pixels(b["image"][:n]))


# --- bad bags ----------------------------------------------------------------------------------

def without(messages, *topics):
    return [m for m in messages if m.topic not in topics]


@pytest.mark.parametrize("case", ["no_state", "no_trajectory", "no_camera", "no_leader"])
def test_a_missing_input_topic_is_named(recording, workdir, case):
    messages, kw = recording.messages, {}
    if case == "no_state":
        messages = without(messages, STATE_TOPIC)
    elif case == "no_trajectory":
        messages = without(messages, "/arm_controller/joint_trajectory", "/gripper_controller/joint_trajectory")
    elif case == "no_camera":
        kw["cameras"] = ["front", "wrist"]
    else:
        kw["action_source"] = "leader"
    bag = write_bag(messages, workdir / f"missing_{case}", "mcap")
    root = workdir / f"from_missing_{case}"
    with pytest.raises(BagError) as err:
        convert_bag(bag, options(root, **kw), log=lambda _line: None)
    text = str(err.value)
    named = {"no_state": "/joint_states", "no_trajectory": "/arm_controller/joint_trajectory",
             "no_camera": "/camera/wrist/image_raw", "no_leader": "/leader/joint_states"}[case]
    assert named in text and "The bag has:" in text, text
    if case == "no_trajectory":
        assert "/gripper_controller/joint_trajectory" in text and "--action-source leader" in text
    assert not root.exists()  # nothing written


def test_header_stamps_that_go_back_reseed_the_follower(workdir):
    rec = simulate(SimBagSpec(episodes=2, episode_s=0.6, restart_stamps=True))
    bag = write_bag(rec.messages, workdir / "restarted", "mcap")
    report = convert_bag(bag, options(workdir / "from_restarted"), log=lambda _line: None)
    assert len(report.saved) == 2
    assert any("header stamps on /joint_states go back" in w for w in report.warnings), report.warnings
    assert not any("rejected" in w for w in report.warnings), report.warnings
    # after the restart the follower commands the new plan from where the arm is
    ep1 = episodes_of(load(workdir / "from_restarted"))[1]
    assert np.abs(ep1["action"][0] - ep1["state"][0]).max() < 1.0


def test_a_gap_inside_an_episode_skips_its_frames(mcap_bag, workdir):
    report = convert_bag(mcap_bag, options(workdir / "from_gap", episodes=[(0.0, 5.0)]), log=lambda _line: None)
    (ep,) = report.saved
    ticks, skipped = round(5.0 * FPS) + 1, sum(ep.skipped.values())
    assert ep.frames + skipped == ticks and skipped >= (2.0 - 0.5) * FPS  # inputs stay fresh for max_age_s
    assert set(ep.skipped) == {"stale or missing input: joint_states, camera front"}
    assert any("no /joint_states for 2.0" in w for w in report.warnings), report.warnings


def test_bag_time_that_goes_back_ends_the_episode(recording, workdir):
    """A bag read file by file (no metadata.yaml) whose second file starts before the first ends."""
    (a0, a1), (b0, _) = recording.episodes
    first = [m for m in recording.messages if m.t <= a1]
    back = b0 - (a1 - round(0.8 * NS))  # the second file starts 0.7 s before the first one ends
    second = [m._replace(t=m.t - back) for m in recording.messages if m.t >= b0]
    folder = workdir / "two_files"
    for n, part in enumerate((first, second)):
        write_bag(part, workdir / f"part{n}", "mcap")
        folder.mkdir(exist_ok=True)
        shutil.move(next((workdir / f"part{n}").glob("*.mcap")), folder / f"two_files_{n}.mcap")
    report = convert_bag(folder, options(workdir / "from_two_files"), log=lambda _line: None)
    assert any("no metadata.yaml" in w for w in report.warnings)
    assert any("bag time goes back by 0.7" in w for w in report.warnings), report.warnings
    assert [e.frames for e in report.saved] == [44, 45]


def test_a_joint_prefix_is_detected_or_given(recording, workdir, converted):
    def renamed(prefix_of):
        out = []
        for m in recording.messages:
            if m.topic in (STATE_TOPIC, "/arm_controller/joint_trajectory", "/gripper_controller/joint_trajectory"):
                msg = copy.copy(m.msg)
                if m.topic == STATE_TOPIC:
                    msg.name = [prefix_of(n) for n in msg.name]
                else:
                    msg.joint_names = [prefix_of(n) for n in msg.joint_names]
                m = m._replace(msg=msg)
            out.append(m)
        return out

    bag = write_bag(renamed(lambda n: "left_" + n), workdir / "prefixed", "mcap")
    report = convert_bag(bag, options(workdir / "from_prefixed"), log=lambda _line: None)
    assert report.prefix == "left_" and len(report.saved) == 2
    got = episodes_of(load(workdir / "from_prefixed"))
    np.testing.assert_array_equal(got[0]["action"], episodes_of(converted[1])[0]["action"])
    with pytest.raises(BagError, match="with prefix 'right_' none is an SO-100 joint.*--joint-prefix"):
        convert_bag(bag, options(workdir / "from_wrong_prefix", joint_prefix="right_"), log=lambda _line: None)
    foreign = write_bag(renamed(lambda n: f"j{JOINT_NAMES.index(n)}"), workdir / "foreign", "mcap")
    with pytest.raises(BagError, match=r"joint names on /joint_states are \['j0'.*--joint-prefix"):
        convert_bag(foreign, options(workdir / "from_foreign"), log=lambda _line: None)


@pytest.mark.parametrize("keep_metadata", [False, True])
def test_a_recording_killed_mid_write_converts_what_is_readable(recording, workdir, keep_metadata):
    (a0, a1), (b0, b1) = recording.episodes
    ep0_end = max(n for n, m in enumerate(recording.messages) if m.t <= a1)
    ep1_half = max(n for n, m in enumerate(recording.messages) if m.t <= b0 + (b1 - b0) // 2)
    bag = workdir / f"killed_{keep_metadata}"
    write_killed_mcap(recording.messages, bag, flush_after=[ep0_end, ep1_half, len(recording.messages) - 1],
                      cut_bytes=5000)
    if keep_metadata:  # metadata.yaml of an intact bag next to the cut file
        intact = write_bag(recording.messages, workdir / f"intact_{keep_metadata}", "mcap")
        shutil.copy(intact / "metadata.yaml", bag / "metadata.yaml")
        (bag / next(bag.glob("*.mcap")).name).rename(bag / next(intact.glob("*.mcap")).name)
    report = convert_bag(bag, options(workdir / f"from_killed_{keep_metadata}"), log=lambda _line: None)
    assert any("no MCAP summary or footer" in w and "the rest is lost" in w for w in report.warnings), report.warnings
    frames = [e.frames for e in report.saved]
    assert frames[0] == 44 and 20 <= frames[1] <= 24, report.lines()  # episode 1 up to its middle


def test_an_unreadable_storage_is_named_with_the_fix(mcap_bag, workdir):
    bag = workdir / "other_storage"
    shutil.copytree(mcap_bag, bag)
    meta = bag / "metadata.yaml"
    meta.write_text(meta.read_text().replace("storage_identifier: mcap", "storage_identifier: my_plugin"))
    with pytest.raises(BagError, match="storage plugin 'my_plugin'.*ros2 bag convert"):
        convert_bag(bag, options(workdir / "from_other"), log=lambda _line: None)
    ros1 = workdir / "old.bag"
    ros1.write_bytes(b"#ROSBAG V2.0\n")
    with pytest.raises(BagError, match="ROS 1 bag.*rosbags-convert"):
        convert_bag(ros1, options(workdir / "from_ros1"), log=lambda _line: None)
    with pytest.raises(BagError, match="no such bag"):
        convert_bag(workdir / "nowhere", options(workdir / "from_nowhere"), log=lambda _line: None)


def test_episodes_without_a_task_are_not_saved_and_the_cli_says_why(recording, workdir, capsys):
    from so100_bringup.learning.bag2lerobot import main

    bag = write_bag(without(recording.messages, "/vla/instruction"), workdir / "no_task", "mcap")
    root = workdir / "from_no_task"
    assert main([str(bag), "--root", str(root), "--use-videos", "0"]) == 1
    out = capsys.readouterr().out
    assert out.count("not saved") == 2 and "no task: give /vla/instruction or --task" in out
    assert main([str(bag), "--root", str(root), "--task", "stack", "--use-videos", "0"]) == 2  # root holds one now
    assert "already holds a LeRobot dataset: add --resume" in capsys.readouterr().err
    assert main([str(bag), "--root", str(root), "--task", "stack", "--use-videos", "0", "--resume"]) == 0
    assert load(root).num_episodes == 2


def test_options_mirror_the_recorders_parameters():
    pytest.importorskip("rclpy", reason="the recorder's schema lives in its rclpy node module")
    from so100_bringup.learning.bag2lerobot import build_parser
    from so100_bringup.recorder.node import PARAMS

    defaults = BagOptions(root=Path("."))
    flags = {a.dest for a in build_parser()._actions}
    shared = [p for p in PARAMS if hasattr(defaults, p.name)]
    assert len(shared) >= 20
    for p in shared:
        assert p.name in flags, f"--{p.name.replace('_', '-')} missing"
        if p.name in ("cameras", "joint_prefix", "root"):  # detected from the bag; required
            continue
        assert getattr(defaults, p.name) == p.default, p.name


@pytest.mark.ros
def test_the_recorders_service_calls_go_out_as_events_the_converter_reads(rclpy_context, tmp_path):
    """The recorder node introspects its services: `ros2 bag record --all-services` gets their
    calls on <service>/_service_event, and the converter decodes rclpy's own bytes of them."""
    import time

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.serialization import serialize_message
    from std_srvs.srv import Trigger

    from so100_bringup.recorder.bag_io import TRIGGER_EVENT, cdr_type, typestore
    from so100_bringup.recorder.node import RecorderNode

    recorder = RecorderNode(context=rclpy_context, parameter_overrides=[Parameter("root", value=str(tmp_path / "ds"))])
    caller = rclpy.create_node("caller", context=rclpy_context)
    events = []
    caller.create_subscription(Trigger.Event, "/recorder/stop_episode/_service_event", events.append, 10)
    client = caller.create_client(Trigger, "/recorder/stop_episode")
    executor = SingleThreadedExecutor(context=rclpy_context)
    for node in (recorder, caller):
        executor.add_node(node)
    try:
        assert client.wait_for_service(timeout_sec=30)
        time.sleep(0.5)  # discovery of the event topic
        future = client.call_async(Trigger.Request())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (future.done() and any(e.info.event_type == 2 for e in events)):
            executor.spin_once(timeout_sec=0.1)
        assert future.done() and not future.result().success  # nothing to stop: refused
        sent = next(e for e in events if e.info.event_type == 2)  # RESPONSE_SENT, from the recorder
        decoded = typestore().deserialize_cdr(serialize_message(sent), cdr_type(TRIGGER_EVENT))
        assert decoded.info.sequence_number == sent.info.sequence_number
        assert not decoded.response[0].success and decoded.response[0].message == future.result().message
    finally:
        executor.shutdown()
        recorder.close()
        caller.destroy_node()
        recorder.destroy_node()
