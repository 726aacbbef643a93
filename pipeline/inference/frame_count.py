"""Running a checkpoint at another frame count than it was trained with: temporal position embeddings interpolated.

``set_num_frames(model, T)`` resizes, along time only, whatever position information a family ties to the clip
length, and sets ``config.num_frames`` (the clip contract) to ``T``:

- VideoMAE: a FIXED 1-D sin-cos table over the flattened (time, height, width) token index, rebuilt from the config
  at every load and never saved with the weights. It is interpolated as a (T', H'W', D) grid along T'. Since it is
  not in the checkpoint, the frame count it was built for is kept in ``config.temporal_position_frames`` and
  ``restore_temporal_positions`` rebuilds the same table after any ``from_pretrained`` (get_model, the evaluation
  loader and the ``pipeline()`` class call it). Plain ``from_pretrained`` without this package would give the
  default table of the new length.
- TimeSformer: the learned ``time_embeddings`` (1, T, D). (transformers itself falls back to nearest-neighbour
  resizing at every forward when the lengths differ; here the parameter itself is resized once, linearly, so it
  is saved at the new length and fine-tuned as such.)
- ViViT: the learned joint table (1, 1 + T'H'W', D) (CLS first), as a (T', H'W', D) grid along T'.
- X-CLIP: the multi-frame integration transformer's (1, T, D) embedding, and the cross-frame message layers' T.
- VideoPrism (classifier and the video tower of the video-text model): the temporal encoder's learned (1, T, D)
  table (its spatial table is per frame and does not depend on T). transformers can interpolate it at every forward
  (``interpolate_pos_encoding=True``, bilinear); here the parameter itself is resized once, as for TimeSformer.
- V-JEPA 2 (3-D RoPE over the token grid) and I3D (convolutions) need nothing: any length runs.

Interpolation is linear along time with ``align_corners=False`` (each entry stands for a span of the clip, as
spatial position tables are resized for other resolutions), so equal lengths give back exactly the same values.

Shipped as Hub remote code with the pipeline: imports only torch and transformers.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

# config field: the frame count VideoMAE's fixed table is interpolated FROM (absent: the plain table of num_frames)
SOURCE_FRAMES_FIELD = "temporal_position_frames"


def resize_time_axis(table: torch.Tensor, length: int, dim: int) -> torch.Tensor:
    """``table`` with axis ``dim`` linearly resampled to ``length`` entries (the same tensor when equal)."""
    current = table.shape[dim]
    if length < 1:
        raise ValueError(f"cannot resize a time axis to {length} entries")
    if current == length:
        return table
    moved = table.movedim(dim, -1)
    rows = moved.reshape(-1, 1, current).float()
    resized = F.interpolate(rows, size=length, mode="linear", align_corners=False)
    return resized.reshape(*moved.shape[:-1], length).movedim(-1, dim).to(table.dtype)


def _resize_grid_table(table: torch.Tensor, old_steps: int, new_steps: int) -> torch.Tensor:
    """(1, T' * S, D) token table in time-major order -> (1, new T' * S, D), resized along T'."""
    _, tokens, dim = table.shape
    if tokens % old_steps:
        raise ValueError(f"position table of {tokens} tokens is not {old_steps} time steps of equal size")
    grid = table.reshape(old_steps, tokens // old_steps, dim)
    return resize_time_axis(grid, new_steps, dim=0).reshape(1, -1, dim)


def _steps(num_frames: int, tubelet: int, family: str) -> int:
    if num_frames % tubelet:
        raise ValueError(f"{family}: num_frames {num_frames} is not a multiple of the tubelet size {tubelet}")
    return num_frames // tubelet


def _replace_parameter(module: torch.nn.Module, name: str, value: torch.Tensor) -> None:
    old = getattr(module, name)
    setattr(module, name, torch.nn.Parameter(value.detach().clone(), requires_grad=old.requires_grad))


# ---- VideoMAE: fixed sin-cos table ----------------------------------------------------------------------------------

def _videomae_embeddings(model: torch.nn.Module):
    backbone = getattr(model, "videomae", model)
    return backbone.embeddings


def videomae_position_table(config: Any, num_frames: int, source_frames: int | None = None) -> torch.Tensor:
    """VideoMAE's sin-cos table for ``num_frames``: the plain table when ``source_frames`` is None or equal, else
    the plain table of ``source_frames`` interpolated along time."""
    from transformers.models.videomae.modeling_videomae import get_sinusoid_encoding_table

    tubelet = int(config.tubelet_size)
    size = config.image_size if isinstance(config.image_size, (list, tuple)) else (config.image_size,) * 2
    patch = config.patch_size if isinstance(config.patch_size, (list, tuple)) else (config.patch_size,) * 2
    spatial = (size[0] // patch[0]) * (size[1] // patch[1])
    source = source_frames or num_frames
    table = get_sinusoid_encoding_table(spatial * _steps(source, tubelet, "videomae"), config.hidden_size)
    return _resize_grid_table(table, _steps(source, tubelet, "videomae"), _steps(num_frames, tubelet, "videomae"))


def _set_videomae(model: torch.nn.Module, num_frames: int) -> None:
    config = model.config
    source = getattr(config, SOURCE_FRAMES_FIELD, None) or config.num_frames
    embeddings = _videomae_embeddings(model)
    table = videomae_position_table(config, num_frames, source)
    embeddings.position_embeddings = table
    embeddings.num_patches = embeddings.patch_embeddings.num_patches = table.shape[1]
    setattr(config, SOURCE_FRAMES_FIELD, None if source == num_frames else int(source))


def restore_temporal_positions(model: torch.nn.Module) -> bool:
    """Rebuilds VideoMAE's interpolated table of a checkpoint saved after ``set_num_frames`` (its config names the
    source length); returns whether it did. Other models keep everything in their weights: nothing to do."""
    config = getattr(model, "config", None)
    source = getattr(config, SOURCE_FRAMES_FIELD, None)
    if getattr(config, "model_type", None) != "videomae" or not source or source == config.num_frames:
        return False
    embeddings = _videomae_embeddings(model)
    device = embeddings.patch_embeddings.projection.weight.device
    embeddings.position_embeddings = videomae_position_table(config, config.num_frames, source).to(device)
    return True


# ---- learned tables -------------------------------------------------------------------------------------------------

def _set_timesformer(model: torch.nn.Module, num_frames: int) -> None:
    embeddings = getattr(model, "timesformer", model).embeddings
    if getattr(embeddings, "time_embeddings", None) is not None:  # absent for attention_type "space_only"
        _replace_parameter(embeddings, "time_embeddings",
                           resize_time_axis(embeddings.time_embeddings.data, num_frames, dim=1))


def _set_vivit(model: torch.nn.Module, num_frames: int) -> None:
    config = model.config
    embeddings = getattr(model, "vivit", model).embeddings
    tubelet = int(config.tubelet_size[0])
    old, new = _steps(config.num_frames, tubelet, "vivit"), _steps(num_frames, tubelet, "vivit")
    table = embeddings.position_embeddings.data
    patches = _resize_grid_table(table[:, 1:], old, new)
    _replace_parameter(embeddings, "position_embeddings", torch.cat([table[:, :1], patches], dim=1))
    embeddings.patch_embeddings.num_patches = patches.shape[1]


def _set_xclip(model: torch.nn.Module, num_frames: int) -> None:
    config = model.config
    mit = model.mit
    _replace_parameter(mit, "position_embedding", resize_time_axis(mit.position_embedding.data, num_frames, dim=1))
    for layer in model.vision_model.encoder.layers:
        layer.num_frames = num_frames
    config.vision_config.num_frames = num_frames


def _videoprism_encoder(model: torch.nn.Module) -> torch.nn.Module:
    """The factorised encoder: ``vision_model`` of the classifier, ``video_model.vision_model`` of the CLIP model."""
    video = getattr(model, "video_model", model)
    return getattr(video, "vision_model", video)


def _set_videoprism(model: torch.nn.Module, num_frames: int) -> None:
    embeddings = _videoprism_encoder(model).temporal_embeddings
    _replace_parameter(embeddings, "position_embeddings",
                       resize_time_axis(embeddings.position_embeddings.data, num_frames, dim=1))
    vision = getattr(model.config, "vision_config", None)
    if vision is not None:  # the video-text model: the frame count lives in its vision config
        vision.num_frames = num_frames
    encoder_config = _videoprism_encoder(model).config
    if encoder_config is not model.config:
        encoder_config.num_frames = num_frames


_RESIZERS = {
    "videomae": _set_videomae,
    "timesformer": _set_timesformer,
    "vivit": _set_vivit,
    "xclip": _set_xclip,
    "videoprism_vision_model": _set_videoprism,
    "videoprism": _set_videoprism,
}
# families whose frame count lives in config.vision_config (video-text models)
_VISION_CONFIG_FRAMES = ("xclip", "videoprism")
# families whose positions do not depend on the clip length
_LENGTH_FREE = ("vjepa2", "i3d")


def set_num_frames(model: torch.nn.Module, num_frames: int) -> bool:
    """Makes ``model`` take clips of ``num_frames`` frames; returns whether anything had to change.

    Raises for a family this module does not know (rather than letting a model run on position information
    of another length), and for a length the tubelet size does not divide.
    """
    model = getattr(model, "module", model)
    config = model.config
    model_type = config.model_type
    current = int(getattr(config, "num_frames", None) or getattr(getattr(config, "vision_config", None),
                                                                   "num_frames", 0) or 0)
    if current == num_frames:
        return False
    if model_type in _LENGTH_FREE:
        config.num_frames = int(num_frames)
        return True
    if model_type not in _RESIZERS:
        raise ValueError(f"{model_type}: no known way to run this model at {num_frames} frames (it was built for "
                         f"{current}); supported: {', '.join(sorted([*_RESIZERS, *_LENGTH_FREE]))}")
    _RESIZERS[model_type](model, int(num_frames))
    if model_type not in _VISION_CONFIG_FRAMES:
        config.num_frames = int(num_frames)
    logger.info("%s: temporal position embeddings interpolated from %d to %d frames", model_type, current, num_frames)
    return True


__all__ = ["resize_time_axis", "set_num_frames", "restore_temporal_positions", "videomae_position_table",
           "SOURCE_FRAMES_FIELD"]
