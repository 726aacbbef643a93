"""Which frame indices a clip is made of: training (random) and evaluation (deterministic, multi-view).

Strategies:
    "dense"    `clip_len` frames, one every `rate` frames (span (clip_len - 1) * rate + 1). Training: random
               start; evaluation: K starts at the centres of K equal parts of the possible start range (K=1:
               the centre clip).
    "uniform"  TSN segments: the video is cut into `clip_len` equal segments, one frame per segment. Training:
               a random frame in each segment; evaluation: segment centres, view k of K shifted by
               (k + 0.5) / K of a segment. Covers the whole video, whatever its length (`rate` and `short`
               are unused).
    "random"   training: `clip_len` random frames of the whole video, sorted; evaluation: as "uniform".

A video shorter than a dense span is handled by `short`: "clamp" repeats the last frame, "loop" wraps around.

Shipped with inference code: imports only numpy and the standard library.
"""

from __future__ import annotations

import numpy as np

STRATEGIES = ("dense", "uniform", "random")
SHORT_POLICIES = ("clamp", "loop")


def train_clip_indices(num_frames: int, clip_len: int, rate: int = 1, strategy: str = "dense", rng=None,
                       short: str = "clamp") -> np.ndarray:
    """Frame indices (int64, shape (clip_len,)) of one randomly placed training clip.

    rng: a numpy Generator, an int seed, or None (fresh entropy).
    """
    _check(num_frames, clip_len, rate, strategy, short)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if strategy == "dense":
        span = (clip_len - 1) * rate + 1
        start = int(rng.integers(0, num_frames - span + 1)) if num_frames >= span else 0
        return _dense(num_frames, clip_len, rate, start, short)
    if strategy == "uniform":
        return _uniform(num_frames, clip_len, rng.random(clip_len))
    # "random": without replacement when the video is long enough, so no frame is repeated needlessly.
    picks = rng.choice(num_frames, size=clip_len, replace=num_frames < clip_len)
    return np.sort(picks).astype(np.int64)


def eval_clip_indices(num_frames: int, clip_len: int, rate: int = 1, strategy: str = "dense",
                      num_clips: int = 1, short: str = "clamp") -> list[np.ndarray]:
    """Deterministic frame indices of `num_clips` evaluation clips (a list of int64 arrays (clip_len,))."""
    _check(num_frames, clip_len, rate, strategy, short)
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    clips = []
    for view in range(num_clips):
        position = (view + 0.5) / num_clips  # K=1 -> 0.5: the centre clip / the segment centres
        if strategy == "dense":
            span = (clip_len - 1) * rate + 1
            start = int(round((num_frames - span) * position)) if num_frames >= span else 0
            clips.append(_dense(num_frames, clip_len, rate, start, short))
        else:
            clips.append(_uniform(num_frames, clip_len, np.full(clip_len, position)))
    return clips


def _dense(num_frames, clip_len, rate, start, short):
    indices = start + np.arange(clip_len, dtype=np.int64) * rate
    if short == "loop":
        return indices % num_frames
    return np.minimum(indices, num_frames - 1)


def _uniform(num_frames, clip_len, fractions):
    """One frame per segment at `fractions` (in [0, 1)) of each of `clip_len` equal segments."""
    segment = num_frames / clip_len
    indices = np.floor((np.arange(clip_len) + fractions) * segment).astype(np.int64)
    return np.minimum(indices, num_frames - 1)


def _check(num_frames, clip_len, rate, strategy, short):
    if num_frames < 1:
        raise ValueError(f"cannot sample frames from a video with {num_frames} frames")
    if clip_len < 1 or rate < 1:
        raise ValueError(f"clip_len and rate must be >= 1, got clip_len={clip_len}, rate={rate}")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown frame sampling strategy {strategy!r}; expected one of {STRATEGIES}")
    if short not in SHORT_POLICIES:
        raise ValueError(f"unknown short-video policy {short!r}; expected one of {SHORT_POLICIES}")
