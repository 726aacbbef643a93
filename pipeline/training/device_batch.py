"""The training device's half of the data pipeline: a collated uint8 batch -> model inputs, on the device.

A loader batch with ``frames`` (see ``pipeline.training.collate``) is moved to the device as uint8 (asynchronously
from pinned memory), then augmented with the parameters the workers drew (training) or cut to the centre view
(evaluation), and normalised there, in batched tensor ops. A batch that already holds ``pixel_values`` (the
"workers" placement) is left to the Trainer. ``VideoTrainer`` calls this before every training and prediction step,
``python -m pipeline.benchmark`` before every measured step.
"""

from __future__ import annotations

from typing import Any

import torch

from pipeline.inference.preprocessing import VideoPreprocessing, normalize_clips, resize_and_center_crop
from pipeline.training.augmentation import ClipAugmentation, augment_batch


# Batch entries read by the host while the device works: never sent to the device.
HOST_KEYS = ("frame_sizes", "augment")


class DeviceBatch:
    """Turns collated batches into model inputs on a device; ``augmentation`` is None for evaluation-only use."""

    def __init__(self, prep: VideoPreprocessing, augmentation: ClipAugmentation | None = None):
        self.prep = prep
        self.augmentation = augmentation

    def __call__(self, batch: dict[str, Any], device: torch.device | str) -> dict[str, Any]:
        return self.inputs(self.move(batch, device))

    @staticmethod
    def move(batch: dict[str, Any], device: torch.device | str) -> dict[str, Any]:
        """The batch with its pixel data and labels on ``device`` (asynchronous from pinned memory); what the host
        reads (clip sizes, augmentation parameters) stays there, so reading it never waits for the device."""
        return {key: value.to(device, non_blocking=True) if key not in HOST_KEYS and isinstance(value, torch.Tensor)
                else value for key, value in batch.items()}

    def inputs(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Model inputs from a moved batch: augmented (training) or centre (evaluation) views, normalised."""
        if "frames" not in batch:
            return batch
        if "augment" in batch:
            if self.augmentation is None:
                raise ValueError("a training batch (with augmentation parameters) reached an evaluation-only "
                                 "DeviceBatch")
            pixel_values = augment_batch(self.augmentation, batch["frames"], batch["frame_sizes"], batch["augment"])
        else:
            pixel_values = centre_views(batch["frames"], batch["frame_sizes"], self.prep)
        return {"pixel_values": pixel_values, "labels": batch["labels"]}


def centre_views(frames: torch.Tensor, sizes: torch.Tensor, prep: VideoPreprocessing) -> torch.Tensor:
    """The single evaluation view (resize the shorter side, centre crop, normalise) of each clip of a batch.

    frames: uint8 (B, T, H, W, 3); clip b fills [:h_b, :w_b] (``sizes``). Clips of one size are resized together.
    """
    clips = frames.permute(0, 1, 4, 2, 3)  # (B, T, C, H, W)
    height, width = clips.shape[-2:]
    if bool((sizes[:, 0] == height).all() and (sizes[:, 1] == width).all()):
        views = resize_and_center_crop(clips, prep)
    else:
        views = torch.stack([resize_and_center_crop(clips[b, :, :, :h, :w], prep)
                             for b, (h, w) in enumerate(sizes.tolist())])
    return normalize_clips(views, prep)
