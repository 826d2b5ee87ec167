"""The trained checkpoint the package ships (models/act_so101_pick_place, the demo's default
policy): small, loads through the policy node's backend, and places the cube in the sim."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("lerobot", reason="lerobot not installed (make setup installs the policy extra)")

from so100_description.paths import DEFAULT_POLICY, model_path  # noqa: E402

POLICY = model_path(DEFAULT_POLICY)
SEED = 100  # the model card's evaluation seed


def test_small_fp16_lerobot_checkpoint_with_its_recipe():
    from safetensors.torch import load_file

    weights = POLICY / "model.safetensors"
    assert weights.stat().st_size <= 50e6
    dtypes = {str(t.dtype) for t in load_file(str(weights)).values() if t.is_floating_point()}
    assert dtypes == {"torch.float16"}
    config = json.loads((POLICY / "config.json").read_text())
    assert config["type"] == "act"
    assert config["input_features"]["observation.state"]["shape"] == [6]
    assert config["output_features"]["action"]["shape"] == [6]
    card = (POLICY / "README.md").read_text()
    for command in ("so100_record_sim", "so100_train", "so100_evaluate"):  # how to make it again
        assert command in card


def test_loads_through_the_policy_node_backend():
    from so100_description.calibration import JointUnitConverter, nominal_calibration
    from vla_policy_node.backends.base import PolicyInput
    from vla_policy_node.backends.local import LocalLeRobotBackend

    backend = LocalLeRobotBackend(POLICY, torch_threads=1)
    images = {key: np.full((*backend.spec.image_hw(key), 3), 120, np.uint8) for key in backend.spec.image_shapes}
    state = JointUnitConverter(nominal_calibration()).state_vector(dict.fromkeys(
        ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"), 0.0))
    chunk = backend.predict_chunk(PolicyInput(state=state.astype(np.float32), images=images, task="x"))
    assert chunk.shape == (backend.spec.chunk_size, 6) and np.all(np.isfinite(chunk))


def test_places_the_cube_in_the_sim():
    pytest.importorskip("mujoco", reason="mujoco not installed (make setup)")
    from so100_bringup.learning.evaluate import EvalSettings, evaluate_direct

    # Three layouts of the evaluation sequence, run through the same rollout as so100_evaluate.
    result = evaluate_direct(EvalSettings(policy=POLICY, episodes=3, seed=SEED, episode_s=15.0),
                             progress=lambda line: None)
    assert sum(result.successes) >= 2, result.successes
