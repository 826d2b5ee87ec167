"""Training command: lerobot's trainer on a recorder-written dataset, loss plot, fp16 export that
the policy node's backend loads; ACT and a second policy type (a tiny SmolVLA), the policy-type
and device choices."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("datasets", reason="lerobot[dataset] not installed (make setup)")
pytest.importorskip("accelerate", reason="lerobot[training] not installed (make setup)")

from so100_description.calibration import JointUnitConverter, nominal_calibration  # noqa: E402
from so100_bringup.learning import train as T  # noqa: E402
from so100_bringup.recorder.core import DatasetSession, FrameBuilder, dataset_features  # noqa: E402
from so100_description.joints import JOINT_NAMES  # noqa: E402
from support.make_tiny_smolvla import make_tiny_smolvla  # noqa: E402

CAMS = {"front": (48, 64)}
TINY = ["--steps", "4", "--log-freq", "2", "--save-freq", "4", "--batch-size", "2", "--chunk-size", "5",
        "--n-action-steps", "5", "--dim-model", "32", "--dim-feedforward", "64", "--n-heads", "2"]


@pytest.fixture(autouse=True)
def restore_threads():
    """The train command limits torch/OpenMP threads for its process; undo that for other tests."""
    import os

    import torch

    threads, env = torch.get_num_threads(), dict(os.environ)
    yield
    torch.set_num_threads(threads)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        if var in env:
            os.environ[var] = env[var]
        else:
            os.environ.pop(var, None)


def record(root, cams):
    builder = FrameBuilder(JointUnitConverter(nominal_calibration()), cams)
    session = DatasetSession(root, "local/so101_recording", 10, dataset_features(cams, use_videos=False))
    session.open()
    for _ in range(2):
        session.start("pick the cube")
        for i in range(20):
            q = {j: 0.02 * i for j in JOINT_NAMES}
            images = {c: np.full((*hw, 3), 10 * i + k, np.uint8) for k, (c, hw) in enumerate(cams.items())}
            session.add(builder.build(q, q, images, "pick the cube"))
        session.save()
    session.close()
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return record(tmp_path_factory.mktemp("learn") / "ds", CAMS)


def test_train_plot_and_export_load_in_policy_backend(dataset, tmp_path, capsys):
    from safetensors.torch import load_file

    from vla_policy_node.backends.base import PolicyInput
    from vla_policy_node.backends.local import LocalLeRobotBackend

    run, export = tmp_path / "run", tmp_path / "export"
    assert T.main(["--dataset-root", str(dataset), "--output-dir", str(run), "--export", str(export), *TINY]) == 0
    summary = json.loads((run / "losses.json").read_text())
    assert [p[0] for p in summary["losses"]] == [2, 4]
    assert all(np.isfinite(p[1]) and p[1] > 0 for p in summary["losses"])
    import cv2

    plot = cv2.imread(str(run / "loss.png"))
    assert plot is not None and plot.shape == (480, 800, 3)
    assert (plot[:, :, 2] < 100).any()  # the loss line (blue-ish) is drawn
    weights = load_file(str(export / "model.safetensors"))
    assert {str(v.dtype) for v in weights.values() if v.is_floating_point()} == {"torch.float16"}
    assert (export / "model.safetensors").stat().st_size < 50e6

    backend = LocalLeRobotBackend(export)
    chunk = backend.predict_chunk(PolicyInput(state=np.zeros(6, np.float32),
                                              images={"observation.images.front": np.zeros((48, 64, 3), np.uint8)},
                                              task="pick the cube"))
    assert chunk.shape == (5, 6) and np.all(np.isfinite(chunk))


def test_camera_subset_and_cosine_schedule(tmp_path):
    """--cameras trains on some of the dataset's cameras; --lr-schedule cosine uses lerobot's
    warm-up + cosine scheduler instead of ACT's constant preset."""
    root = record(tmp_path / "ds2", {"front": (48, 64), "wrist": (48, 64)})
    run = tmp_path / "run"
    assert T.main(["--dataset-root", str(root), "--output-dir", str(run), "--cameras", "wrist",
                   "--lr-schedule", "cosine", "--lr", "1e-3", "--warmup-steps", "2", *TINY]) == 0
    pretrained = run / "checkpoints" / "last" / "pretrained_model"
    config = json.loads((pretrained / "config.json").read_text())
    assert set(config["input_features"]) == {"observation.state", "observation.images.wrist"}
    train_cfg = json.loads((pretrained / "train_config.json").read_text())
    assert train_cfg["scheduler"]["type"] == "cosine_decay_with_warmup"
    assert train_cfg["scheduler"]["peak_lr"] == pytest.approx(1e-3)
    assert train_cfg["scheduler"]["decay_lr"] == pytest.approx(1e-4)
    with pytest.raises(SystemExit, match="top"):
        T.main(["--dataset-root", str(root), "--output-dir", str(tmp_path / "r2"), "--cameras", "top", *TINY])


