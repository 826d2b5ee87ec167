"""so100_record_sim: sim node, recorder node and scripted expert as separate ROS 2 processes
write a LeRobot dataset of successful demonstrations."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (make setup installs the ROS 2 Jazzy wheels)")
pytest.importorskip("mujoco", reason="mujoco not installed (make setup)")
pytest.importorskip("datasets", reason="lerobot[dataset] not installed (make setup)")

from so100_bringup.learning import record_sim  # noqa: E402


@pytest.mark.ros
@pytest.mark.slow
def test_one_demonstration_over_ros_becomes_a_dataset_episode(tmp_path, capsys):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = tmp_path / "ds"
    rc = record_sim.main(["--root", str(root), "--episodes", "1", "--cameras", "front",
                          "--image-width", "64", "--image-height", "48", "--seed", "3"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "episode 1/1" in out and "success, kept" in out
    episodes, frames = record_sim.dataset_totals(root)
    saved = re.search(r"saved episode 0 \((\d+) frames, [0-9.]+ s, (\d+) skipped, (\d+) missed\)",
                      (tmp_path / "ds.logs" / "recorder.log").read_text())
    assert episodes == 1 and saved and int(saved.group(1)) == frames, out
    # The expert's plan lasts ~8.7 s plus its 1 s wait, at 30 fps: every slot is a frame, or a
    # slot the loaded machine made the recorder miss (counted, never silent).
    assert 280 <= frames + int(saved.group(3)) <= 340 and int(saved.group(2)) == 0, saved.group(0)
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["features"]["observation.images.front"]["shape"][:2] == [48, 64]
    assert "observation.images.wrist" not in info["features"]

    ds = LeRobotDataset("local/so101_recording", root=root, video_backend="pyav")
    actions = np.stack([ds.hf_dataset[i]["action"] for i in range(len(ds.hf_dataset))])
    gripper = actions[:, -1]  # LeRobot 0..100: opened, closed on the cube, opened again
    assert gripper.max() - gripper.min() > 30
    assert ds.meta.tasks.index[0] == record_sim.DEFAULT_TASK


def test_a_bad_request_is_refused():
    with pytest.raises(SystemExit):
        record_sim.main(["--root", "x", "--episodes", "0"])
