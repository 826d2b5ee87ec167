"""Control layer (plain Python, no rclpy): the trajectory follower and the arm controller over a
small hardware interface (Feetech, MuJoCo, mock)."""
