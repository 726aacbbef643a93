"""Preemption and exact resume: a signal saves the step in progress and exits with the documented status; the
relaunch trains every step once, with the losses of a run that was never interrupted.

- in one process (a tiny VideoMAE on random clips): SIGUSR1 mid-step -> that step's checkpoint, ``Preempted``, the
  previous handler back; resuming gives the uninterrupted losses;
- ``pipeline/train.py`` on a small demo: relaunching from mid-epoch checkpoints (loader workers or none) gives the
  per-step losses and the test loss of the uninterrupted run;
- the same demo written as WebDataset shards and streamed (``--dataset webdataset``): relaunching from checkpoints in
  the stream's second and third epochs gives the uninterrupted losses too (``StreamPosition``);
- 2-process CPU DDP through ``python -m pipeline.launch`` (accelerate_configs/cpu_ddp.yaml): SIGTERM to one rank, or
  to the launcher, stops both ranks with a checkpoint, status 75 from the launcher, a log line naming the signal in
  every rank; the relaunch trains the remaining steps once, and both interrupted runs end with the same losses;
- loader workers ignore the signals a cluster sends to every process, and stop when their rank terminates them.

Run alone: ``python -m pytest -q tests/test_preemption.py``. Measured on 2 CPU cores shared with other jobs (load ~15):
about 45 s (one process), 40 s (workers), 2.5 min (demo resumed twice), 7 min (four 2-process launches).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
from transformers import TrainerCallback

from conftest import REPO, run_train
from pipeline.process_exit import PREEMPTED_STATUS, Preempted
from pipeline.training.checkpoints import checkpoint_problem, read_trainer_state
from test_reliability_resume import make_trainer

pytestmark = pytest.mark.slow

CONFIG = REPO / "accelerate_configs" / "cpu_ddp.yaml"


def losses(out: Path) -> dict[int, float]:
    """{step: training loss} of a run folder (logging_steps 1); a step logged twice is an error."""
    history = read_trainer_state(out / "trainer_state.json")["log_history"]
    steps = [entry["step"] for entry in history if "loss" in entry]
    assert len(steps) == len(set(steps)), f"steps logged twice: {steps}"
    return {entry["step"]: entry["loss"] for entry in history if "loss" in entry}


# --- in one process ---------------------------------------------------------------------------------------------

class SignalAt(TrainerCallback):
    """Sends ``signum`` to this process ``times`` times as step ``step`` begins (mid-step for the Trainer)."""

    def __init__(self, step: int, signum: int, times: int = 1):
        self.step, self.signum, self.times = step, signum, times

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step + 1 == self.step:
            for _ in range(self.times):
                os.kill(os.getpid(), self.signum)


def trainer_losses(trainer) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in trainer.state.log_history if "loss" in e}


def test_a_signal_mid_step_saves_that_step_and_resuming_gives_the_uninterrupted_losses(tmp_path):
    plain = make_trainer(tmp_path / "plain", max_steps=6, logging_steps=1, save_steps=100)
    plain.train()
    expected = trainer_losses(plain)

    out = tmp_path / "run"
    before = signal.getsignal(signal.SIGUSR1)
    trainer = make_trainer(out, max_steps=6, logging_steps=1, save_steps=100)  # no periodic checkpoint before 6
    trainer.add_callback(SignalAt(3, signal.SIGUSR1, times=2))  # a second signal changes nothing
    with pytest.raises(Preempted, match=r"stopped by SIGUSR1 \(received by rank\(s\) 0\) after step 3; .*checkpoint-3"):
        trainer.train()
    assert signal.getsignal(signal.SIGUSR1) is before  # the handler is the caller's again
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-3"]
    assert checkpoint_problem(out / "checkpoint-3") is None
    assert trainer.state.global_step == 3

    resumed = make_trainer(out, max_steps=6, logging_steps=1, save_steps=100)
    resumed.train(resume_from_checkpoint=str(out / "checkpoint-3"))
    got = trainer_losses(resumed)
    assert sorted(got) == [1, 2, 3, 4, 5, 6]  # history of the first launch, then steps 4-6 once
    assert got == pytest.approx(expected, abs=1e-6)


class SlowRange(torch.utils.data.Dataset):
    def __len__(self):
        return 10_000

    def __getitem__(self, i):
        time.sleep(0.002)
        return i


def test_loader_workers_ignore_the_cluster_signals_but_stop_when_their_rank_terminates_them():
    """A cluster signals every process of the job: a worker that died of it would fail its rank's step."""
    from pipeline.training.preemption import ignore_signals_in_workers

    from accelerate.data_loader import DataLoaderShard

    # the kind of loader the Trainer iterates: accelerate's adapter around the DataLoader that starts the workers
    loader = ignore_signals_in_workers(DataLoaderShard(SlowRange(), batch_size=2, num_workers=1,
                                                       persistent_workers=True))
    batches = iter(loader)
    next(batches)
    (worker,) = [psutil.Process(child.pid) for child in multiprocessing.active_children()]
    for name in ("TERM", "USR1"):  # sent by another process, as the cluster or torch's elastic agent would
        subprocess.run(["kill", f"-{name}", str(worker.pid)], check=True)
    time.sleep(0.5)
    assert [int(next(batches)[0]) for _ in range(3)] == [2, 4, 6] and worker.is_running()
    start = time.monotonic()
    os.kill(worker.pid, signal.SIGTERM)  # from its rank: it stops at once
    assert worker.wait(timeout=5) == 0 and time.monotonic() - start < 2


