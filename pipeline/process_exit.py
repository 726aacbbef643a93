"""How a command of this package ends: an exception ends the process promptly, with its traceback and a non-zero status.

A Python process that raises does not necessarily end: at interpreter shutdown it joins non-daemon threads, runs
the DataLoader iterators' destructors (which join persistent workers and the pin-memory thread) and destroys
process groups, and any of these can block. Measured on an H200: a training run that crashed in its first
backward kept running (persistent workers, pinned memory) until an outside timeout killed it; on a cluster such
a job holds its GPUs until someone notices. In a multi-process run a rank that is still alive also keeps its
peers waiting in collectives.

``run_or_exit(function)`` runs the command; on an exception it logs the traceback (with the process's rank), flushes
the streams, stops its child processes (DataLoader workers) and leaves with ``os._exit``, which skips every
finaliser that could block. The launcher (torchrun / ``accelerate launch``) sees the non-zero exit and stops the
other ranks.

A run stopped by a preemption signal (pipeline/training/preemption.py) raises ``Preempted`` once its checkpoint is
saved; it leaves with ``PREEMPTED_STATUS`` and one line, no traceback.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import traceback
from typing import Any, Callable

logger = logging.getLogger(__name__)

# Exit status of a failed command, and of one interrupted with Ctrl-C (128 + SIGINT, as shells report it).
FAILURE_STATUS = 1
INTERRUPTED_STATUS = 130
# Seconds child processes get to stop after SIGTERM before they are killed.
CHILD_GRACE_S = 3.0
# Exit status of a run that a signal (SIGTERM, SIGUSR1) stopped after it saved a checkpoint: EX_TEMPFAIL of
# sysexits.h, "a temporary failure, retry later". Distinct from a failure (1), a user error (2) and a death by
# signal (128 + N), so a batch script or a Kubernetes podFailurePolicy can tell "relaunch me" from "fix me".
PREEMPTED_STATUS = 75
# Seconds a preempted run's loader workers get to stop: they hold nothing to save.
PREEMPTED_CHILD_GRACE_S = 0.5


class Preempted(Exception):
    """Training stopped on a signal after saving a checkpoint; the message says which signal and which checkpoint."""


def run_or_exit(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``; returns its result, or ends this process promptly if it raises."""
    try:
        return function(*args, **kwargs)
    except SystemExit as exit_request:
        if exit_request.code in (None, 0):
            raise
        _leave(exit_request.code if isinstance(exit_request.code, int) else FAILURE_STATUS, None)
    except Preempted as stop:
        _leave(PREEMPTED_STATUS, None, line=str(stop), grace_s=PREEMPTED_CHILD_GRACE_S)
    except KeyboardInterrupt:
        _leave(INTERRUPTED_STATUS, "interrupted")
    except BaseException:  # noqa: BLE001 - every failure must end the process, whatever its type
        _leave(FAILURE_STATUS, traceback.format_exc())


def _rank() -> str:
    return os.environ.get("RANK", "0") if "WORLD_SIZE" in os.environ else "0"


def _leave(status: int, report: str | None, *, line: str | None = None, grace_s: float = CHILD_GRACE_S) -> None:
    """Print ``report`` (a failure) or ``line``, stop the child processes and exit with ``status`` without running
    any finaliser."""
    try:
        if report:
            sys.stderr.write(f"[rank {_rank()}] the run failed and is exiting with status {status}:\n{report}\n")
        if line:
            sys.stderr.write(f"[rank {_rank()}] {line}\n")
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed stream must not keep the process alive
                pass
        stop_children(grace_s)
    finally:
        os._exit(status)


def stop_children(grace_s: float = CHILD_GRACE_S) -> int:
    """Terminates this process's multiprocessing children (DataLoader workers), killing those that linger."""
    children = multiprocessing.active_children()
    for child in children:
        try:
            child.terminate()
        except Exception:  # noqa: BLE001
            pass
    for child in children:
        child.join(grace_s / max(1, len(children)))
        if child.is_alive():
            try:
                child.kill()
            except Exception:  # noqa: BLE001
                pass
    return len(children)
