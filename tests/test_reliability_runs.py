"""One run per output folder: an OS lock (flock) that a second run meets at once, that a crash or kill -9
releases, that the ranks of one run share, and that stops every rank of a second multi-process run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import run_train
from pipeline.training.run_lock import LOCK_NAME, OutputDirInUseError, hold_output_dir, release, try_lock

REPO = Path(__file__).resolve().parents[1]
HOLDER = """
import sys, time
from pipeline.training.run_lock import try_lock
problem = try_lock(sys.argv[1])
print("held" if problem is None else problem, flush=True)
time.sleep(600)
"""


def start_holder(folder: Path) -> subprocess.Popen:
    """A process that takes the lock of ``folder`` and keeps it until killed."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), "--hub_token", "hf_" + "x" * 34],
                              stdout=subprocess.PIPE, text=True, env=env)
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.slow
def test_second_taker_is_told_who_runs_and_kill_9_frees_the_folder(tmp_path):
    holder = start_holder(tmp_path / "out")
    try:
        message = try_lock(tmp_path / "out")
        assert message is not None and "\n" not in message
        assert f"pid {holder.pid} on host {socket.gethostname()}" in message
        assert "started 20" in message and "time.sleep" not in message  # the command line, not the script body
        assert "hf_xxxx" not in message and "<redacted>" in message  # a token on the command line is not shown
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert try_lock(tmp_path / "out") is None  # the kernel released it with the process: no stale lock
    assert f"pid {os.getpid()} " in (tmp_path / "out" / LOCK_NAME).read_text()
    assert try_lock(tmp_path / "out") is None  # the same process again: reused, not blocked by itself
    assert release(tmp_path / "out") and not release(tmp_path / "out")


@pytest.mark.slow
def test_train_into_a_held_folder_stops_at_once_in_one_line(tmp_path):
    out = tmp_path / "out"
    holder = start_holder(out)
    try:
        started = time.monotonic()
        # no dataset behind this path: a run that got past the lock would fail on the data, not on the lock
        result = run_train(["recipes/demo.yaml", "--dataset_dir", str(tmp_path / "no_data"), "--output_dir",
                            str(out), "--report_to", "none"], check=False, timeout=300)
        elapsed = time.monotonic() - started
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert result.returncode == 2, result.stderr[-3000:]
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("train.py: error:")]
    assert len(error_lines) == 1 and f"pid {holder.pid} on host" in error_lines[0], result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # the running run's folder is untouched
    assert elapsed < 120


def _rank_main(rank: int, world: int, port: int, folder: str, results: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    args = SimpleNamespace(output_dir=folder, should_save=rank == 0, world_size=world)
    try:
        hold_output_dir(args)
        outcome = "held"
    except OutputDirInUseError as error:
        outcome = f"refused: {error}"
    Path(results, f"rank{rank}").write_text(outcome)
    dist.barrier()
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ranks_of_one_run_share_the_lock_and_every_rank_of_a_second_run_stops(tmp_path):
    import torch.multiprocessing as mp

    folder, first, second = tmp_path / "out", tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    mp.spawn(_rank_main, args=(2, _free_port(), str(folder), str(first)), nprocs=2)
    assert {p.name: p.read_text() for p in first.iterdir()} == {"rank0": "held", "rank1": "held"}
    holder = start_holder(folder)  # the first run's processes are gone; now another run holds the folder
    try:
        mp.spawn(_rank_main, args=(2, _free_port(), str(folder), str(second)), nprocs=2)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    outcomes = {p.name: p.read_text() for p in second.iterdir()}
    assert sorted(outcomes) == ["rank0", "rank1"]
    assert all(o.startswith("refused: ") and f"pid {holder.pid}" in o for o in outcomes.values()), outcomes
