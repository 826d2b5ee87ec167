"""SmolVLA through the policy node: a tiny random SmolVLA on a locally generated VLM (no hub).

The checkpoint is built in a temp dir by test/support/make_tiny_smolvla.py and loaded by
path through LeRobot's real from_pretrained and processor pipelines (tokenizer step included).
SmolVLA samples flow-matching noise per call, so comparisons fix the torch seed.
"""
from __future__ import annotations

import json
import math
import shutil
import subprocess

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install so100_vla[policy])")
pytest.importorskip("lerobot", reason="lerobot is not installed (pip install so100_vla[policy])")
pytest.importorskip("transformers", reason="SmolVLA needs transformers (pip install so100_vla[vla])")
pytest.importorskip("lerobot.policies.smolvla.modeling_smolvla", reason="lerobot's SmolVLA cannot be imported")

from so100_description.calibration import JointUnitConverter, nominal_calibration  # noqa: E402
from so100_description.joints import ARM_JOINTS, JOINT_NAMES, joint_limits  # noqa: E402
from vla_policy_node.actions import JointActionMapper  # noqa: E402
from vla_policy_node.backends import CheckpointError, read_spec_from_config  # noqa: E402
from vla_policy_node.backends.base import PolicyInput  # noqa: E402
from vla_policy_node.backends.local import LocalLeRobotBackend  # noqa: E402
from support.make_tiny_smolvla import VLM_SUBDIR, make_tiny_smolvla  # noqa: E402

HW = (48, 64)
CHUNK = 12
CAMERAS = ("front", "wrist")


@pytest.fixture(scope="module")
def smolvla_dir(tmp_path_factory):
    torch.set_num_threads(1)
    return make_tiny_smolvla(tmp_path_factory.mktemp("smolvla") / "policy", cameras=CAMERAS, image_hw=HW,
                             chunk_size=CHUNK, seed=5)


@pytest.fixture(scope="module")
def backend(smolvla_dir):
    return LocalLeRobotBackend(smolvla_dir, device="cpu")


def _obs(task: str, seed: int = 0, state=(10, -20, 30, 0, 5, 40)) -> PolicyInput:
    rng = np.random.default_rng(seed)
    return PolicyInput(state=np.asarray(state, np.float32),
                       images={f"observation.images.{c}": rng.integers(0, 255, (*HW, 3), dtype=np.uint8)
                               for c in CAMERAS}, task=task)


def _chunk(backend, obs: PolicyInput, noise_seed: int = 0) -> np.ndarray:
    torch.manual_seed(noise_seed)  # the flow-matching noise
    return backend.predict_chunk(obs)


def _copy(src, tmp_path, edit_config=None):
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    if edit_config:
        cfg = json.loads((dst / "config.json").read_text())
        edit_config(cfg)
        (dst / "config.json").write_text(json.dumps(cfg))
    return dst


def test_tiny_smolvla_is_a_small_so101_checkpoint(smolvla_dir):
    spec = read_spec_from_config(smolvla_dir)
    assert spec.policy_type == "smolvla" and spec.state_dim == 6 and spec.action_dim == 6
    assert spec.image_shapes == {f"observation.images.{c}": (3, *HW) for c in CAMERAS}
    assert spec.chunk_size == CHUNK
    config = json.loads((smolvla_dir / "config.json").read_text())
    assert config["vlm_model_name"] == str(smolvla_dir / VLM_SUBDIR)  # a local folder, not a hub id
    size = sum(f.stat().st_size for f in smolvla_dir.rglob("*") if f.is_file())
    assert size < 5e6, size


def test_backend_loads_smolvla_by_path_and_returns_a_joint_chunk(backend):
    assert type(backend.policy).__name__ == "SmolVLAPolicy"
    chunk = _chunk(backend, _obs("pick up the red cube"))
    assert chunk.shape == (CHUNK, 6) and np.all(np.isfinite(chunk))
    # same noise, same input -> same chunk (nothing else is random at inference)
    assert np.array_equal(chunk, _chunk(backend, _obs("pick up the red cube")))
    # LeRobot degrees / gripper percent -> radians with the node's own action mapper
    mapper = JointActionMapper(JointUnitConverter(nominal_calibration(), "degrees"))
    radians = mapper(chunk, np.zeros(6))
    assert radians.shape == (CHUNK, len(JOINT_NAMES))
    assert radians[:, :5] == pytest.approx(np.radians(chunk[:, :5].astype(float)), abs=1e-6)
    grip = joint_limits()["gripper"]
    expected_grip = grip.lower + np.clip(chunk[:, 5], 0, 100) / 100.0 * (grip.upper - grip.lower)  # 0..100 %
    assert radians[:, 5] == pytest.approx(expected_grip, abs=1e-6)


def test_task_instruction_conditions_the_actions(backend):
    tokens = {task: backend.preprocessor(backend.to_batch(_obs(task)))["observation.language.tokens"]
              for task in ("pick up the red cube", "fold the cloth in half")}
    assert not torch.equal(*tokens.values())  # the processor tokenised the task
    a = _chunk(backend, _obs("pick up the red cube"))
    b = _chunk(backend, _obs("fold the cloth in half"))
    assert np.abs(a - b).max() > 1e-3  # and the tokens reach the model
    empty = _chunk(backend, _obs(""))  # no task set: still a valid chunk
    assert empty.shape == (CHUNK, 6) and np.all(np.isfinite(empty))


