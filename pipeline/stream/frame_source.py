"""Where a stream's frames come from: a file, a camera (/dev/videoN), a network stream (rtsp://...) or stdin (-).

``open_source`` opens it with PyAV; ``FrameReader`` decodes it on a thread, frame after frame as they arrive,
converts each to RGB (the conversion ``pipeline.inference.decoding`` uses, so a file's frames are bit-identical
to the evaluation's) and pushes it into a ``FrameRing``. With ``realtime`` a file is paced at its frame rate:
each frame is released when a camera would have delivered it, so the whole live path runs without a camera.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Optional

import av
from av.video.reformatter import VideoReformatter

from pipeline.inference.decoding import SCALER_THREADS, VideoDecodeError

from .ring_buffer import FrameRing

NETWORK_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "rtmps://", "srt://", "udp://", "tcp://", "http://", "https://")
# Network sources: give up on a silent server after this long (microseconds, FFmpeg's unit).
NETWORK_TIMEOUT_US = 10_000_000
# ... and on opening (connecting, the response headers, the first packets) after this long in all: FFmpeg's socket
# timeout bounds each read, which a server trickling its headers never trips (PyAV's interrupt callback does)
NETWORK_OPEN_TIMEOUT_S = 30.0
DEFAULT_FPS = 25.0


@dataclass
class OpenedSource:
    """An opened container, its video stream, and what kind of source it is."""

    container: "av.container.InputContainer"
    stream: "av.video.stream.VideoStream"
    name: str
    live: bool  # frames arrive in real time (camera, network, pipe): never wait for the classifier
    fps: float
    declared_frames: int = 0  # what the container's header says it holds (0: it does not say)

    def damage(self, frames_read: int) -> str:
        """Why a file that ended after ``frames_read`` frames is damaged (the probe's rule: its header declares
        more frames than decode, beyond a packed-B-frame AVI's placeholders), else ""."""
        declared = self.declared_frames
        if declared > frames_read + max(2, declared // 10):
            return f"truncated: the header declares {declared} frames, {frames_read} decode"
        return ""


def source_kind(source: str) -> str:
    """"stdin", "camera", "network" or "file"."""
    if source == "-":
        return "stdin"
    if source.startswith("/dev/video"):
        return "camera"
    if source.lower().startswith(NETWORK_PREFIXES):
        return "network"
    return "file"


def open_source(source: str, *, fps: Optional[float] = None, realtime: bool = False) -> OpenedSource:
    """Opens ``source`` for sequential decoding; a clear ``VideoDecodeError`` (naming it) when impossible."""
    kind = source_kind(source)
    options: dict[str, str] = {}
    open_kwargs = {}
    if kind == "camera":
        open_kwargs["format"] = "v4l2"
        if fps:
            options["framerate"] = f"{fps:g}"
    elif kind == "network":
        options["timeout"] = str(NETWORK_TIMEOUT_US)
        open_kwargs["timeout"] = (NETWORK_OPEN_TIMEOUT_S, NETWORK_TIMEOUT_US / 1e6)
        if source.lower().startswith(("rtsp://", "rtsps://")):
            options["rtsp_transport"] = "tcp"  # UDP loses packets, i.e. frames, on busy networks
    elif kind == "file":
        if not os.path.isfile(source):
            raise VideoDecodeError(source, "no such file")
        if os.path.getsize(source) == 0:
            raise VideoDecodeError(source, "empty file (0 bytes)")
    target = sys.stdin.buffer if kind == "stdin" else source
    try:
        container = av.open(target, mode="r", options=options, metadata_errors="ignore", **open_kwargs)
    except av.ExitError:  # the interrupt callback ended the opening: the time limit passed
        raise VideoDecodeError(source, f"not opened within {NETWORK_OPEN_TIMEOUT_S:g} s (connecting, the response "
                                       "headers and the first packets)") from None
    except (av.FFmpegError, OSError, ValueError) as error:
        raise VideoDecodeError(source if kind != "stdin" else "stdin", f"cannot open ({error})") from None
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(source, "no video stream")
    stream = container.streams.video[0]
    stream.codec_context.thread_count = 1
    rate = fps or float(stream.average_rate or stream.guessed_rate or 0) or DEFAULT_FPS
    live = kind != "file" or realtime
    return OpenedSource(container, stream, source, live, rate, int(stream.frames or 0) if kind == "file" else 0)


class FrameReader(threading.Thread):
    """Decodes every frame of an opened source into a ring; ``paced``: release frames at the stream's rate.

    Files read offline (not live) block when the ring is full, so no frame is ever lost; live sources never
    wait. ``frames_read`` counts what was pushed; a decode error ends the stream with the error kept on the ring.
    """

    def __init__(self, source: OpenedSource, ring: FrameRing, *, paced: bool = False,
                 max_frames: Optional[int] = None):
        super().__init__(name="frame-reader", daemon=True)
        self.source = source
        self.ring = ring
        self.paced = paced
        self.max_frames = max_frames
        self.frames_read = 0
        self.started_at: Optional[float] = None
        # how far frames came in behind the stream's clock (frame i due at i / fps after the first): a reader
        # starved of CPU, or a source that does not deliver its nominal rate, shows here, not as skipped windows
        self.max_lag = 0.0
        self._stop_requested = threading.Event()

    def stop(self) -> None:
        self._stop_requested.set()

    @property
    def stopping(self) -> bool:
        return self._stop_requested.is_set()

    def run(self) -> None:
        reformatter = VideoReformatter()
        container, stream = self.source.container, self.source.stream
        error: Optional[BaseException] = None
        try:
            for frame in container.decode(stream):
                if self.started_at is None:  # the stream's clock starts with its first frame
                    self.started_at = time.monotonic()
                if self._stop_requested.is_set():
                    break
                rgb = reformatter.reformat(frame, format="rgb24", threads=SCALER_THREADS).to_ndarray()
                # a camera delivers frame i at i / fps after the first
                due = self.started_at + self.frames_read / self.source.fps
                if self.paced:
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                self.ring.push(rgb, block=not self.source.live)
                if self.source.live:
                    self.max_lag = max(self.max_lag, time.monotonic() - due)
                self.frames_read += 1
                if self.max_frames is not None and self.frames_read >= self.max_frames:
                    break
        except (av.FFmpegError, OSError, ValueError) as failure:
            error = VideoDecodeError(self.source.name, f"decoding stopped after {self.frames_read} frames "
                                                       f"({failure})")
        except BaseException as failure:  # noqa: BLE001 - handed to the consumer, which re-raises it
            error = failure
        finally:
            container.close()
            self.ring.close(error)
