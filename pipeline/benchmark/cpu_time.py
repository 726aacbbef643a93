"""CPU time of this process and of its children (DataLoader workers), for "host CPU-seconds per clip" figures.

CPU-seconds stay meaningful on a shared machine where wall time does not: a clip that costs 20 ms of CPU costs it
whether the other cores are busy or idle.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path


def children_cpu_s() -> float:
    """User + system CPU seconds of this process's child processes (loader workers): those that ended and were
    waited for (getrusage) and those still running (from /proc)."""
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ended.ru_utime + ended.ru_stime + _live_children_cpu_s()


def _live_children_cpu_s() -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    try:
        children = Path(f"/proc/self/task/{os.getpid()}/children").read_text().split()
    except OSError:
        return 0.0
    total = 0.0
    for pid in children:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15 of stat)
    return total


class CpuClock:
    """CPU seconds spent between ``start()`` and ``read()`` by this process and, separately, by its children."""

    def start(self) -> "CpuClock":
        self._main, self._children = time.process_time(), children_cpu_s()
        return self

    def read(self) -> tuple[float, float]:
        """(main process CPU-s, children CPU-s) since start()."""
        return time.process_time() - self._main, children_cpu_s() - self._children
