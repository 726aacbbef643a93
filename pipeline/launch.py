"""``python -m pipeline.launch [accelerate launch options] pipeline/train.py RECIPE [--key value]``: ``accelerate
launch`` whose own exit status says when a signal stopped the run after it saved a checkpoint.

Clusters signal the launcher (SLURM: every process of the job step; Kubernetes: the container's first process). The
launcher of several processes is torch's elastic agent: it forwards SIGTERM (and SIGINT, SIGHUP, SIGQUIT) to the
ranks, waits ``TORCH_ELASTIC_SHUTDOWN_TIMEOUT`` seconds (30 by default) before it kills them, and raises its own
``SignalException``; a rank that exits with a non-zero status is a ``ChildFailedError`` to it. Either way ``accelerate
launch`` ends with a traceback and status 1, whatever the ranks did. This command runs ``accelerate launch`` in this
process with three differences:

- the ranks' preemption status comes through: when they stopped on a signal and saved a checkpoint
  (pipeline/training/preemption.py; each rank says so in the file named by ``PIPELINE_STOP_REPORT``), it exits with
  ``PREEMPTED_STATUS`` (75), like the ranks, and one line instead of a traceback; any other failure keeps its status;
- the elastic agent also forwards SIGUSR1 (``TORCHELASTIC_SIGNALS_TO_HANDLE``: SLURM's ``--signal=USR1@120``) and
  waits ``SHUTDOWN_TIMEOUT_S`` before its SIGKILL, so the ranks have the cluster's grace period to save (either
  variable, when set, wins);
- with one process (accelerate's simple launcher) it forwards SIGTERM / SIGUSR1 to the training process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.process_exit import PREEMPTED_STATUS, FAILURE_STATUS  # noqa: E402
from pipeline.training.preemption import SIGNALS, STOP_REPORT_ENV, read_stop_report  # noqa: E402

ELASTIC_SIGNALS = "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1"
# Seconds the elastic agent waits for the signalled ranks before it kills them: more than any grace period a
# cluster gives (SLURM's --signal lead time, Kubernetes' terminationGracePeriodSeconds), which then decides.
SHUTDOWN_TIMEOUT_S = 600


def _forward_to_children(signum, frame) -> None:
    """Single-process launch: pass the signal on to the training process (accelerate does not)."""
    import psutil

    for child in psutil.Process().children():
        try:
            child.send_signal(signum)
        except psutil.Error:
            pass


def main(argv: list[str] | None = None) -> int:
    from accelerate.commands.launch import launch_command, launch_command_parser

    os.environ.setdefault("TORCHELASTIC_SIGNALS_TO_HANDLE", ELASTIC_SIGNALS)
    os.environ.setdefault("TORCH_ELASTIC_SHUTDOWN_TIMEOUT", str(SHUTDOWN_TIMEOUT_S))
    args = launch_command_parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pipeline-launch-") as folder:
        report = Path(folder) / "stopped.txt"
        os.environ[STOP_REPORT_ENV] = str(report)
        for signum in SIGNALS:  # the elastic agent installs its own handlers over these when it starts
            signal.signal(signum, _forward_to_children)
        try:
            launch_command(args)
        except BaseException as error:  # noqa: BLE001 - ChildFailedError, SignalException, CalledProcessError, ...
            stopped = read_stop_report(report)
            if stopped:
                print(f"pipeline.launch: {stopped[-1]}", file=sys.stderr, flush=True)
                return PREEMPTED_STATUS
            if isinstance(error, subprocess.CalledProcessError):
                return error.returncode if error.returncode > 0 else 128 - error.returncode
            sigval = getattr(error, "sigval", None)
            if sigval is not None:  # torch's SignalException: the launcher itself was signalled
                print(f"pipeline.launch: stopped by {signal.Signals(sigval).name}; no checkpoint was saved",
                      file=sys.stderr, flush=True)
                return 128 + int(sigval)
            if isinstance(error, SystemExit):
                return error.code if isinstance(error.code, int) else FAILURE_STATUS
            raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
