"""The viewer node as one more child of a tool (so100_demo, so100_evaluate, so100_record_sim):
their `--viewer` option and the node's command line."""
from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any, Sequence

from so100_bringup.processes import node_command

WINDOW, SERVE = "window", "serve"
VIEWER_HELP = ("show the run live in Rerun: a viewer window (--viewer alone), 'serve' (a web viewer on port 9090 "
               "for a browser or another machine), or FILE.rrd (a recording to open later: rerun FILE.rrd)")


def viewer_choice(text: str) -> str:
    """--viewer's value: window, serve, or a path ending in .rrd."""
    if text in (WINDOW, SERVE) or text.endswith(".rrd"):
        return text
    raise argparse.ArgumentTypeError(f"expected {WINDOW}, {SERVE} or a file name ending in .rrd, got {text!r}")


def add_viewer_argument(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--viewer", nargs="?", const=WINDOW, type=viewer_choice, metavar="{window,serve,FILE.rrd}",
                    help=VIEWER_HELP)


def rerun_installed() -> bool:
    return importlib.util.find_spec("rerun") is not None


def recording_path(viewer: str | None, default: Path | None) -> Path | None:
    """The .rrd a run writes: --viewer FILE.rrd, else `default` (None: none)."""
    if viewer is not None and viewer not in (WINDOW, SERVE):
        return Path(viewer)
    return default


def viewer_params(viewer: str | None, save_path: Path | str | None = None, *,
                  cameras: Sequence[str] | None = None) -> dict[str, Any] | None:
    """The viewer node's parameters for `--viewer` (None: not given) and an .rrd to write anyway
    (so100_demo's recording); None when there is nothing to show."""
    if viewer is not None and viewer not in (WINDOW, SERVE):
        save_path = viewer  # FILE.rrd: the recording is the output
    if viewer not in (WINDOW, SERVE) and not save_path:
        return None
    params: dict[str, Any] = {"spawn": viewer == WINDOW, "serve": viewer == SERVE,
                              "save_path": str(Path(save_path).resolve()) if save_path else ""}
    if cameras is not None:
        params["cameras"] = list(cameras)
    return params


def viewer_command(viewer: str | None, save_path: Path | str | None = None, *,
                   cameras: Sequence[str] | None = None) -> list[str] | None:
    """The viewer node's command line (see viewer_params); None when there is nothing to show."""
    params = viewer_params(viewer, save_path, cameras=cameras)
    return None if params is None else node_command("so100_bringup.viewer.node", "viewer.yaml", params)
