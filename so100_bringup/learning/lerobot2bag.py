"""so100_lerobot2bag: a LeRobot dataset -> an MCAP rosbag2 of standard messages (Image rgb8 per
camera, JointState in radians, JointTrajectory or JointState for the action, String for the
task), stamped on the dataset's timestamps: scrub through it in Foxglove, replay it with
`ros2 bag play`, or convert it back with so100_bag2lerobot. No ROS install needed.

    so100_lerobot2bag --root data/so101_pick_place --output data/so101_pick_place_bag --episodes 0 1
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from so100_bringup.recorder.dataset_to_bag import ACTION_AS, ExportOptions

DEFAULTS = ExportOptions(output=Path("."))


def build_parser() -> argparse.ArgumentParser:
    d = DEFAULTS
    ap = argparse.ArgumentParser(prog="so100_lerobot2bag", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--root", type=Path, required=True, help="the LeRobot dataset")
    ap.add_argument("--output", type=Path, required=True, help="bag folder to create (MCAP)")
    ap.add_argument("--repo-id", default=d.repo_id)
    ap.add_argument("--episodes", type=int, nargs="*", default=None, help="episode indices (default: all)")
    ap.add_argument("--action-as", default=d.action_as, choices=ACTION_AS,
                    help="trajectory: arm + gripper JointTrajectory; joint_state: JointState on --leader-topic")
    ap.add_argument("--camera-topic", default=d.camera_topic)
    ap.add_argument("--joint-states-topic", default=d.joint_states_topic)
    ap.add_argument("--leader-topic", default=d.leader_topic)
    ap.add_argument("--arm-trajectory-topic", default=d.arm_trajectory_topic)
    ap.add_argument("--gripper-trajectory-topic", default=d.gripper_trajectory_topic)
    ap.add_argument("--instruction-topic", default=d.instruction_topic)
    ap.add_argument("--joint-prefix", default=d.joint_prefix)
    ap.add_argument("--namespace", default=d.namespace)
    ap.add_argument("--variant", default=d.variant, choices=("so100", "so101"))
    ap.add_argument("--calibration-file", default=d.calibration_file, help="calibration the dataset was recorded "
                    "with (empty = nominal, the sim's)")
    ap.add_argument("--arm-units", default=d.arm_units, choices=("degrees", "range_m100_100"))
    ap.add_argument("--episode-gap-s", type=float, default=d.episode_gap_s, help="silence between episodes")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    from so100_bringup.recorder.bag_io import BagError
    from so100_bringup.recorder.dataset_to_bag import export_dataset
    from so100_description.calibration import CalibrationError

    opts = ExportOptions(
        output=a.output, repo_id=a.repo_id, episodes=a.episodes, action_as=a.action_as, camera_topic=a.camera_topic,
        joint_states_topic=a.joint_states_topic, leader_topic=a.leader_topic,
        arm_trajectory_topic=a.arm_trajectory_topic, gripper_trajectory_topic=a.gripper_trajectory_topic,
        instruction_topic=a.instruction_topic, joint_prefix=a.joint_prefix, namespace=a.namespace, variant=a.variant,
        calibration_file=a.calibration_file, arm_units=a.arm_units, episode_gap_s=a.episode_gap_s)
    try:
        report = export_dataset(a.root, opts)
    except (BagError, CalibrationError, ValueError, OSError) as exc:
        print(f"so100_lerobot2bag: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the bag writer closed the bag with what it had written
        print(f"so100_lerobot2bag: interrupted; {a.output} holds the episodes written so far", file=sys.stderr)
        return 130
    print(report.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
