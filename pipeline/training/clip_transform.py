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

from .collate import empty_batch
from pipeline.inference.decoding import VideoDecodeError, VideoInfo, decode_frames, probe_video, train_clip_indices
from pipeline.inference.preprocessing import (
    AugmentationSettings,
    VideoPreprocessing,
    as_video,
    build_eval_transform,
    build_normalize,
    build_train_augmentation,
)
from pipeline.inference.views import load_views

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
    ``load_views(..., num_clips=1, num_crops=1)``. ``rand_augment`` (training only) is a batch op over uint8 clips
    (B, T, C, H, W), applied to each cropped copy before normalisation.
    """

    sampling: ClipSampling
    prep: VideoPreprocessing
    train: bool
    augmentation: AugmentationSettings | None = None
    repeats: int = 1
    video_column: str = "video"
    label_column: str = "label"
    rand_augment: Callable | None = None
    failures: list = field(default_factory=list, repr=False)
    _augment: Callable | None = field(default=None, init=False, repr=False)
    _normalize: Callable | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")
        if self.train:
            self._augment = build_train_augmentation(self.prep, self.augmentation)
            self._normalize = build_normalize(self.prep)
        else:
            self._augment = build_eval_transform(self.prep)

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        paths = batch[self.video_column]
        infos = batch.get("video_info") or [None] * len(paths)
        # Training clips are normalised straight into the rows of one batch tensor (shared memory in a loader
        # worker), so the collator can hand them on without stacking and nothing is copied to be sent.
        rows = self._train_rows(len(paths)) if self.train else None
        pixel_values: list[Any] = []
        labels: list[int] = []
        for i, (path, label, info) in enumerate(zip(paths, batch[self.label_column], infos)):
            try:
                if rows is None:
                    pixel_values.append(self._eval_clip(path, info))
                else:
                    # a row must stay a row (datasets un-batches single rows): repeats travel as (R, T, C, H, W)
                    target = rows[i * self.repeats:(i + 1) * self.repeats]
                    self._train_clips(path, info, target)
                    pixel_values.append(target[0] if self.repeats == 1 else target)
            except (VideoDecodeError, OSError, ValueError, IndexError, RuntimeError) as err:
                self._report(path, err)
                pixel_values.append(None)
            labels.append(label)
        return {"pixel_values": pixel_values, "labels": labels}

    def _train_rows(self, num_videos: int) -> torch.Tensor:
        height, width = self.prep.crop_size
        return empty_batch((num_videos * self.repeats, self.sampling.num_frames, 3, height, width))

    def _eval_clip(self, path: str, info: dict | None) -> torch.Tensor:
        view = load_views(
            path,
            processor_or_prep=self.prep,
            num_frames=self.sampling.num_frames,
            rate=self.sampling.rate,
            strategy=self.sampling.strategy,
            info=_info(path, info),
            short=self.sampling.short,
        )
        return view[0]

    def _train_clips(self, path: str, info: dict | None, target: torch.Tensor) -> None:
        """Decode one random clip and write ``len(target)`` independently augmented copies into ``target``."""
        info_obj = _info(path, info)
        # torch's generator is seeded per worker and per run by the Trainer: reproducible and distinct per worker
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
        indices = train_clip_indices(
            info_obj.num_frames, self.sampling.num_frames, self.sampling.rate, strategy=self.sampling.strategy,
            rng=rng, short=self.sampling.short,
        )
        # decode_frames decodes each distinct frame once and repeats rows itself (short videos), copy-free
        # when the indices are already increasing
        clip = as_video(torch.from_numpy(decode_frames(path, indices, info=info_obj)).permute(0, 3, 1, 2))
        for out in target:
            augmented = self._augment(clip)
            if self.rand_augment is not None:
                augmented = self.rand_augment(augmented.as_subclass(torch.Tensor).unsqueeze(0))[0]
            self._normalize(augmented, out=out)

    def _report(self, path: str, err: Exception) -> None:
        self.failures.append((path, str(err)))
        logger.warning("skipping unreadable video %s: %s", path, err)


def _info(path: str, info: dict | None) -> VideoInfo:
    """The stored probe of ``path`` (the dataset's video_info column), or a fresh probe when there is none."""
    return VideoInfo.from_dict(info) if info else probe_video(path)
