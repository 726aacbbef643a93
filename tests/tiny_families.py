"""Test helper: tiny ViViT and V-JEPA 2 models (classifiers and self-supervised backbones) built from configs and
saved like Hub checkpoints, fast enough for every test on a CPU. Nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    VivitConfig,
    VivitImageProcessor,
    VivitModel,
    VJEPA2Config,
    VJEPA2Model,
    VJEPA2VideoProcessor,
)

LABELS = ("archery", "bowling", "cycling", "diving")
NUM_FRAMES = 4
IMAGE_SIZE = 32

VIVIT = dict(image_size=IMAGE_SIZE, num_frames=NUM_FRAMES, tubelet_size=[2, 16, 16], hidden_size=32,
             num_hidden_layers=1, num_attention_heads=2, intermediate_size=37)
VJEPA2 = dict(crop_size=IMAGE_SIZE, frames_per_clip=NUM_FRAMES, patch_size=16, tubelet_size=2, hidden_size=48,
              num_hidden_layers=1, num_attention_heads=2, mlp_ratio=1.0, num_pooler_layers=1, pred_hidden_size=24,
              pred_num_hidden_layers=1, pred_num_attention_heads=2, pred_num_mask_tokens=1)
# the same, as recipe-style config_overrides of get_model (image size and frame count given separately)
VJEPA2_OVERRIDES = {k: v for k, v in VJEPA2.items() if k not in ("crop_size", "frames_per_clip")}
VIVIT_OVERRIDES = {k: v for k, v in VIVIT.items() if k not in ("image_size", "num_frames")}


def _perturb(model: torch.nn.Module, seed: int) -> None:
    """Weights far from their initialisation, so that a layer left at its init would show."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.1)


def save_vjepa2_backbone(folder: str | Path, seed: int = 0) -> Path:
    """A 'self-supervised' V-JEPA 2 (encoder + predictor, no classifier) with its video processor only."""
    folder = Path(folder)
    torch.manual_seed(seed)
    model = VJEPA2Model(VJEPA2Config(**VJEPA2))
    _perturb(model, seed)
    model.save_pretrained(folder)
    VJEPA2VideoProcessor(crop_size=IMAGE_SIZE).save_pretrained(folder)
    return folder


def save_vivit_backbone(folder: str | Path, seed: int = 0, processor: VivitImageProcessor | None = None) -> Path:
    """A ViViT base model (with the pooler a classifier does not use) and, by default, transformers' default
    ViViT image processor (which maps frames to [-3, 1])."""
    folder = Path(folder)
    torch.manual_seed(seed)
    model = VivitModel(VivitConfig(**VIVIT))
    _perturb(model, seed)
    model.save_pretrained(folder)
    (processor or VivitImageProcessor(size={"shortest_edge": IMAGE_SIZE},
                                      crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})).save_pretrained(folder)
    return folder
