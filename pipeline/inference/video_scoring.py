"""Scoring many videos at the speed of the model: decoding in loader workers, views made and scored on its device.

``VideoClips`` is a dataset whose item is one video's evaluation clips as DECODED uint8 frames (the distinct frames
the clips need, and where each clip's frames are among them), or the reason the video could not be read. Loader
workers run it in parallel with prefetching; they only decode. ``score_videos`` then moves each video's frames to
the model's device (from pinned memory), makes its K clips x C crops there (``preprocessing.clip_views``: resize,
crop, normalise, written straight into a reused batch buffer), and runs the model on full batches of views taken
across video boundaries. Probabilities stay on the device until the end, so the loop never waits for the model.
``python -m pipeline.evaluation`` and ``pipeline()`` on a list of videos both use it.

Shipped as Hub remote code with the pipeline: imports only numpy, torch, torchvision, av and siblings.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .clip_spec import ClipSpec
from .decoding import VideoDecodeError
from .preprocessing import VideoPreprocessing, clip_views
from .views import clip_frames, sample_clips

# Views a forward pass takes when the caller does not say.
DEFAULT_BATCH_SIZE = 16
# Videos each loader worker decodes ahead of the model.
PREFETCH_PER_WORKER = 4


def default_num_workers(num_videos: int, num_processes: int = 1) -> int:
    """Decoding workers for ``num_videos``: every core this process may use but one (the model's), none for a
    handful of videos (starting workers costs more than decoding them)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if num_videos < 4:
        return 0
    return max(0, min(cores // max(1, num_processes) - 1, num_videos // 2))


class VideoClips(Dataset):
    """Item ``i``: ``{"index", "frames" (uint8 (U, H, W, 3)), "positions" (K, T)}`` of video ``i``, or
    ``{"index", "video", "error"}`` when it cannot be read (a bad video never stops the loader).

    ``get_video(i) -> (source, info)``: a path (or a uint8 array) and its probe as a dict or None.
    ``open_source`` (optional) turns a source into a readable path or array within a ``with`` block (bytes, URLs);
    ``decode(source, info) -> (frames, positions)`` (optional) replaces the decoding (tests inject fakes).
    """

    def __init__(self, get_video: Callable[[int], tuple[Any, Any]], length: int, spec: ClipSpec,
                 open_source: Optional[Callable[[Any], Any]] = None,
                 skippable: tuple[type[BaseException], ...] = (VideoDecodeError, OSError),
                 decode: Optional[Callable[[Any, Any], tuple[torch.Tensor, torch.Tensor]]] = None):
        self.get_video = get_video
        self.length = length
        self.spec = spec
        self.open_source = open_source
        self.skippable = skippable
        self.decode = decode

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        source, info = self.get_video(index)
        try:
            if self.open_source is None:
                return {"index": index, **self._decode(source, info)}
            with self.open_source(source) as opened:
                return {"index": index, **self._decode(opened.value, info)}
        except self.skippable as err:
            reason = getattr(err, "reason", None) or f"{type(err).__name__}: {err}"
            return {"index": index, "video": _name(source), "error": reason}

    def _decode(self, source, info) -> dict[str, Any]:
        if self.decode is not None:
            frames, positions = self.decode(source, info)
            return {"frames": frames, "positions": positions}
        clips, info = sample_clips(source, self.spec, info)
        frames, positions = clip_frames(source, clips, info)
        # a video the probe found damaged is scored from what decodes; callers say so with the prediction
        return {"frames": frames, "positions": positions, "damage": info.damage if info is not None else ""}


def _name(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", None) or f"<{type(source).__name__}>")  # a named in-memory file: its name


class ViewBatcher:
    """Fills a reused batch buffer with views on the device and runs ``forward`` on every full batch.

    Results (softmax, or whatever ``activation`` gives) stay on the device, each with the video it belongs to.
    """

    def __init__(self, forward: Callable[[torch.Tensor], torch.Tensor], prep: VideoPreprocessing, num_crops: int,
                 batch_size: int, device: torch.device, dtype: torch.dtype,
                 activation: Callable[[torch.Tensor], torch.Tensor] = lambda logits: logits.float().softmax(-1)):
        self.forward, self.prep, self.num_crops = forward, prep, num_crops
        self.batch_size, self.device, self.dtype, self.activation = batch_size, device, dtype, activation
        self.buffer: Optional[torch.Tensor] = None
        self.filled = 0
        self.owners: list[int] = []
        self.results: list[torch.Tensor] = []
        self.result_owners: list[int] = []

    def add(self, owner: int, frames: torch.Tensor, positions: torch.Tensor) -> None:
        """Makes the views of one video (its decoded frames) and queues them; runs the model when a batch is full."""
        frames = frames.to(self.device, non_blocking=True)
        count = len(positions) * self.num_crops
        if self.buffer is None:
            shape = (self.batch_size, positions.shape[1], 3, *self.prep.crop_size)
            self.buffer = torch.empty(shape, dtype=self.dtype, device=self.device)
        if count <= self.batch_size - self.filled:  # the usual case: straight into the batch buffer, no copy
            clip_views(frames, positions, self.prep, self.num_crops, dtype=self.dtype,
                       out=self.buffer[self.filled:self.filled + count])
            self._queued(owner, count)
            return
        views = clip_views(frames, positions, self.prep, self.num_crops, dtype=self.dtype)
        start = 0
        while start < count:
            take = min(count - start, self.batch_size - self.filled)
            self.buffer[self.filled:self.filled + take].copy_(views[start:start + take])
            self._queued(owner, take)
            start += take

    def _queued(self, owner: int, count: int) -> None:
        self.owners.extend([owner] * count)
        self.filled += count
        if self.filled == self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Runs the model on the views queued so far."""
        if not self.filled:
            return
        outputs = self.activation(self.forward(self.buffer[:self.filled]))
        self.results.append(outputs)
        self.result_owners.extend(self.owners)
        self.owners, self.filled = [], 0

    def collect(self) -> dict[int, np.ndarray]:
        """{owner: (views, classes) float32 array}, in the order views were added; brings results to the host once."""
        self.flush()
        if not self.results:
            return {}
        rows = torch.cat(self.results).cpu().numpy()
        per_owner: dict[int, list[np.ndarray]] = {}
        for owner, row in zip(self.result_owners, rows):
            per_owner.setdefault(owner, []).append(row)
        return {owner: np.stack(values) for owner, values in per_owner.items()}


def score_videos(
    forward: Callable[[torch.Tensor], torch.Tensor],
    videos: VideoClips,
    *,
    prep: VideoPreprocessing,
    num_crops: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    activation: Callable[[torch.Tensor], torch.Tensor] | None = None,
    on_video: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[dict[int, np.ndarray], list[dict[str, str]]]:
    """Scores of every view of every video of ``videos``: ``{index: (views, classes) float32}``, and the skipped.

    ``forward(pixel_values) -> logits`` runs the model (batches of exactly ``batch_size`` views, the last may be
    smaller). ``on_video`` is called with each loaded item (progress bars).
    """
    device = torch.device(device)
    loader = DataLoader(videos, batch_size=None, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda",
                        prefetch_factor=PREFETCH_PER_WORKER if num_workers else None)
    kwargs = {} if activation is None else {"activation": activation}
    batcher = ViewBatcher(forward, prep, num_crops, batch_size, device, dtype, **kwargs)
    skipped: list[dict[str, str]] = []
    with torch.inference_mode():
        for item in loader:
            if "error" in item:
                skipped.append({"video": item["video"], "reason": item["error"]})
            else:
                batcher.add(int(item["index"]), item["frames"], item["positions"])
            if on_video is not None:
                on_video(item)
        return batcher.collect(), skipped