def test_refuses_missing_dataset_and_existing_run(tmp_path, dataset):
    with pytest.raises(SystemExit, match="not a LeRobot dataset"):
        T.main(["--dataset-root", str(tmp_path / "nothing"), "--output-dir", str(tmp_path / "r"), *TINY])
    (tmp_path / "exists").mkdir()
    with pytest.raises(SystemExit, match="exists"):
        T.main(["--dataset-root", str(dataset), "--output-dir", str(tmp_path / "exists"), *TINY])


def test_export_refuses_non_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError):
        T.export_checkpoint(tmp_path, tmp_path / "out")


@pytest.fixture(scope="module")
def tiny_smolvla(tmp_path_factory):
    return make_tiny_smolvla(tmp_path_factory.mktemp("smolvla") / "policy", cameras=["front"],
                             image_hw=CAMS["front"], chunk_size=5)


def _predict(checkpoint):
    from vla_policy_node.backends.base import PolicyInput
    from vla_policy_node.backends.local import LocalLeRobotBackend

    backend = LocalLeRobotBackend(checkpoint)
    return backend.predict_chunk(PolicyInput(state=np.zeros(6, np.float32),
                                             images={"observation.images.front": np.zeros((*CAMS["front"], 3), np.uint8)},
                                             task="pick the cube"))


def test_smolvla_fine_tunes_from_a_checkpoint_and_trains_fresh(dataset, tiny_smolvla, tmp_path):
    """A second policy type through the same command: SmolVLA started from a checkpoint
    (--init-from, as from smolvla_base), and a fresh one built from --policy-option fields."""
    run, export = tmp_path / "run", tmp_path / "export"
    small = ["--steps", "2", "--log-freq", "1", "--save-freq", "2", "--batch-size", "2", "--device", "cpu"]
    assert T.main(["--dataset-root", str(dataset), "--output-dir", str(run),  # the type: the checkpoint's
                   "--init-from", str(tiny_smolvla), "--export", str(export), *small]) == 0
    train_cfg = json.loads((run / "checkpoints" / "last" / "pretrained_model" / "train_config.json").read_text())
    assert train_cfg["policy"]["type"] == "smolvla" and train_cfg["policy"]["device"] == "cpu"
    assert train_cfg["policy"]["pretrained_path"] == str(tiny_smolvla)
    assert json.loads((run / "losses.json").read_text())["summary"]["policy_type"] == "smolvla"
    chunk = _predict(export)
    assert chunk.shape == (5, 6) and np.all(np.isfinite(chunk))

    fresh = tmp_path / "fresh"
    options = {"vlm_model_name": str(tiny_smolvla / "vlm"), "load_vlm_weights": "false", "num_vlm_layers": "2",
               "resize_imgs_with_padding": "[32,32]", "tokenizer_max_length": "32", "max_state_dim": "8",
               "max_action_dim": "8"}
    assert T.main(["--dataset-root", str(dataset), "--output-dir", str(fresh), "--policy-type", "smolvla",
                   "--chunk-size", "5", "--n-action-steps", "5", *small,
                   *[a for k, v in options.items() for a in ("--policy-option", f"{k}={v}")]]) == 0
    config = json.loads((fresh / "checkpoints" / "last" / "pretrained_model" / "config.json").read_text())
    assert config["type"] == "smolvla" and config["chunk_size"] == 5
    assert config["resize_imgs_with_padding"] == [32, 32] and config["pretrained_path"] is None


