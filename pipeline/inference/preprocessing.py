"""Clip-level video transforms (torchvision.transforms.v2) for training and evaluation.

Every transform takes a whole clip as a uint8 tensor (T, C, H, W) and draws ONE set of random parameters for
all of its frames (the clip is wrapped as a ``tv_tensors.Video``), so motion is never distorted frame by frame.
Geometry and normalisation come from the model's image processor (``VideoPreprocessing.from_processor``), so
training, evaluation and ``pipeline()`` agree.

Shipped as Hub remote code with the inference pipeline: imports only torch, torchvision and siblings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

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


@dataclass
class AugmentationSettings:
    """Switches for the training augmentations (filled from the recipe's DataArguments)."""

    random_crop: bool = True
    crop_scale: Sequence[float] = field(default_factory=lambda: (0.25, 1.0))
    crop_ratio: Sequence[float] = field(default_factory=lambda: (3 / 4, 4 / 3))
    horizontal_flip: bool = True
    color_jitter: float = 0.0
    rotation_range: float = 0.0


class _ToNormalizedFloat(torch.nn.Module):
    """uint8 -> float32, rescaled and normalised, written contiguous (into ``out`` when given).

    Measured on one core for a 16 x 224 x 224 clip: a converting copy then an in-place multiply and add take
    ~1.5 ms, where ``addcmul`` over a broadcast (1, C, 1, 1) scale took ~3-5 ms and allocated two float clips.
    """

    def __init__(self, prep: VideoPreprocessing):
        super().__init__()
        scale = torch.tensor([prep.rescale_factor / s for s in prep.std]).view(1, -1, 1, 1)
        shift = torch.tensor([-m / s for m, s in zip(prep.mean, prep.std)]).view(1, -1, 1, 1)
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("shift", shift, persistent=False)

    def forward(self, video: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        video = video.as_subclass(torch.Tensor)
        if out is None:
            out = torch.empty(video.shape, dtype=torch.float32)
        elif out.shape != video.shape:
            raise ValueError(f"normalisation target has shape {tuple(out.shape)}, the clip {tuple(video.shape)}")
        out.copy_(video)  # converts and, for channels-last input, also packs (T, C, H, W) contiguous
        # x * (r / std) + (-mean / std) == (x * r - mean) / std
        return out.mul_(self.scale).add_(self.shift)


class _Contiguous(torch.nn.Module):
    """Packs a (channels-last, cropped) clip contiguous, keeping its tv_tensors type.

    The uint8 resize works (fastest) in channels-last and returns channels-last; flipping that layout cost ~1 ms
    per 16 x 224 x 224 clip, packing it first ~1 ms and the flip then ~0.1 ms, and the later float conversion
    reads contiguous memory faster, so packing once right after the resize is cheaper overall.
    """

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if video.is_contiguous():
            return video
        return tv_tensors.wrap(video.as_subclass(torch.Tensor).contiguous(), like=video)


def build_eval_transform(prep: VideoPreprocessing):
    """Resize the shorter side to ``resize_shortest`` and take the centre crop (the papers' single view).

    Defined through the multi-crop transform so a 1-crop evaluation is bit-identical to the single view.
    """
    multicrop = build_multicrop_transform(prep, 1)
    return lambda frames: multicrop(frames)[0]


def build_train_augmentation(prep: VideoPreprocessing, aug: AugmentationSettings | None = None) -> v2.Compose:
    """The training augmentations alone, uint8 (T, C, H, W) -> uint8 (T, C, *crop_size), contiguous.

    Random resized crop (or resize + centre crop), flip, colour jitter and rotation. Kept in uint8 so every step
    moves a quarter of the bytes of float; crop before resize (``resized_crop``), so only the kept region is
    interpolated.
    """
    aug = aug or AugmentationSettings()
    steps: list[torch.nn.Module] = []
    if aug.rotation_range:
        steps.append(v2.RandomRotation(aug.rotation_range, interpolation=InterpolationMode.BILINEAR))
    if aug.random_crop:
        steps.append(
            v2.RandomResizedCrop(
                prep.crop_size,
                scale=tuple(aug.crop_scale),
                ratio=tuple(aug.crop_ratio),
                interpolation=InterpolationMode.BILINEAR,
                antialias=True,
            )
        )
    else:
        steps += [
            v2.Resize(prep.resize_shortest, interpolation=InterpolationMode.BILINEAR, antialias=True),
            v2.CenterCrop(prep.crop_size),
        ]
    steps.append(_Contiguous())
    if aug.horizontal_flip:
        steps.append(v2.RandomHorizontalFlip(0.5))
    if aug.color_jitter:
        s = float(aug.color_jitter)
        steps.append(v2.ColorJitter(brightness=s, contrast=s, saturation=s, hue=min(0.5, s / 4)))
    return v2.Compose(steps)


def build_normalize(prep: VideoPreprocessing) -> torch.nn.Module:
    """uint8 (T, C, H, W) -> normalised float32; ``normalize(clip, out=tensor)`` writes into a given tensor."""
    return _ToNormalizedFloat(prep)


def build_train_transform(prep: VideoPreprocessing, aug: AugmentationSettings | None = None) -> v2.Compose:
    """Random resized crop (or resize + random crop), flip, colour jitter and rotation, then normalise."""
    return v2.Compose([build_train_augmentation(prep, aug), build_normalize(prep)])


def as_video(frames: torch.Tensor) -> tv_tensors.Video:
    """Marks a (T, C, H, W) uint8 tensor as one video so v2 draws one set of parameters for all frames."""
    return tv_tensors.Video(frames)


def spatial_crops(video: torch.Tensor, crop_size: tuple[int, int], num_crops: int) -> list[torch.Tensor]:
    """``num_crops`` crops of ``crop_size`` spread evenly along the long side (3: left/centre/right or top/centre/bottom).

    ``video`` is (T, C, H, W) already resized so its shorter side is at least the crop's. One crop is the centre crop.
    """
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


def build_eval_resize(prep: VideoPreprocessing):
    """The evaluation resize alone (shorter side to ``resize_shortest``), for callers that resize once per video."""
    resize = v2.Resize(prep.resize_shortest, interpolation=InterpolationMode.BILINEAR, antialias=True)
    return lambda frames: resize(as_video(frames)).as_subclass(torch.Tensor)


def build_crop_and_normalize(prep: VideoPreprocessing, num_crops: int):
    """Crops an already resized (T, C, H, W) uint8 clip into ``num_crops`` normalised float views."""
    normalise = _ToNormalizedFloat(prep)
    return lambda resized: [normalise(c) for c in spatial_crops(resized, prep.crop_size, num_crops)]


def build_multicrop_transform(prep: VideoPreprocessing, num_crops: int):
    """Resize the shorter side, then ``num_crops`` crops along the long side, each normalised: list of (T, C, h, w)."""
    resize = build_eval_resize(prep)
    crop = build_crop_and_normalize(prep, num_crops)
    return lambda frames: crop(resize(frames))
