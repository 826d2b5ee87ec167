"""MuJoCo simulation of the SO-101 arm in a table scene (plain Python; the rclpy node is node.py).

scene.py builds the model (the project's URDF + table, cube, target area, cameras, actuators),
physics.py steps it and evaluates the task, render.py draws the cameras offscreen,
schedule.py decides in sim time when to publish what. None of them imports rclpy.
"""
