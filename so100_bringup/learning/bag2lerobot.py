"""so100_bag2lerobot: rosbag2 recordings (MCAP or sqlite3) -> a LeRobot dataset, by the recorder's
own rules: the keys, units, image handling and frame rule of so100_recorder, as if the bag had
been played into it. No ROS install needed (rosbags reads the bag).

    so100_bag2lerobot data/bags/pick_2026_12_01 --root data/pick_from_bags --task "pick up the cube"

Options named like the recorder's parameters mean the same (`--fps` is `fps`, `--max-age-s` is
`max_age_s`, ...). Episodes: the recorder's service calls when the bag has them, else gaps in
/joint_states longer than --gap-s, or the time ranges of --episodes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from so100_bringup.recorder.bag_to_dataset import SPLIT_MODES, BagOptions, parse_ranges

DEFAULTS = BagOptions(root=Path("."))


def _ranges(text: str) -> list[tuple[float, float]]:
    try:
        return parse_ranges(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    d = DEFAULTS
    ap = argparse.ArgumentParser(prog="so100_bag2lerobot", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("bags", nargs="+", type=Path, help="rosbag2 folders or .mcap / .db3 files, converted in order "
                    "into one dataset")
    ap.add_argument("--root", type=Path, required=True, help="dataset directory (created; --resume adds to one)")
    ap.add_argument("--resume", action="store_true", help="add episodes to the dataset already at --root")
    ap.add_argument("--repo-id", default=d.repo_id, help="repo id stored in the dataset's metadata")
    ap.add_argument("--fps", type=int, default=d.fps, help="the dataset's frame rate; frames every 1/fps of bag time")
    ap.add_argument("--cameras", nargs="*", default=None, help="camera names (default: every topic matching "
                    "--camera-topic); none: no images")
    ap.add_argument("--camera-topic", default=d.camera_topic, help="Image (or CompressedImage, also on "
                    "<topic>/compressed) topic per camera, {name} filled in")
    ap.add_argument("--image-width", type=int, default=d.image_width, help="stored width; 0 = the camera's own")
    ap.add_argument("--image-height", type=int, default=d.image_height, help="stored height; 0 = the camera's own")
    ap.add_argument("--joint-states-topic", default=d.joint_states_topic, help="follower state (observation.state)")
    ap.add_argument("--action-source", default=d.action_source, choices=("trajectory", "leader"),
                    help="trajectory: the JointTrajectory topics through the shared follower; leader: --leader-topic")
    ap.add_argument("--leader-topic", default=d.leader_topic)
    ap.add_argument("--arm-trajectory-topic", default=d.arm_trajectory_topic)
    ap.add_argument("--gripper-trajectory-topic", default=d.gripper_trajectory_topic)
    ap.add_argument("--instruction-topic", default=d.instruction_topic, help="std_msgs/String: the task of the "
                    "episodes that start after it ('' = none)")
    ap.add_argument("--task", default=d.task, help="task of the episodes before any instruction message")
    ap.add_argument("--joint-prefix", default=None, help="prefix of the joint names in the bag (default: detected)")
    ap.add_argument("--variant", default=d.variant, choices=("so100", "so101"))
    ap.add_argument("--calibration-file", default=d.calibration_file, help="the follower's LeRobot calibration "
                    "JSON; empty = nominal (sim)")
    ap.add_argument("--arm-units", default=d.arm_units, choices=("degrees", "range_m100_100"))
    ap.add_argument("--max-age-s", type=float, default=d.max_age_s, help="skip a frame when an input is older")
    ap.add_argument("--max-episode-s", type=float, default=d.max_episode_s, help="end an episode after this long; "
                    "0 = never")
    ap.add_argument("--use-videos", type=int, choices=(0, 1), default=int(d.use_videos), help="1: MP4 video, 0: PNG")
    ap.add_argument("--video-codec", default=d.video_codec)
    ap.add_argument("--robot-type", default=d.robot_type)
    ap.add_argument("--image-writer-threads", type=int, default=d.image_writer_threads)
    ap.add_argument("--still-follower-window-s", type=float, default=d.still_follower_window_s)
    ap.add_argument("--namespace", default=d.namespace, help="namespace the relative topic names resolve in")
    ap.add_argument("--recorder-node", default=d.recorder_node, help="node whose ~/start_episode, ~/stop_episode, "
                    "... calls split the episodes")
    ap.add_argument("--split", default=d.split, choices=SPLIT_MODES, help="auto: services when recorded, else gaps")
    ap.add_argument("--gap-s", type=float, default=d.gap_s, help="a gap in --joint-states-topic this long ends an "
                    "episode (split gaps)")
    ap.add_argument("--episodes", type=_ranges, default=None, metavar="START-END,...",
                    help="episodes as time ranges in seconds from the first message, e.g. 0-12.5,14-30")
    return ap


def options(a: argparse.Namespace, resume: bool) -> BagOptions:
    return BagOptions(
        root=a.root, repo_id=a.repo_id, resume=resume, fps=a.fps, cameras=a.cameras, camera_topic=a.camera_topic,
        image_width=a.image_width, image_height=a.image_height, joint_states_topic=a.joint_states_topic,
        action_source=a.action_source, leader_topic=a.leader_topic, arm_trajectory_topic=a.arm_trajectory_topic,
        gripper_trajectory_topic=a.gripper_trajectory_topic, instruction_topic=a.instruction_topic, task=a.task,
        joint_prefix=a.joint_prefix, variant=a.variant, calibration_file=a.calibration_file, arm_units=a.arm_units,
        max_age_s=a.max_age_s, max_episode_s=a.max_episode_s, use_videos=bool(a.use_videos),
        video_codec=a.video_codec, robot_type=a.robot_type, image_writer_threads=a.image_writer_threads,
        still_follower_window_s=a.still_follower_window_s, namespace=a.namespace, recorder_node=a.recorder_node,
        split=a.split, gap_s=a.gap_s, episodes=a.episodes)


def main(argv: Sequence[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    from so100_bringup.recorder.bag_io import BagError
    from so100_bringup.recorder.bag_to_dataset import convert_bag

    saved = 0
    for n, bag in enumerate(a.bags):
        try:
            # the next bags add to the dataset
            report = convert_bag(bag, options(a, a.resume or n > 0), log=lambda line: print(line, flush=True))
        except (BagError, ValueError, OSError) as exc:
            print(f"so100_bag2lerobot: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:  # the dataset was finalized with the episodes saved so far
            print(f"so100_bag2lerobot: interrupted; {saved} episodes of earlier bags and those printed above "
                  f"are kept in {a.root}", file=sys.stderr)
            return 130
        for line in report.lines(episodes=False):  # the episodes were printed as they were saved
            print(line, flush=True)
        saved += len(report.saved)
    return 0 if saved else 1


if __name__ == "__main__":
    sys.exit(main())
