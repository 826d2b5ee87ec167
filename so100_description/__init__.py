"""SO-100 / SO-101 robot description: joint names and limits, URDF (xacro) expansion."""
from .description import HARDWARE, robot_description, so101_mesh_dir
from .joints import (ARM_JOINTS, GRIPPER_JOINTS, JOINT_NAMES, MOTOR_IDS, VARIANTS, JointLimit,
                     joint_limits)

__all__ = ["robot_description", "so101_mesh_dir", "HARDWARE", "JOINT_NAMES", "ARM_JOINTS",
           "GRIPPER_JOINTS", "MOTOR_IDS", "VARIANTS", "JointLimit", "joint_limits"]
