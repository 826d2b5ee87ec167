"""Generate the MoveIt SRDF and joint_limits.yaml of each arm variant from the project's model.

    python -m so100_description.moveit.generate [--samples 2000] [--variant so101]

Disabled collision pairs are computed the way MoveIt Setup Assistant does it, but with
pinocchio + coal (hpp-fcl) on the URDF's collision meshes: random joint configurations within
the limits (seeded), then per pair of links
  Adjacent  joined by a joint (parent/child),
  Default   in collision at the zero configuration,
  Always    in collision in >= 95 % of the samples,
  Never     in collision in none of the samples.
Pairs that collide sometimes stay enabled: MoveIt must check them.
joint_limits.yaml is written from so100_description/config/joint_limits.yaml (the single
source of limits), so MoveIt's velocity/acceleration limits match the URDF and the controllers.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import yaml

from so100_description.joints import ARM_JOINTS, GRIPPER_JOINTS, JOINT_NAMES, VARIANTS, joint_limits

MOVEIT_DIR = Path(__file__).resolve().parent
ALWAYS_FRACTION = 0.95
DEFAULT_SAMPLES = 2000

# Named poses (rad). home: calibration zero (middle of every joint's range); ready: tool above
# the table in front, jaws down; rest: folded onto itself (LeRobot's rest position).
NAMED_POSES: dict[str, dict[str, float]] = {
    "home": {j: 0.0 for j in ARM_JOINTS},
    "ready": {"shoulder_pan": 0.0, "shoulder_lift": -0.5, "elbow_flex": 0.5, "wrist_flex": 1.2,
              "wrist_roll": 0.0},
    "rest": {"shoulder_pan": 0.0, "shoulder_lift": -1.6, "elbow_flex": 1.4, "wrist_flex": 1.0,
             "wrist_roll": 0.0},
}
GRIPPER_POSES: dict[str, dict[str, float]] = {"open": {"gripper": 1.0}, "closed": {"gripper": 0.0}}


def srdf_path(variant: str) -> Path:
    return MOVEIT_DIR / variant / f"{variant}.srdf"


def joint_limits_path(variant: str) -> Path:
    return MOVEIT_DIR / variant / "joint_limits.yaml"


@dataclass(frozen=True)
class CollisionModel:
    model: object
    geom: object
    geom_links: list[str]  # link of each geometry
    links: list[str]  # links that carry collision geometry
    adjacent: set[frozenset[str]]


def load_collision_model(variant: str) -> CollisionModel:
    import pinocchio as pin

    from so100_description import robot_description

    urdf = robot_description(variant, "mock")
    model = pin.buildModelFromXML(urdf)
    geom = pin.buildGeomFromUrdfString(model, urdf, pin.COLLISION)
    geom_links = [model.frames[g.parentFrame].name for g in geom.geometryObjects]
    links = sorted(set(geom_links), key=geom_links.index)
    geom.removeAllCollisionPairs()
    for i in range(geom.ngeoms):
        for k in range(i + 1, geom.ngeoms):
            if geom_links[i] != geom_links[k]:
                geom.addCollisionPair(pin.CollisionPair(i, k))
    adjacent: set[frozenset[str]] = set()
    for jid in range(1, model.njoints):  # link of each joint and of its parent joint
        child = _joint_link(model, jid)
        parent = _joint_link(model, model.parents[jid]) if model.parents[jid] > 0 else _root_link(model)
        if child and parent:
            adjacent.add(frozenset((child, parent)))
    return CollisionModel(model, geom, geom_links, links, adjacent)


def _joint_link(model, jid: int) -> str | None:
    """The body (link) frame attached directly to joint jid."""
    for frame in model.frames:
        if frame.parentJoint == jid and frame.type == _body_type():
            return frame.name
    return None


def _root_link(model) -> str:
    for frame in model.frames:
        if frame.parentJoint == 0 and frame.type == _body_type():
            return frame.name
    raise ValueError("URDF has no root link")


def _body_type():
    import pinocchio as pin

    return pin.FrameType.BODY


def _colliding_link_pairs(cm: CollisionModel, q: np.ndarray, gdata, data) -> set[frozenset[str]]:
    import pinocchio as pin

    pin.computeCollisions(cm.model, data, cm.geom, gdata, q, False)
    pairs = set()
    for idx, pair in enumerate(cm.geom.collisionPairs):
        if gdata.collisionResults[idx].isCollision():
            pairs.add(frozenset((cm.geom_links[pair.first], cm.geom_links[pair.second])))
    return pairs


def _configuration(cm: CollisionModel, positions: dict[str, float]) -> np.ndarray:
    q = np.zeros(cm.model.nq)
    for name, value in positions.items():
        q[cm.model.joints[cm.model.getJointId(name)].idx_q] = value
    return q


def collision_fractions(variant: str, samples: int, seed: int = 0,
                        cm: CollisionModel | None = None) -> tuple[dict[frozenset[str], float], set[frozenset[str]]]:
    """(fraction of random configurations in which each link pair collides, pairs colliding at zero)."""
    import pinocchio as pin

    cm = cm or load_collision_model(variant)
    gdata, data = pin.GeometryData(cm.geom), cm.model.createData()
    limits = joint_limits(variant)
    names = [n for n in cm.model.names[1:]]
    lower = np.array([limits[n].lower for n in names])
    upper = np.array([limits[n].upper for n in names])
    rng = np.random.default_rng(seed)
    counts: dict[frozenset[str], int] = {}
    for _ in range(samples):
        q = _configuration(cm, dict(zip(names, rng.uniform(lower, upper))))
        for pair in _colliding_link_pairs(cm, q, gdata, data):
            counts[pair] = counts.get(pair, 0) + 1
    at_zero = _colliding_link_pairs(cm, _configuration(cm, {}), gdata, data)
    return {p: c / samples for p, c in counts.items()}, at_zero


def disabled_collisions(variant: str, samples: int = DEFAULT_SAMPLES, seed: int = 0) -> list[tuple[str, str, str]]:
    cm = load_collision_model(variant)
    fractions, at_zero = collision_fractions(variant, samples, seed, cm)
    out: list[tuple[str, str, str]] = []
    links = cm.links
    for i, a in enumerate(links):
        for b in links[i + 1:]:
            pair = frozenset((a, b))
            if pair in cm.adjacent:
                reason = "Adjacent"
            elif pair in at_zero:
                reason = "Default"
            elif fractions.get(pair, 0.0) >= ALWAYS_FRACTION:
                reason = "Always"
            elif fractions.get(pair, 0.0) == 0.0:
                reason = "Never"
            else:
                continue
            out.append((a, b, reason))
    return out


def srdf_xml(variant: str, disabled: Iterable[tuple[str, str, str]], samples: int) -> str:
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f"<!-- MoveIt semantic description of the {variant.upper()} arm.",
        "     Generated by `python -m so100_description.moveit.generate` from the project's URDF:",
        f"     disabled collision pairs from {samples} random configurations (pinocchio + coal",
        "     on the collision meshes); do not edit by hand. -->",
        f'<robot name="{variant}">',
        '  <group name="arm">',
        '    <chain base_link="base_link" tip_link="tcp"/>',
        "  </group>",
        '  <group name="gripper">',
        '    <link name="moving_jaw_link"/>',
        *[f'    <joint name="{j}"/>' for j in GRIPPER_JOINTS],
        "  </group>",
    ]
    for name, pose in NAMED_POSES.items():
        lines.append(f'  <group_state name="{name}" group="arm">')
        lines += [f'    <joint name="{j}" value="{pose[j]:g}"/>' for j in ARM_JOINTS]
        lines.append("  </group_state>")
    for name, pose in GRIPPER_POSES.items():
        lines.append(f'  <group_state name="{name}" group="gripper">')
        lines += [f'    <joint name="{j}" value="{v:g}"/>' for j, v in pose.items()]
        lines.append("  </group_state>")
    lines.append('  <end_effector name="gripper" parent_link="gripper_link" group="gripper" parent_group="arm"/>')
    for a, b, reason in disabled:
        lines.append(f'  <disable_collisions link1="{a}" link2="{b}" reason="{reason}"/>')
    lines.append("</robot>")
    return "\n".join(lines) + "\n"


def moveit_joint_limits(variant: str) -> dict:
    """MoveIt joint_limits.yaml content from so100_description/config/joint_limits.yaml."""
    limits = joint_limits(variant)
    return {
        # Conservative defaults for planned motions (RViz sliders scale them at run time).
        "default_velocity_scaling_factor": 0.3,
        "default_acceleration_scaling_factor": 0.3,
        "joint_limits": {
            j: {"has_velocity_limits": True, "max_velocity": limits[j].velocity,
                "has_acceleration_limits": True, "max_acceleration": limits[j].acceleration}
            for j in JOINT_NAMES
        },
    }


def joint_limits_text(variant: str) -> str:
    header = (f"# MoveIt joint limits of the {variant.upper()} arm. Generated by\n"
              "# `python -m so100_description.moveit.generate` from so100_description/config/joint_limits.yaml\n"
              "# (the single source of limits; position limits come from the URDF). Do not edit by hand.\n")
    return header + yaml.safe_dump(moveit_joint_limits(variant), sort_keys=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=VARIANTS, action="append")
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for variant in args.variant or VARIANTS:
        disabled = disabled_collisions(variant, args.samples, args.seed)
        srdf_path(variant).parent.mkdir(parents=True, exist_ok=True)
        srdf_path(variant).write_text(srdf_xml(variant, disabled, args.samples))
        joint_limits_path(variant).write_text(joint_limits_text(variant))
        print(f"{variant}: {len(disabled)} disabled pairs -> {srdf_path(variant)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
