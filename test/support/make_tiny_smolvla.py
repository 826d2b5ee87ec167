"""Build a tiny random-initialised SmolVLA for the SO-101 feature set, fully offline.

SmolVLA (lerobot.policies.smolvla) is an action expert on top of a SmolVLM vision-language model
named by `vlm_model_name`. At construction the policy reads that model's config and its
processor (tokenizer + image processor) with `AutoConfig` / `AutoProcessor.from_pretrained`; with
`load_vlm_weights=False` the VLM's weights are random and then come from the policy's own
model.safetensors, like every other weight. So a checkpoint needs no VLM weights of its own, only
a VLM folder with a config and a processor. This module writes both itself:

* `<out>/vlm/`: a SmolVLM config a few layers and dimensions wide and a processor whose tokenizer
  is a byte-level BPE trained here on a few robot instructions (any text still tokenizes: bytes
  are the base vocabulary) with SmolVLM's special tokens (`<image>`, `<fake_token_around_image>`,
  `<global-img>`, ...) registered as the named tokens SmolVLA looks up.
* `<out>/`: a normal LeRobot SmolVLA checkpoint (config.json with `vlm_model_name` = the absolute
  path of `<out>/vlm`, model.safetensors, policy_preprocessor / policy_postprocessor pipelines
  with normalisation stats and the tokenizer step), loaded by path like a trained one.

The actions are meaningless but bounded; the flow-matching noise makes each call random unless
the torch seed is fixed. A real SmolVLA instead names a hub VLM (see docs/policy_node.md).

    .venv/bin/python test/support/make_tiny_smolvla.py /tmp/smolvla --cameras front wrist
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from so100_bringup.learning.random_act import _ARM_STATS, STATE_DIM, _vector_stats

VLM_SUBDIR = "vlm"
# SmolVLM's named special tokens (what transformers' SmolVLMProcessor and SmolVLA look up as
# tokenizer.<name> / tokenizer.<name>_id), as in the published SmolVLM2 tokenizer.
_NAMED_TOKENS = {
    "fake_image_token": "<fake_token_around_image>",
    "image_token": "<image>",
    "global_image_token": "<global-img>",
    "end_of_utterance_token": "<end_of_utterance>",
}
_BASIC_TOKENS = {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|pad|>",
                 "unk_token": "<|unk|>"}
# A few instructions in the style of SO-101 datasets: enough for merges of common words.
_CORPUS = [
    "pick up the red cube and place it in the box",
    "pick the green block and put it on the plate",
    "grasp the lego brick and move it to the left",
    "push the blue cup to the right side of the table",
    "open the gripper, move above the object, close the gripper",
    "stack the yellow cube on top of the red cube",
    "put the pen in the cup",
    "fold the cloth in half",
    "User: what should the robot do next? Assistant: pick the cube.",
]


def _tiny_tokenizer(vocab_size: int):
    """A byte-level BPE PreTrainedTokenizerFast with SmolVLM's special tokens, trained locally."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = list(_BASIC_TOKENS.values()) + list(_NAMED_TOKENS.values())
    core = Tokenizer(models.BPE(unk_token=_BASIC_TOKENS["unk_token"]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, model_max_length=512,
                                   extra_special_tokens=dict(_NAMED_TOKENS), **_BASIC_TOKENS)


def make_tiny_vlm(out_dir: str | Path, image_size: int = 32, patch_size: int = 8, hidden_size: int = 64,
                  num_layers: int = 2, vocab_size: int = 400) -> Path:
    """Write a tiny SmolVLM (config + processor, no weights) to `out_dir` and return its path.

    image_size: the square input of the vision tower (SmolVLA pads/resizes camera frames to it);
    image_size / patch_size must be even (SmolVLM's connector shuffles 2x2 patches into one token).
    """
    from transformers import (SmolVLMConfig, SmolVLMImageProcessor, SmolVLMProcessor,
                              SmolVLMVideoProcessor)

    if image_size % patch_size or (image_size // patch_size) % 2:
        raise ValueError(f"image_size/patch_size must be an even integer, got {image_size}/{patch_size}")
    tokenizer = _tiny_tokenizer(vocab_size)
    heads = 4
    head_dim = hidden_size // heads
    text_config = {
        "model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": hidden_size,
        "intermediate_size": 2 * hidden_size, "num_hidden_layers": num_layers,
        "num_attention_heads": heads, "num_key_value_heads": heads // 2, "head_dim": head_dim,
        "max_position_embeddings": 1024, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
        "pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    vision_config = {
        "hidden_size": hidden_size // 2, "intermediate_size": hidden_size, "num_hidden_layers": 1,
        "num_attention_heads": 2, "image_size": image_size, "patch_size": patch_size,
    }
    config = SmolVLMConfig(text_config=text_config, vision_config=vision_config, scale_factor=2,
                           image_token_id=tokenizer.convert_tokens_to_ids(_NAMED_TOKENS["image_token"]),
                           pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    # Processor: no image splitting, images at the vision tower's size (SmolVLA bypasses it for
    # images, but loading the policy instantiates it, and a VLM folder should be complete).
    size = {"longest_edge": image_size}
    image_processor = SmolVLMImageProcessor(do_image_splitting=False, size=size,
                                            max_image_size={"longest_edge": image_size})
    video_processor = SmolVLMVideoProcessor(size=size, max_image_size={"longest_edge": image_size})
    image_seq_len = (image_size // patch_size // 2) ** 2
    processor = SmolVLMProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                 video_processor=video_processor, image_seq_len=image_seq_len)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def make_tiny_smolvla(out_dir: str | Path, cameras: Sequence[str] = ("front", "wrist"),
                      image_hw: tuple[int, int] = (96, 128), seed: int = 0, chunk_size: int = 20,
                      n_action_steps: int | None = None, arm_units: str = "degrees", num_steps: int = 4,
                      vlm_image_size: int = 32, vlm_layers: int = 2, device: str = "cpu") -> Path:
    """Write a random-initialised SmolVLA checkpoint (and its tiny VLM in `<out>/vlm`) and
    return the checkpoint path.

    cameras: names of `observation.images.<name>` inputs. image_hw: (height, width) the node
    feeds (SmolVLA then pads/resizes to the VLM's `vlm_image_size` square). chunk_size: actions
    per inference; num_steps: flow-matching denoising steps. arm_units: LeRobot unit convention
    of the (fake) normalisation stats: "degrees" or "range_m100_100"; the gripper is 0..100.
    vlm_image_size / vlm_layers: the tiny VLM's square input and its text-model depth.
    """
    import torch
    from lerobot.configs import FeatureType, PolicyFeature
    from lerobot.policies.factory import make_pre_post_processors
    from lerobot.policies.smolvla.configuration_smolvla import SmolVLAConfig
    from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

    if not cameras:
        raise ValueError("SmolVLA needs at least one camera")
    out = Path(out_dir).expanduser().resolve()
    vlm_dir = make_tiny_vlm(out / VLM_SUBDIR, image_size=vlm_image_size, num_layers=vlm_layers)
    torch.manual_seed(seed)
    height, width = (int(v) for v in image_hw)
    image_keys = [f"observation.images.{name}" for name in cameras]
    input_features = {"observation.state": PolicyFeature(type=FeatureType.STATE, shape=(STATE_DIM,))}
    for key in image_keys:
        input_features[key] = PolicyFeature(type=FeatureType.VISUAL, shape=(3, height, width))
    output_features = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(STATE_DIM,))}
    config = SmolVLAConfig(
        input_features=input_features, output_features=output_features, device=device,
        chunk_size=chunk_size, n_action_steps=n_action_steps or chunk_size, num_steps=num_steps,
        vlm_model_name=str(vlm_dir), load_vlm_weights=False,  # VLM weights live in model.safetensors
        resize_imgs_with_padding=(vlm_image_size, vlm_image_size), tokenizer_max_length=32,
        max_state_dim=8, max_action_dim=8, num_vlm_layers=vlm_layers, push_to_hub=False,
    )
    policy = SmolVLAPolicy(config)
    policy.eval()
    stats = {"observation.state": _vector_stats(arm_units), "action": _vector_stats(arm_units)}
    preprocessor, postprocessor = make_pre_post_processors(config, dataset_stats=stats)
    policy.save_pretrained(out)
    preprocessor.save_pretrained(out)
    postprocessor.save_pretrained(out)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--cameras", nargs="+", default=["front", "wrist"])
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-size", type=int, default=20)
    parser.add_argument("--num-steps", type=int, default=4, help="flow-matching denoising steps")
    parser.add_argument("--arm-units", default="degrees", choices=sorted(_ARM_STATS))
    args = parser.parse_args(argv)
    path = make_tiny_smolvla(args.out_dir, cameras=args.cameras, image_hw=(args.height, args.width),
                             seed=args.seed, chunk_size=args.chunk_size, num_steps=args.num_steps,
                             arm_units=args.arm_units)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