# --- train.py on a small demo --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_demo(tmp_path_factory) -> Path:
    from pipeline.data.demo import ensure_demo_dataset

    return ensure_demo_dataset(tmp_path_factory.mktemp("preemption_data") / "demo", clips_per_class=6,
                               groups_per_class=3, num_frames=16)


def demo_args(data: Path, out: Path, *extra: str, steps: int = 12, batch: int = 4) -> list[str]:
    """The demo recipe, small: 16 training videos, 4 steps an epoch at batch 4, a checkpoint every 2 steps."""
    return ["recipes/demo.yaml", "--dataset", "ucf101", "--dataset_dir", str(data), "--output_dir", str(out),
            "--max_steps", str(steps), "--eval_steps", "2", "--save_steps", "2", "--save_total_limit", "20",
            "--per_device_train_batch_size", str(batch), "--logging_steps", "1", "--report_to", "none",
            "--disable_tqdm", "true", *extra]


def relaunch_from_checkpoint_matches(whole: Path, out: Path, step: int, args: list[str], env: dict) -> None:
    """Copies ``whole``'s checkpoints up to ``step`` into ``out`` (the run as it was when it stopped there),
    relaunches ``args`` (whose output_dir is ``out``) and checks every step's loss and the test loss equal
    ``whole``'s."""
    expected = losses(whole)
    test_loss = json.loads((whole / "all_results.json").read_text())["test_loss"]
    out.mkdir()
    for earlier in range(2, step + 1, 2):
        shutil.copytree(whole / f"checkpoint-{earlier}", out / f"checkpoint-{earlier}")
    result = run_train(args, env=env)
    assert f"resuming from the last checkpoint in output_dir: {out / f'checkpoint-{step}'}" in result.stdout
    got = losses(out)
    assert sorted(got) == sorted(expected)
    assert got == pytest.approx(expected, abs=1e-6), {s: (got[s], expected[s]) for s in got if s > step}
    assert json.loads((out / "all_results.json").read_text())["test_loss"] == pytest.approx(test_loss, abs=1e-6)


