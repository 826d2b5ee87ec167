"""Direct (no ROS) expert recording: a successful demonstration becomes a LeRobot episode
whose actions are the commanded trajectory (gripper opens, closes on the cube, opens)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mujoco", reason="mujoco not installed (make setup)")
pytest.importorskip("datasets", reason="lerobot[dataset] not installed (make setup)")
pytest.importorskip("pinocchio", reason="pin (pinocchio) not installed (make setup)")


@pytest.mark.slow
def test_records_a_successful_demonstration(tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from so100_bringup.learning.record_direct import main

    root = tmp_path / "ds"
    assert main(["--root", str(root), "--episodes", "1",
                 "--image-width", "64", "--image-height", "48", "--cameras", "front", "--use-videos", "0",
                 "--seed", "3"]) == 0
    ds = LeRobotDataset("local/so101_recording", root=root)
    assert ds.num_episodes == 1 and ds.fps == 30
    actions = np.stack([ds[i]["action"].numpy() for i in range(len(ds))])
    states = np.stack([ds[i]["observation.state"].numpy() for i in range(len(ds))])
    grip = actions[:, 5]
    closed = int(np.argmin(grip))
    assert grip[:closed].max() > 40 and grip[closed] < 10 and grip[closed:].max() > 40  # open, close, open
    # the state follows the commanded action (the follower tracks it), not the other way round
    lag = np.abs(states[1:, :5] - actions[:-1, :5]).mean()
    assert lag < np.abs(states[:-1, :5] - actions[1:, :5]).mean()
    assert ds[0]["observation.images.front"].shape == (3, 48, 64)
