"""Test helper: tiny models of every family the fine-tuning keys support, built from configs in milliseconds."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModelForVideoClassification

import pipeline  # noqa: F401  (registers I3D and the probe with the Auto classes)

NUM_LABELS = 3
NUM_FRAMES = 4
SIZE = 32

TINY = {
    "videomae": dict(image_size=SIZE, patch_size=16, num_frames=NUM_FRAMES, tubelet_size=2, hidden_size=32,
                     num_hidden_layers=3, num_attention_heads=2, intermediate_size=37, use_mean_pooling=True,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
    "timesformer": dict(image_size=SIZE, patch_size=16, num_frames=NUM_FRAMES, hidden_size=32, num_hidden_layers=3,
                        num_attention_heads=2, intermediate_size=37, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0),
    "vivit": dict(image_size=SIZE, tubelet_size=[2, 16, 16], num_frames=NUM_FRAMES, hidden_size=32,
                  num_hidden_layers=3, num_attention_heads=2, intermediate_size=37, hidden_dropout_prob=0.0,
                  attention_probs_dropout_prob=0.0),
    "i3d": dict(width_multiplier=0.125, image_size=SIZE, num_frames=8, dropout_prob=0.0),
}


def tiny_model(family: str, seed: int = 0, **overrides):
    """A randomly initialised classifier of ``family`` (videomae | timesformer | vivit | i3d), in train mode."""
    torch.manual_seed(seed)
    config = AutoConfig.for_model(family, num_labels=NUM_LABELS, **{**TINY[family], **overrides})
    return AutoModelForVideoClassification.from_config(config).train()


def clips(family: str, batch: int = 2, seed: int = 0) -> torch.Tensor:
    frames = TINY[family]["num_frames"]
    return torch.randn(batch, frames, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def one_compute_thread():
    """Tiny models train fastest on one thread; on a loaded 2-core machine two threads were 50x slower (measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
