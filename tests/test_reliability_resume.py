"""Runs survive faults: a damaged checkpoint is set aside (never deleted) and the previous good one resumed; a
failed write names the file and the space; a copied run folder is self-contained; a relaunch does what it says.

Run alone: ``python -m pytest -q tests/test_reliability_resume.py`` (the slow tests launch train.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset
from transformers import TrainingArguments, VideoMAEConfig, VideoMAEForVideoClassification

from conftest import REPO, run_train
from pipeline.training.run_lock import LOCK_NAME
from pipeline.training.checkpoints import (
    SET_ASIDE_DIR,
    CheckpointError,
    checkpoint_problem,
    read_trainer_state,
    resume_checkpoint,
)
from pipeline.training.trainer import VideoTrainer

CONFIG = dict(image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=1,
              num_attention_heads=2, intermediate_size=37, num_labels=3)


class RandomClips(Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"pixel_values": torch.randn(4, 3, 32, 32, generator=g), "labels": i % 3}


def make_trainer(out: Path, **kwargs) -> VideoTrainer:
    torch.manual_seed(0)
    model = VideoMAEForVideoClassification(VideoMAEConfig(**CONFIG))
    settings = dict(per_device_train_batch_size=4, learning_rate=0.05, report_to="none", use_cpu=True,
                    save_strategy="steps", save_steps=2, disable_tqdm=True, max_steps=4)
    settings.update(kwargs)
    args = TrainingArguments(str(out), **settings)
    return VideoTrainer(model=model, args=args, train_dataset=RandomClips(), eval_dataset=RandomClips())


def auto(out: Path) -> str | None:
    return resume_checkpoint(SimpleNamespace(resume_from_checkpoint=None, output_dir=str(out)),
                             SimpleNamespace(auto_resume=True))


def set_aside(out: Path) -> dict[str, str]:
    """{checkpoint name: reason} of the folders moved into _set_aside/."""
    folder = out / SET_ASIDE_DIR
    return {p.name.rsplit("-", 2)[0]: (p / "REASON.txt").read_text().strip() for p in folder.iterdir()} \
        if folder.is_dir() else {}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """checkpoint-2 and checkpoint-4 of a 4-step run (a pristine copy for each test)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    make_trainer(out).train()
    return out


@pytest.fixture
def run(trained_run, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    return copy


def truncate(path: Path, keep: float = 0.5) -> None:
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])


@pytest.mark.parametrize("damage, reason", [
    (lambda c: truncate(c / "model.safetensors"), "model.safetensors is damaged"),
    (lambda c: truncate(c / "trainer_state.json"), "trainer_state.json is not valid JSON (truncated?)"),
    (lambda c: (c / "trainer_state.json").write_text(""), "trainer_state.json is empty"),
    (lambda c: (c / "optimizer.pt").unlink(), "optimizer.pt is missing"),
    (lambda c: truncate(c / "scheduler.pt"), "scheduler.pt is damaged"),
    (lambda c: (c / "trainer_state.json").unlink(), "no trainer_state.json (the run was stopped while saving it)"),
], ids=["truncated-weights", "truncated-state", "empty-state", "missing-optimizer", "truncated-scheduler",
        "interrupted-save"])
def test_damaged_checkpoint_is_set_aside_and_the_previous_one_resumed(run, damage, reason):
    damage(run / "checkpoint-4")
    assert auto(run) == str(run / "checkpoint-2")
    assert list(set_aside(run)) == ["checkpoint-4"] and set_aside(run)["checkpoint-4"].startswith(reason)
    assert not (run / "checkpoint-4").exists()


