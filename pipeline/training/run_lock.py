"""One run per output folder: an OS lock on ``OUTPUT_DIR/_run.lock``, held by every process that writes the folder.

Two trainings into one ``output_dir`` would overwrite each other's checkpoints, weights, results and recipe, and
race on the same checkpoint folder. ``hold_output_dir(training_args)`` takes ``fcntl.flock`` on a lock file
inside the folder; a second run finds it taken and stops at once with one line naming the running one (its pid,
host, start time and command, which the holder writes into the lock file).

The lock is an open file description, not a pid file: the kernel drops it when the holding process ends, however
it ends (a crash, ``kill -9``, a preempted node), so a stale lock never blocks a relaunch. It lasts as long as the
process (a command is one process); taking it again in the same process (tests, a notebook) reuses it.

Who holds it: the processes that write the folder, as the Trainer decides (``training_args.should_save``: the
world's main process, or each node's main process with ``save_on_each_node``). The other ranks of the same run
take nothing, so the ranks of one run never block each other; all ranks then learn whether every holder got the
lock (one ``all_gather_object``), so a second multi-process run stops on every rank, not only on its main one.

Where it cannot hold: ``flock`` is local to one machine on filesystems that do not pass locks to their server.
On Linux NFS (v3 with lockd, v4) ``flock`` is emulated with byte-range locks and is seen across clients; on NFS
mounted with ``nolock``/``local_lock=flock``, on some FUSE filesystems (sshfs, some object-store mounts) and on
Lustre mounted without ``flock``, two nodes can both take it. There, give each run its own ``output_dir``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shlex
import socket
import sys
import time
from pathlib import Path
from typing import Any, Optional

from ..redaction import redact_text
from ..user_errors import UserInputError

logger = logging.getLogger(__name__)

# "_*" files are left out of uploads by both the Trainer's push and pipeline.publish: the host stays private
LOCK_NAME = "_run.lock"
# the lock files this process holds, by real path: the open file keeps the lock, so it must stay referenced
_HELD: dict[str, Any] = {}


class OutputDirInUseError(UserInputError):
    """Another run holds the output folder; this one wrote nothing there."""


def holder_description(lock_path: Path) -> str:
    """What the running holder wrote into the lock file (one line), or a placeholder when it wrote nothing yet."""
    try:
        text = lock_path.read_text(errors="replace").strip()
    except OSError:
        text = ""
    return " ".join(text.split()) or "a process that has not yet written its details"


def try_lock(output_dir: str | Path) -> Optional[str]:
    """Takes the lock of ``output_dir`` for this process (creating the folder); returns None when held, else a
    one-line message naming the run that holds it."""
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = folder / LOCK_NAME
    key = os.path.realpath(lock_path)
    if key in _HELD:
        return None
    handle = open(lock_path, "a+")  # noqa: SIM115 - kept open: the open file IS the lock
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return (f"{folder}: another run is writing this output_dir ({holder_description(lock_path)}); wait for "
                "it to end, stop it, or give this run another --output_dir")
    # who holds it, for the message of the next run (the command without secrets: it may carry --hub_token)
    command = redact_text(shlex.join([sys.executable, *sys.argv]))
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on host {socket.gethostname()}, started {started}: {command}\n")
    handle.flush()
    _HELD[key] = handle
    return None


def release(output_dir: str | Path) -> bool:
    """Drops this process's lock on ``output_dir`` (the kernel does it anyway when the process ends)."""
    handle = _HELD.pop(os.path.realpath(Path(output_dir) / LOCK_NAME), None)
    if handle is None:
        return False
    handle.close()
    return True


def hold_output_dir(training_args) -> None:
    """Takes the output folder for this run on the processes that write it; raises OutputDirInUseError on every
    rank when any of them found it held by another run."""
    problem = try_lock(training_args.output_dir) if training_args.should_save else None
    problems = [problem]
    if training_args.world_size > 1:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            problems = [None] * dist.get_world_size()
            dist.all_gather_object(problems, problem)
    found = next((p for p in problems if p), None)
    if found:
        raise OutputDirInUseError(found)
    if training_args.should_save:
        logger.info("output_dir %s is held by this run (%s)", training_args.output_dir, LOCK_NAME)
