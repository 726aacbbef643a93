"""End to end on the demo: accuracy, the need for time order, resume after a kill, and bad videos in the data."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoImageProcessor, AutoModelForVideoClassification

from conftest import REPO, demo_test_videos, run_train
from pipeline.data.ucf101 import load_ucf101
from pipeline.inference.clip_spec import ClipSpec
from pipeline.inference.views import load_views

pytestmark = pytest.mark.slow


def test_demo_recipe_trains_to_high_test_accuracy(trained_demo):
    results = json.loads((trained_demo / "all_results.json").read_text())
    assert results["test_accuracy"] >= 0.95, results
    assert results["test_top5_accuracy"] >= results["test_accuracy"]
    assert results["test_samples"] == demo_test_videos() and results["skipped_videos"] == 0
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "recipe.yaml", "trainer_state.json"):
        assert (trained_demo / name).is_file(), name
    config = json.loads((trained_demo / "config.json").read_text())
    assert config["frame_sampling_rate"] == 4 and config["num_frames"] == 8
    log = (trained_demo / "train.log").read_text()
    assert "process rank=0 local_rank=0 world_size=1 device=cpu precision=fp32" in log


def _accuracy(model, processor, split, permutation=None) -> float:
    correct = 0
    for row in split:
        views = load_views(row["video"], ClipSpec.from_config(model.config, processor, num_clips=1, num_crops=1))
        if permutation is not None:
            views = views[:, permutation]
        with torch.no_grad():
            correct += int(model(pixel_values=views).logits.argmax(-1).item() == row["label"])
    return correct / len(split)


def test_demo_task_needs_time_order(trained_demo, demo_dataset):
    """The same trained model, shown the same frames in a shuffled order, must fall to near chance."""
    model = AutoModelForVideoClassification.from_pretrained(trained_demo).eval()
    processor = AutoImageProcessor.from_pretrained(trained_demo)
    test = load_ucf101(demo_dataset, validation_fraction=0)["test"]
    ordered = _accuracy(model, processor, test)
    rng = np.random.default_rng(0)
    shuffled = []
    for _ in range(3):
        permutation = torch.from_numpy(rng.permutation(model.config.num_frames))
        shuffled.append(_accuracy(model, processor, test, permutation))
    assert ordered >= 0.95
    assert max(shuffled) <= 0.6, shuffled


def _checkpoints(out: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*") if (p / "trainer_state.json").exists())


def test_killed_run_resumes_from_last_checkpoint(demo_dataset, tmp_path):
    out = tmp_path / "run"
    args = ["recipes/demo.yaml", "--dataset_dir", str(demo_dataset), "--output_dir", str(out), "--report_to", "none",
            "--max_steps", "60", "--save_strategy", "steps", "--save_steps", "3", "--save_total_limit", "40",
            "--eval_strategy", "no", "--load_best_model_at_end", "false", "--per_device_train_batch_size", "4",
            "--dataloader_num_workers", "0", "--dataloader_persistent_workers", "false", "--disable_tqdm", "true",
            "--logging_steps", "1"]
    process = subprocess.Popen([sys.executable, str(REPO / "pipeline" / "train.py"), *args], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and not any(s >= 6 for s in _checkpoints(out)) and process.poll() is None:
        time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = _checkpoints(out)
    assert done and max(done) < 60, f"the run was not killed mid-way: {done}"
    killed_at = max(done)

    result = run_train(args)  # the very same command
    assert f"resuming from the last checkpoint in output_dir: {out / f'checkpoint-{killed_at}'}" in result.stdout
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 60
    # the resumed run did only the remaining steps: it logged one training loss per step it ran (logging_steps 1),
    # and the run's history holds every step once
    ran = [line for line in result.stdout.splitlines() if line.startswith("{") and "'loss'" in line]
    assert len(ran) == 60 - killed_at, (killed_at, ran[:3])
    steps = [entry["step"] for entry in state["log_history"] if "loss" in entry]
    assert steps == list(range(1, 61))


def test_bad_videos_are_skipped_and_named(demo_dataset, tmp_path):
    data = tmp_path / "demo_with_bad_files"
    shutil.copytree(demo_dataset, data)
    train_list = (data / "ucfTrainTestlist" / "trainlist01.txt").read_text().split()
    victims = [data / "UCF-101" / rel for rel in train_list[0:6:2]]  # three train videos (path, label, ...)
    truncated, empty, text = victims
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    empty.write_bytes(b"")
    text.write_text("this is a text file, not a video\n")
    out = tmp_path / "out"
    result = run_train(["recipes/demo.yaml", "--dataset_dir", str(data), "--max_steps", "6", "--output_dir", str(out),
                        "--report_to", "none", "--eval_strategy", "no", "--save_strategy", "no",
                        "--load_best_model_at_end", "false", "--disable_tqdm", "true"])
    log = result.stdout + result.stderr
    for path in (truncated, empty, text):
        assert str(path) in log, f"{path.name} not named in the log"
    assert "truncated" in log
    results = json.loads((out / "all_results.json").read_text())
    assert results["skipped_videos"] == 2  # the truncated one is still usable (its decodable frames)
    assert "test_accuracy" in results
