"""MoveIt configuration of the SO-100 / SO-101 arm (files in this directory; see docs/moveit.md).

    <variant>/<variant>.srdf        groups arm/gripper, named poses, disabled collision pairs
    <variant>/joint_limits.yaml      MoveIt limits generated from config/joint_limits.yaml
    kinematics.yaml                  pick_ik for the 5-DOF arm group
    ompl_planning.yaml               OMPL pipeline
    moveit_controllers.yaml          arm_controller / gripper_controller (FollowJointTrajectory)

`generate.py` regenerates the SRDF and joint_limits.yaml; `config.py` builds the parameter
dictionaries move_group and moveit_py need (plain Python, no MoveIt import).
"""
