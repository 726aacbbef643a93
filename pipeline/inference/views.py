"""The evaluation views of one video: K temporal clips x C spatial crops, exactly as the model is fed.

Training-time evaluation, ``python -m pipeline.evaluation`` and the ``pipeline()`` class all call ``load_views``,
so a number in a model card is what ``pipeline()`` reproduces. Shipped as Hub remote code: imports only numpy,
torch, torchvision, av (through siblings) and siblings.
"""

from __future__ import annotations

import os
from typing import Any, Union

import numpy as np
import torch

from .decoding import VideoInfo, decode_frames, eval_clip_indices, probe_video
from .preprocessing import VideoPreprocessing, build_crop_and_normalize, build_eval_resize

VideoSource = Union[str, os.PathLike, np.ndarray]


def clip_frame_indices(
    num_frames: int, *, clip_len: int, rate: int, strategy: str = "dense", num_clips: int = 1, short: str = "clamp"
) -> list[np.ndarray]:
    """Frame indices of the K evaluation clips of a video with ``num_frames`` frames."""
    return eval_clip_indices(num_frames, clip_len, rate, strategy=strategy, num_clips=num_clips, short=short)


def read_frames(source: VideoSource, frames: np.ndarray, info: VideoInfo | None = None) -> torch.Tensor:
    """Decodes the given (sorted, unique) frame indices in one pass; uint8 (N, C, H, W) without a copy."""
    if isinstance(source, np.ndarray):
        array = source[frames]
    else:
        array = decode_frames(source, frames, info=info)
    return torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2)


def load_views(
    source: VideoSource,
    *,
    processor_or_prep: Any,
    num_frames: int,
    rate: int = 1,
    strategy: str = "dense",
    num_clips: int = 1,
    num_crops: int = 1,
    info: VideoInfo | dict | None = None,
    short: str = "clamp",
) -> torch.Tensor:
    """All K x C views of a video as float (K*C, T, C, H, W), clip-major (clip 0's crops first).

    ``source`` is a video path or a decoded uint8 array (N, H, W, 3). ``info`` (from ``probe_video``, or its
    dict form as stored in the dataset) saves a probe.
    """
    if isinstance(info, dict):
        info = VideoInfo.from_dict(info)
    if isinstance(source, np.ndarray):
        if source.ndim != 4 or source.shape[-1] != 3:
            raise ValueError(f"a video array must be (frames, height, width, 3) uint8, got shape {source.shape}")
        total = source.shape[0]
    else:
        source = os.fspath(source)
        info = info or probe_video(source)
        total = info.num_frames
    clips = clip_frame_indices(
        total, clip_len=num_frames, rate=rate, strategy=strategy, num_clips=num_clips, short=short
    )
    return views_of_clips(source, clips, processor_or_prep=processor_or_prep, num_crops=num_crops, info=info)


def views_of_clips(
    source: VideoSource,
    clips: list[np.ndarray],
    *,
    processor_or_prep: Any,
    num_crops: int = 1,
    info: VideoInfo | None = None,
) -> torch.Tensor:
    """Views of the given clips (frame-index arrays) as float (len(clips)*C, T, C, H, W), clip-major.

    Overlapping clips share frames: every distinct frame is decoded and resized once, then gathered per clip.
    """
    prep = VideoPreprocessing.from_processor(processor_or_prep)
    wanted = np.unique(np.concatenate(clips))
    resized = build_eval_resize(prep)(read_frames(source, wanted, info))
    position = np.searchsorted(wanted, np.concatenate(clips)).reshape(len(clips), -1)
    crop = build_crop_and_normalize(prep, num_crops)
    views: list[torch.Tensor] = []
    for rows in position:
        views.extend(crop(resized[torch.from_numpy(rows)]))
    return torch.stack(views)
