"""rclpy bridge: JointTrajectory topics -> the shared TrajectoryFollower (standalone mode)."""
from __future__ import annotations

from typing import Callable

from rclpy.node import Node
from trajectory_msgs.msg import JointTrajectory

from so100_bringup.control.follower import TrajectoryFollower, TrajectoryRejected, points_from_msg
from so100_common.ros_node import COMMAND_QOS, now_seconds


class TrajectoryFollowerBridge:
    """Subscribes the arm and gripper controller topics and feeds `follower`.

    Trajectories are interpreted on the node's clock (sim time with use_sim_time), like
    joint_trajectory_controller. A rejected trajectory is logged and leaves the current
    motion untouched.
    """

    def __init__(self, node: Node, follower: TrajectoryFollower,
                 arm_topic: str = "arm_controller/joint_trajectory",
                 gripper_topic: str = "gripper_controller/joint_trajectory",
                 now_fn: Callable[[], float] | None = None,
                 accept: Callable[[], bool] | None = None):
        self._node = node
        self._follower = follower
        self._now = now_fn or (lambda: now_seconds(node))
        self._accept = accept or (lambda: True)
        self.received = 0
        self.rejected = 0
        self.last_error = ""
        self._subs = [node.create_subscription(JointTrajectory, topic, self._on_trajectory, COMMAND_QOS)
                      for topic in (arm_topic, gripper_topic) if topic]

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        self.received += 1
        if not self._accept():
            self.rejected += 1
            self.last_error = "trajectory ignored: commands disabled (e-stop or torque off)"
            self._node.get_logger().warn(self.last_error, throttle_duration_sec=2.0)
            return
        try:
            names, points, start = points_from_msg(msg)
            self._follower.set_trajectory(names, points, start, self._now())
        except (TrajectoryRejected, ValueError) as exc:
            self.rejected += 1
            self.last_error = f"trajectory rejected: {exc}"
            self._node.get_logger().error(self.last_error)
