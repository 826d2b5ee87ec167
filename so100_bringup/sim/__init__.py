"""MuJoCo simulation of the SO-101 arm in a table scene (plain Python; the rclpy node is node.py).

scene.py builds the model (the project's URDF + table, cube, target area, cameras, actuators),
physics.py steps it and evaluates the task, render.py draws the cameras offscreen (gl.py picks
the OpenGL backend first), schedule.py decides in sim time when to publish what and paces sim
time against the wall clock. None of them imports rclpy.
"""
