"""Checks of the ``video-classification`` pipeline's options: one-line errors naming the option and the value.

Called from ``_sanitize_parameters``, so an impossible value fails when the pipeline is built (options given
to ``pipeline(...)``) or called (options given per call), before any video is read: ``top_k=-1`` says so
instead of failing inside ``torch.topk``, ``window=0`` is refused instead of becoming one-frame windows.

Shipped as Hub remote code: imports only the standard library.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

STRATEGIES = ("dense", "uniform", "random")
SHORT_POLICIES = ("clamp", "loop")
FUNCTIONS = ("softmax", "sigmoid", "none")


class PipelineOptionError(ValueError):
    """A pipeline option with an impossible value."""


def _fail(name: str, expected: str, value: Any) -> None:
    raise PipelineOptionError(f"video-classification pipeline: {name} must be {expected}, got {value!r}")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        _fail(name, "a positive integer", value)


def _positive_number(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        _fail(name, "a positive number (seconds)" if name in ("window", "stride") else "a positive number", value)


def check_timeout(value: Any) -> None:
    """``timeout``: seconds for connecting and for each read, or a (connect, read) pair."""
    values = value if isinstance(value, (tuple, list)) else (value,)
    if len(values) not in (1, 2):
        _fail("timeout", "seconds, or a (connect, read) pair of seconds", value)
    for item in values:
        if isinstance(item, bool) or not isinstance(item, Real) or not math.isfinite(item) or item <= 0:
            _fail("timeout", "seconds, or a (connect, read) pair of seconds", value)


def check_options(options: dict[str, Any]) -> None:
    """Raises PipelineOptionError for the first option (not None) whose value cannot work."""
    for name in ("top_k", "num_clips", "num_crops", "window_frames", "stride_frames", "num_frames",
                 "frame_sampling_rate", "max_download_bytes", "batch_size"):
        if options.get(name) is not None:
            _positive_int(name, options[name])
    for name in ("window", "stride", "fps", "max_download_seconds"):
        if options.get(name) is not None:
            _positive_number(name, options[name])
    workers = options.get("num_workers")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, Integral) or workers < 0):
        _fail("num_workers", "0 or a positive integer", workers)
    if options.get("timeout") is not None:
        check_timeout(options["timeout"])
    if options.get("timeline") is not None and not isinstance(options["timeline"], bool):
        _fail("timeline", "True or False", options["timeline"])
    strategy = options.get("frame_sampling_strategy")
    if strategy is not None and strategy not in STRATEGIES:
        _fail("frame_sampling_strategy", " | ".join(STRATEGIES), strategy)
    short = options.get("short_video")
    if short is not None and short not in SHORT_POLICIES:
        _fail("short_video", " | ".join(SHORT_POLICIES), short)
    function = options.get("function_to_apply")
    if function is not None and function not in FUNCTIONS:
        _fail("function_to_apply", " | ".join(FUNCTIONS), function)
