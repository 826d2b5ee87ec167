"""Demonstration recorder: ROS topics -> LeRobot dataset (core.py plain Python, node.py rclpy)."""
