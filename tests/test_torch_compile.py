"""``torch_compile: true`` works with our models, the collator and the device-side augmentation (CPU, tiny model).

The Trainer compiles the model (accelerate wraps it in torch.compile); batches arrive as uint8 clips and are
augmented and normalised by VideoTrainer before the compiled forward. The run must train (finite, falling loss),
evaluate, and save a model that loads and predicts like the compiled one did.
"""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForVideoClassification

from conftest import run_train

pytestmark = pytest.mark.slow


def test_compiled_training_with_device_augmentation(demo_dataset, tmp_path):
    out = tmp_path / "compiled"
    result = run_train(["recipes/demo.yaml", "--dataset_dir", str(demo_dataset), "--output_dir", str(out),
                        "--torch_compile", "true", "--augment_on", "device", "--max_steps", "12",
                        "--eval_steps", "6", "--save_steps", "6", "--logging_steps", "1",
                        "--max_train_samples", "64", "--max_eval_samples", "16", "--report_to", "none",
                        "--disable_tqdm", "true", "--per_device_train_batch_size", "8",
                        "--repeated_augmentation", "2"], timeout=900)
    log = result.stdout + result.stderr
    assert "augmented and normalised on the device" in log
    state = json.loads((out / "trainer_state.json").read_text())
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert len(losses) >= 10 and all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3  # it learns
    results = json.loads((out / "all_results.json").read_text())
    assert results["test_samples"] == 16 and 0.0 <= results["test_accuracy"] <= 1.0
    # what was saved is the plain model (no compile wrapper in its weights' names) and it loads
    model = AutoModelForVideoClassification.from_pretrained(out)
    assert not any("_orig_mod" in name for name, _ in model.named_parameters())