def test_resuming_the_demo_mid_epoch_gives_the_losses_of_the_uninterrupted_run(small_demo, tmp_path):
    env = {"VIDEO_PIPELINE_CACHE": str(tmp_path / "cache")}
    whole = tmp_path / "whole"
    run_train(demo_args(small_demo, whole, "--dataloader_num_workers", "2"), env=env)
    assert sorted(losses(whole)) == list(range(1, 13))
    # (checkpoint, loader workers of the relaunch): 6 is half way through epoch 2, 10 through epoch 3; the draws
    # do not depend on the workers either
    for step, workers in ((6, "2"), (10, "0")):
        state = read_trainer_state(whole / f"checkpoint-{step}" / "trainer_state.json")
        assert state["epoch"] % 1 == pytest.approx(0.5)
        out = tmp_path / f"from{step}"
        loader = ["--dataloader_num_workers", workers, "--dataloader_persistent_workers", str(workers != "0").lower()]
        relaunch_from_checkpoint_matches(whole, out, step, demo_args(small_demo, out, *loader), env)


@pytest.fixture(scope="module")
def small_demo_shards(small_demo, tmp_path_factory) -> Path:
    """The small demo written once by the shard writer: 2 train shards (one per loader worker), 16 videos."""
    root = tmp_path_factory.mktemp("preemption_shards")
    result = subprocess.run([sys.executable, "-m", "pipeline.data.shards", "--dataset", "ucf101", "--dataset_dir",
                             str(small_demo), "--output_dir", str(root / "shards"), "--min_shards", "2"],
                            cwd=REPO, env=dict(os.environ, VIDEO_PIPELINE_CACHE=str(root / "cache")),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    manifest = json.loads((root / "shards" / "manifest.json").read_text())
    assert manifest["splits"]["train"]["samples"] == 16 and len(manifest["splits"]["train"]["shards"]) == 2
    return root / "shards"


def test_resuming_a_stream_mid_epoch_gives_the_losses_of_the_uninterrupted_run(small_demo_shards, tmp_path):
    # streamed from shards: the Trainer sees no epoch length, so the checkpoint's place in the stream (epoch and
    # batches trained in it) is what the relaunch resumes from, not its global step
    env = {"VIDEO_PIPELINE_CACHE": str(tmp_path / "cache"), "HF_DATASETS_CACHE": str(tmp_path / "hf")}
    stream = ["--dataset", "webdataset", "--dataset_dir", str(small_demo_shards), "--shuffle_buffer_size", "6",
              "--dataloader_num_workers", "2", "--dataloader_persistent_workers", "true",
              "--load_best_model_at_end", "false"]  # the test loss is then the last model's, trained after the resume
    whole = tmp_path / "whole"
    run_train(demo_args(small_demo_shards, whole, *stream), env=env)
    assert sorted(losses(whole)) == list(range(1, 13))
    for step in (6, 10):  # half way through the stream's epoch 2, then 3 (4 batches an epoch)
        out = tmp_path / f"from{step}"
        relaunch_from_checkpoint_matches(whole, out, step, demo_args(small_demo_shards, out, *stream), env)


# --- 2-process DDP through the launcher ----------------------------------------------------------------------------

def launcher_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    env.update(PYTHONUNBUFFERED="1", VIDEO_PIPELINE_CACHE=str(tmp_path / "cache"))
    return env


def launch(args: list[str], env: dict) -> subprocess.Popen:
    command = [sys.executable, "-m", "pipeline.launch", "--config_file", str(CONFIG), "pipeline/train.py", *args]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def ranks_of(launcher: subprocess.Popen) -> dict[int, psutil.Process]:
    """{rank: process} of the training processes the launcher started."""
    found = {}
    for child in psutil.Process(launcher.pid).children():
        try:
            rank = child.environ().get("RANK")
        except psutil.Error:
            continue
        if rank is not None:
            found[int(rank)] = child
    return found


def signal_when_saved(launcher: subprocess.Popen, out: Path, target, timeout: float = 300) -> None:
    """Once checkpoint-2 is whole, SIGTERM to ``target(launcher)``'s process."""
    deadline = time.monotonic() + timeout
    while checkpoint_problem(out / "checkpoint-2") is not None:
        assert launcher.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint-2 in time"
        time.sleep(0.2)
    os.kill(target(launcher), signal.SIGTERM)


def interrupted_and_relaunched(data: Path, out: Path, env: dict, whom: str, *extra: str) -> tuple[int, str]:
    """Launches 2-process DDP, sends SIGTERM to rank 1 or to the launcher once checkpoint-2 is whole, checks the
    stop, relaunches the same command and checks it finished; returns (the step it stopped at, the stop's log)."""
    args = demo_args(data, out, "--dataloader_num_workers", "1", *extra, steps=16, batch=2)
    launcher = launch(args, env)
    target = (lambda p: ranks_of(p)[1].pid) if whom == "rank1" else (lambda p: p.pid)
    try:
        signal_when_saved(launcher, out, target)
        log, _ = launcher.communicate(timeout=300)
    finally:
        launcher.kill()
    assert launcher.returncode == PREEMPTED_STATUS, log[-5000:]
    # The launcher forwards the signal to every rank, one after the other: a step can end between the two, and the
    # ranks then agree to stop having seen it on one rank only. Either way both ranks name the same receivers.
    named = {rank: re.findall(rf"\[rank {rank}\] pipeline\.preemption: SIGTERM received by rank\(s\) ([0-9,]+): step",
                              log) for rank in (0, 1)}
    assert named[0] == named[1] and len(named[0]) == 1, log[-5000:]
    assert named[0][0] in (("1",) if whom == "rank1" else ("0", "1", "0,1")), log[-5000:]
    step = max(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*"))
    assert 2 <= step < 16 and checkpoint_problem(out / f"checkpoint-{step}") is None, log[-5000:]
    assert f"after step {step}; {out / f'checkpoint-{step}'} is saved. Exit status 75" in log
    assert not (out / "all_results.json").exists()  # stopped: no final evaluation

    relaunch = launch(args, env)
    log2, _ = relaunch.communicate(timeout=600)
    assert relaunch.returncode == 0, log2[-5000:]
    assert f"resuming from the last checkpoint in output_dir: {out / f'checkpoint-{step}'}" in log2
    assert sorted(losses(out)) == list(range(1, 17))  # every step once
    return step, log


def test_sigterm_to_a_rank_or_the_launcher_saves_exits_75_and_the_relaunch_trains_each_step_once(small_demo,
                                                                                                 tmp_path):
    env = launcher_env(tmp_path)
    interrupted_and_relaunched(small_demo, tmp_path / "rank1", env, "rank1")
    interrupted_and_relaunched(small_demo, tmp_path / "launcher", env, "launcher")
    # both runs, stopped wherever the signal met them, end with the same losses and test loss: the resume is exact
    assert losses(tmp_path / "rank1") == pytest.approx(losses(tmp_path / "launcher"), abs=1e-6)
    first, second = (json.loads((tmp_path / name / "all_results.json").read_text()) for name in ("rank1", "launcher"))
    assert first["test_loss"] == pytest.approx(second["test_loss"], abs=1e-6)


def test_sigterm_to_a_rank_of_a_streamed_run_saves_exits_75_and_the_relaunch_trains_each_step_once(
        small_demo_shards, tmp_path):
    # the same stop and relaunch with 2 ranks streaming from shards (one shard each): the checkpoint holds the
    # stream's position, and the relaunch trains every remaining step once
    env = launcher_env(tmp_path)
    env["HF_DATASETS_CACHE"] = str(tmp_path / "hf")
    interrupted_and_relaunched(small_demo_shards, tmp_path / "stream", env, "rank1", "--dataset", "webdataset",
                               "--dataset_dir", str(small_demo_shards), "--shuffle_buffer_size", "6")
