"""Feetech STS3215 bus: register table (data), SDK-based bus wrapper, pty emulator.

Nothing here imports rclpy, torch or lerobot."""
