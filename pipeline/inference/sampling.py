"""Which frame indices a clip is made of: training (random) and evaluation (deterministic, multi-view).

The arguments are the clip contract's fields (``ClipSpec``, which calls these) and have no defaults: the only
defaults are ``ClipSpec``'s. ``total_frames`` is the video's length, ``num_frames`` the clip's.

Strategies (``frame_sampling_strategy``):
    "dense"    ``num_frames`` frames, one every ``frame_sampling_rate`` frames (span (num_frames - 1) * rate + 1).
               Training: random start; evaluation: K starts at the centres of K equal parts of the possible start
               range (K=1: the centre clip).
    "uniform"  TSN segments: the video is cut into ``num_frames`` equal segments, one frame per segment. Training:
               a random frame in each segment; evaluation: segment centres, view k of K shifted by
               (k + 0.5) / K of a segment. Covers the whole video, whatever its length (the rate and
               ``short_video`` are unused).
    "random"   training: ``num_frames`` random frames of the whole video, sorted; evaluation: as "uniform".

A video shorter than a dense span is handled by ``short_video``: "clamp" repeats the last frame, "loop" wraps
around.

Shipped with inference code: imports only numpy and the standard library.
"""

from __future__ import annotations

import numpy as np

STRATEGIES = ("dense", "uniform", "random")
SHORT_POLICIES = ("clamp", "loop")


def train_clip_indices(total_frames: int, num_frames: int, frame_sampling_rate: int, frame_sampling_strategy: str,
                       short_video: str, rng) -> np.ndarray:
    """Frame indices (int64, shape (num_frames,)) of one randomly placed training clip.

    rng: a numpy Generator, an int seed, or None (fresh entropy).
    """
    rate, strategy = frame_sampling_rate, frame_sampling_strategy
    _check(total_frames, num_frames, rate, strategy, short_video)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if strategy == "dense":
        span = (num_frames - 1) * rate + 1
        start = int(rng.integers(0, total_frames - span + 1)) if total_frames >= span else 0
        return _dense(total_frames, num_frames, rate, start, short_video)
    if strategy == "uniform":
        return _uniform(total_frames, num_frames, rng.random(num_frames))
    # "random": without replacement when the video is long enough, so no frame is repeated needlessly.
    picks = rng.choice(total_frames, size=num_frames, replace=total_frames < num_frames)
    return np.sort(picks).astype(np.int64)


def eval_clip_indices(total_frames: int, num_frames: int, frame_sampling_rate: int, frame_sampling_strategy: str,
                      short_video: str, num_clips: int) -> list[np.ndarray]:
    """Deterministic frame indices of ``num_clips`` evaluation clips (a list of int64 arrays (num_frames,))."""
    rate, strategy = frame_sampling_rate, frame_sampling_strategy
    _check(total_frames, num_frames, rate, strategy, short_video)
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    clips = []
    for view in range(num_clips):
        position = (view + 0.5) / num_clips  # K=1 -> 0.5: the centre clip / the segment centres
        if strategy == "dense":
            span = (num_frames - 1) * rate + 1
            start = int(round((total_frames - span) * position)) if total_frames >= span else 0
            clips.append(_dense(total_frames, num_frames, rate, start, short_video))
        else:
            clips.append(_uniform(total_frames, num_frames, np.full(num_frames, position)))
    return clips


def _dense(total_frames, num_frames, rate, start, short_video):
    indices = start + np.arange(num_frames, dtype=np.int64) * rate
    if short_video == "loop":
        return indices % total_frames
    return np.minimum(indices, total_frames - 1)


def _uniform(total_frames, num_frames, fractions):
    """One frame per segment at ``fractions`` (in [0, 1)) of each of ``num_frames`` equal segments."""
    segment = total_frames / num_frames
    indices = np.floor((np.arange(num_frames) + fractions) * segment).astype(np.int64)
    return np.minimum(indices, total_frames - 1)


def _check(total_frames, num_frames, rate, strategy, short_video):
    if total_frames < 1:
        raise ValueError(f"cannot sample frames from a video with {total_frames} frames")
    if num_frames < 1 or rate < 1:
        raise ValueError(f"num_frames and frame_sampling_rate must be >= 1, got num_frames={num_frames}, "
                         f"frame_sampling_rate={rate}")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown frame_sampling_strategy {strategy!r}; expected one of {STRATEGIES}")
    if short_video not in SHORT_POLICIES:
        raise ValueError(f"unknown short_video policy {short_video!r}; expected one of {SHORT_POLICIES}")
