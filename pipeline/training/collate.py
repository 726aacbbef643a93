"""Collator: clips -> {"pixel_values": (B, T, C, H, W), "labels": (B,)}, dropping clips that failed to decode.

A sample holding R repeated-augmentation clips (R, T, C, H, W) contributes R rows with its label.

Inside a DataLoader worker a batch travels to the main process through shared memory. A batch stacked in
ordinary memory is copied once more into shared memory when it is sent, so batches are built in shared memory
from the start (``empty_batch``), and clips that ``ClipTransform`` already wrote as consecutive rows of one such
tensor are passed on without any copy.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
from torch.utils.data import get_worker_info

logger = logging.getLogger(__name__)


def empty_batch(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """An uninitialised tensor for batch data; in shared memory when called in a DataLoader worker process."""
    if get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    storage = torch.UntypedStorage._new_shared(math.prod(shape) * dtype.itemsize)
    return torch.empty(0, dtype=dtype).set_(storage, 0, shape)


def _rows_of_one_tensor(clips: list[torch.Tensor]) -> torch.Tensor | None:
    """The tensor whose consecutive rows ARE ``clips`` (all of its rows, in order), else None."""
    base = clips[0]._base
    if base is None or base.shape[0] != len(clips) or base.shape[1:] != clips[0].shape or not base.is_contiguous():
        return None
    step = clips[0].numel()
    start = base.storage_offset()
    for i, clip in enumerate(clips):
        if clip._base is not base or clip.storage_offset() != start + i * step or not clip.is_contiguous():
            return None
    return base


class VideoCollator:
    """Stacks clips; a failed clip (``None``) is dropped, and an all-failed batch reuses the last good sample.

    Replacing rather than returning an empty batch keeps the Trainer's step (and DDP's collective calls) going.
    """

    def __init__(self) -> None:
        self._last_good: dict[str, Any] | None = None
        self.dropped = 0

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        good = [e for e in examples if e["pixel_values"] is not None]
        self.dropped += len(examples) - len(good)
        if not good:
            if self._last_good is None:
                raise RuntimeError("every video of the first batch failed to decode; see the warnings above")
            logger.warning("a whole batch failed to decode; reusing the last good sample for this step")
            good = [self._last_good]
        self._last_good = good[-1]
        clips, labels = [], []
        for e in good:
            value = e["pixel_values"]
            if value.dim() == 5:  # repeated augmentation: R clips of one video
                clips.extend(value.unbind(0))
                labels.extend([int(e["labels"])] * value.shape[0])
            else:
                clips.append(value)
                labels.append(int(e["labels"]))
        pixel_values = _rows_of_one_tensor(clips)
        if pixel_values is None:
            pixel_values = torch.stack(clips, out=empty_batch((len(clips), *clips[0].shape), clips[0].dtype))
        labels = torch.tensor(labels, dtype=torch.long)
        return {"pixel_values": pixel_values, "labels": labels}
