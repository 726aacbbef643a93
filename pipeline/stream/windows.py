"""Overlapping windows over a stream, classified as they complete, never falling behind a live source.

Windows start every ``stride`` frames and span ``window`` frames; each window's frames go to the
``video-classification`` pipeline as a decoded array, so the model's own clip sampling and preprocessing cut
the clip from it (a window of a dense model is one clip span: every sampled frame lies in it). On a live
source the classifier always takes the latest complete window: when the model is slower than the stream, the
windows in between are skipped (and counted), never frames: the reader keeps every frame in the ring. A file
read offline is classified window by window, none skipped.

The windows over a file are ``pipeline(video, timeline=True, window_frames=W, stride_frames=S)``'s: every
``stride`` frames while a whole window fits, then, when the strides do not land on the end, a last window ending
at the last frame; a stream shorter than one window is one window of all its frames (the model's clip sampling
then applies its short-video rule, as the timeline does).

Latency of a window: from the arrival of its last frame to its result; ``inference_ms`` is the pipeline call.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

from pipeline.inference.clip_spec import ClipSpec
from pipeline.inference.video_pipeline import DEFAULT_WINDOW_SECONDS

from .ring_buffer import FrameRing


@dataclass(frozen=True)
class WindowPlan:
    """Window length and stride in frames."""

    window: int
    stride: int

    @classmethod
    def for_model(cls, config, fps: float, *, window: Optional[float] = None, stride: Optional[float] = None,
                  window_frames: Optional[int] = None, stride_frames: Optional[int] = None) -> "WindowPlan":
        """The model's clip span (dense sampling) unless a window is given (frames, else seconds); for other
        strategies DEFAULT_WINDOW_SECONDS. Stride: given (frames, else seconds), else half the window."""
        if window_frames is None:
            if window is not None:
                window_frames = max(1, round(window * fps))
            else:
                span = ClipSpec.from_config(config).span  # one clip of the model's contract
                window_frames = span if span is not None else max(1, round(DEFAULT_WINDOW_SECONDS * fps))
        if stride_frames is None:
            stride_frames = max(1, round(stride * fps)) if stride is not None else max(1, window_frames // 2)
        if window_frames < 1 or stride_frames < 1:
            raise ValueError(f"window and stride must be at least one frame, got {window_frames} and {stride_frames}")
        return cls(int(window_frames), int(stride_frames))

    def ring_capacity(self, fps: float) -> int:
        """Room for the latest complete window, the frames that arrive while it is copied out, and a second."""
        return self.window + 2 * self.stride + int(math.ceil(fps))


@dataclass
class StreamStats:
    """What a run did: frames, windows classified and skipped, latencies (ms)."""

    frames: int = 0
    windows: int = 0
    skipped_windows: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    inference_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self, fps: float, plan: WindowPlan, live: bool) -> dict[str, Any]:
        def pct(values, q):
            ordered = sorted(values)
            return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else None

        stride_ms = 1000.0 * plan.stride / fps
        return {
            "summary": True,
            "live": live,
            "fps": fps,
            "window_frames": plan.window,
            "stride_frames": plan.stride,
            "frames": self.frames,
            "windows": self.windows,
            "skipped_windows": self.skipped_windows,
            "latency_ms": {"median": pct(self.latencies_ms, 0.5), "p95": pct(self.latencies_ms, 0.95),
                           "max": max(self.latencies_ms) if self.latencies_ms else None},
            "inference_ms": {"median": statistics.median(self.inference_ms) if self.inference_ms else None,
                             "max": max(self.inference_ms) if self.inference_ms else None},
            # a live run keeps up when no window had to be skipped
            "kept_up": self.skipped_windows == 0,
            "stride_ms": stride_ms,
            "seconds": self.seconds,
        }


def classify_windows(classifier, ring: FrameRing, plan: WindowPlan, *, fps: float, live: bool, top_k: int = 5,
                     stats: Optional[StreamStats] = None) -> Iterator[dict[str, Any]]:
    """Yields one record per classified window until the stream ends; fills ``stats``.

    Record: ``window`` (its number on the stride grid), ``start`` / ``end`` (seconds of stream time),
    ``start_frame`` / ``end_frame`` (end exclusive), ``predictions`` (top-k), ``latency_ms``, ``inference_ms``,
    ``skipped`` (windows skipped so far).
    """
    stats = stats if stats is not None else StreamStats()
    started = time.monotonic()
    next_start = 0
    covered = 0  # frames [0, covered) are in a classified window
    number = -1
    while True:
        available = ring.wait_for(next_start + plan.window)
        if available < next_start + plan.window:  # closed before the window completed
            if ring.error is not None:
                raise ring.error
            # the frames after the last whole window of a file (or a stream shorter than one window): one last
            # window ending at the last frame, as the timeline's; a live stream ends on its latest whole window
            start = max(0, ring.count - plan.window)
            if ring.count <= covered or (live and covered) or start < ring.count - ring.capacity:
                break
            end = ring.count
        else:
            start = next_start
            if live:
                # the latest complete window on the stride grid; the ones before it are skipped
                latest = next_start + (ring.count - plan.window - next_start) // plan.stride * plan.stride
                stats.skipped_windows += (latest - next_start) // plan.stride
                start = latest
            end = start + plan.window
        frames, ready_at = ring.window(start, end)
        # offline, keep what a last window ending at the last frame may need (it starts after this one)
        ring.hold_from(start + plan.stride if live else start + 1)
        began = time.monotonic()
        predictions = classifier(frames, top_k=top_k)
        done = time.monotonic()
        latency = 1000.0 * (done - ready_at)
        inference = 1000.0 * (done - began)
        stats.windows += 1
        stats.latencies_ms.append(latency)
        stats.inference_ms.append(inference)
        number = max(number + 1, start // plan.stride)
        yield {
            "window": number,
            "start": round(start / fps, 3),
            "end": round(end / fps, 3),
            "start_frame": start,
            "end_frame": end,
            "predictions": [{"label": p["label"], "score": round(float(p["score"]), 5)} for p in predictions],
            "latency_ms": round(latency, 1),
            "inference_ms": round(inference, 1),
            "skipped": stats.skipped_windows,
        }
        covered = end
        if end == ring.count and ring.closed:
            break
        next_start = start + plan.stride
    stats.frames = ring.count
    stats.seconds = time.monotonic() - started
