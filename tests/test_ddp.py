"""The demo under real 2-process DDP on CPU, launched like a user does with the repo's accelerate config.

One run (module fixture) of ``accelerate launch --config_file accelerate_configs/cpu_ddp.yaml tests/ddp_probe.py
recipes/demo.yaml ...``; tests/ddp_probe.py is pipeline/train.py's ``main`` plus a callback that writes, per rank,
what the checks below read (see its docstring). Checked: two ranks that each see a world of 2; in every epoch,
disjoint train shards that cover the train split and are what the model was fed; bit-identical weights in both
ranks after every optimizer step; evaluation metrics computed once per sample although the eval sampler pads the
ranks with repeated samples; a test accuracy in the demo's range.

Settings: the recipe's training length; its per-device train batch halved over the 2 ranks, so the global batch and the
number of optimizer steps equal a single-process run of the recipe (the accuracy compares with the recipe's own);
an eval batch that leaves the last batches short, so the padding that DDP evaluation adds is exercised. Measured
on 2 shared CPU cores: about 100 s (VideoMAE demo) to 175 s (I3D demo) for the whole run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml

from conftest import REPO

pytestmark = pytest.mark.slow

RECIPE = REPO / "recipes" / "demo.yaml"
CONFIG = REPO / "accelerate_configs" / "cpu_ddp.yaml"
WORLD_SIZE = 2
EVAL_BATCH = 20  # 2 ranks x 20 divides neither the validation (168) nor the test split (704): the sampler must pad
EPOCHS = None  # None: the recipe's own (set a number to shorten the run)
MIN_TEST_ACCURACY = 0.9


def recipe_value(key: str):
    return yaml.safe_load(RECIPE.read_text())[key]


def launcher_env() -> dict[str, str]:
    """A clean launcher environment, as from a user's shell: no rank variables inherited from the test runner."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="module")
def ddp_run(demo_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "out"
    per_device = recipe_value("per_device_train_batch_size") // WORLD_SIZE
    args = ["--dataset_dir", str(demo_dataset), "--output_dir", str(out), "--report_to", "none",
            "--disable_tqdm", "true", "--per_device_train_batch_size", str(per_device),
            "--per_device_eval_batch_size", str(EVAL_BATCH)]
    if EPOCHS is not None:
        args += ["--num_train_epochs", str(EPOCHS)]
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIG),
               str(REPO / "tests" / "ddp_probe.py"), str(RECIPE), *args]
    result = subprocess.run(command, cwd=REPO, env=launcher_env(), capture_output=True, text=True, timeout=900)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]
    ranks = [json.loads((out / "ddp_probe" / f"rank{r}.json").read_text()) for r in range(WORLD_SIZE)]
    results = json.loads((out / "all_results.json").read_text())
    steps = json.loads((out / "trainer_state.json").read_text())["global_step"]
    return {"log": log, "ranks": ranks, "results": results, "per_device": per_device, "steps": steps}


def test_two_processes_each_see_a_world_of_two(ddp_run):
    for rank in range(WORLD_SIZE):
        line = f"process rank={rank} local_rank={rank} world_size={WORLD_SIZE} device=cpu"
        assert line in ddp_run["log"], ddp_run["log"][-3000:]
    assert [r["rank"] for r in ddp_run["ranks"]] == [0, 1]
    assert all(r["world_size"] == WORLD_SIZE for r in ddp_run["ranks"])
    # accelerate shards each global batch between the ranks (rather than every rank reading everything)
    assert all(r["batch_sampler"] == "BatchSamplerShard" for r in ddp_run["ranks"])


