"""Initialisation of models built from a config (no pretrained weights) where a family's own initialisation leaves a
from-scratch model slow to learn what the demo asks of it.

VideoPrism: its temporal layers attend over the frames at each patch position, and the only thing that tells them the
order of those frames is the learned temporal position table added to the layer-normed (unit-variance) frame tokens.
transformers draws that table with ``lecun_normal`` over a fan-in of ``num_frames * hidden_size`` (std 0.04 for 8
frames of 96 channels: 1/600 of the tokens' variance), so a from-scratch model starts blind to frame order and learns
it only slowly. We start it from the sinusoidal table that VideoPrism's own text tower uses for token positions
(``create_sinusoidal_positions``): each frame gets a distinct, smoothly varying code at the tokens' scale. Pretrained
checkpoints keep their learned table (this runs only for a model built from a config).
"""

from __future__ import annotations

import torch
from transformers import PreTrainedModel


def init_scratch_positions(model: PreTrainedModel) -> list[str]:
    """Sets the temporal position table(s) of a from-scratch VideoPrism to sinusoidal positions; returns the names of
    the parameters set (empty for other families)."""
    from transformers.models.videoprism import modeling_videoprism as vp

    done = []
    for name, module in model.named_modules():
        if isinstance(module, vp.VideoPrismTemporalEmbeddings):
            table = module.position_embeddings
            _, frames, dim = table.shape
            with torch.no_grad():
                table.copy_(vp.create_sinusoidal_positions(frames, dim).to(table.dtype)[None])
            done.append(f"{name}.position_embeddings")
    return done
