"""The evaluation views of one video: K temporal clips x C spatial crops, exactly as the model is fed.

Two halves, so that decoding can run in loader workers and preprocessing on the accelerator: ``clip_frames``
decodes the distinct frames the clips need (uint8) and says where each clip's frames are among them;
``preprocessing.clip_views`` resizes, crops and normalises them on whatever device they are sent to.
``load_views`` does both for one video. Training-time evaluation, ``python -m pipeline.evaluation`` and the
``pipeline()`` class all go through these, so a number in a model card is what ``pipeline()`` reproduces.
Shipped as Hub remote code: imports only numpy, torch, torchvision, av (through siblings) and siblings.
"""

from __future__ import annotations

import os
from typing import Union

import numpy as np
import torch

from .clip_spec import ClipSpec
from .decoding import VideoInfo, decode_frames, probe_video
from .preprocessing import clip_views

# What views are cut from: a video file's path, or its frames already decoded (uint8 (N, H, W, 3)). Opening URLs,
# bytes and other inputs into one of these is ``video_source.VideoSource``'s job.
PathOrFrames = Union[str, os.PathLike, np.ndarray]


def clip_frames(source: PathOrFrames, clips: list[np.ndarray], info: VideoInfo | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct frames of ``clips`` (frame-index arrays), decoded once: (uint8 (U, H, W, 3), positions (K, T)).

    ``positions[k, t]`` is the row of clip k's t-th frame in the frames; overlapping clips share frames.
    """
    wanted = np.unique(np.concatenate(clips))
    if isinstance(source, np.ndarray):
        frames = np.ascontiguousarray(source[wanted])
    else:
        frames = decode_frames(source, wanted, info=info)
    positions = np.searchsorted(wanted, np.concatenate(clips)).reshape(len(clips), -1)
    return torch.from_numpy(frames), torch.from_numpy(positions)


def sample_clips(source: PathOrFrames, spec: ClipSpec, info: VideoInfo | dict | None = None
                 ) -> tuple[list[np.ndarray], VideoInfo | None]:
    """The frame indices of the ``spec.num_clips`` evaluation clips of a video (path or uint8 array) and its probe
    (None for arrays)."""
    if isinstance(info, dict):
        info = VideoInfo.from_dict(info)
    if isinstance(source, np.ndarray):
        if source.ndim != 4 or source.shape[-1] != 3:
            raise ValueError(f"a video array must be (frames, height, width, 3) uint8, got shape {source.shape}")
        total = source.shape[0]
    else:
        # a video decoded once needs no skip table (verifying one costs several decodes of the file); seeks stay
        # checked. Datasets carry the full probe (pipeline.data.metadata), made once and cached.
        info = info or probe_video(os.fspath(source), skip_table=False)
        total = info.num_frames
    return spec.eval_clips(total), info


def load_views(source: PathOrFrames, spec: ClipSpec, *, info: VideoInfo | dict | None = None,
               device: torch.device | str | None = None) -> torch.Tensor:
    """All K x C views of a video as float (K*C, T, C, H, W), clip-major (clip 0's crops first), on ``device``.

    ``source`` is a video path or a decoded uint8 array (N, H, W, 3); ``spec`` must carry its preprocessing
    (``ClipSpec.from_config(config, processor)``). ``info`` (from ``probe_video``, or its dict form as stored in
    the dataset) saves a probe.
    """
    if spec.preprocessing is None:
        raise ValueError("load_views needs the clip contract's preprocessing: ClipSpec.from_config(config, processor)")
    if not isinstance(source, np.ndarray):
        source = os.fspath(source)
    clips, info = sample_clips(source, spec, info)
    frames, positions = clip_frames(source, clips, info)
    if device is not None:
        frames = frames.to(device)
    return clip_views(frames, positions, spec.preprocessing, spec.num_crops)
