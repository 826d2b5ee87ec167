"""P5: real-time factor (sim seconds per wall second) of the MuJoCo sim, run as fast as it can.

Part 1, in process (the node's loop without DDS): physics at 500 Hz, cameras rendered at
30 Hz of sim time and packed into message-sized byte buffers, for 0/1/2 cameras at 320x240
and 640x480, plus shadows on and full-resolution meshes. Baseline: physics alone, same run.
Part 2, over DDS: the sim node process at real_time_factor 0 with the demo defaults (two
cameras, 320x240), its RTF read from /diagnostics. Goal: RTF >= 1.0 at 320x240.

    .venv/bin/python bench/bench_sim_rtf.py [--sim-seconds 2] [--repeats 2] [--skip-node]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

os.environ.setdefault("MUJOCO_GL", "egl")
from so100_bringup.sim.gl import ensure_gl_backend  # noqa: E402

ensure_gl_backend()

from so100_bringup.sim.physics import ArmSim  # noqa: E402
from so100_bringup.sim.render import CameraRenderer  # noqa: E402
from so100_bringup.sim.scene import SceneConfig, build_scene  # noqa: E402
from so100_bringup.sim.schedule import Periodic  # noqa: E402

_MODELS: dict = {}


def run(cameras: tuple[str, ...], width: int, height: int, sim_seconds: float, shadows: bool = False,
        mesh_cell_m: float = 0.003) -> float:
    key = (width, height, mesh_cell_m)
    if key not in _MODELS:
        cfg = SceneConfig(image_width=width, image_height=height, mesh_cell_m=mesh_cell_m)
        _MODELS[key] = (*build_scene(cfg), cfg)
    model, names, cfg = _MODELS[key]
    sim = ArmSim(model, names, cfg, seed=0)
    renderer = CameraRenderer(model, cameras, width, height, shadows=shadows) if cameras else None
    camera_due, target = Periodic(30.0), [0.4, 0.3, -0.3, 0.5, 0.2, 0.6]
    steps = int(sim_seconds / sim.timestep)
    start = time.perf_counter()
    sim.set_targets(target)
    for _ in range(steps):
        sim.step()
        if renderer is not None and camera_due.due(sim.time):
            for cam in cameras:
                renderer.render(sim.data, cam).tobytes()
    wall = time.perf_counter() - start
    if renderer is not None:
        renderer.close()
    return sim_seconds / wall


def node_rtf(wait_s: float = 12.0) -> float | None:
    """RTF the sim node reports on /diagnostics when unpaced, demo defaults."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray

    env = os.environ.copy()
    env.setdefault("ROS_DOMAIN_ID", "97")
    os.environ["ROS_DOMAIN_ID"] = env["ROS_DOMAIN_ID"]
    proc = subprocess.Popen([sys.executable, "-m", "so100_bringup.sim.node", "--ros-args",
                             "-p", "real_time_factor:=0.0"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("bench_sim_rtf", context=context)
    values: list[float] = []

    def on_diag(msg):
        for st in msg.status:
            kv = {k.key: k.value for k in st.values}
            if "real_time_factor" in kv and "sim_time_s" in kv and float(kv["real_time_factor"]) > 0:
                values.append(float(kv["real_time_factor"]))

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + 60 + wait_s
        while time.monotonic() < deadline and len(values) < int(wait_s):
            executor.spin_once(timeout_sec=0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    steady = values[2:] or values  # skip the first windows (startup)
    return sum(steady) / len(steady) if steady else None


def best_of(repeats: int, *args, **kwargs) -> float:
    """The machine is shared: the best of a few runs is the least disturbed one."""
    return max(run(*args, **kwargs) for _ in range(repeats))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sim-seconds", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--skip-node", action="store_true", help="skip part 2 (no rclpy needed)")
    args = ap.parse_args()
    s = args.sim_seconds
    print(f"MUJOCO_GL={os.environ.get('MUJOCO_GL')}  physics 500 Hz, cameras 30 Hz of sim time, {s:.0f} s of sim per run, best of {args.repeats}")
    baseline = best_of(args.repeats, (), 320, 240, s)
    print(f"{'configuration':44s} {'RTF':>8s} {'x baseline':>11s}")
    print(f"{'physics only (baseline)':44s} {baseline:8.2f} {1.0:11.3f}")
    rows = [
        ("1 camera  320x240", ("front",), 320, 240, {}),
        ("2 cameras 320x240 (demo default)", ("front", "wrist"), 320, 240, {}),
        ("1 camera  640x480", ("front",), 640, 480, {}),
        ("2 cameras 640x480", ("front", "wrist"), 640, 480, {}),
        ("2 cameras 320x240, shadows on", ("front", "wrist"), 320, 240, {"shadows": True}),
        ("2 cameras 320x240, full-resolution meshes", ("front", "wrist"), 320, 240, {"mesh_cell_m": 0.0}),
    ]
    for label, cams, w, h, kw in rows:
        rtf = best_of(args.repeats, cams, w, h, s, **kw)
        print(f"{label:44s} {rtf:8.2f} {rtf / baseline:11.3f}")
    if not args.skip_node:
        rtf = node_rtf()
        print(f"{'sim node over DDS, 2 cameras 320x240':44s} {rtf if rtf else float('nan'):8.2f} "
              f"{(rtf or float('nan')) / baseline:11.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
