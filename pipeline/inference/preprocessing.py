"""What a model is fed: the geometry and normalisation of its frames, and the evaluation views, as batched tensor ops.

``VideoPreprocessing`` (read from the model's image or video processor) says how frames are resized, cropped and
normalised. ``clip_views`` turns decoded uint8 frames into the K clips x C crops a model scores, on whatever device
the frames are on: loaders send uint8, the accelerator resizes and normalises. Training-time evaluation,
``python -m pipeline.evaluation`` and ``pipeline()`` all use it, so they feed the model identical tensors; the
training augmentation (pipeline/training/augmentation.py) shares ``normalize_clips`` and ``resize_and_center_crop``.

Shipped as Hub remote code with the inference pipeline: imports only torch, torchvision and siblings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2


@dataclass
class VideoPreprocessing:
    """What a model expects of a frame: resize target, crop, and normalisation."""

    resize_shortest: int = 224
    crop_size: tuple[int, int] = (224, 224)
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    rescale_factor: float = 1 / 255

    @classmethod
    def from_processor(cls, processor: Any) -> "VideoPreprocessing":
        """Reads size / crop_size / image_mean / image_std of a transformers image or video processor."""
        if isinstance(processor, VideoPreprocessing):
            return processor
        size = _as_dict(getattr(processor, "size", None))
        crop = _as_dict(getattr(processor, "crop_size", None))
        do_center_crop = getattr(processor, "do_center_crop", True)
        if "shortest_edge" in size:
            shortest = int(size["shortest_edge"])
        elif "height" in size and "width" in size:
            shortest = int(min(size["height"], size["width"]))
        else:
            raise ValueError(f"processor {type(processor).__name__} has no usable size: {size!r}")
        if do_center_crop and "height" in crop and "width" in crop:
            crop_size = (int(crop["height"]), int(crop["width"]))
        elif "height" in size and "width" in size:
            crop_size = (int(size["height"]), int(size["width"]))
        else:
            crop_size = (shortest, shortest)
        do_normalize = getattr(processor, "do_normalize", True)
        mean = tuple(getattr(processor, "image_mean", None) or (0.0, 0.0, 0.0)) if do_normalize else (0.0, 0.0, 0.0)
        std = tuple(getattr(processor, "image_std", None) or (1.0, 1.0, 1.0)) if do_normalize else (1.0, 1.0, 1.0)
        rescale = float(getattr(processor, "rescale_factor", 1 / 255)) if getattr(processor, "do_rescale", True) else 1.0
        if rescale != 1.0 and _offsets_by_one(processor):
            # ViViT's processors compute x * rescale - 1 before any mean/std: (x*r - 1 - m) / s == (x*r - (m+1)) / s
            mean = tuple(float(m) + 1.0 for m in mean)
        return cls(shortest, crop_size, tuple(float(m) for m in mean), tuple(float(s) for s in std), rescale)


def _offsets_by_one(processor: Any) -> bool:
    """ViViT's image processor (``offset=True``) and video processor (always) subtract 1 after rescaling."""
    offset = getattr(processor, "offset", None)
    if offset is not None:
        return bool(offset)
    return type(processor).__name__ == "VivitVideoProcessor"


def _as_dict(value: Any) -> dict:
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    # transformers 5 may hold sizes in a SizeDict object
    return {k: getattr(value, k) for k in ("shortest_edge", "height", "width", "longest_edge") if getattr(value, k, None)}


