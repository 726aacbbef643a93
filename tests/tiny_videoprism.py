"""Test helper: a tiny VideoPrism video-text model (``VideoPrismClipModel``) built from a config, with a tokenizer
built offline (VideoPrism's Unigram tokenizer over a character vocabulary, no sentencepiece file) and the video
processor class its checkpoints ship at that class's defaults (CLIP mean/std, 384 px: NOT what VideoPrism takes,
as on the Hub; VideoPrismProcessor fixes both at call time), saved like a Hub checkpoint. Nothing is downloaded."""

from __future__ import annotations

import string
from pathlib import Path

import torch
from transformers import (
    LlavaOnevisionVideoProcessor,
    VideoPrismClipModel,
    VideoPrismConfig,
    VideoPrismProcessor,
    VideoPrismTokenizer,
)

NUM_FRAMES = 4
IMAGE_SIZE = 32
TEXT_LENGTH = 64  # VideoPrism's (characters are tokens here: prompts must fit)


def tiny_tokenizer() -> VideoPrismTokenizer:
    """Pad, end-of-sequence and unknown first (ids 0, 1, 2, as in VideoPrism's c4_en vocabulary), then the word
    boundary and one piece per lower-case letter, digit and punctuation mark."""
    pieces = ["\u2581", *string.ascii_lowercase, *string.digits, *".,'-"]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(piece, -1.0) for piece in pieces]
    return VideoPrismTokenizer(vocab=vocab, extra_ids=0)


def tiny_videoprism_config(vocab_size: int) -> VideoPrismConfig:
    return VideoPrismConfig(
        text_config=dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=TEXT_LENGTH),
        vision_config=dict(image_size=IMAGE_SIZE, num_frames=NUM_FRAMES, tubelet_size=[1, 16, 16], hidden_size=32,
                           intermediate_size=37, num_attention_heads=2, num_spatial_layers=1, num_temporal_layers=1,
                           num_auxiliary_layers=1),
    )


def save_tiny_videoprism_clip(folder: str | Path, *, seed: int = 0, frame_sampling_rate: int | None = 2) -> Path:
    """Writes config.json, model.safetensors, the tokenizer and the processor of a tiny VideoPrismClipModel."""
    folder = Path(folder)
    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer()
    config = tiny_videoprism_config(len(tokenizer))
    if frame_sampling_rate is not None:
        config.frame_sampling_rate = frame_sampling_rate
    model = VideoPrismClipModel(config).eval()
    with torch.no_grad():  # weights far from their init (zero layer-norm offsets, zero pooling scale) so that
        generator = torch.Generator().manual_seed(seed)  # embeddings differ between inputs
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.2)
    model.save_pretrained(folder)
    VideoPrismProcessor(video_processor=LlavaOnevisionVideoProcessor(), tokenizer=tokenizer).save_pretrained(folder)
    return folder
