"""Record scripted-expert demonstrations in the MuJoCo sim over ROS 2, in one command.

Starts three separate ROS 2 processes, as three terminals (or a launch file) would:
  mujoco_sim        the sim node (place task, seeded layouts, cameras), on its own sim clock
  recorder          the recorder node: cameras + /joint_states + the commanded trajectory ->
                    a LeRobot dataset at --root (use_sim_time)
  scripted_expert   resets the sim, starts an episode, publishes the plan as JointTrajectory
                    (what a policy publishes), keeps successful episodes, discards failed ones
then waits for the expert to finish, stops the others (the recorder closes its dataset) and
prints what is on disk. Every demonstration goes through the topics a real arm uses.

    python -m so100_bringup.learning.record_sim --root data/so101_pick_place --episodes 150
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

from so100_bringup.processes import Children, child_env, node_command, stop_on_signals
from so100_bringup.viewer.child import add_viewer_argument, viewer_command

PREFIX = "[so100_record_sim]"
DEFAULT_TASK = "pick the cube and place it in the target area"


def say(text: str) -> None:
    print(f"{PREFIX} {text}", flush=True)


def dataset_totals(root: Path) -> tuple[int, int]:
    """(episodes, frames) of the LeRobot dataset at `root`, (0, 0) when there is none yet."""
    info = Path(root) / "meta" / "info.json"
    if not info.is_file():
        return 0, 0
    meta = json.loads(info.read_text())
    return int(meta.get("total_episodes", 0)), int(meta.get("total_frames", 0))


def expert_progress(children: Children) -> list[str]:
    """The expert's per-episode and final log lines, without the ROS logger prefix."""
    return [line.split("]: ", 1)[-1] for line in children.tail("expert", 100_000)
            if "episode" in line or "done:" in line]


def commands(a: argparse.Namespace) -> dict[str, list[str]]:
    cameras = list(a.cameras)
    viewer = viewer_command(a.viewer, cameras=cameras) if a.viewer else None
    return {
        "sim": node_command("so100_bringup.sim.node", "sim.yaml", {
            "task": "place", "seed": a.seed, "cameras": cameras, "real_time_factor": a.rtf}),
        "recorder": node_command("so100_bringup.recorder.node", "recorder.yaml", {
            "root": str(Path(a.root).resolve()), "resume": True, "use_sim_time": True, "cameras": cameras,
            "fps": a.fps, "image_width": a.image_width, "image_height": a.image_height, "task": a.task}),
        "expert": node_command("so100_bringup.teleop.expert_node", None, {
            "use_sim_time": True, "episodes": a.episodes}),
        **({"viewer": viewer} if viewer else {}),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="so100_record_sim", description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, required=True, help="dataset directory (resumed when it exists)")
    ap.add_argument("--episodes", type=int, default=60, help="demonstrations the expert attempts (layouts)")
    ap.add_argument("--seed", type=int, default=0, help="the sim's layout sequence")
    ap.add_argument("--cameras", nargs="+", default=["front", "wrist"])
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--image-width", type=int, default=128, help="stored width (the sim renders 320)")
    ap.add_argument("--image-height", type=int, default=96)
    ap.add_argument("--rtf", type=float, default=1.0, help="sim speed, sim s per wall s (the nodes use sim time)")
    ap.add_argument("--task", default=DEFAULT_TASK, help="task string of every episode")
    ap.add_argument("--log-dir", type=Path, help="node logs (default: <root>.logs)")
    ap.add_argument("--startup-timeout", type=float, default=120.0)
    add_viewer_argument(ap)
    a = ap.parse_args(argv)
    if a.episodes < 1:
        ap.error("--episodes must be >= 1")
    return a


def run(a: argparse.Namespace) -> int:
    root = Path(a.root).resolve()
    log_dir = a.log_dir or root.with_name(root.name + ".logs")
    before, _ = dataset_totals(root)
    children = Children(log_dir, child_env(), say=say)
    t0 = time.monotonic()
    printed = 0  # expert progress lines echoed so far
    try:
        cmds = commands(a)
        for name, command in cmds.items():
            children.start(name, command)
        expert = children.procs["expert"]
        while True:
            finished = expert.poll() is not None
            lines = expert_progress(children)
            for line in lines[printed:]:
                say(line)
            printed = len(lines)
            if finished:
                break
            children.check(allow_exit=("expert",))
            time.sleep(0.5)
        if expert.returncode != 0:
            raise RuntimeError("the scripted expert failed:\n  " + "\n  ".join(children.tail("expert")))
    except KeyboardInterrupt:
        say("interrupted; stopping the nodes (episodes already saved stay readable)")
        return 130
    except RuntimeError as exc:
        say(f"failed: {exc}")
        say(f"logs: {log_dir}")
        return 1
    finally:
        children.stop(("expert",))
        children.stop(("recorder",))  # closes the dataset before the sim (its clock) goes away
        children.stop()
    episodes, frames = dataset_totals(root)
    say(f"{episodes - before} new episodes ({episodes} in total, {frames} frames) in "
        f"{time.monotonic() - t0:.0f} s -> {root}; logs: {log_dir}")
    return 0 if episodes > before else 1


def main(argv: Sequence[str] | None = None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    with stop_on_signals():  # Ctrl-C and SIGTERM: stop the nodes, keep the saved episodes
        return run(a)


if __name__ == "__main__":
    sys.exit(main())
