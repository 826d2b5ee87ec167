"""What the Rerun viewer costs the demo: the sim's real-time factor with and without it, same run.

The demo's nodes (the MuJoCo sim with two 320x240 cameras, the policy node running the shipped
ACT on sim time) run throughout; the viewer node (so100_viewer, writing an .rrd as `make demo`
does) is started and stopped in alternate phases of `--phase-s` wall seconds. RTF of a phase =
sim seconds / wall seconds between the first and last /diagnostics of the sim after a settling
time. Each phase also shows the viewer's CPU use (% of one core) and the policy's inferences per
wall second: on a saturated machine the policy and the viewer compete with the sim for the same
cores, so an unpaced sim (--rtf 0) can even speed up when the viewer slows the policy down.
Prints the ratio of the mean RTFs (with / without; 1.0 = free).

    .venv/bin/python bench/bench_viewer.py [--phase-s 20] [--pairs 2] [--rtf 1.0]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ROS_DOMAIN_ID", "96")

from so100_bringup.processes import Children, child_env, node_command  # noqa: E402
from so100_bringup.viewer.child import viewer_command  # noqa: E402
from so100_description.paths import model_path  # noqa: E402

SETTLE_S = 6.0  # of each phase, not measured: the viewer starting or stopping


class SimClock:
    """(wall receipt time, sim_time_s) of each of the sim's /diagnostics, and the policy's inferences."""

    def __init__(self):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("bench_viewer", context=self.context)
        self.samples: list[tuple[float, float]] = []
        self.inference_samples: list[tuple[float, int]] = []
        self.inferences = 0
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on_diag(self, msg) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if "sim_time_s" in values:
                self.samples.append((time.monotonic(), float(values["sim_time_s"])))
            if "inferences" in values:
                self.inferences = int(values["inferences"])
                self.inference_samples.append((time.monotonic(), self.inferences))

    def rtf(self, start: float, end: float) -> float | None:
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return None
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])

    def inference_rate(self, start: float, end: float) -> float | None:
        inside = [s for s in self.inference_samples if start <= s[0] <= end]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return None
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])

    def close(self) -> None:
        import rclpy

        self.executor.shutdown(timeout_sec=2.0)
        self.thread.join(timeout=5.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phase-s", type=float, default=20.0, help="wall seconds per phase")
    ap.add_argument("--pairs", type=int, default=2, help="(without, with) phase pairs")
    ap.add_argument("--rtf", type=float, default=1.0, help="the sim's target real-time factor (the demo's: 1; "
                    "0: unpaced)")
    ap.add_argument("--startup-timeout", type=float, default=240.0)
    a = ap.parse_args()

    out = Path(tempfile.mkdtemp(prefix="bench_viewer_"))
    children = Children(out / "logs", child_env())
    clock = SimClock()
    print(f"sim (2 cameras 320x240, real_time_factor {a.rtf:g}) + policy (shipped ACT) + viewer (.rrd); "
          f"phases of {a.phase_s:.0f} s wall, first {SETTLE_S:.0f} s not measured; logs: {out / 'logs'}", flush=True)
    results: dict[bool, list[float]] = {False: [], True: []}
    stopped: list[str] = []  # viewers of earlier phases (exited on purpose)
    try:
        children.start("sim", node_command("so100_bringup.sim.node", "sim.yaml", {"real_time_factor": a.rtf}))
        children.start("policy", node_command("vla_policy_node.node", "policy.yaml", {
            "policy_path": str(model_path()), "use_sim_time": True, "autostart": True,
            "task": "pick the cube and place it in the target area"}))
        deadline = time.monotonic() + a.startup_timeout
        while clock.inferences == 0:  # both running: the policy has produced a chunk
            children.check()
            if time.monotonic() > deadline:
                raise TimeoutError("the policy ran no inference")
            time.sleep(0.5)
        for pair in range(a.pairs):
            for with_viewer in (False, True):
                viewer = f"viewer_{pair + 1}"
                proc = children.start(viewer, viewer_command(None, out / f"{viewer}.rrd")) if with_viewer else None
                start = time.monotonic()
                while time.monotonic() - start < SETTLE_S:
                    children.check(allow_exit=tuple(stopped))
                    time.sleep(0.5)
                cpu0 = cpu_seconds(proc.pid) if proc else 0.0
                measured = time.monotonic()
                while time.monotonic() - start < a.phase_s:
                    children.check(allow_exit=tuple(stopped))
                    time.sleep(0.5)
                end = time.monotonic()
                cpu = (cpu_seconds(proc.pid) - cpu0) / (end - measured) if proc else 0.0
                rtf, inferences = clock.rtf(measured, end), clock.inference_rate(measured, end)
                if proc:
                    children.stop((viewer,))
                    stopped.append(viewer)
                if rtf is not None:
                    results[with_viewer].append(rtf)
                print(f"  pair {pair + 1}  {'with   ' if with_viewer else 'without'} viewer: RTF "
                      f"{rtf if rtf is not None else float('nan'):.3f}   viewer CPU {100 * cpu:5.1f} %   "
                      f"policy {inferences if inferences is not None else float('nan'):.1f} inferences/s",
                      flush=True)
    finally:
        children.stop()
        clock.close()
    if not results[False] or not results[True]:
        print("no RTF measured (see the logs)")
        return 1
    without = sum(results[False]) / len(results[False])
    with_ = sum(results[True]) / len(results[True])
    size = sum(p.stat().st_size for p in out.glob("*.rrd")) / max(1, len(list(out.glob("*.rrd"))))
    print(f"RTF without viewer {without:.3f}, with viewer {with_:.3f}: ratio with/without {with_ / without:.3f} "
          f"(.rrd {size / 1e6:.1f} MB per {a.phase_s:.0f} s phase)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
