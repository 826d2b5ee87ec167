"""Record scripted-expert demonstrations without ROS (plain-Python sim -> LeRobot dataset).

The same frames the recorder node writes (state = joint positions, action = the follower's
commanded position at that instant, both through the unit converter; cameras rendered by the
sim's renderer and resized by the recorder core), produced in-process: minutes instead of
real time, for quick datasets and for checking the learning loop. Failed demonstrations are
not saved.

    python -m so100_bringup.learning.record_direct --root data/so101_pick_direct --episodes 40 \
        --image-width 128 --image-height 96
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--repo-id", default="local/so101_recording")
    ap.add_argument("--episodes", type=int, default=40, help="successful demonstrations to save")
    ap.add_argument("--max-attempts", type=int, default=0, help="give up after this many (0 = 2x episodes)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--cameras", nargs="+", default=["front", "wrist"])
    ap.add_argument("--image-width", type=int, default=128, help="stored width (rendered at the sim's 320)")
    ap.add_argument("--image-height", type=int, default=96)
    ap.add_argument("--arm-source", default="urdf", choices=("urdf", "official_mjcf"))
    ap.add_argument("--task", default="pick the cube and place it in the target area")
    ap.add_argument("--use-videos", type=int, default=1)
    a = ap.parse_args(argv)

    from so100_bringup.sim.gl import ensure_gl_backend

    ensure_gl_backend()

    from so100_description.calibration import JointUnitConverter, nominal_calibration
    from so100_bringup.control.follower import TrajectoryFollower
    from so100_bringup.recorder.core import DatasetSession, FrameBuilder, dataset_features
    from so100_bringup.sim.physics import ArmSim
    from so100_bringup.sim.render import CameraRenderer
    from so100_bringup.sim.scene import SceneConfig, build_scene
    from so100_bringup.teleop.expert import PickPlaceExpert, PlanningError, plan_duration

    cfg = SceneConfig(arm_source=a.arm_source)
    model, names = build_scene(cfg)
    sim = ArmSim(model, names, cfg, task="place", seed=a.seed)
    renderer = CameraRenderer(model, a.cameras, cfg.image_width, cfg.image_height)
    converter = JointUnitConverter(nominal_calibration(cfg.variant))
    shapes = {c: (a.image_height, a.image_width) for c in a.cameras}
    builder = FrameBuilder(converter, shapes)
    session = DatasetSession(a.root, a.repo_id, a.fps, dataset_features(shapes, bool(a.use_videos)))
    session.open()
    expert = PickPlaceExpert(cube_size_m=cfg.cube_size_m)
    joints = list(sim.joint_names)
    steps_per_frame = max(1, int(round(1.0 / (a.fps * sim.timestep))))
    saved, attempts, t0 = 0, 0, time.monotonic()
    limit = a.max_attempts or 2 * a.episodes
    try:
        while saved < a.episodes and attempts < limit:
            attempts += 1
            sim.reset()
            try:
                points = expert.plan(sim.joint_positions(), sim.cube_position(), sim.target_position()[:2])
            except PlanningError as exc:
                print(f"attempt {attempts}: {exc}")
                continue
            follower = TrajectoryFollower(joints, sim.targets(), sim.lower, sim.upper)
            follower.set_trajectory(joints, points, sim.time, sim.time)
            end = sim.time + plan_duration(points) + 0.5
            session.start(a.task)
            while sim.time < end:
                commanded, _ = follower.sample(sim.time)
                state = dict(zip(joints, sim.joint_positions()))
                images = {c: renderer.render(sim.data, c) for c in a.cameras}
                session.add(builder.build(state, dict(zip(joints, commanded)), images, a.task))
                for _ in range(steps_per_frame):
                    sim.set_targets(follower.sample(sim.time)[0])
                    sim.step()
            if sim.task_success():
                ep = session.save()
                saved += 1
                print(f"attempt {attempts}: saved episode {ep.index} ({ep.frames} frames); "
                      f"{saved}/{a.episodes} in {time.monotonic() - t0:.0f} s", flush=True)
            else:
                session.discard()
                print(f"attempt {attempts}: task failed, discarded", flush=True)
    except KeyboardInterrupt:  # the saved episodes stay; the one in progress is dropped by close()
        print(f"interrupted: {saved} saved episodes kept in {a.root}", file=sys.stderr)
        return 130
    finally:
        session.close()
        renderer.close()
    print(f"{saved} episodes, {attempts} attempts, {time.monotonic() - t0:.0f} s -> {a.root}")
    return 0 if saved else 1


if __name__ == "__main__":
    sys.exit(main())