def test_flipped_byte_in_the_optimizer_state_is_caught_by_its_checksum(run):
    data = bytearray((run / "checkpoint-4" / "optimizer.pt").read_bytes())
    data[len(data) // 3] ^= 0xFF
    (run / "checkpoint-4" / "optimizer.pt").write_bytes(bytes(data))
    assert checkpoint_problem(run / "checkpoint-4").startswith("optimizer.pt is damaged (member")
    assert checkpoint_problem(run / "checkpoint-2") is None


def test_resuming_after_a_damaged_checkpoint_trains_to_the_end_and_keeps_the_set_aside_one(run):
    truncate(run / "checkpoint-4" / "model.safetensors")
    checkpoint = auto(run)
    trainer = make_trainer(run, max_steps=6, save_total_limit=1)  # rotation deletes old checkpoints
    trainer.train(resume_from_checkpoint=checkpoint)
    assert trainer.state.global_step == 6
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-6"]
    assert list(set_aside(run)) == ["checkpoint-4"]  # the rotation never touches what was set aside


def test_explicit_damaged_checkpoint_is_an_error_naming_the_file_and_is_not_moved(run):
    truncate(run / "checkpoint-4" / "model.safetensors")
    args = SimpleNamespace(resume_from_checkpoint=str(run / "checkpoint-4"), output_dir=str(run))
    with pytest.raises(CheckpointError, match=r"checkpoint-4 cannot be resumed from: model\.safetensors is damaged"):
        resume_checkpoint(args, SimpleNamespace(auto_resume=True))
    assert (run / "checkpoint-4").is_dir() and not set_aside(run)


def test_explicit_checkpoint_wins_and_auto_resume_can_be_off(run):
    args = SimpleNamespace(resume_from_checkpoint=str(run / "checkpoint-2"), output_dir=str(run))
    assert resume_checkpoint(args, SimpleNamespace(auto_resume=True)) == str(run / "checkpoint-2")
    args.resume_from_checkpoint = None
    assert resume_checkpoint(args, SimpleNamespace(auto_resume=False)) is None


def weights_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_best_model_path_is_relative_and_a_copied_run_loads_its_own_best(tmp_path):
    original = tmp_path / "original"
    trainer = make_trainer(original, eval_strategy="steps", eval_steps=2, load_best_model_at_end=True,
                           metric_for_best_model="loss", greater_is_better=False)
    trainer.train()
    trainer.save_state()
    best = Path(trainer.state.best_model_checkpoint).name
    assert read_trainer_state(original / "trainer_state.json")["best_model_checkpoint"] == best
    for state_file in original.glob("checkpoint-*/trainer_state.json"):  # the best as of that step
        assert re.fullmatch(r"checkpoint-\d+", read_trainer_state(state_file)["best_model_checkpoint"]), state_file

    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    # the original's best weights change after the copy: a copy that still read them would show it
    tensors = load_file(original / best / "model.safetensors")
    save_file({k: v + 1.0 for k, v in tensors.items()}, original / best / "model.safetensors",
              metadata={"format": "pt"})
    # a state file of an older version recorded an absolute path into the original folder
    state_path = copy / "checkpoint-4" / "trainer_state.json"
    state = json.loads(state_path.read_text())
    state["best_model_checkpoint"] = str(original / best)
    state_path.write_text(json.dumps(state))

    resumed = make_trainer(copy, eval_strategy="steps", eval_steps=2, load_best_model_at_end=True,
                           metric_for_best_model="loss", greater_is_better=False)
    resumed.train(resume_from_checkpoint=str(copy / "checkpoint-4"))  # nothing left to train: loads the best
    assert resumed.state.best_model_checkpoint == os.path.join(str(copy), best)
    own = load_file(copy / best / "model.safetensors")
    reloaded = VideoMAEForVideoClassification.from_pretrained(copy / best).state_dict()
    live = resumed.model.state_dict()
    assert all(torch.equal(live[k], reloaded[k]) for k in live)
    assert not torch.equal(load_file(original / best / "model.safetensors")["classifier.weight"],
                           own["classifier.weight"])


WRITE_FAILURE_SCRIPT = textwrap.dedent("""
    import resource, signal, sys
    from pathlib import Path
    sys.path[:0] = [sys.argv[2], sys.argv[3]]
    from transformers import TrainerCallback
    from test_reliability_resume import make_trainer

    class FillTheDisk(TrainerCallback):
        # after checkpoint-2, no file may grow past 1.5x the weights: the optimizer state of checkpoint-4 fails
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                limit = int(1.5 * (Path(args.output_dir) / "checkpoint-2" / "model.safetensors").stat().st_size)
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    trainer = make_trainer(Path(sys.argv[1]))
    trainer.add_callback(FillTheDisk())
    trainer.train()
""")


@pytest.mark.slow
def test_a_checkpoint_write_failure_names_the_file_and_space_and_keeps_the_last_good_one(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-c", WRITE_FAILURE_SCRIPT, str(out), str(REPO / "tests"), str(REPO)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    last = [line for line in result.stderr.splitlines() if "CheckpointWriteError" in line][-1]
    assert f"writing {out / 'checkpoint-4' / 'optimizer.pt'} failed" in last
    assert "free on its disk, a checkpoint needs about" in last and "(the size of checkpoint-2)" in last
    assert "relaunching resumes from checkpoint-2" in last and "unexpected pos" in last  # torch's own words kept
    assert checkpoint_problem(out / "checkpoint-2") is None
    assert not (out / "checkpoint-4").exists() and list(set_aside(out)) == ["checkpoint-4"]
    assert set_aside(out)["checkpoint-4"].startswith("write failed")
    assert auto(out) == str(out / "checkpoint-2")


# --- relaunching train.py ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_demo(tmp_path_factory) -> Path:
    from pipeline.data.demo import ensure_demo_dataset

    return ensure_demo_dataset(tmp_path_factory.mktemp("resume_data") / "demo", clips_per_class=6,
                               groups_per_class=3, num_frames=16)


def train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["recipes/demo.yaml", "--dataset", "ucf101", "--dataset_dir", str(data), "--output_dir", str(out),
            "--max_steps", "4", "--eval_steps", "2", "--save_steps", "2", "--per_device_train_batch_size", "4",
            "--dataloader_num_workers", "0", "--dataloader_persistent_workers", "false", "--report_to", "none",
            "--disable_tqdm", "true", *extra]


def folder_hashes(out: Path) -> dict[str, str]:
    """Every file of a run folder but the run lock, which names whichever launch held the folder last."""
    return {p.relative_to(out).as_posix(): weights_hash(p) for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != LOCK_NAME}


@pytest.fixture(scope="module")
def finished(small_demo, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    run_train(train_args(small_demo, out), env={"VIDEO_PIPELINE_CACHE": str(out.parent / "cache")})
    return out


@pytest.mark.slow
def test_relaunch_with_other_arguments_stops_and_changes_nothing(finished, small_demo):
    before = folder_hashes(finished)
    result = run_train(train_args(small_demo, finished, "--max_steps", "6", "--learning_rate", "5e-4"), check=False)
    assert result.returncode == 2, result.stderr[-3000:]
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"train.py: error: {finished} holds a complete run trained with other arguments")
    assert "learning_rate 0.001 -> 0.0005" in message and "Nothing was trained" in message
    assert "--output_dir" in message and "Traceback" not in result.stderr
    assert folder_hashes(finished) == before


@pytest.mark.slow
def test_relaunch_of_a_complete_run_as_it_was_trains_nothing_and_keeps_its_results(finished, small_demo):
    before = folder_hashes(finished)
    result = run_train(train_args(small_demo, finished))
    assert "already holds this run, complete (4 steps" in result.stdout + result.stderr
    assert folder_hashes(finished) == before  # train_results.json keeps the real runtime


@pytest.mark.slow
def test_raising_max_steps_continues_and_the_recipe_describes_the_new_weights(finished, small_demo, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(finished, copy)
    result = run_train(train_args(small_demo, copy, "--max_steps", "6"))
    log = result.stdout + result.stderr
    assert f"resuming from the last checkpoint in output_dir: {copy / 'checkpoint-4'}" in log
    assert read_trainer_state(copy / "trainer_state.json")["global_step"] == 6
    assert yaml.safe_load((copy / "recipe.yaml").read_text())["max_steps"] == 6
    assert yaml.safe_load((copy / "checkpoint-6" / "recipe.yaml").read_text())["max_steps"] == 6
    best = read_trainer_state(copy / "trainer_state.json")["best_model_checkpoint"]
    assert best is not None and "/" not in best  # relative to the run folder
    assert str(finished) not in log  # nothing of the original folder was used


def test_num_frames_is_resolved_before_anything_is_written(tmp_path):
    """The recipe's frame count, or the model config's when it gives none, is in DataArguments before the recipe is
    written; a checkpoint recipe of an earlier version (num_frames: null) reads as the model's own count."""
    from pipeline.configs import DataArguments, ModelArguments
    from pipeline.training.checkpoints import current_recipe, recipe_differences
    from pipeline.training.setup import resolve_num_frames

    data = DataArguments()
    assert resolve_num_frames(ModelArguments(model_type="videomae", config_overrides={"num_frames": 8}), data) == 8
    assert data.num_frames == 8
    data = DataArguments(num_frames=4)
    VideoMAEConfig(**CONFIG).save_pretrained(tmp_path / "pretrained")
    assert resolve_num_frames(ModelArguments(model_name_or_path=str(tmp_path / "pretrained")), data) == 4
    assert data.num_frames == 4  # the recipe's own wins

    older = {"num_frames": None, "learning_rate": 0.1}
    assert recipe_differences(current_recipe(older, 16), {"num_frames": 16, "learning_rate": 0.1}) == []
    assert recipe_differences(current_recipe(older, 16), {"num_frames": 8, "learning_rate": 0.1}) == [
        ("num_frames", 16, 8)]
    # the comparison itself has no special case: a frame count is compared like any other key
    assert recipe_differences({"num_frames": None}, {"num_frames": 8}) == [("num_frames", None, 8)]
