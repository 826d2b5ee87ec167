"""Learning loop commands: train a small ACT on a recorded dataset, evaluate it in the sim."""
