"""Conventions every node of the suite shares: typed parameters, QoS presets, diagnostics,
the console-script body (`ros_node`), and image conversion/resizing (`images`).

The bottom of the package order: it imports no other package of the suite, so the robot model,
the policy and the bringup tools can all use it without a cycle.
"""
