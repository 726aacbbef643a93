"""Test helper: a tiny VideoMAE classifier saved like a trained model of this project (config with the frame
sampling fields, VideoMAEImageProcessor), fast enough to run on CPU in every test."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEImageProcessor

LABELS = ("archery", "bowling", "cycling", "diving")
NUM_FRAMES = 4
FRAME_SAMPLING_RATE = 2


def save_tiny_videomae(folder: str | Path, *, seed: int = 0, strategy: str = "dense") -> Path:
    """Writes config.json, model.safetensors and preprocessor_config.json of a 1-layer VideoMAE."""
    folder = Path(folder)
    torch.manual_seed(seed)
    config = VideoMAEConfig(
        image_size=32, patch_size=16, num_frames=NUM_FRAMES, tubelet_size=2, hidden_size=32,
        num_hidden_layers=1, num_attention_heads=2, intermediate_size=37, num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)), label2id={name: i for i, name in enumerate(LABELS)},
    )
    config.frame_sampling_rate = FRAME_SAMPLING_RATE
    config.frame_sampling_strategy = strategy
    config.short_video = "clamp"
    model = VideoMAEForVideoClassification(config).eval()
    # a random head gives near-uniform scores; larger weights make predictions differ between inputs
    torch.nn.init.normal_(model.classifier.weight, std=3.0)
    model.save_pretrained(folder)
    VideoMAEImageProcessor(
        size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32},
        image_mean=[0.45, 0.45, 0.45], image_std=[0.225, 0.225, 0.225],
    ).save_pretrained(folder)
    return folder
