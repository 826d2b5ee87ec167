"""The driver's independence from torch/lerobot, and the emulator CLI."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_driver_never_needs_torch_or_lerobot():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'lerobot'):\n"
        "            raise ImportError(f'{name} is not installed on this robot PC')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import so100_description.calibration, so100_bringup.feetech.bus, so100_bringup.feetech.arm\n"
        "import so100_bringup.feetech.emulator\n"
        "try:\n"
        "    import rclpy\n"
        "except ImportError:\n"
        "    rclpy = None\n"
        "if rclpy is not None:\n"
        "    import so100_bringup.driver_node\n"
        "assert not any(m.split('.')[0] in ('torch', 'lerobot') for m in sys.modules)\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], env=os.environ.copy(), capture_output=True, text=True,
                         timeout=120, cwd=REPO)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_emulator_console_entry_point(tmp_path):
    scs = pytest.importorskip("scservo_sdk", reason="feetech-servo-sdk not installed")
    link = tmp_path / "emulated_arm"
    proc = subprocess.Popen([sys.executable, "-m", "so100_bringup.feetech.emulator", "--link", str(link),
                             "--calibration", str(REPO / "test" / "data" / "so101_follower_calibration.json")],
                            env=os.environ.copy(), stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        deadline = time.monotonic() + 30
        while not link.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        port = scs.PortHandler(str(link))
        assert port.openPort()
        try:
            pk = scs.PacketHandler(0)
            assert pk.ping(port, 6)[:2] == (777, scs.COMM_SUCCESS)
            offset, result, _ = pk.read2ByteTxRx(port, 1, 31)  # homing offset from the calibration file
            assert result == scs.COMM_SUCCESS and offset == (1470 | 0x800)
        finally:
            port.closePort()
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    assert not link.exists()
