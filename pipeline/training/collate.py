"""Collator: the rows of ``ClipTransform`` -> one batch dict for the Trainer, dropping clips that failed to decode.

``ClipTransform`` decodes a whole batch of rows in one call (datasets hands the transform the batch) straight into
one ``ClipBatch`` in shared memory, and gives every row a reference to it plus its row number. The collator then
passes that batch on without copying when the rows arrive complete and in order (the normal case), and selects
rows otherwise (a failed video, a sampler that mixes batches).

Batches carry either uint8 ``frames`` (B, T, H, W, 3) with ``frame_sizes`` (B, 2) and, for training, the
augmentation parameters ``augment`` (B, R, P) of R copies per clip (both numpy: they stay on the host) (the device augments them:
``pipeline.training.device_batch``), or ready ``pixel_values`` (B * R, T, C, h, w). ``labels`` always holds one
label per clip the model will see (B * R), so the Trainer counts the items of a step right.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import get_worker_info

from pipeline.compatibility import require
from pipeline.training.augmentation import PARAMETER_COUNT

logger = logging.getLogger(__name__)


def empty_batch(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """An uninitialised tensor for batch data; in shared memory when called in a DataLoader worker process.

    A batch made in ordinary memory is copied once more into shared memory when a worker sends it.
    """
    if get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    require("untyped_storage_new_shared")
    storage = torch.UntypedStorage._new_shared(math.prod(shape) * dtype.itemsize)
    return torch.empty(0, dtype=dtype).set_(storage, 0, shape)


@dataclass
class ClipBatch:
    """The clips of one loader batch: uint8 frames (+ sizes and augmentation parameters) or float pixel values."""

    frames: Optional[torch.Tensor] = None  # uint8 (B, T, H, W, 3); clip b fills [:h_b, :w_b]
    sizes: Optional[torch.Tensor] = None  # int64 (B, 2): (h_b, w_b)
    augment: Optional[torch.Tensor] = None  # float64 (B, R, PARAMETER_COUNT), training only
    pixel_values: Optional[torch.Tensor] = None  # float (B * R, T, C, h, w)
    repeats: int = 1

    @classmethod
    def allocate(cls, sizes: Sequence[Optional[tuple[int, int]]], num_frames: int, repeats: int) -> "ClipBatch":
        """Room for len(sizes) clips of ``num_frames`` frames; a None size (an unreadable video) takes no room."""
        known = [s for s in sizes if s is not None] or [(1, 1)]
        height, width = max(h for h, _ in known), max(w for _, w in known)
        frames = empty_batch((len(sizes), num_frames, height, width, 3), torch.uint8)
        augment = (empty_batch((len(sizes), repeats, PARAMETER_COUNT), torch.float64) if repeats else None)
        return cls(frames=frames, sizes=torch.zeros((len(sizes), 2), dtype=torch.int64), augment=augment,
                   repeats=max(1, repeats))

    def put(self, row: int, frames: np.ndarray) -> None:
        """Writes one decoded clip (T, h, w, 3) into row ``row``."""
        _, height, width, _ = frames.shape
        if height > self.frames.shape[2] or width > self.frames.shape[3]:
            raise ValueError(f"decoded frames of {height}x{width} exceed the probed size "
                             f"{self.frames.shape[2]}x{self.frames.shape[3]}")
        self.frames[row, :, :height, :width] = torch.from_numpy(frames)
        self.sizes[row] = torch.tensor([height, width])

    @property
    def num_clips(self) -> int:
        if self.frames is not None:
            return self.frames.shape[0]
        return self.pixel_values.shape[0] // self.repeats

    def select(self, rows: Sequence[int]) -> "ClipBatch":
        """A new batch of the given rows (a copy)."""
        index = torch.as_tensor(list(rows), dtype=torch.long)
        if self.frames is not None:
            return ClipBatch(frames=self.frames[index], sizes=self.sizes[index],
                             augment=None if self.augment is None else self.augment[index], repeats=self.repeats)
        clip_rows = (index[:, None] * self.repeats + torch.arange(self.repeats)).reshape(-1)
        return ClipBatch(pixel_values=self.pixel_values[clip_rows], repeats=self.repeats)

    @staticmethod
    def concat(batches: Sequence["ClipBatch"]) -> "ClipBatch":
        """One batch of several (rows selected from different loader batches)."""
        first = batches[0]
        if first.pixel_values is not None:
            return ClipBatch(pixel_values=torch.cat([b.pixel_values for b in batches]), repeats=first.repeats)
        height = max(b.frames.shape[2] for b in batches)
        width = max(b.frames.shape[3] for b in batches)
        frames = torch.zeros((sum(b.num_clips for b in batches), first.frames.shape[1], height, width, 3),
                             dtype=torch.uint8)
        start = 0
        for b in batches:
            frames[start:start + b.num_clips, :, :b.frames.shape[2], :b.frames.shape[3]] = b.frames
            start += b.num_clips
        augment = None if first.augment is None else torch.cat([b.augment for b in batches])
        return ClipBatch(frames=frames, sizes=torch.cat([b.sizes for b in batches]), augment=augment,
                         repeats=first.repeats)

    def inputs(self, labels: Sequence[int]) -> dict[str, torch.Tensor]:
        """The batch dict: tensors named as the Trainer and ``device_batch`` expect, labels repeated per copy."""
        out: dict[str, torch.Tensor] = {
            "labels": torch.tensor(list(labels), dtype=torch.long).repeat_interleave(self.repeats)}
        if self.pixel_values is not None:
            out["pixel_values"] = self.pixel_values
            return out
        # sizes and augmentation parameters are read by the host while it launches the device's work: numpy arrays,
        # which the Trainer's and accelerate's device placement leave on the host (a tensor would be sent to the
        # GPU and every read of it would wait for the device)
        out["frames"], out["frame_sizes"] = self.frames, self.sizes.numpy()
        if self.augment is not None:
            out["augment"] = self.augment.numpy()
        return out


class VideoCollator:
    """Collates ``ClipTransform`` rows; a failed clip (row None) is dropped, an all-failed batch reuses the last good
    one (replacing rather than returning an empty batch keeps the Trainer's step, and DDP's collectives, going)."""

    def __init__(self) -> None:
        self._last_good: list[dict[str, Any]] | None = None
        self.dropped = 0

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        good = [e for e in examples if e["row"] is not None]
        self.dropped += len(examples) - len(good)
        if not good and any(e.get("evaluation") for e in examples):
            # an evaluation batch scores nothing rather than a copy: each video counts once (training.video_counts)
            return {"pixel_values": torch.empty(0), "labels": torch.empty(0, dtype=torch.long)}
        if not good:
            if self._last_good is None:
                raise RuntimeError("every video of the first batch failed to decode; see the warnings above")
            logger.warning("a whole batch failed to decode; reusing the last good batch for this step")
            good = self._last_good
        self._last_good = good
        shared = good[0]["clips"]
        rows = [e["row"] for e in good]
        if all(e["clips"] is shared for e in good) and rows == list(range(shared.num_clips)):
            clips = shared  # the transform's own batch, complete and in order: no copy
        elif all(e["clips"] is shared for e in good):
            clips = shared.select(rows)
        else:
            clips = ClipBatch.concat([e["clips"].select([e["row"]]) for e in good])
        return clips.inputs([int(e["labels"]) for e in good])
