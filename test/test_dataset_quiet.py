"""A dataset recorded and read back the project's way prints no traceback or warning on a
machine without FFmpeg's shared libraries: LeRobot's default decoder, torchcodec, needs them,
and without them it logs a long traceback before it falls back to PyAV."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("datasets", reason="lerobot[dataset] not installed (make setup)")

SCRIPT = """
import sys
import numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from so100_bringup.recorder.core import VIDEO_BACKEND, DatasetSession, FrameBuilder, dataset_features
from so100_description.calibration import ArmUnits, JointUnitConverter, nominal_calibration
from so100_description.joints import JOINT_NAMES

root, cams, q = sys.argv[1], {"front": (48, 64)}, {j: 0.1 for j in JOINT_NAMES}
session = DatasetSession(root, "local/quiet", 10, dataset_features(cams, use_videos=True))
session.open()
session.start("pick")
builder = FrameBuilder(JointUnitConverter(nominal_calibration(), ArmUnits.DEGREES), cams)
for i in range(5):
    session.add(builder.build(q, q, {"front": np.full((48, 64, 3), 40 * i, np.uint8)}, "pick"))
session.save()
session.close()
ds = LeRobotDataset("local/quiet", root=root, video_backend=VIDEO_BACKEND)
print(len(ds), tuple(ds[4]["observation.images.front"].shape), flush=True)
"""


def test_recording_and_loading_a_video_dataset_is_quiet(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SVT_LOG"}  # the recorder's own default
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "ds")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["5", "(3,", "48,", "64)"]  # the video was written and decoded
    for noise in ("Traceback", "torchcodec", "WARNING", "Svt[warn]", "Svt[info]"):
        assert noise not in proc.stderr, proc.stderr