def test_observation_also_conditions_the_actions(backend):
    a = _chunk(backend, _obs("pick up the red cube"))
    assert np.abs(a - _chunk(backend, _obs("pick up the red cube", seed=1))).max() > 1e-3  # images
    assert np.abs(a - _chunk(backend, _obs("pick up the red cube", state=(80, 80, -80, 50, 5, 90)))).max() > 1e-3


def test_checkpoint_saved_with_load_vlm_weights_needs_no_vlm_weights(smolvla_dir, backend, tmp_path):
    # Real SmolVLA checkpoints say load_vlm_weights=true; our VLM folder has no weights at all,
    # so loading only works because the backend takes the VLM from model.safetensors.
    path = _copy(smolvla_dir, tmp_path, lambda c: c.update(load_vlm_weights=True))
    other = LocalLeRobotBackend(path)
    obs = _obs("pick up the red cube")
    assert np.array_equal(_chunk(other, obs), _chunk(backend, obs))


def test_checkpoint_without_vlm_weights_fails_clearly(smolvla_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    path = _copy(smolvla_dir, tmp_path, lambda c: c.update(load_vlm_weights=True))
    weights = load_file(str(path / "model.safetensors"))
    save_file({k: v for k, v in weights.items() if "vision_model" not in k}, str(path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="lacks .* VLM weight"):
        LocalLeRobotBackend(path)


@pytest.mark.parametrize("vlm,match", [
    ("/nonexistent/vlm", r"vlm_model_name in config.json is '/nonexistent/vlm', a folder that does not exist"),
    ("so100-vla-test/no-such-vlm", r"hub model 'so100-vla-test/no-such-vlm', which is not in the Hugging Face cache"),
])
def test_unresolvable_vlm_fails_clearly(smolvla_dir, tmp_path, monkeypatch, vlm, match):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = _copy(smolvla_dir, tmp_path, lambda c: c.update(vlm_model_name=vlm))
    with pytest.raises(CheckpointError, match=match):
        LocalLeRobotBackend(path)


def test_unresolvable_tokenizer_fails_clearly(smolvla_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = _copy(smolvla_dir, tmp_path)
    pre = json.loads((path / "policy_preprocessor.json").read_text())
    for step in pre["steps"]:
        if "tokenizer_name" in step["config"]:
            step["config"]["tokenizer_name"] = str(tmp_path / "moved")
    (path / "policy_preprocessor.json").write_text(json.dumps(pre))
    with pytest.raises(CheckpointError, match="tokenizer_name of tokenizer_processor in policy_preprocessor.json"):
        LocalLeRobotBackend(path)


# --- the node over real DDS ----------------------------------------------------------------

@pytest.mark.ros
@pytest.mark.slow  # ~20-30 s on a loaded 2-core machine (node start + transformers import)
def test_node_runs_smolvla_with_task_over_dds(smolvla_dir, rclpy_context, tmp_path):
    pytest.importorskip("rclpy", reason="rclpy not installed (make setup installs the ROS 2 Jazzy wheels)")
    from std_msgs.msg import String

    from support.ros import Spinner, make_fake_io_node, start_policy_node, stop_process, wait_for

    fps = 30.0
    cams = {"front": ("/camera/front/image_raw", HW, "rgb8"), "wrist": ("/camera/wrist/image_raw", (96, 128), "bgr8")}
    io = make_fake_io_node(cams, context=rclpy_context, joint_positions=[0.1, -0.2, 0.3, 0.0, 0.1, 0.4])
    spinner = Spinner([io], rclpy_context)
    log = tmp_path / "node.log"
    proc: subprocess.Popen = start_policy_node(
        {"policy_path": str(smolvla_dir), "autostart": True, "torch_threads": 1, "fps": fps,
         "diagnostics_period": 0.2, "task": "pick up the red cube"}, log_path=str(log))

    def diag():
        if not io.recorder.diagnostics:
            return None
        status = io.recorder.diagnostics[-1].status[0]
        return status.message, {kv.key: kv.value for kv in status.values}

    def count():
        with io.lock:
            return len(io.recorder.arm)

    try:
        assert wait_for(lambda: count() >= 4, 90), log.read_text()
        with io.lock:
            arm, grip = list(io.recorder.arm), list(io.recorder.gripper)
        limits = joint_limits()
        lower = np.array([limits[j].lower for j in ARM_JOINTS])
        upper = np.array([limits[j].upper for j in ARM_JOINTS])
        for traj in arm:
            assert traj.joint_names == list(ARM_JOINTS)
            assert traj.times == pytest.approx(np.arange(1, len(traj.times) + 1) / fps, abs=1e-6)
            assert np.all(np.isfinite(traj.positions))
            assert np.all(traj.positions >= lower - 1e-9) and np.all(traj.positions <= upper + 1e-9)
        assert grip and grip[0].joint_names == ["gripper"]
        assert diag()[0] == "running" and diag()[1]["task"] == "pick up the red cube"
        assert float(diag()[1]["inference_latency_ms"]) > 0
        # a new instruction on the topic becomes the task of the following inferences
        pub = io.create_publisher(String, "/vla/instruction", 10)
        assert wait_for(lambda: (pub.publish(String(data="fold the cloth in half")) or
                                 diag()[1].get("task") == "fold the cloth in half"), 10)
        n = count()
        assert wait_for(lambda: count() >= n + 2, 30), log.read_text()
        assert diag()[0] == "running"
        assert math.isfinite(float(diag()[1]["inference_latency_ms"]))
    finally:
        stop_process(proc)
        spinner.stop()
        io.destroy_node()
