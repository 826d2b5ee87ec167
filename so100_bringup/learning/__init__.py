"""Learning loop commands: train a small ACT on a recorded dataset, evaluate it in the sim;
random_act builds a random-initialised ACT checkpoint (so100_demo --policy random, tests)."""