def normalize_clips(clips: torch.Tensor, prep: VideoPreprocessing, out: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 clips (..., C, H, W) -> float, rescaled and normalised per channel, on the clips' device.

    ``out`` (float, the clips' shape): written in place and returned, so a caller can fill a reused batch buffer
    (a fresh float buffer per video costs more in page faults than the arithmetic, measured on CPU).
    """
    if out is None:
        # contiguous whatever the input's strides (crops of channels-last frames): what every model expects
        out = clips.to(torch.float32, memory_format=torch.contiguous_format)
    else:
        if out.shape != clips.shape:
            raise ValueError(f"normalisation target has shape {tuple(out.shape)}, the clips {tuple(clips.shape)}")
        out.copy_(clips)
    return _normalize_in_place(out, prep)


def frames_of_view(pixel_values: torch.Tensor, prep: VideoPreprocessing) -> np.ndarray:
    """The inverse of the normalisation, for display: one view (T, C, H, W) -> uint8 frames (T, H, W, 3)."""
    mean = torch.tensor(prep.mean).view(1, -1, 1, 1)
    std = torch.tensor(prep.std).view(1, -1, 1, 1)
    pixels = (pixel_values.float().cpu() * std + mean) / prep.rescale_factor
    return pixels.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def resize_shortest(frames: torch.Tensor, prep: VideoPreprocessing) -> torch.Tensor:
    """uint8 frames (..., C, H, W) with the shorter side resized to ``prep.resize_shortest`` (bilinear, antialiased)."""
    resized = v2.functional.resize(tv_tensors.Video(frames), prep.resize_shortest,
                                   interpolation=InterpolationMode.BILINEAR, antialias=True)
    return resized.as_subclass(torch.Tensor)


def resize_and_center_crop(video: torch.Tensor, prep: VideoPreprocessing) -> torch.Tensor:
    """The single view's geometry: shorter side to ``resize_shortest``, then the centre ``crop_size`` crop."""
    return spatial_crops(resize_shortest(video, prep), prep.crop_size, 1)[0]


def spatial_crops(video: torch.Tensor, crop_size: tuple[int, int], num_crops: int) -> list[torch.Tensor]:
    """``num_crops`` crops of ``crop_size`` spread evenly along the long side (3: left/centre/right or top/centre/bottom).

    ``video`` is (..., H, W) already resized so its shorter side is at least the crop's. One crop is the centre crop.
    """
    if num_crops < 1:
        raise ValueError(f"num_crops must be at least 1, got {num_crops}")
    height, width = video.shape[-2:]
    ch, cw = crop_size
    if ch > height or cw > width:
        raise ValueError(f"crop {crop_size} is larger than the resized video {(height, width)}")
    if num_crops == 1:
        top, left = int(round((height - ch) / 2.0)), int(round((width - cw) / 2.0))
        return [video[..., top : top + ch, left : left + cw]]
    crops = []
    along_width = width - cw >= height - ch
    for i in range(num_crops):
        frac = i / (num_crops - 1)
        if along_width:
            top, left = int(round((height - ch) / 2.0)), int(math.floor((width - cw) * frac))
        else:
            top, left = int(math.floor((height - ch) * frac)), int(round((width - cw) / 2.0))
        crops.append(video[..., top : top + ch, left : left + cw])
    return crops


def clip_views(frames: torch.Tensor, positions: torch.Tensor, prep: VideoPreprocessing, num_crops: int,
               dtype: torch.dtype = torch.float32, out: torch.Tensor | None = None) -> torch.Tensor:
    """The K x C evaluation views of one video, on the device of ``frames``: (K*C, T, C, h, w), clip-major.

    frames: the video's distinct needed frames, uint8 (U, H, W, 3) as decoded (or (U, C, H, W)); positions: (K, T)
    indices into ``frames`` of each clip's frames. Every frame is resized once, then gathered per clip and cropped.
    ``out`` (``dtype``): where to write the views (e.g. rows of a batch buffer).
    """
    if frames.dim() != 4:
        raise ValueError(f"frames must be (frames, height, width, 3) uint8, got shape {tuple(frames.shape)}")
    if frames.shape[-1] == 3 and frames.shape[1] != 3:
        frames = frames.permute(0, 3, 1, 2)
    resized = resize_shortest(frames, prep)
    positions = torch.as_tensor(positions, device=resized.device).long()
    clips = resized[positions.reshape(-1)].reshape(positions.shape[0], positions.shape[1], *resized.shape[1:])
    crops = spatial_crops(clips, prep.crop_size, num_crops)  # each (K, T, C, h, w)
    shape = (clips.shape[0] * num_crops, clips.shape[1], clips.shape[2], *prep.crop_size)
    if out is None:
        out = torch.empty(shape, dtype=dtype, device=resized.device)
    elif tuple(out.shape) != shape:
        raise ValueError(f"views of shape {shape} do not fit the given buffer of shape {tuple(out.shape)}")
    per_clip = out.view(clips.shape[0], num_crops, *shape[1:])
    for c, crop in enumerate(crops):
        per_clip[:, c].copy_(crop)  # uint8 -> float while gathering: clip 0's crops first
    return _normalize_in_place(out, prep)


def _normalize_in_place(values: torch.Tensor, prep: VideoPreprocessing) -> torch.Tensor:
    """Pixel values 0..255 already in a float tensor (..., C, H, W) -> normalised per channel, in place."""
    # x * (r / std) + (-mean / std) == (x * r - mean) / std: two in-place passes over the one float copy
    scale = torch.tensor([prep.rescale_factor / s for s in prep.std], device=values.device, dtype=values.dtype)
    shift = torch.tensor([-m / s for m, s in zip(prep.mean, prep.std)], device=values.device, dtype=values.dtype)
    return values.mul_(scale.view(-1, 1, 1)).add_(shift.view(-1, 1, 1))
