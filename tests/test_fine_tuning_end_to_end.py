"""The fine-tuning keys through pipeline/train.py on the demo, as a user runs them (slow: two short trainings)."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from transformers import AutoConfig, AutoModelForVideoClassification

from conftest import run_train
from pipeline.models import scratch_processor

pytestmark = pytest.mark.slow

QUICK = ["--report_to", "none", "--disable_tqdm", "true", "--eval_steps", "10", "--save_steps", "10"]


def test_acceptance_command_trains_and_records_every_key(demo_dataset, tmp_path):
    out = tmp_path / "out"
    result = run_train(["recipes/demo.yaml", "--dataset_dir", str(demo_dataset), "--layer_decay", "0.75",
                        "--drop_path_rate", "0.1", "--mixup_alpha", "0.8", "--cutmix_alpha", "1.0", "--rand_augment",
                        "m7-n4-mstd0.5", "--ema_decay", "0.999", "--max_steps", "30", "--output_dir", str(out), *QUICK])
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    assert {k: recipe[k] for k in ("layer_decay", "drop_path_rate", "mixup_alpha", "cutmix_alpha", "rand_augment",
                                   "ema_decay", "max_steps")} == {
        "layer_decay": 0.75, "drop_path_rate": 0.1, "mixup_alpha": 0.8, "cutmix_alpha": 1.0,
        "rand_augment": "m7-n4-mstd0.5", "ema_decay": 0.999, "max_steps": 30}
    results = json.loads((out / "all_results.json").read_text())
    for key in ("test_accuracy", "test_ema_accuracy", "eval_ema_loss"):
        assert 0.0 <= results[key] <= (10.0 if key.endswith("loss") else 1.0), key
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert any("train_accuracy" in entry for entry in history)
    assert any("eval_ema_accuracy" in entry for entry in history)
    assert "drop path: 3 blocks, rates 0.000 .. 0.100" in result.stdout
    assert (out / "checkpoint-30" / "ema_model.safetensors").is_file()


def test_frozen_backbone_attentive_probe_trains_only_the_head(demo_dataset, tmp_path):
    # a "pretrained" model with the demo's architecture, so the recipe's config applies to it unchanged
    demo = yaml.safe_load(open("recipes/demo.yaml"))
    torch.manual_seed(0)
    config = AutoConfig.for_model("videomae", num_labels=8, image_size=64, num_frames=8, **demo["config_overrides"])
    pretrained = tmp_path / "pretrained"
    AutoModelForVideoClassification.from_config(config).save_pretrained(pretrained)
    scratch_processor(64).save_pretrained(pretrained)
    out = tmp_path / "probe"
    run_train(["recipes/demo.yaml", "--dataset_dir", str(demo_dataset), "--model_name_or_path", str(pretrained),
               "--model_type", "", "--freeze_backbone", "true", "--probe", "attentive", "--max_steps", "20",
               "--learning_rate", "0.003", "--output_dir", str(out), *QUICK])
    trained = AutoModelForVideoClassification.from_pretrained(out)
    assert trained.config.model_type == "video_probe" and trained.config.num_frames == 8
    before = AutoModelForVideoClassification.from_pretrained(pretrained).videomae.state_dict()
    after = trained.backbone.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert torch.equal(after[key], value), f"backbone weight changed: {key}"
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    assert recipe["freeze_backbone"] is True and recipe["probe"] == "attentive"
    results = json.loads((out / "all_results.json").read_text())
    assert results["test_accuracy"] >= 0.0