def test_config_of_another_policy_type_without_training(dataset, tmp_path):
    """diffusion's model needs lerobot[diffusion] (diffusers), its config does not: the options
    land in lerobot's DiffusionConfig; ACT's project defaults stay ACT's."""
    s, _ = T.parse_args(["--dataset-root", str(dataset), "--output-dir", str(tmp_path / "r"),
                         "--policy-type", "diffusion", "--device", "cpu", "--n-action-steps", "4",
                         "--policy-option", "down_dims=[32,64]", "--policy-option", "horizon=8"])
    cfg = T.build_config(s)
    assert cfg.policy.type == "diffusion" and cfg.policy.device == "cpu" and cfg.policy.push_to_hub is False
    assert cfg.policy.down_dims == (32, 64) and cfg.policy.horizon == 8 and cfg.policy.n_action_steps == 4
    assert cfg.policy.pretrained_backbone_weights is None  # offline: no ImageNet download
    act = T.build_config(T.parse_args(["--dataset-root", str(dataset), "--output-dir", str(tmp_path / "a"),
                                       "--device", "cpu", "--dim-model", "64"])[0]).policy
    assert (act.type, act.dim_model, act.chunk_size, act.use_vae) == ("act", 64, 30, False)


def test_policy_type_device_and_option_errors(dataset, tiny_smolvla, tmp_path):
    base = ["--dataset-root", str(dataset), "--output-dir", str(tmp_path / "r"), "--steps", "1"]
    assert {"act", "diffusion", "smolvla", "pi0"} <= set(T.policy_types())
    with pytest.raises(SystemExit, match=r"unknown --policy-type 'actt'.*\bact\b.*diffusion"):
        T.main([*base, "--policy-type", "actt"])
    with pytest.raises(SystemExit, match=r"smolvla has no option\(s\) \['dim_model'\]"):
        T.main([*base, "--policy-type", "smolvla", "--dim-model", "32"])
    with pytest.raises(SystemExit, match="is a smolvla checkpoint, not --policy-type act"):
        T.main([*base, "--policy-type", "act", "--init-from", str(tiny_smolvla)])
    with pytest.raises(SystemExit, match="act config: .*n_action_steps"):  # lerobot's own check
        T.main([*base, "--n-action-steps", "40"])
    with pytest.raises(SystemExit) as bad_option:  # argparse: usage error
        T.parse_args([*base, "--policy-option", "horizon"])
    assert bad_option.value.code == 2
    with pytest.raises(SystemExit):
        T.parse_args([*base, "--device", "tpu"])
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="--device cuda is not available.*--device auto"):
            T.resolve_device("cuda")
    if not (torch.cuda.is_available() or torch.backends.mps.is_available() or torch.xpu.is_available()):
        assert T.resolve_device("auto") == "cpu"
    assert T.resolve_device("cpu") == "cpu"
    assert not (tmp_path / "r").exists()  # every refusal came before lerobot made a run directory


@pytest.mark.slow
def test_ctrl_c_stops_training_and_direct_recording_without_a_traceback(dataset, tmp_path):
    """Both tools exit 130 on Ctrl-C with one line saying what was kept; record_direct keeps the
    episodes it saved (the dataset still loads)."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from support.ros import wait_for

    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    root = tmp_path / "direct"
    runs = {
        "train": ([str(bin_dir / "so100_train"), "--dataset-root", str(dataset), "--output-dir",
                   str(tmp_path / "run"), *TINY[:1], "100000", *TINY[2:]], "step"),
        "record_direct": ([str(bin_dir / "so100_record_direct"), "--root", str(root), "--episodes", "50",
                           "--cameras", "front", "--use-videos", "0"], "saved episode"),
    }
    for name, (argv, progress) in runs.items():
        if not Path(argv[0]).is_file():
            pytest.skip(f"{argv[0]} not installed (make setup)")
        log = tmp_path / f"{name}.log"
        with open(log, "w") as out:  # SIGINT at its default in the child (see test_ctl)
            proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            assert wait_for(lambda: progress in log.read_text(), 240), log.read_text()
            time.sleep(0.5)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        text = log.read_text()
        assert proc.returncode == 130 and "interrupted" in text and "Traceback" not in text, text
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    assert LeRobotDataset("local/so101_recording", root=root).meta.total_episodes >= 1
