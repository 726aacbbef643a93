"""What a video model is called with: clips travel as ``pixel_values`` (B, T, C, H, W) everywhere in this project,
and this is the ONE place that renames them for a model whose forward names its video input otherwise.

V-JEPA 2 (``VJEPA2ForVideoClassification``) and VideoPrism (``VideoPrismForVideoClassification``,
``VideoPrismClipModel``) take ``pixel_values_videos``; VideoMAE, TimeSformer, ViViT, X-CLIP and our I3D take
``pixel_values``. The name comes from the model class itself (``main_input_name``), so a new family
needs no entry here. The Trainer (``VideoTrainer._prepare_inputs``), the evaluation (``score_views``) and the
``pipeline()`` class (``_forward``) call ``model_inputs`` / ``as_model_inputs``.

``config_num_frames`` is the frame count of a config that may name it otherwise (V-JEPA 2's ``frames_per_clip``,
X-CLIP's and VideoPrism's video-text ``vision_config.num_frames``), for checkpoints that were not trained here and so lack ``num_frames``.

Shipped as Hub remote code with the pipeline: imports only torch.
"""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any

import torch

CLIP_KEY = "pixel_values"
# main_input_name values that are video tensors; anything else (the PreTrainedModel default "input_ids", a text
# model's name) means the model does not say, and the project's own name is used
VIDEO_INPUT_NAMES = ("pixel_values", "pixel_values_videos")


def input_name(model: torch.nn.Module) -> str:
    """The keyword under which ``model.forward`` takes the clip batch."""
    model = getattr(model, "module", model)  # DDP / accelerate wrappers
    name = getattr(model, "main_input_name", None)
    if name in VIDEO_INPUT_NAMES:
        return name
    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return CLIP_KEY
    for candidate in VIDEO_INPUT_NAMES:
        if candidate in parameters:
            return candidate
    return CLIP_KEY


def model_inputs(model: torch.nn.Module, pixel_values: torch.Tensor, **extra: Any) -> dict[str, Any]:
    """``{input name: pixel_values, **extra}`` for ``model(**...)``."""
    return {input_name(model): pixel_values, **extra}


def as_model_inputs(model: torch.nn.Module, batch: dict[str, Any]) -> dict[str, Any]:
    """A collated batch ``{"pixel_values", "labels", ...}`` with the clips under the model's input name."""
    name = input_name(model)
    if name == CLIP_KEY or CLIP_KEY not in batch:
        return batch
    renamed = dict(batch)
    renamed[name] = renamed.pop(CLIP_KEY)
    return renamed


def config_num_frames(config: Any) -> int | None:
    """Frames per clip a config declares: ``num_frames`` (ours, VideoMAE, TimeSformer, ViViT), else V-JEPA 2's
    ``frames_per_clip``, else X-CLIP's ``vision_config.num_frames``; None when it declares none."""
    vision = getattr(config, "vision_config", None)
    if isinstance(vision, dict):  # a config read from config.json as plain values (the model card)
        vision = SimpleNamespace(**vision)
    for value in (
        getattr(config, "num_frames", None),
        getattr(config, "frames_per_clip", None),
        getattr(vision, "num_frames", None),
    ):
        if value:
            return int(value)
    return None


__all__ = ["CLIP_KEY", "input_name", "model_inputs", "as_model_inputs", "config_num_frames"]
