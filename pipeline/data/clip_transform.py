"""The ``datasets`` on-the-fly transform: video path -> sampled, decoded, augmented clip(s).

Installed with ``Dataset.with_transform``; runs in the DataLoader workers. A video that fails to decode is logged
with its path and reason and yields ``None`` (the collator drops it), so one bad file never stops a run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from .decoding import VideoDecodeError, VideoInfo, decode_frames, probe_video, train_clip_indices
from .transforms import (
    AugmentationSettings,
    VideoPreprocessing,
    as_video,
    build_eval_transform,
    build_train_transform,
)
from .views import load_views

logger = logging.getLogger(__name__)


@dataclass
class ClipSampling:
    """How frames are picked from a video (mirrors model.config.num_frames / frame_sampling_*)."""

    num_frames: int
    rate: int = 1
    strategy: str = "dense"
    short: str = "clamp"


@dataclass
class ClipTransform:
    """Batch transform for ``with_transform``: {"video", "label", ["video_info"]} -> {"pixel_values", "labels"}.

    Training draws a random clip per video and ``repeats`` independently augmented copies of it from ONE decode
    (VideoMAE's repeated augmentation). Evaluation takes the deterministic centre view, identical to
    ``load_views(..., num_clips=1, num_crops=1)``.
    """

    sampling: ClipSampling
    prep: VideoPreprocessing
    train: bool
    augmentation: AugmentationSettings | None = None
    repeats: int = 1
    video_column: str = "video"
    label_column: str = "label"
    failures: list = field(default_factory=list, repr=False)
    _augment: Callable | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.train:
            self._augment = build_train_transform(self.prep, self.augmentation)
        else:
            self._augment = build_eval_transform(self.prep)

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        infos = batch.get("video_info") or [None] * len(batch[self.video_column])
        pixel_values: list[Any] = []
        labels: list[int] = []
        for path, label, info in zip(batch[self.video_column], batch[self.label_column], infos):
            try:
                clips = self._clips(path, info)
                # a row must stay a row (datasets un-batches single rows): repeats travel stacked as (R, T, C, H, W)
                pixel_values.append(clips[0] if len(clips) == 1 else torch.stack(clips))
            except (VideoDecodeError, OSError, ValueError, IndexError, RuntimeError) as err:
                self._report(path, err)
                pixel_values.append(None)
            labels.append(label)
        return {"pixel_values": pixel_values, "labels": labels}

    def _clips(self, path: str, info: dict | None) -> list[torch.Tensor]:
        info_obj = VideoInfo.from_dict(info) if info else probe_video(path)
        if not self.train:
            view = load_views(
                path,
                processor_or_prep=self.prep,
                num_frames=self.sampling.num_frames,
                rate=self.sampling.rate,
                strategy=self.sampling.strategy,
                info=info_obj,
                short=self.sampling.short,
            )
            return [view[0]]
        # torch's generator is seeded per worker and per run by the Trainer: reproducible and distinct per worker
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
        indices = train_clip_indices(
            info_obj.num_frames, self.sampling.num_frames, self.sampling.rate, strategy=self.sampling.strategy,
            rng=rng, short=self.sampling.short,
        )
        unique, inverse = np.unique(indices, return_inverse=True)
        frames = torch.from_numpy(decode_frames(path, unique, info=info_obj)).permute(0, 3, 1, 2)
        clip = as_video(frames[torch.from_numpy(inverse.reshape(-1))])
        return [self._augment(clip) for _ in range(self.repeats)]

    def _report(self, path: str, err: Exception) -> None:
        self.failures.append((path, str(err)))
        logger.warning("skipping unreadable video %s: %s", path, err)
