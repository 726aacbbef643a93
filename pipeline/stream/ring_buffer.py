"""A fixed ring of the most recent decoded frames, shared by the reader thread and the classifier.

Frames are numbered from 0 in arrival order; the ring keeps the last ``capacity`` of them in one preallocated
uint8 array (no allocation per frame) with the monotonic time each arrived. The reader ``push``es; the classifier
waits for a frame count, copies a window out under the lock, and says from which frame on it still needs frames
(``hold_from``): a reader told to ``block`` (files read offline) then waits rather than overwrite them, while a
live reader never waits (the classifier skips windows instead).
"""

from __future__ import annotations

import threading
import time
from typing import Optional

import numpy as np


class StreamClosed(Exception):
    """The stream ended (or failed) before the frames asked for arrived."""


class FrameRing:
    """The last ``capacity`` frames (H, W, 3) uint8 of a stream, with their arrival times."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"ring capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self._frames: Optional[np.ndarray] = None
        self._arrival = np.zeros(self.capacity, dtype=np.float64)
        self._count = 0
        self._hold_from = 0
        self._closed = False
        self._error: Optional[BaseException] = None
        self._changed = threading.Condition()

    # -- reader side -----------------------------------------------------------------------------------------
    def push(self, frame: np.ndarray, *, block: bool = False, arrival: Optional[float] = None) -> int:
        """Stores the next frame; returns its number. ``block``: wait while it would overwrite a held frame."""
        with self._changed:
            if self._frames is None:
                self._frames = np.empty((self.capacity, *frame.shape), dtype=np.uint8)
            elif frame.shape != self._frames.shape[1:]:
                raise ValueError(f"frame {self._count} is {frame.shape}, earlier frames were "
                                 f"{self._frames.shape[1:]}: the stream changed resolution")
            while block and self._count - self._hold_from >= self.capacity and not self._closed:
                self._changed.wait()
            slot = self._count % self.capacity
            self._frames[slot] = frame
            self._arrival[slot] = time.monotonic() if arrival is None else arrival
            self._count += 1
            self._changed.notify_all()
            return self._count - 1

    def close(self, error: Optional[BaseException] = None) -> None:
        """No more frames (``error``: why the reader stopped early); wakes every waiter."""
        with self._changed:
            self._closed = True
            self._error = self._error or error
            self._changed.notify_all()

    # -- classifier side -------------------------------------------------------------------------------------
    @property
    def count(self) -> int:
        """Frames pushed so far."""
        return self._count

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def error(self) -> Optional[BaseException]:
        return self._error

    def wait_for(self, count: int, timeout: Optional[float] = None) -> int:
        """Blocks until at least ``count`` frames arrived or the stream closed; returns the frame count."""
        with self._changed:
            self._changed.wait_for(lambda: self._count >= count or self._closed, timeout)
            return self._count

    def hold_from(self, first: int) -> None:
        """Frames before ``first`` are no longer needed (a blocking reader may overwrite them)."""
        with self._changed:
            self._hold_from = max(self._hold_from, int(first))
            self._changed.notify_all()

    def window(self, start: int, end: int) -> tuple[np.ndarray, float]:
        """A copy of frames [start, end) and the arrival time of the last one."""
        with self._changed:
            if end > self._count or end <= start:
                raise ValueError(f"frames [{start}, {end}) are not all in (have {self._count})")
            if start < self._count - self.capacity:
                raise ValueError(f"frame {start} was already overwritten (ring of {self.capacity} frames, "
                                 f"{self._count} pushed)")
            slots = np.arange(start, end) % self.capacity
            return self._frames[slots], float(self._arrival[(end - 1) % self.capacity])
