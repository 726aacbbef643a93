"""Secrets are never written: no Hub token in recipe.yaml, the model card, logs, TensorBoard, checkpoints,
training_args.bin, or any byte uploaded to the Hub (tests/hub_server.py stores every uploaded byte).

Run alone: ``python -m pytest -q tests/test_reliability_secrets.py`` (the slow test trains for a few steps).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import yaml
from huggingface_hub import HfApi, hf_hub_download
from transformers import TrainingArguments

from conftest import run_train
from hub_server import LocalHubServer
from pipeline.configs import DataArguments, ModelArguments, RunArguments, resolved_recipe
from pipeline.publish.hub import SecretInUploadError, push_model_dir
from pipeline.redaction import REDACTED, find_secrets, redact_recipe, redact_text, take_hub_token
from tiny_videomae import save_tiny_videomae

# fake tokens of the real shape (what a leak would look like); never valid anywhere
CLI_TOKEN = "hf_FakeCliTokenForLeakTests0123456789abcd"
ENV_TOKEN = "hf_FakeEnvTokenForLeakTests9876543210wxyz"
SERVER_TOKEN = "hf_local_test_token"  # what the local server accepts for the fast upload tests


def every_file(*roots: Path) -> list[Path]:
    return [p for root in roots for p in Path(root).rglob("*") if p.is_file()]


def files_holding(needles: list[str], *roots: Path) -> list[str]:
    """Every file under ``roots`` whose bytes contain one of ``needles``: the leak report."""
    found = []
    for path in every_file(*roots):
        data = path.read_bytes()
        found += [f"{path} holds {needle[:8]}..." for needle in needles if needle.encode() in data]
    return found


@pytest.fixture
def hub():
    with LocalHubServer() as server:
        yield server


def test_recipe_redaction_removes_secret_keys_and_token_shaped_values():
    recipe = {"hub_token": CLI_TOKEN, "learning_rate": 1e-3, "wandb_api_key": "abc123", "report_to": ["none"],
              "config_overrides": {"note": f"made with {ENV_TOKEN} by mistake", "hidden_size": 96},
              "run_name": "demo", "include_num_input_tokens_seen": False, "hub_model_id": "me/model"}
    clean = redact_recipe(recipe)
    assert clean["hub_token"] is None and clean["wandb_api_key"] is None
    assert clean["config_overrides"] == {"note": f"made with {REDACTED} by mistake", "hidden_size": 96}
    assert clean["learning_rate"] == 1e-3 and clean["run_name"] == "demo" and clean["hub_model_id"] == "me/model"
    assert clean["include_num_input_tokens_seen"] is False  # a switch about tokens, not a secret
    assert recipe["hub_token"] == CLI_TOKEN  # the caller's dict is left alone
    assert redact_text(f"token={CLI_TOKEN}.") == f"token={REDACTED}."
    assert find_secrets(b"xx" + ENV_TOKEN.encode(), []) and not find_secrets(b"hf_short", [])


def test_resolved_recipe_and_training_args_pickle_hold_no_token(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    args = TrainingArguments(str(tmp_path), hub_token=CLI_TOKEN, report_to="none", use_cpu=True)
    recipe = resolved_recipe(ModelArguments(model_type="videomae"), DataArguments(), RunArguments(), args)
    assert "hub_token" in recipe and recipe["hub_token"] is None
    assert CLI_TOKEN not in yaml.safe_dump(recipe)
    # train.py moves the token into this process's environment before the Trainer (and its pickle) exists
    assert take_hub_token(args) == CLI_TOKEN
    assert args.hub_token is None and os.environ["HF_TOKEN"] == CLI_TOKEN
    torch.save(args, tmp_path / "training_args.bin")
    assert CLI_TOKEN.encode() not in (tmp_path / "training_args.bin").read_bytes()


def test_push_never_uploads_training_args_and_redacts_an_old_recipe(hub, tmp_path, monkeypatch):
    """A folder written by an older version: its recipe.yaml and training_args.bin hold the token."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    folder = save_tiny_videomae(tmp_path / "model")
    (folder / "recipe.yaml").write_text(yaml.safe_dump({"dataset": "ucf101", "learning_rate": 5e-5,
                                                        "hub_token": CLI_TOKEN, "num_frames": 4}))
    old_args = TrainingArguments(str(folder), hub_token=CLI_TOKEN, report_to="none", use_cpu=True)
    torch.save(old_args, folder / "training_args.bin")
    assert CLI_TOKEN.encode() in (folder / "training_args.bin").read_bytes()  # the leak this guards against

    push_model_dir(folder, "someone/old-run", token=SERVER_TOKEN, endpoint=hub.url)
    files = set(HfApi(endpoint=hub.url, token=SERVER_TOKEN).list_repo_files("someone/old-run"))
    assert {"recipe.yaml", "README.md", "model.safetensors", "config.json"} <= files
    assert "training_args.bin" not in files
    assert files_holding([CLI_TOKEN], hub.store.root) == []
    recipe = hf_hub_download("someone/old-run", "recipe.yaml", endpoint=hub.url, cache_dir=tmp_path / "dl")
    assert yaml.safe_load(Path(recipe).read_text()) == {"dataset": "ucf101", "learning_rate": 5e-5,
                                                         "hub_token": None, "num_frames": 4}


