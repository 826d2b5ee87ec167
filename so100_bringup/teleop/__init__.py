"""Teleoperation sources: a scripted sim expert and a leader-arm publisher."""
