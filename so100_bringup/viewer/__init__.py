"""The live Rerun viewer: `log` (plain Python: what the arm sees and does, as Rerun entities),
`node` (its rclpy shell, so100_viewer), `child` (how the tools start it as a child process)."""
