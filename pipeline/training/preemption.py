"""Preemption: SIGTERM or SIGUSR1 to any rank stops every rank after its current step, with a checkpoint saved.

Clusters announce the end of a job with a signal (DESIGN fact 19): SLURM sends SIGTERM at preemption, or the
signal of ``#SBATCH --signal=USR1@SECONDS`` that long before the time limit; Kubernetes sends SIGTERM and, after
``terminationGracePeriodSeconds``, SIGKILL. ``Preemption`` (a ``TrainerCallback``, added by ``VideoTrainer``):

- while training, the handlers of ``SIGNALS`` only record the signal (a handler that saved or raised could
  interrupt a collective, a checkpoint write or a loader mid-batch); the previous handlers come back at the end;
- at every optimizer step's end the ranks add up, in one tiny all-reduce, which signal each of them holds, so a
  signal to ONE rank stops them all at the same step; the step is finished, ``control.should_save`` and
  ``should_training_stop`` are set and the Trainer writes ``checkpoint-<step>`` as it would any other;
- ``VideoTrainer.train`` then raises ``pipeline.process_exit.Preempted`` (no best-model reload, no final
  evaluation), and the command exits with ``PREEMPTED_STATUS`` (75). Every rank logs the signal, the rank(s) that
  received it and the checkpoint.

A second signal changes nothing (the flag is already set). A SIGKILL in the middle of the save leaves a checkpoint
folder without ``trainer_state.json`` (written last, atomically): the relaunch sets it aside and resumes from the
previous checkpoint (pipeline.training.checkpoints). Relaunching the same command resumes from the saved step, every
step trained once (``plan_relaunch`` and the Trainer's data skip; exact losses: pipeline.training.clip_randomness).

Loader workers ignore both signals (``ignore_signals_in_workers``, installed by ``VideoTrainer`` on its loaders). A
cluster signals every process of the job, and torch's elastic agent signals each rank's whole process group; torch's
own SIGTERM handler in a worker ends it, and the rank then fails in the middle of its step ("DataLoader worker ...
is killed by signal: Terminated"). The rank stops its workers when it exits.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Optional

import torch
from transformers import TrainerCallback

from pipeline.process_exit import PREEMPTED_STATUS, Preempted

logger = logging.getLogger("pipeline.preemption")

SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
# A file each rank appends its stop line to, when the launcher (python -m pipeline.launch) names one: the launcher
# then exits with the ranks' status instead of its own.
STOP_REPORT_ENV = "PIPELINE_STOP_REPORT"


def read_stop_report(path) -> list[str]:
    """The stop lines the ranks wrote (empty: no rank stopped on a signal with its checkpoint saved)."""
    try:
        return [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError:
        return []


class _IgnoringSignals:
    """A DataLoader ``worker_init_fn``: the worker ignores ``signals`` unless its rank sends SIGTERM (how the rank, and
    multiprocessing at exit, stop it), then runs the loader's own init (picklable, for spawn).

    The signals are blocked and a thread takes them with ``sigwaitinfo``, which tells who sent each: ignoring them
    outright (SIG_IGN) would leave a worker that its own rank cannot terminate, and multiprocessing waits for it at
    exit forever.
    """

    def __init__(self, init, signals):
        self.init = init
        self.signals = tuple(signals)

    def __call__(self, worker_id: int) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, self.signals)  # threads started from now on inherit the mask
        threading.Thread(target=_exit_when_the_parent_asks, args=(os.getppid(), self.signals), daemon=True,
                         name="preemption-signals").start()
        if self.init is not None:
            self.init(worker_id)


def _exit_when_the_parent_asks(parent: int, signals) -> None:
    while True:
        info = signal.sigwaitinfo(signals)
        if info.si_signo == signal.SIGTERM and info.si_pid == parent:
            os._exit(0)  # what torch's own worker handler does when the parent terminates it


def ignore_signals_in_workers(loader, signals=SIGNALS):
    """``loader``, whose workers (started from now on) ignore ``signals``; the loader's own worker_init_fn still runs."""
    # accelerate's prepared loaders are adapters: the DataLoader that starts the workers is their base_dataloader
    target = loader.__dict__.get("base_dataloader", loader) if loader is not None else None
    init = getattr(target, "worker_init_fn", None)
    if target is not None and getattr(target, "num_workers", 0) and not isinstance(init, _IgnoringSignals):
        target.worker_init_fn = _IgnoringSignals(init, signals)
    return loader


class Preemption(TrainerCallback):
    """Records ``SIGNALS`` during training; at each step's end all ranks agree to stop and save (module docstring)."""

    def __init__(self, signals=SIGNALS):
        self.signals = tuple(signals)
        self.received: Optional[int] = None  # the first signal this process received (set by the handler)
        self.stopped: Optional[dict] = None  # {"signal", "ranks", "step"} once the ranks agreed to stop
        self._owner = os.getpid()
        self._previous: dict[int, object] = {}

    # -- handlers: record, nothing else ------------------------------------------------------------------------
    def _handle(self, signum, frame) -> None:
        if os.getpid() != self._owner:
            return  # a forked child that kept the handler: the rank it serves decides
        if self.received is None:
            self.received = signum

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread() or self._previous:
            return
        self._owner = os.getpid()
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous = {}

    # -- the Trainer's hooks ----------------------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):
        self.install()

    def on_step_end(self, args, state, control, **kwargs):
        signals = self.signals_per_rank(args.device)
        if not any(signals):
            return
        names = sorted({signal.Signals(s).name for s in signals if s})
        ranks = [rank for rank, s in enumerate(signals) if s]
        self.stopped = {"signal": "/".join(names), "ranks": ranks, "step": state.global_step}
        control.should_save = True
        control.should_training_stop = True
        logger.warning("%s received by rank(s) %s: step %d is done; saving checkpoint-%d, then exiting with "
                       "status %d (relaunch the same command to resume)", self.stopped["signal"],
                       ",".join(map(str, ranks)), state.global_step, state.global_step, PREEMPTED_STATUS)

    def on_train_end(self, args, state, control, **kwargs):
        self.restore()

    def signals_per_rank(self, device) -> list[int]:
        """The signal each rank holds (0: none), the same list in every rank: one all-reduce of world_size ints."""
        mine = self.received or 0
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return [mine]
        world, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
        flags = torch.zeros(world, dtype=torch.int64, device=device)
        flags[rank] = mine
        torch.distributed.all_reduce(flags)
        return [int(v) for v in flags.tolist()]

    def raise_if_stopped(self, output_dir: str) -> None:
        """After ``Trainer.train`` returns: ``Preempted`` naming the signal and the checkpoint, when it stopped."""
        if self.stopped is None:
            return
        folder = os.path.join(output_dir, f"checkpoint-{self.stopped['step']}")
        line = (f"training stopped by {self.stopped['signal']} (received by rank(s) "
                f"{','.join(map(str, self.stopped['ranks']))}) after step {self.stopped['step']}; {folder} is "
                f"saved. Exit status {PREEMPTED_STATUS}: relaunch the same command to resume")
        report = os.environ.get(STOP_REPORT_ENV)
        if report:
            try:
                with open(report, "a", encoding="utf-8") as handle:
                    handle.write(line + "\n")
            except OSError as error:
                logger.warning("cannot write the stop report %s for the launcher: %s", report, error)
        raise Preempted(line)
