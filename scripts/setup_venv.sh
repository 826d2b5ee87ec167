#!/usr/bin/env bash
# Create .venv (Python >= 3.12) with ROS 2 Jazzy wheels from PyPI, lerobot, MuJoCo and this
# project in editable mode. Idempotent: a second run with unchanged requirements takes seconds.
#   scripts/setup_venv.sh            # everything (sim + policy + kinematics + test)
#   EXTRAS=sim,test scripts/setup_venv.sh   # a lighter install (no torch/lerobot)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
EXTRAS="${EXTRAS:-all}"

find_python() {
  local cand
  for cand in "${PYTHON:-}" python3.12 python3.13 python3; do
    [ -n "$cand" ] || continue
    if command -v "$cand" >/dev/null 2>&1 &&
       "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      command -v "$cand"; return 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    for cand in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[2-9])(\.|$)' | sort -V); do  # oldest supported first: 3.12 is what lerobot and Ubuntu 24.04 use
      local p; p="$(pyenv root)/versions/$cand/bin/python"
      [ -x "$p" ] && { echo "$p"; return 0; }
    done
  fi
  return 1
}

can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

APT_UPDATED=""
apt_update_once() { [ -n "$APT_UPDATED" ] || { apt-get update -q >/dev/null 2>&1 && APT_UPDATED=1; }; }
apt_install() {  # quiet
  apt_update_once && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1
}

# MuJoCo renders the sim cameras offscreen through EGL (Mesa) or OSMesa: system libraries.
ensure_gl_libs() {
  if ldconfig -p 2>/dev/null | grep -qE 'libEGL_mesa\.so|libOSMesa\.so'; then return 0; fi
  local pkgs="libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6"
  if can_apt; then
    echo "[setup] installing offscreen OpenGL libraries for MuJoCo: $pkgs"
    apt_install $pkgs || echo "[setup] WARNING: could not install $pkgs; MuJoCo cameras will not render" >&2
  else
    echo "[setup] WARNING: no EGL/OSMesa library found; MuJoCo cameras need them: sudo apt install $pkgs" >&2
  fi
}

# torchcodec 0.11, LeRobot's default video decoder, loads FFmpeg 4 to 8's shared libraries
# (libavdevice 58 to 62 and the libav*/libsw* they pull in). The project opens its datasets with
# PyAV, which has its own FFmpeg, so they are optional: without them, LeRobot's own tools
# (a LeRobotDataset opened with defaults, lerobot-dataset-viz) log a long torchcodec traceback
# before they fall back to PyAV. Installed with the venv, not checked on every run.
ensure_ffmpeg_libs() {
  if ldconfig -p 2>/dev/null | grep -qE 'libavdevice\.so\.(58|59|60|61|62)\b'; then return 0; fi
  local pkg=""
  if can_apt && apt_update_once; then
    pkg="$(apt-cache search --names-only '^libavdevice(58|59|60|61|62)$' | cut -d' ' -f1 | sort -V | tail -n 1)"
  fi
  if [ -n "$pkg" ]; then
    echo "[setup] installing FFmpeg's libraries for torchcodec: $pkg"
    apt_install --no-install-recommends "$pkg" && return 0
  fi
  echo "[setup] note: no FFmpeg 4-8 libraries for torchcodec; video is decoded with PyAV (for LeRobot's own" \
    "tools: sudo apt install libavdevice60 on Ubuntu 24.04, libavdevice59 on Debian 12)"
}

stamp_of() {
  # models/: the shipped checkpoints are installed under share/ too
  cat requirements/*.txt setup.py package.xml $(find models -type f 2>/dev/null | sort) | sha256sum | cut -d' ' -f1
  echo "extras=$EXTRAS"
}

ensure_gl_libs

if [ -x "$VENV/bin/python" ] && [ -f "$VENV/.so100_vla_stamp" ] &&
   [ "$(cat "$VENV/.so100_vla_stamp")" = "$(stamp_of)" ]; then
  echo "[setup] $VENV is up to date"
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  PY="$(find_python)" || {
    echo "[setup] ERROR: Python >= 3.12 not found (lerobot 0.6 and the ROS 2 Jazzy wheels need it)." >&2
    echo "        Install it, e.g. 'sudo apt install python3.12 python3.12-venv' (Ubuntu 24.04)" >&2
    echo "        or 'pyenv install 3.12', or point PYTHON=/path/to/python3.12 at one." >&2
    exit 1
  }
  echo "[setup] creating $VENV with $PY ($("$PY" --version))"
  "$PY" -m venv "$VENV"
fi
ensure_ffmpeg_libs

PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
LOG="$VENV/setup.log"
echo "[setup] installing ROS 2 Jazzy wheels, the project and extras [$EXTRAS] (first run: ~2-5 min, ~6 GB with torch; log: $LOG)"
{
  "${PIP[@]}" install --upgrade pip setuptools wheel &&
  "${PIP[@]}" install -r requirements/ros-jazzy.txt -e ".[$EXTRAS]"
} > "$LOG" 2>&1 || {
  grep -v -E "^WARNING: Location '.*' is ignored" "$LOG" | tail -n 40 >&2
  echo "[setup] ERROR: pip install failed (full log: $LOG)" >&2
  exit 1
}
stamp_of > "$VENV/.so100_vla_stamp"
echo "[setup] done: $VENV ($("$VENV/bin/python" --version))"
