"""Local LeRobot backend on a small random-initialised ACT loaded by path, and checkpoint errors."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install so100_vla[policy])")
pytest.importorskip("lerobot", reason="lerobot is not installed (pip install so100_vla[policy])")

from vla_policy_node.backends import CheckpointError, check_compatibility, read_spec_from_config  # noqa: E402
from vla_policy_node.backends.base import PolicyInput  # noqa: E402
from vla_policy_node.backends.local import LocalLeRobotBackend  # noqa: E402
from so100_bringup.learning.random_act import make_random_act  # noqa: E402

HW = (48, 64)


@pytest.fixture(scope="module")
def act_dir(tmp_path_factory):
    torch.set_num_threads(1)
    return make_random_act(tmp_path_factory.mktemp("act") / "policy", cameras=("front", "wrist"),
                           image_hw=HW, chunk_size=10, seed=3)


@pytest.fixture(scope="module")
def backend(act_dir):
    return LocalLeRobotBackend(act_dir, device="cpu")


def _obs(seed=0, state=None):
    rng = np.random.default_rng(seed)
    return PolicyInput(state=np.asarray(state if state is not None else [10, -20, 30, 0, 5, 40], np.float32),
                       images={f"observation.images.{c}": rng.integers(0, 255, (*HW, 3), dtype=np.uint8)
                               for c in ("front", "wrist")}, task="pick the cube")


def test_random_act_spec_matches_request(act_dir):
    spec = read_spec_from_config(act_dir)
    assert spec.policy_type == "act" and spec.state_dim == 6 and spec.action_dim == 6
    assert spec.image_shapes == {"observation.images.front": (3, *HW), "observation.images.wrist": (3, *HW)}
    assert spec.chunk_size == 10


def test_local_backend_returns_unnormalised_deterministic_chunk(backend):
    a = backend.predict_chunk(_obs())
    b = backend.predict_chunk(_obs())
    assert a.shape == (10, 6) and np.all(np.isfinite(a))
    assert np.array_equal(a, b)
    # LeRobot's postprocessor was applied: the model's normalised output times the saved std plus mean
    batch = backend.preprocessor(backend.to_batch(_obs()))
    with torch.inference_mode():
        raw = backend.policy.predict_action_chunk(batch)[0].numpy()
    std = np.array([30.0] * 5 + [15.0])
    mean = np.array([0.0] * 5 + [20.0])
    assert a == pytest.approx(raw * std + mean, abs=1e-4)
    # and the preprocessor normalised the state: a different state changes the chunk
    assert not np.allclose(a, backend.predict_chunk(_obs(state=[80, 80, -80, 50, 5, 90])))


def test_compatibility_names_each_mismatch(act_dir):
    spec = read_spec_from_config(act_dir)
    check_compatibility(spec, ["front", "wrist"], 6, 6)
    with pytest.raises(CheckpointError, match=r"camera key\(s\) \['top'\]"):
        check_compatibility(spec, ["front", "wrist", "top"], 6, 6)
    with pytest.raises(CheckpointError, match=r"needs camera\(s\) \['wrist'\]"):
        check_compatibility(spec, ["front"], 6, 6)
    with pytest.raises(CheckpointError, match="observation.state has 6 dimensions but the arm provides 5"):
        check_compatibility(spec, ["front", "wrist"], 5, 6)
    with pytest.raises(CheckpointError, match="action has 6 dimensions; the node's action space needs 7"):
        check_compatibility(spec, ["front", "wrist"], 6, 7)


def _broken_copy(act_dir, tmp_path, breaker):
    dst = tmp_path / "broken"
    shutil.copytree(act_dir, dst)
    breaker(dst)
    return dst


@pytest.mark.parametrize("breaker,match", [
    (lambda d: shutil.rmtree(d), "does not exist"),
    (lambda d: (d / "config.json").unlink(), "has no config.json"),
    (lambda d: (d / "config.json").write_text("{not json"), "not valid JSON"),
    (lambda d: (d / "config.json").write_text(json.dumps({"type": "act"})), "no 'action' output"),
    (lambda d: (d / "model.safetensors").unlink(), "no model.safetensors"),
    (lambda d: (d / "model.safetensors").write_bytes(b"\x00" * 64), "weights cannot be loaded"),
    (lambda d: (d / "policy_preprocessor.json").unlink(), "no policy_preprocessor.json"),
])
def test_bad_checkpoints_fail_clearly(act_dir, tmp_path, breaker, match):
    path = _broken_copy(act_dir, tmp_path, breaker)
    with pytest.raises(CheckpointError, match=match):
        LocalLeRobotBackend(path)


def test_mismatched_weights_fail_clearly(act_dir, tmp_path):
    def widen_state(d):
        cfg = json.loads((d / "config.json").read_text())
        cfg["input_features"]["observation.state"]["shape"] = [7]
        (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="weights cannot be loaded"):
        LocalLeRobotBackend(_broken_copy(act_dir, tmp_path, widen_state))
