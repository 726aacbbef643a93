"""Streamed training from shards under real 2-process DDP on CPU, launched as a user does.

Shards of a small synthetic video folder are written by the shard writer. Checked: (1) through the Trainer's own
data loader (tests/stream_ddp_worker.py), every training video is seen exactly once per epoch across the two ranks,
the ranks read disjoint shares, the order changes between epochs, and ``num_train_epochs`` became the right
``max_steps``; (2) ``accelerate launch ... pipeline/train.py recipes/demo.yaml --dataset webdataset`` trains and
evaluates from the shards, scoring every test video once, and nothing is written outside output_dir and the HF cache
(HOME and TMPDIR of the run are watched while it runs; matplotlib's font cache, which the model card's figures
write once per machine, is the one other file allowed). The demo's accuracy acceptance (test top-1 >= 0.9 after the
full recipe) is a run of minutes: it is measured by hand and reported in pipeline/data/README.md.
"""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO
from synthetic_videos import write_video

pytestmark = pytest.mark.slow

CONFIG = REPO / "accelerate_configs" / "cpu_ddp.yaml"
CLASSES = ("jump", "run", "wave")


def launcher_env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    env.update(PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO), **extra)
    return env


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    from pipeline.configs import DataArguments
    from pipeline.data.shards import ShardArguments, write_shards

    root = tmp_path_factory.mktemp("stream_ddp")
    for label in CLASSES:
        for group in range(1, 7):
            for clip in (1, 2):
                path = root / "videos" / label / f"v_{label}_g{group:02d}_c{clip:02d}.avi"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_video(path, "xvid_gop12", 36)
    patch = pytest.MonkeyPatch()
    patch.setattr("pipeline.data.metadata.DEFAULT_CACHE_DIR", root / "probe_cache")
    data_args = DataArguments(dataset="videofolder", dataset_dir=str(root / "videos"), validation_fraction=0.2,
                              test_fraction=0.2)
    manifest = write_shards(data_args, ShardArguments(output_dir=str(root / "shards"), min_shards=4))
    patch.undo()
    return root / "shards", manifest


def _launch(script_and_args: list[str], env: dict, timeout: int = 600) -> str:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIG), *script_and_args]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]
    return log


def _train_names(shards_dir: Path) -> list[str]:
    from pipeline.data.streaming import load_webdataset

    return [row["video"]["path"] for row in load_webdataset(str(shards_dir))["train"]]


def test_every_training_video_once_per_epoch_across_two_ranks(shards, tmp_path):
    shards_dir, manifest = shards
    _launch([str(REPO / "tests" / "stream_ddp_worker.py"), str(shards_dir), str(tmp_path)],
            launcher_env(HF_DATASETS_CACHE=str(tmp_path / "hf")))
    ranks = json.loads((tmp_path / "routing.json").read_text())
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world_size"] == 2 for r in ranks)
    everything = sorted(_train_names(shards_dir))
    assert len(everything) == manifest["splits"]["train"]["samples"] == len(set(everything))
    orders = []
    for epoch in range(2):
        per_rank = [[name for batch in r["epochs"][epoch] for name in batch] for r in ranks]
        assert not set(per_rank[0]) & set(per_rank[1])  # disjoint shares
        assert sorted(per_rank[0] + per_rank[1]) == everything  # every video once
        orders.append(per_rank)
    assert orders[0] != orders[1]  # reshuffled each epoch
    batch = 3  # tests/stream_ddp_worker.py
    expected = 2 * math.ceil(math.ceil(len(everything) / 2) / batch)
    assert all(r["max_steps"] == expected for r in ranks)
    assert all(len(r["epochs"][e]) <= expected // 2 for r in ranks for e in range(2))


def _watch(roots: list[Path], seen: set, stop: threading.Event) -> None:
    """Every file that appears under ``roots`` while the run lasts; sockets (the loaders' multiprocessing
    listeners in TMPDIR: endpoints, not data) are left out."""
    while not stop.is_set():
        for root in roots:
            for folder, _, files in os.walk(root):
                for name in files:
                    path = Path(folder, name)
                    try:
                        if stat.S_ISSOCK(path.lstat().st_mode):
                            continue
                    except OSError:
                        pass  # gone already: it was written all the same
                    seen.add(str(path))
        time.sleep(0.2)


def test_streamed_ddp_training_writes_only_output_dir_and_hf_cache(shards, tmp_path):
    shards_dir, manifest = shards
    home, temporary, out = tmp_path / "home", tmp_path / "tmp", tmp_path / "out"
    home.mkdir()
    temporary.mkdir()
    hf_home = home / ".cache" / "huggingface"
    env = launcher_env(HOME=str(home), TMPDIR=str(temporary), HF_HOME=str(hf_home),
                       XDG_CACHE_HOME=str(home / ".cache"))
    env.pop("HF_DATASETS_CACHE", None)
    env.pop("VIDEO_PIPELINE_CACHE", None)
    seen: set = set()
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=([home, temporary], seen, stop), daemon=True)
    watcher.start()
    try:
        log = _launch([str(REPO / "pipeline" / "train.py"), str(REPO / "recipes" / "demo.yaml"),
                       "--dataset", "webdataset", "--dataset_dir", str(shards_dir), "--output_dir", str(out),
                       "--max_steps", "6", "--eval_steps", "3", "--save_steps", "3", "--logging_steps", "3",
                       "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4",
                       "--report_to", "none", "--disable_tqdm", "true"], env)
    finally:
        stop.set()
        watcher.join()
    results = json.loads((out / "all_results.json").read_text())
    assert results["test_samples"] == manifest["splits"]["test"]["samples"]
    assert results["test_skipped_videos"] == 0
    assert results["train_samples"] == manifest["splits"]["train"]["samples"]
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 6
    assert "streaming: 6 training steps" in log
    # matplotlib's font list (home/.cache/matplotlib) is written by the model card's figures at the end of any run,
    # once per machine: a library's cache, no data
    allowed = (str(hf_home) + os.sep, str(home / ".cache" / "matplotlib") + os.sep)
    outside = sorted(p for p in seen if not p.startswith(allowed))
    assert not outside, outside[:20]