def test_each_epoch_splits_the_train_set_into_disjoint_shards(ddp_run):
    first, second = ddp_run["ranks"]
    labels = first["train_labels"]
    assert second["train_labels"] == labels and len(labels) > 0
    assert len(first["epochs"]) == len(second["epochs"]) >= 1
    global_batch = ddp_run["per_device"] * WORLD_SIZE
    padding = -len(labels) % global_batch  # accelerate completes a short last batch with rows from the start
    previous = None
    full = (len(labels) + padding) // WORLD_SIZE
    for number, (mine, theirs) in enumerate(zip(first["epochs"], second["epochs"])):
        a, b = mine["shard"], theirs["shard"]
        if number == len(first["epochs"]) - 1 and len(mine["trained_labels"]) < full:
            # the run stopped at max_steps inside this epoch: what each rank was fed is the start of its shard,
            # and the two shards are disjoint
            fed = len(mine["trained_labels"])
            assert fed == len(theirs["trained_labels"]) and not set(a[:fed]) & set(b[:fed])
            assert mine["trained_labels"] == [labels[i] for i in a[:fed]]
            assert theirs["trained_labels"] == [labels[i] for i in b[:fed]]
            continue
        assert set(a) | set(b) == set(range(len(labels))), f"epoch {mine['epoch']}: rows trained by no rank"
        assert len(a) == len(b) == full
        # no row is trained twice in an epoch, by one rank or by both, beyond that padding
        repeats = len(a) + len(b) - len(set(a) | set(b))
        assert repeats == padding, f"epoch {mine['epoch']}: {repeats} rows seen twice, {sorted(set(a) & set(b))[:10]}"
        # the shard is what the model was fed: the labels reaching forward() follow the shard's rows in order
        assert mine["trained_labels"] == [labels[i] for i in a]
        assert theirs["trained_labels"] == [labels[i] for i in b]
        assert previous is None or a != previous, "the train order must be reshuffled every epoch"
        previous = a


def test_weights_are_identical_across_ranks_after_every_step(ddp_run):
    first, second = ddp_run["ranks"]
    global_batch = ddp_run["per_device"] * WORLD_SIZE
    steps_per_epoch = -(-len(first["train_labels"]) // global_batch)
    # one record per optimizer step: all of them (the recipe may stop mid-epoch at max_steps)
    assert len(first["weights"]) == ddp_run["steps"] > steps_per_epoch * (len(first["epochs"]) - 1)
    assert first["weights"] == second["weights"]  # same step numbers, same SHA-256 of every parameter
    digests = [w["sha256"] for w in first["weights"]]
    assert len(set(digests)) == len(digests), "every optimizer step must change the weights"


def test_evaluation_counts_every_sample_exactly_once(ddp_run):
    first, second = ddp_run["ranks"]
    prefixes = [e["prefix"] for e in first["evaluations"]]
    assert prefixes[-2:] == ["eval", "test"] and [e["prefix"] for e in second["evaluations"]] == prefixes
    for mine, theirs in zip(first["evaluations"], second["evaluations"]):
        n = len(mine["dataset_labels"])
        asked = mine["shard"] + theirs["shard"]
        assert set(asked) == set(range(n))
        # the sampler padded the ranks with repeats (else this test would prove nothing) ...
        assert len(asked) > n, f"{mine['prefix']}: choose an eval batch size that does not divide {n}"
        # ... yet compute_metrics saw each sample once, in dataset order, identically in both ranks
        assert mine["metric_labels"] == mine["dataset_labels"] == theirs["metric_labels"]
        assert mine["metric_predictions"] == theirs["metric_predictions"] and len(mine["metric_predictions"]) == n
        correct = sum(p == y for p, y in zip(mine["metric_predictions"], mine["metric_labels"]))
        assert mine["accuracy"] == pytest.approx(correct / n)
    test = first["evaluations"][-1]
    assert ddp_run["results"]["test_samples"] == len(test["dataset_labels"])
    assert ddp_run["results"]["test_accuracy"] == pytest.approx(test["accuracy"])


def test_ddp_training_reaches_the_demo_accuracy(ddp_run):
    results = ddp_run["results"]
    assert results["test_accuracy"] >= MIN_TEST_ACCURACY, results


@pytest.mark.skipif(torch.cuda.is_available(), reason="with GPUs, use_cpu: false is a valid GPU run")
def test_ddp_launch_without_use_cpu_fails_loudly(demo_dataset, tmp_path):
    """The multi-GPU launcher ignores the config's use_cpu: without the recipe's, each process would train alone."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIG),
               str(REPO / "pipeline" / "train.py"), str(RECIPE), "--dataset_dir", str(demo_dataset),
               "--output_dir", str(tmp_path / "out"), "--report_to", "none", "--use_cpu", "false", "--max_steps", "1"]
    result = subprocess.run(command, cwd=REPO, env=launcher_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    message = "the launcher started 2 processes (WORLD_SIZE=2) but the Trainer sees a world of 1"
    assert message in result.stdout + result.stderr, (result.stdout + result.stderr)[-3000:]
