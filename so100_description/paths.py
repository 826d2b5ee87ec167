"""Where the package's data files are, for colcon installs, pip installs and source trees."""
from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "so100_vla"
SOURCE_ROOT = Path(__file__).resolve().parent.parent  # repo root when running from a checkout


def share_dir() -> Path:
    """share/so100_vla: ament index first (colcon, or pip with AMENT_PREFIX_PATH), then the
    source tree (editable install), then sys.prefix/share (plain pip install)."""
    try:
        from ament_index_python.packages import get_package_share_directory

        share = Path(get_package_share_directory(PACKAGE))
        if (share / "config").is_dir():
            return share
    except Exception:  # not installed, or AMENT_PREFIX_PATH unset
        pass
    if (SOURCE_ROOT / "package.xml").is_file() and (SOURCE_ROOT / "config").is_dir():
        return SOURCE_ROOT
    return Path(sys.prefix) / "share" / PACKAGE


def config_path(name: str) -> Path:
    """A file under config/ (controllers.yaml, policy.yaml, ...)."""
    path = share_dir() / "config" / name
    if not path.is_file():
        raise FileNotFoundError(f"config file {name!r} not found at {path}")
    return path


# The trained checkpoint the package ships (models/<name>/, a LeRobot pretrained_model folder).
DEFAULT_POLICY = "act_so101_pick_place"


def model_path(name: str = DEFAULT_POLICY) -> Path:
    """A checkpoint folder shipped under models/ (config.json, model.safetensors, processors)."""
    path = share_dir() / "models" / name
    if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"the shipped policy {name!r} is missing at {path} (reinstall: make setup)")
    return path


def ensure_ament_prefix() -> None:
    """Make ament_index_python (and xacro's $(find ...)) see this venv's share/ on pip-only machines."""
    prefix = os.environ.get("AMENT_PREFIX_PATH", "")
    if sys.prefix not in prefix.split(os.pathsep):
        os.environ["AMENT_PREFIX_PATH"] = os.pathsep.join(p for p in (sys.prefix, prefix) if p)
