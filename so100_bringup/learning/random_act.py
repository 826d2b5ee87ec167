"""Build a small random-initialised LeRobot ACT policy for the SO-101 feature set.

The folder it writes is a normal LeRobot checkpoint (config.json, model.safetensors and the
policy_preprocessor / policy_postprocessor pipelines with normalisation stats), so the policy
node, LeRobot's PolicyServer and `ACTPolicy.from_pretrained` load it like a trained one. It is
what `so100_demo --policy random` and the tests run; its actions are meaningless but bounded
and deterministic for a given seed.

    python -m so100_bringup.learning.random_act /tmp/act --cameras front wrist --height 240 --width 320
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

STATE_DIM = 6  # shoulder_pan .. gripper, LeRobot's SO-101 order
# Plausible dataset statistics per LeRobot unit convention: arm joints first, gripper last.
# degrees: arm joints within about +-100 deg; range_m100_100: within +-100; gripper 0..100.
_ARM_STATS = {"degrees": (0.0, 30.0, -100.0, 100.0), "range_m100_100": (0.0, 35.0, -100.0, 100.0)}
_GRIPPER_STATS = (20.0, 15.0, 0.0, 100.0)  # mean, std, min, max
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _vector_stats(arm_units: str):
    import torch

    if arm_units not in _ARM_STATS:
        raise ValueError(f"arm_units must be one of {sorted(_ARM_STATS)}, got {arm_units!r}")
    arm = _ARM_STATS[arm_units]
    rows = [arm] * (STATE_DIM - 1) + [_GRIPPER_STATS]
    mean, std, lo, hi = (torch.tensor([r[i] for r in rows], dtype=torch.float32) for i in range(4))
    return {"mean": mean, "std": std, "min": lo, "max": hi,
            "q01": lo, "q99": hi, "q10": lo * 0.8, "q90": hi * 0.8}


def _image_stats():
    import torch

    mean = torch.tensor(_IMAGENET_MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(_IMAGENET_STD, dtype=torch.float32).view(3, 1, 1)
    return {"mean": mean, "std": std, "min": torch.zeros(3, 1, 1), "max": torch.ones(3, 1, 1)}


def make_random_act(out_dir: str | Path, cameras: Sequence[str] = ("front", "wrist"),
                    image_hw: tuple[int, int] = (240, 320), seed: int = 0, chunk_size: int = 50,
                    n_action_steps: int | None = None, arm_units: str = "degrees",
                    dim_model: int = 64, device: str = "cpu", action_dim: int = STATE_DIM) -> Path:
    """Write a random-initialised ACT checkpoint to `out_dir` and return its path.

    cameras: names of `observation.images.<name>` inputs (at least one; ACT needs an image).
    image_hw: (height, width) the policy expects. chunk_size: actions per inference.
    arm_units: LeRobot unit convention the (fake) dataset stats are in: "degrees" or
    "range_m100_100"; the gripper is 0..100 either way. action_dim: 6 (joints) or 7 (an
    end-effector policy: x, y, z, roll, pitch, yaw, gripper; its stats are then generic).
    """
    import torch
    from lerobot.configs import FeatureType, PolicyFeature
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors

    if not cameras:
        raise ValueError("ACT needs at least one camera")
    height, width = (int(v) for v in image_hw)
    torch.manual_seed(seed)
    image_keys = [f"observation.images.{name}" for name in cameras]
    input_features = {"observation.state": PolicyFeature(type=FeatureType.STATE, shape=(STATE_DIM,))}
    for key in image_keys:
        input_features[key] = PolicyFeature(type=FeatureType.VISUAL, shape=(3, height, width))
    output_features = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(int(action_dim),))}
    config = ACTConfig(
        input_features=input_features, output_features=output_features, device=device,
        chunk_size=chunk_size, n_action_steps=n_action_steps or chunk_size,
        pretrained_backbone_weights=None,  # offline: no torchvision download
        dim_model=dim_model, n_heads=2, dim_feedforward=2 * dim_model,
        n_encoder_layers=1, n_decoder_layers=1, use_vae=False, push_to_hub=False,
    )
    policy = ACTPolicy(config)
    policy.eval()
    action_stats = _vector_stats(arm_units)
    if action_dim != STATE_DIM:
        action_stats = {k: torch.zeros(int(action_dim)) if k == "mean" else torch.ones(int(action_dim)) * (
            -1.0 if k in ("min", "q01", "q10") else 1.0) for k in action_stats}
    stats = {"observation.state": _vector_stats(arm_units), "action": action_stats}
    stats.update({key: _image_stats() for key in image_keys})
    preprocessor, postprocessor = make_pre_post_processors(config, dataset_stats=stats)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    policy.save_pretrained(out)
    preprocessor.save_pretrained(out)
    postprocessor.save_pretrained(out)
    return out


def override_action_stats(out_dir: str | Path, mean: Sequence[float], std: Sequence[float]) -> None:
    """Rewrite the action mean/std in a saved checkpoint's post-processor (e.g. std ~0 gives a
    policy whose actions are `mean` whatever it sees: a known answer for tests and benchmarks)."""
    import torch
    from safetensors.torch import load_file, save_file

    files = sorted(Path(out_dir).glob("policy_postprocessor_step_*_unnormalizer_processor.safetensors"))
    if not files:
        raise FileNotFoundError(f"no unnormalizer state in {out_dir}")
    for file in files:
        state = load_file(str(file))
        state["action.mean"] = torch.tensor(list(mean), dtype=torch.float32)
        state["action.std"] = torch.tensor(list(std), dtype=torch.float32)
        save_file(state, str(file))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--cameras", nargs="+", default=["front", "wrist"])
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-size", type=int, default=50)
    parser.add_argument("--arm-units", default="degrees", choices=sorted(_ARM_STATS))
    parser.add_argument("--action-dim", type=int, default=STATE_DIM, help="6 joints, or 7 for an EE policy")
    args = parser.parse_args(argv)
    path = make_random_act(args.out_dir, cameras=args.cameras, image_hw=(args.height, args.width),
                           seed=args.seed, chunk_size=args.chunk_size, arm_units=args.arm_units,
                           action_dim=args.action_dim)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
