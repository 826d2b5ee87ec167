"""Recorder core without ROS: frames in LeRobot units, episode lifecycle, resume checks."""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("datasets", reason="lerobot[dataset] not installed (make setup)")

from so100_description.calibration import ArmUnits, JointUnitConverter, nominal_calibration  # noqa: E402
from so100_bringup.recorder.core import (DatasetSession, FrameBuilder, FrameError, RecorderError,  # noqa: E402
                                         dataset_features)
from so100_description.joints import JOINT_NAMES  # noqa: E402

CAMS = {"front": (48, 64)}
Q = {"shoulder_pan": 0.3, "shoulder_lift": -0.2, "elbow_flex": 0.5, "wrist_flex": 0.0, "wrist_roll": 1.0,
     "gripper": 0.8}


def builder(units=ArmUnits.DEGREES) -> FrameBuilder:
    return FrameBuilder(JointUnitConverter(nominal_calibration(), units), CAMS)


def image(h=48, w=64, value=100) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


def test_frame_in_lerobot_units():
    frame = builder().build(Q, {**Q, "shoulder_pan": -0.3}, {"front": image()}, "pick")
    assert frame["observation.state"].dtype == np.float32
    assert math.isclose(frame["observation.state"][0], math.degrees(0.3), rel_tol=1e-6)
    assert math.isclose(frame["action"][0], math.degrees(-0.3), rel_tol=1e-6)
    assert 0.0 < frame["observation.state"][5] < 100.0  # gripper percent
    assert frame["observation.images.front"].shape == (48, 64, 3)
    assert frame["task"] == "pick"
    m100 = builder(ArmUnits.RANGE_M100_100).build(Q, Q, {"front": image()}, "pick")
    assert -100.0 <= m100["observation.state"][0] <= 100.0
    assert not math.isclose(m100["observation.state"][0], frame["observation.state"][0])


@pytest.mark.parametrize("state, images, match", [
    ({k: v for k, v in Q.items() if k != "gripper"}, {"front": image()}, "lacks"),
    ({**Q, "elbow_flex": float("nan")}, {"front": image()}, "non-finite"),
    (Q, {}, "no image"),
    (Q, {"front": np.zeros((48, 64), np.uint8)}, "RGB"),
    (Q, {"front": np.zeros((48, 64, 3), np.float32)}, "RGB"),
])
def test_bad_inputs_raise(state, images, match):
    with pytest.raises(FrameError, match=match):
        builder().build(state, Q, images, "pick")


def test_other_image_sizes_are_resized():
    b = builder()
    frame = b.build(Q, Q, {"front": image(96, 128)}, "pick")
    assert frame["observation.images.front"].shape == (48, 64, 3)
    assert b.resized_cameras == {"front"}


def _record(session: DatasetSession, frames: int, task: str = "pick") -> None:
    b = builder()
    session.start(task)
    for i in range(frames):
        session.add(b.build(Q, Q, {"front": image(value=i)}, task))


def test_session_lifecycle_and_resume(tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = tmp_path / "ds"
    feats = dataset_features(CAMS, use_videos=False)
    s = DatasetSession(root, "local/t", 10, feats)
    s.open()
    with pytest.raises(RecorderError):
        s.save()  # nothing started
    s.start("pick")
    with pytest.raises(RecorderError, match="no frames"):
        s.save()
    s.discard()
    _record(s, 5, "task a")
    assert s.discard() == 5
    _record(s, 4, "task a")
    saved = s.save()
    assert (saved.index, saved.frames) == (0, 4)
    _record(s, 3, "task b")
    s.close()  # unsaved episode is discarded, not written

    ds = LeRobotDataset("local/t", root=root)
    assert ds.num_episodes == 1 and len(ds) == 4
    assert ds[3]["task"] == "task a"

    with pytest.raises(RecorderError, match="fps"):
        DatasetSession(root, "local/t", 30, feats).open()
    other = dataset_features({"front": (24, 32)}, use_videos=False)
    with pytest.raises(RecorderError, match="shape"):
        DatasetSession(root, "local/t", 10, other).open()

    s2 = DatasetSession(root, "local/t", 10, None)  # resume takes the features from disk
    s2.open()
    assert s2.total_episodes == 1
    _record(s2, 2, "task b")
    assert s2.save().index == 1
    s2.close()
    ds = LeRobotDataset("local/t", root=root)
    assert ds.num_episodes == 2 and len(ds) == 6
    assert {ds[0]["task"], ds[5]["task"]} == {"task a", "task b"}


def test_refuses_foreign_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("not a dataset")
    with pytest.raises(RecorderError, match="not empty"):
        DatasetSession(tmp_path, "local/t", 10, dataset_features(CAMS, False)).open()


def test_features_match_lerobot_so101_layout():
    feats = dataset_features({"front": (480, 640), "wrist": (480, 640)})
    names = [f"{j}.pos" for j in JOINT_NAMES]
    assert feats["observation.state"] == {"dtype": "float32", "shape": (6,), "names": names}
    assert feats["action"] == {"dtype": "float32", "shape": (6,), "names": names}
    assert feats["observation.images.wrist"]["shape"] == (480, 640, 3)
    assert feats["observation.images.front"]["dtype"] == "video"
    with pytest.raises(ValueError):
        dataset_features({"front": (0, 640)})