def test_push_of_a_folder_holding_a_token_sends_nothing_and_names_the_file(hub, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    folder = save_tiny_videomae(tmp_path / "model")
    (folder / "notes.txt").write_text(f"remember to use {ENV_TOKEN} for the upload\n")
    with pytest.raises(SecretInUploadError, match=r"notes\.txt") as caught:
        push_model_dir(folder, "someone/leaky", token=SERVER_TOKEN, endpoint=hub.url)
    assert ENV_TOKEN not in str(caught.value)  # the error does not print the secret either
    assert not HfApi(endpoint=hub.url, token=SERVER_TOKEN).repo_exists("someone/leaky")
    # the token being used is caught verbatim even when it has no token shape
    (folder / "notes.txt").write_text(f"the key is {SERVER_TOKEN}\n")
    with pytest.raises(SecretInUploadError, match="token in use"):
        push_model_dir(folder, "someone/leaky", token=SERVER_TOKEN, endpoint=hub.url)
    assert files_holding([ENV_TOKEN, SERVER_TOKEN], hub.store.root) == []


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory) -> Path:
    """A small demo dataset in the UCF101 layout (8 classes x 6 clips), loaded with ``dataset: ucf101``."""
    from pipeline.data.demo import ensure_demo_dataset

    return ensure_demo_dataset(tmp_path_factory.mktemp("secrets_data") / "demo", clips_per_class=6,
                               groups_per_class=3, num_frames=16)


@pytest.mark.slow
def test_training_with_a_token_writes_and_uploads_no_byte_of_it(small_demo, tmp_path):
    """The whole product path: train with --hub_token (and HF_TOKEN set), checkpoints, TensorBoard, multi-view
    evaluation, card, Trainer push every save and our push at the end; then grep every byte."""
    cache = tmp_path / "cache"
    with LocalHubServer() as hub:
        out = tmp_path / "run"
        result = run_train(
            ["recipes/demo.yaml", "--dataset", "ucf101", "--dataset_dir", str(small_demo), "--output_dir", str(out),
             "--max_steps", "4", "--eval_steps", "2", "--save_steps", "2", "--logging_steps", "1",
             "--per_device_train_batch_size", "4", "--dataloader_num_workers", "0",
             "--dataloader_persistent_workers", "false", "--report_to", "tensorboard", "--disable_tqdm", "true",
             "--run_multiview_evaluation", "true", "--push_to_hub", "true", "--hub_strategy", "every_save",
             "--hub_model_id", "leak-check/demo", "--hub_token", CLI_TOKEN],
            env={"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf-home"), "HF_TOKEN": ENV_TOKEN,
                 "VIDEO_PIPELINE_CACHE": str(cache)})
        log = tmp_path / "train.log"
        log.write_text(result.stdout + result.stderr)
        uploaded = set(HfApi(endpoint=hub.url, token=CLI_TOKEN).list_repo_files("leak-check/demo"))
        # the run did write and upload what the check is about
        assert {"recipe.yaml", "README.md", "model.safetensors"} <= uploaded, sorted(uploaded)
        assert (out / "training_args.bin").is_file() and (out / "checkpoint-4" / "training_args.bin").is_file()
        assert list(out.glob("runs/*/events.out.tfevents.*")), "no TensorBoard events written"
        leaks = files_holding([CLI_TOKEN, ENV_TOKEN], out, log.parent, hub.store.root, cache)
        assert leaks == [], leaks
        recipe = yaml.safe_load((out / "recipe.yaml").read_text())
        assert recipe["hub_token"] is None and recipe["hub_model_id"] == "leak-check/demo"
        metrics = json.loads((out / "all_results.json").read_text())
        assert "test_accuracy" in metrics
