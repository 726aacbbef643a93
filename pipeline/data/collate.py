"""Collator: clips -> {"pixel_values": (B, T, C, H, W), "labels": (B,)}, dropping clips that failed to decode.

A sample holding R repeated-augmentation clips (R, T, C, H, W) contributes R rows with its label.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

logger = logging.getLogger(__name__)


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
        pixel_values = torch.stack(clips)
        labels = torch.tensor(labels, dtype=torch.long)
        return {"pixel_values": pixel_values, "labels": labels}
