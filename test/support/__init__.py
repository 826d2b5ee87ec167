"""Test and benchmark support (not installed, not used by any node).

    support.ros                fake camera/joint-state node, spinners, node processes, waits
    support.make_tiny_smolvla  a tiny random SmolVLA checkpoint built offline

Tests import it as `support` (pytest puts test/ on sys.path: test/ has no __init__.py); the
benchmarks in bench/ put test/ on sys.path themselves.
"""
