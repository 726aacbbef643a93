"""The ``datasets`` on-the-fly transform: video path -> sampled, decoded clip (+ its augmentation parameters).

Installed with ``Dataset.with_transform``; runs in the DataLoader workers, on a whole batch of rows at a time. It
decodes each clip's frames exactly (uint8) into one batch tensor in shared memory and, for training, draws the
random augmentation parameters of each of its ``repeats`` copies. Where the pixels are then transformed is the
``placement``:

- ``"device"``: the uint8 batch travels as it is (a quarter of the bytes of float) and the training device augments,
  resizes and normalises it (``pipeline.training.device_batch``): the loader's CPU only decodes;
- ``"workers"``: the worker applies the same transforms with the same parameters and sends normalised float clips
  (the better choice when the model itself runs on the CPU, whose cores the workers already use).

Training draws (clip positions, augmentation parameters) are seeded per batch by ``ClipRandomness`` from the
run's seed, the epoch and the batch's samples (their ``__key__`` where rows have one, as WebDataset samples do; else
the video), so a run resumed mid-epoch trains on the same clips
(pipeline/training/clip_randomness.py).

A video that fails to decode is logged with its path and reason and yields ``None`` (the collator drops it), so
one bad file never stops a run.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from pipeline.data.streaming import video_source
from pipeline.inference.decoding import VideoDecodeError, VideoInfo, decode_frames, probe_video, source_name
from pipeline.inference.preprocessing import VideoPreprocessing, clip_views
from pipeline.inference.clip_spec import ClipSpec
from pipeline.training.augmentation import AugmentationSettings, ClipAugmentation, augment_batch
from pipeline.training.clip_randomness import ClipRandomness, sample_key
from pipeline.training.collate import ClipBatch, empty_batch

logger = logging.getLogger(__name__)

PLACEMENTS = ("device", "workers")


class ClipTransform:
    """Batch transform for ``with_transform`` (a file dataset) or a batched ``map`` (a stream): {"video", "label",
    ["video_info"]} -> one ``ClipBatch`` per row batch. A video is a path or {"bytes", "path"} (decoded in memory).

    Training draws a random clip per video and the parameters of ``repeats`` independently augmented copies of it,
    all from ONE decode (VideoMAE's repeated augmentation). Evaluation takes the deterministic centre clip, the
    view ``load_views(..., num_clips=1, num_crops=1)`` gives.
    """

    def __init__(self, spec: ClipSpec, prep: VideoPreprocessing, train: bool, *,
                 augmentation: AugmentationSettings | None = None, repeats: int = 1, placement: str = "device",
                 video_column: str = "video", label_column: str = "label", key_column: str = "__key__"):
        if repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {repeats}")
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
        self.spec = spec
        self.prep = prep
        self.train = train
        self.repeats = repeats if train else 1
        self.placement = placement
        self.video_column = video_column
        self.label_column = label_column
        self.key_column = key_column  # what names a sample for its random draws (a stream's key), else the video
        self.augmentation = ClipAugmentation(prep, augmentation) if train else None
        self.randomness = ClipRandomness() if train else None

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        if not self.train:
            return self._clips(batch)
        keys = batch.get(self.key_column) or batch[self.video_column]
        with self.randomness.drawing([sample_key(key) for key in keys]):
            return self._clips(batch)

    def _clips(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        # a path, or a streamed video's bytes as a named in-memory file (pipeline.data.streaming)
        paths = [video_source(cell) for cell in batch[self.video_column]]
        infos = [_info(path, info) for path, info in zip(paths, batch.get("video_info") or [None] * len(paths))]
        clips = ClipBatch.allocate(
            [(info.height, info.width) if isinstance(info, VideoInfo) else None for info in infos],
            self.spec.num_frames, self.repeats if self.train else 0)
        rows: list[Any] = []
        for i, (path, info) in enumerate(zip(paths, infos)):
            try:
                if isinstance(info, VideoDecodeError):
                    raise info
                frames = decode_frames(path, self._indices(info), info=info)
                clips.put(i, frames)
                if self.train:
                    clips.augment[i] = self.augmentation.draw_many(self.repeats, *frames.shape[1:3])
                rows.append(i)
            except (VideoDecodeError, OSError, ValueError, IndexError, RuntimeError) as err:
                logger.warning("skipping unreadable video %s: %s", source_name(path), err)
                rows.append(None)
        if self.placement == "workers":
            good = [i for i in rows if i is not None]
            if len(good) < len(rows):  # transform only the decoded clips; their rows are renumbered
                clips = clips.select(good)
                renumber = {old: new for new, old in enumerate(good)}
                rows = [None if i is None else renumber[i] for i in rows]
            if good:
                clips = self._transform_here(clips)
        return {"clips": [clips] * len(paths), "row": rows, "labels": list(batch[self.label_column])}

    def _indices(self, info: VideoInfo) -> np.ndarray:
        if not self.train:
            return self.spec.eval_clips(info.num_frames, num_clips=1)[0]
        # torch's generator is seeded for this batch here (ClipRandomness): the same clip wherever it is loaded
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
        return self.spec.train_clip(info.num_frames, rng)

    def _transform_here(self, clips: "ClipBatch") -> "ClipBatch":
        """The "workers" placement: the same transforms as the device would run, into a shared float batch."""
        if self.train:
            pixel_values = augment_batch(self.augmentation, clips.frames, clips.sizes, clips.augment)
        else:
            pixel_values = torch.cat([
                clip_views(clips.frames[i, :, :h, :w], torch.arange(clips.frames.shape[1])[None], self.prep, 1)
                for i, (h, w) in enumerate(clips.sizes.tolist())])
        shared = empty_batch(tuple(pixel_values.shape), pixel_values.dtype)
        shared.copy_(pixel_values)
        return ClipBatch(pixel_values=shared, repeats=self.repeats)


def _info(path: str, info: dict | None) -> VideoInfo | VideoDecodeError:
    """The stored probe of ``path`` (the dataset's video_info column), a fresh probe when there is none, or the
    error that says why the file cannot be probed (logged when its row is decoded)."""
    if info:
        return VideoInfo.from_dict(info)
    try:
        return probe_video(path)
    except VideoDecodeError as error:
        return error
