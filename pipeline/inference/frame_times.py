"""When each frame of a variable-frame-rate video is shown, for timelines in seconds.

A timeline reports its windows in seconds. With a constant frame rate, frame i starts at i / fps; in a
variable-frame-rate file (phone recordings, screen captures, many MKV/MP4/WebM) that is wrong, by up to
seconds: frame times must come from the file's timestamps. ``frame_times`` reads them by demuxing alone (no
decoding): in MP4/MKV/WebM every packet carries one frame, and the sorted packet presentation times are the
frames' times in output order. It returns None, and callers keep i / fps, when the rate is constant (every
time within half a frame of i / fps) or when the packets do not pair one to one with the decoded frames
(AVIs with packed B-frames: their timestamps are not trustworthy anyway, DESIGN fact 12, and AVI is
constant-rate by construction).

Shipped as Hub remote code: imports only the standard library, numpy and av.
"""

from __future__ import annotations

import os
from typing import Optional

import av
import numpy as np


def frame_times(path: str | os.PathLike, num_frames: int, fps: float) -> Optional[np.ndarray]:
    """Seconds from the first frame at which frames 0..num_frames-1 are shown, plus the end of the last one
    (``num_frames + 1`` values, increasing), for a variable-frame-rate video; None when i / fps is right."""
    try:
        with av.open(os.fspath(path), metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            time_base = stream.time_base
            stamps, durations = [], []
            for packet in container.demux(stream):
                if packet.size and packet.pts is not None:
                    stamps.append(packet.pts)
                    durations.append(packet.duration or 0)
    except (av.FFmpegError, IndexError, OSError, UnicodeDecodeError, ValueError):
        return None
    if time_base is None or len(stamps) != num_frames or num_frames < 2:
        return None
    order = np.argsort(stamps, kind="stable")
    pts = np.asarray(stamps, dtype=np.float64)[order]
    if np.any(np.diff(pts) <= 0):
        return None  # repeated timestamps: not one frame per packet
    seconds = (pts - pts[0]) * float(time_base)
    last_duration = float(np.asarray(durations, dtype=np.float64)[order][-1]) * float(time_base)
    if last_duration <= 0:
        last_duration = float(np.median(np.diff(seconds)))
    times = np.append(seconds, seconds[-1] + last_duration)
    if fps and fps > 0:
        constant = np.arange(num_frames + 1) / fps
        if np.max(np.abs(times[:-1] - constant[:-1])) <= 0.5 / fps:
            return None
    return times


def windows_by_time(times: np.ndarray, window: float, stride: float) -> list[tuple[int, int]]:
    """Frame windows [start, end) of ``window`` seconds every ``stride`` seconds on a real timeline ``times``
    (from ``frame_times``), covering every frame: when the strides do not land on the end, a last window ends
    at the last frame. Each window holds at least one frame."""
    num_frames = len(times) - 1
    total = float(times[-1])
    if total <= window:
        return [(0, num_frames)]

    def window_at(start_time: float) -> tuple[int, int]:
        start = int(np.searchsorted(times[:-1], start_time - 1e-9, side="left"))
        end = int(np.searchsorted(times[:-1], start_time + window - 1e-9, side="left"))
        start = min(start, num_frames - 1)
        return start, max(end, start + 1)

    windows = []
    start_time = 0.0
    while start_time + window <= total + 1e-9:
        windows.append(window_at(start_time))
        start_time += stride
    if windows[-1][1] < num_frames:
        last_start = int(np.searchsorted(times[:-1], total - window - 1e-9, side="left"))
        windows.append((min(last_start, num_frames - 1), num_frames))
    return list(dict.fromkeys(windows))
