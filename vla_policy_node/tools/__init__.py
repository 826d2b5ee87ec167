"""Command-line helpers of the policy node (test/demo checkpoints)."""
