"""Training augmentation in two halves: parameters drawn where the clip is decoded, pixels changed where the model is.

Loader workers decode a clip (uint8) and draw, per augmented copy, ONE set of random parameters for all of its
frames with torchvision's own v2 transforms (``make_params``: random rotation, random resized crop, horizontal flip,
colour jitter, in that order). The parameters travel with the uint8 clip as a small float row (``encode``); the
pixels are then transformed as a batch on the training device (``augment_batch``, calling the same v2 transforms'
``transform`` with those parameters), normalised to float there, so the loader sends a quarter of the bytes and
spends none of its CPU on resizing. The parameters are those today's worker-side ``v2.Compose`` would draw from the
same random state, so both placements give equal tensors for the same seed (tested). RandAugment, when the recipe
asks for it, runs last on the uint8 copies, where they are transformed (its draws come from that process's torch
random state).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2

from pipeline.inference.preprocessing import VideoPreprocessing, normalize_clips, resize_and_center_crop
from pipeline.training.rand_augment import VideoRandAugment

# Layout of one encoded parameter row (float64): rotation angle, crop box, flip, colour-jitter order and factors.
# A factor or box entry that does not apply is NaN.
ANGLE, TOP, LEFT, HEIGHT, WIDTH, FLIP = range(6)
JITTER_ORDER = slice(6, 10)
BRIGHTNESS, CONTRAST, SATURATION, HUE = range(10, 14)
PARAMETER_COUNT = 14


@dataclass
class AugmentationSettings:
    """Switches for the training augmentations (filled from the recipe's DataArguments)."""

    random_crop: bool = True
    crop_scale: Sequence[float] = field(default_factory=lambda: (0.25, 1.0))
    crop_ratio: Sequence[float] = field(default_factory=lambda: (3 / 4, 4 / 3))
    horizontal_flip: bool = True
    color_jitter: float = 0.0
    rotation_range: float = 0.0
    rand_augment: str | None = None  # a timm-style spec, e.g. "m7-n4-mstd0.5-inc1" (training/rand_augment.py)


class ClipAugmentation:
    """The v2 transforms of one training recipe: draws parameters for a clip size, and applies them to clips."""

    def __init__(self, prep: VideoPreprocessing, settings: AugmentationSettings | None = None):
        self.prep = prep
        self.settings = settings = settings or AugmentationSettings()
        self.rotation = (v2.RandomRotation(settings.rotation_range, interpolation=InterpolationMode.BILINEAR)
                         if settings.rotation_range else None)
        self.crop = (v2.RandomResizedCrop(prep.crop_size, scale=tuple(settings.crop_scale),
                                          ratio=tuple(settings.crop_ratio), interpolation=InterpolationMode.BILINEAR,
                                          antialias=True) if settings.random_crop else None)
        self.flip_probability = 0.5 if settings.horizontal_flip else 0.0
        strength = float(settings.color_jitter)
        self.jitter = (v2.ColorJitter(brightness=strength, contrast=strength, saturation=strength,
                                      hue=min(0.5, strength / 4)) if strength else None)
        # uncovered areas are filled with the processor's mean colour (about 0 once normalised)
        fill = tuple(int(round(m / prep.rescale_factor)) for m in prep.mean)
        self.rand_augment = (VideoRandAugment.from_spec(settings.rand_augment, fill=fill)
                             if settings.rand_augment else None)

    # -- drawing (in loader workers, from their torch random state) ---------------------------------------------
    def draw(self, height: int, width: int) -> torch.Tensor:
        """One encoded parameter row (PARAMETER_COUNT,) for a clip of frames ``height`` x ``width``.

        Draws in the order and with the calls of today's ``v2.Compose([rotation, crop, flip, jitter])``.
        """
        row = torch.full((PARAMETER_COUNT,), float("nan"), dtype=torch.float64)
        like = [_size_only_video(height, width)]
        row[ANGLE] = self.rotation.make_params(like)["angle"] if self.rotation is not None else 0.0
        if self.crop is not None:
            box = self.crop.make_params(like)
            row[TOP], row[LEFT], row[HEIGHT], row[WIDTH] = box["top"], box["left"], box["height"], box["width"]
        # v2's random-apply transforms skip when rand >= p (RandomHorizontalFlip draws even when p is 0)
        row[FLIP] = float(bool(torch.rand(1) < self.flip_probability)) if self.settings.horizontal_flip else 0.0
        if self.jitter is not None:
            params = self.jitter.make_params(like)
            row[JITTER_ORDER] = params["fn_idx"].to(torch.float64)
            for index, key in ((BRIGHTNESS, "brightness_factor"), (CONTRAST, "contrast_factor"),
                               (SATURATION, "saturation_factor"), (HUE, "hue_factor")):
                if params[key] is not None:
                    row[index] = params[key]
        return row

    def draw_many(self, count: int, height: int, width: int) -> torch.Tensor:
        """(count, PARAMETER_COUNT) rows: the parameters of ``count`` independently augmented copies of one clip."""
        return torch.stack([self.draw(height, width) for _ in range(count)])

    # -- applying (on the training device) ------------------------------------------------------------------------
    def apply(self, clip: torch.Tensor, row) -> torch.Tensor:
        """One uint8 clip (T, C, H, W), on any device, transformed by an encoded row: uint8 (T, C, *crop_size)."""
        values = row.tolist()
        video = tv_tensors.Video(clip)
        if self.rotation is not None and values[ANGLE]:
            video = self.rotation.transform(video, {"angle": values[ANGLE]})
        if self.crop is not None:
            box = {"top": int(values[TOP]), "left": int(values[LEFT]), "height": int(values[HEIGHT]),
                   "width": int(values[WIDTH])}
            video = self.crop.transform(video, box)
        else:
            video = resize_and_center_crop(video, self.prep)
        video = tv_tensors.wrap(video.as_subclass(torch.Tensor).contiguous(), like=video)
        if values[FLIP]:
            video = v2.functional.horizontal_flip(video)
        if self.jitter is not None:
            factors = {key: (None if value != value else value) for key, value in (
                ("brightness_factor", values[BRIGHTNESS]), ("contrast_factor", values[CONTRAST]),
                ("saturation_factor", values[SATURATION]), ("hue_factor", values[HUE]))}
            order = torch.tensor([int(v) for v in values[JITTER_ORDER]])
            video = self.jitter.transform(video, {"fn_idx": order, **factors})
        return video.as_subclass(torch.Tensor)


def augment_batch(augmentation: ClipAugmentation, frames: torch.Tensor, sizes, rows) -> torch.Tensor:
    """Augmented, normalised clips of a batch, on the device of ``frames``.

    frames: uint8 (B, T, H, W, 3) (clips smaller than H x W sit in the top-left corner, their size in ``sizes``
    (B, 2)); rows: (B, R, PARAMETER_COUNT) parameters, R augmented copies per clip (sizes and rows on the host:
    numpy arrays or CPU tensors). Returns float32 (B * R, T, C, h, w), the copies of clip 0 first.
    """
    batch, repeats = rows.shape[:2]
    out = torch.empty((batch * repeats, frames.shape[1], 3, *augmentation.prep.crop_size), dtype=torch.uint8,
                      device=frames.device)
    for b in range(batch):
        height, width = (int(v) for v in sizes[b])
        clip = frames[b, :, :height, :width].permute(0, 3, 1, 2)
        for r in range(repeats):
            out[b * repeats + r] = augmentation.apply(clip, rows[b, r])
    if augmentation.rand_augment is not None:  # one batched op per drawn operation, every copy its own draw
        out = augmentation.rand_augment(out)
    return normalize_clips(out, augmentation.prep)


def _size_only_video(height: int, width: int) -> tv_tensors.Video:
    """A (1, 3, height, width) video that allocates nothing: what v2's make_params reads is the size alone."""
    return tv_tensors.Video(torch.empty((1, 1, 1, 1), dtype=torch.uint8).expand(1, 3, height, width))
