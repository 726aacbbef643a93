"""Real-time classification of a live stream: ``python -m pipeline.stream --model DIR --source SOURCE``.

A reader thread decodes frames as they arrive (``frame_source``: file, /dev/videoN, rtsp://..., or - for stdin)
into a ring buffer (``ring_buffer``); the main thread classifies overlapping windows cut with the model's clip
contract and prints one JSON line per window (``windows``), skipping windows, never frames, when the model is
slower than the stream.
"""

from .frame_source import FrameReader, OpenedSource, open_source, source_kind
from .ring_buffer import FrameRing
from .windows import StreamStats, WindowPlan, classify_windows

__all__ = ["FrameReader", "FrameRing", "OpenedSource", "StreamStats", "WindowPlan", "classify_windows",
           "open_source", "source_kind"]
