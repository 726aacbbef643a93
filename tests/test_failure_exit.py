"""A failure ends the run: `pipeline/train.py` and `python -m pipeline.evaluation` exit non-zero, with the traceback,
within 60 s of an exception anywhere (model, loss, metrics, callback, loader worker, a killed worker), in one process
and in one rank of a 2-process DDP run (accelerate launch, gloo on CPU).

Each case runs tests/failure_injection.py, which plants the failure and then runs the real command; the time counts
from the moment the failure is raised (written by the injection) to the process's exit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO
from tiny_videomae import LABELS, save_tiny_videomae

pytestmark = pytest.mark.slow

INJECT = REPO / "tests" / "failure_injection.py"
CPU_DDP = REPO / "accelerate_configs" / "cpu_ddp.yaml"
LIMIT_S = 60
# short runs of the demo recipe: persistent workers as in the recipe, an evaluation at step 4
TRAIN_ARGS = ["recipes/demo.yaml", "--max_steps", "10", "--eval_steps", "4", "--save_steps", "4",
              "--max_train_samples", "96", "--max_eval_samples", "16", "--report_to", "none",
              "--disable_tqdm", "true", "--dataloader_num_workers", "2", "--dataloader_persistent_workers", "true",
              "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8"]


def _environment(mark: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    env.update(PYTHONUNBUFFERED="1", FAILURE_MARK=str(mark), OMP_NUM_THREADS="1")
    return env


def run_injected(kind: str, rank: str, args: list[str], tmp_path: Path, *, ddp: bool) -> tuple[int, float, str]:
    """(exit status, seconds from the injected failure to the exit, output) of one injected run."""
    mark = tmp_path / f"failed-at-{kind}"
    if ddp:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CPU_DDP),
                   str(INJECT), kind, rank, *args]
    else:
        command = [sys.executable, str(INJECT), kind, rank, *args]
    process = subprocess.Popen(command, cwd=REPO, env=_environment(mark), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError(f"{kind}: still running after 600 s:\n{output[-3000:]}") from None
    ended = time.time()
    assert mark.exists(), f"{kind}: the failure was never injected:\n{output[-4000:]}"
    return process.returncode, ended - float(mark.read_text()), output


def assert_failed_promptly(kind: str, status: int, seconds: float, output: str, message: str) -> None:
    assert status != 0, f"{kind}: exited 0 after a failure:\n{output[-3000:]}"
    assert seconds < LIMIT_S, f"{kind}: took {seconds:.0f} s to exit after the failure:\n{output[-3000:]}"
    assert message in output, f"{kind}: the traceback is missing:\n{output[-3000:]}"


TRAINING_CASES = {
    "model": "injected failure in the model's forward",
    "loss": "injected failure in the loss",
    "metric": "injected failure in compute_metrics",
    "callback": "injected failure in a callback",
    "worker": "injected failure in a loader worker",
    "worker_killed": "DataLoader worker (pid",
    "stuck_thread": "injected failure in the model's forward",
}


@pytest.mark.parametrize("kind", list(TRAINING_CASES))
def test_training_failure_ends_one_process_run(kind, demo_dataset, tmp_path):
    args = [*TRAIN_ARGS, "--dataset_dir", str(demo_dataset), "--output_dir", str(tmp_path / "out")]
    status, seconds, output = run_injected(kind, "all", args, tmp_path, ddp=False)
    assert_failed_promptly(kind, status, seconds, output, TRAINING_CASES[kind])


@pytest.mark.parametrize("kind,rank", [("model", "1"), ("worker", "0"), ("metric", "1")])
def test_training_failure_in_one_rank_ends_ddp_run(kind, rank, demo_dataset, tmp_path):
    args = [*TRAIN_ARGS, "--dataset_dir", str(demo_dataset), "--output_dir", str(tmp_path / "out")]
    status, seconds, output = run_injected(kind, rank, args, tmp_path, ddp=True)
    assert_failed_promptly(f"{kind}@rank{rank}", status, seconds, output, TRAINING_CASES[kind])


@pytest.fixture(scope="module")
def eval_setup(tmp_path_factory):
    """A tiny model and a video folder of its classes (synthetic videos, a few per class)."""
    from synthetic_videos import write_video

    root = tmp_path_factory.mktemp("failing_eval")
    model_dir = save_tiny_videomae(root / "model")
    videos = root / "videos"
    for split, per_class in (("train", 1), ("test", 4)):
        for c, name in enumerate(LABELS):
            (videos / split / name).mkdir(parents=True)
            for v in range(per_class):
                write_video(videos / split / name / f"{name}_{v}.avi", "xvid_gop12", 24 + 3 * c + v)
    return model_dir, videos


EVAL_CASES = {
    "eval_model": "injected failure in the model's forward (evaluation)",
    "eval_worker": "injected failure in an evaluation worker",
}


@pytest.mark.parametrize("ddp", [False, True], ids=["one_process", "ddp_rank1"])
@pytest.mark.parametrize("kind", list(EVAL_CASES))
def test_evaluation_failure_ends_the_run(kind, ddp, eval_setup, tmp_path):
    model_dir, videos = eval_setup
    args = ["--model", str(model_dir), "--dataset", "videofolder", "--dataset_dir", str(videos),
            "--num_clips", "2", "--batch_size", "2", "--num_workers", "2", "--output_dir", str(tmp_path / "eval")]
    status, seconds, output = run_injected(kind, "1" if ddp else "all", args, tmp_path, ddp=ddp)
    assert_failed_promptly(kind, status, seconds, output, EVAL_CASES[kind])
