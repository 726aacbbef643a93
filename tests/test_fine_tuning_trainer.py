"""The fine-tuning keys inside the Trainer: recipe parsing and checks, the sampler hook, batch mixing, train accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from torch.utils.data import Dataset
from transformers import TrainingArguments

from fine_tuning_models import one_compute_thread, tiny_model  # noqa: F401 (fixture)
from pipeline.configs import parse_args, resolved_recipe
from pipeline.training.recipe_checks import check_recipe
from pipeline.user_errors import RecipeError
from pipeline.training.classification_loss import ClassificationLoss
from pipeline.training.fine_tuning import FineTuning
from pipeline.training.mixing import VideoMixup
from pipeline.training.trainer import VideoTrainer

pytestmark = pytest.mark.usefixtures("one_compute_thread")

ACCEPTANCE = ["recipes/demo.yaml", "--layer_decay", "0.75", "--drop_path_rate", "0.1", "--mixup_alpha", "0.8",
              "--cutmix_alpha", "1.0", "--rand_augment", "m7-n4-mstd0.5", "--ema_decay", "0.999", "--max_steps", "300",
              "--output_dir", "OUT"]


def test_every_key_parses_and_is_written_with_its_value():
    parsed = parse_args(ACCEPTANCE + ["--freeze_backbone", "true", "--probe", "attentive", "--class_weighting",
                                      "balanced", "--balanced_sampler", "true", "--ema_as_model", "true",
                                      "--mixup_prob", "0.9", "--mixup_switch_prob", "0.4", "--activation_checkpointing",
                                      "true"])
    recipe = resolved_recipe(*parsed)
    expected = {"layer_decay": 0.75, "drop_path_rate": 0.1, "mixup_alpha": 0.8, "cutmix_alpha": 1.0,
                "rand_augment": "m7-n4-mstd0.5", "ema_decay": 0.999, "freeze_backbone": True, "probe": "attentive",
                "class_weighting": "balanced", "balanced_sampler": True, "ema_as_model": True, "mixup_prob": 0.9,
                "mixup_switch_prob": 0.4, "activation_checkpointing": True, "ema_warmup": True}
    assert {k: recipe[k] for k in expected} == expected


@pytest.mark.parametrize("flags, message", [
    (["--probe", "mlp"], "probe must be one of linear, attentive"),
    (["--class_weighting", "inverse"], "class_weighting must be one of none, balanced"),
    (["--ema_as_model", "true"], "ema_as_model: true needs ema_decay"),
    (["--rand_augment", "m7-q3"], "rand_augment: cannot read 'q3'"),
    (["--layer_decay", "1.5"], "layer_decay must be in"),
    (["--mixup_prob", "2"], "mixup_prob"),
])
def test_bad_values_fail_with_the_key_named(flags, message):
    model_args, data_args, run_args, training_args = parse_args(["recipes/demo.yaml", "--output_dir", "OUT", *flags])
    with pytest.raises(ValueError, match=message):
        FineTuning.from_args(model_args, data_args, run_args, training_args, 3, [0, 1, 2])
    with pytest.raises(RecipeError, match=message):  # train.py's check at the start, before any data is read
        check_recipe(model_args, data_args, run_args, training_args)


def test_mixing_uses_the_models_input_name():
    from pipeline.training.mixing import VideoMixup

    fine_tuning = FineTuning(loss=ClassificationLoss(3), mixup=VideoMixup(3, 0.8, 0.0, 1.0, 0.0), num_classes=3)
    clips = torch.randn(4, 2, 3, 8, 8)
    mixed = fine_tuning.mix({"pixel_values_videos": clips, "labels": torch.tensor([0, 1, 2, 0])},
                            "pixel_values_videos")  # V-JEPA 2's name
    assert set(mixed) == {"pixel_values_videos", "labels"} and mixed["labels"].shape == (4, 3)
    assert not torch.equal(mixed["pixel_values_videos"], clips)
    torch.testing.assert_close(mixed["labels"].sum(1), torch.ones(4))


def test_ema_as_model_selects_checkpoints_by_the_ema():
    args = parse_args(["recipes/demo.yaml", "--output_dir", "OUT", "--ema_decay", "0.99", "--ema_as_model", "true"])
    FineTuning.from_args(*args, 3, [0, 1, 2])
    assert args[3].metric_for_best_model == "ema_loss" and args[3].greater_is_better is False


class Labelled(Dataset):
    """Tiny clips whose labels are very unequal: 40 / 8 / 2."""

    labels = [0] * 40 + [1] * 8 + [2] * 2

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"pixel_values": torch.full((4, 3, 32, 32), float(i)), "labels": self.labels[i]}


def make_trainer(tmp_path, fine_tuning, **kwargs):
    args = TrainingArguments(str(tmp_path), per_device_train_batch_size=5, report_to="none", use_cpu=True,
                             disable_tqdm=True, save_strategy="no", **kwargs)
    return VideoTrainer(model=tiny_model("videomae"), args=args, train_dataset=Labelled(), fine_tuning=fine_tuning)


def test_balanced_sampler_reaches_the_trainers_dataloader(tmp_path):
    # _get_train_sampler is a private Trainer method (transformers 5.x): this fails loudly if it stops being used
    fine_tuning = FineTuning(loss=ClassificationLoss(3), sampler_labels=Labelled.labels, num_classes=3)
    trainer = make_trainer(tmp_path, fine_tuning)
    loader = trainer.get_train_dataloader()
    counts = np.zeros(3)
    for epoch in range(20):
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        for batch in loader:
            counts += np.bincount(batch["labels"].numpy(), minlength=3)
    frequencies = counts / counts.sum()  # 1,000 draws: 1/3 each within 4 standard deviations
    assert np.all(np.abs(frequencies - 1 / 3) < 4 * np.sqrt(2 / 9 / counts.sum())), (frequencies, transformers.__version__)


def test_mixing_happens_in_training_only_and_train_accuracy_is_logged(tmp_path):
    fine_tuning = FineTuning(loss=ClassificationLoss(3, label_smoothing=0.1),
                             mixup=VideoMixup(3, mixup_alpha=0.8, cutmix_alpha=1.0))
    trainer = make_trainer(tmp_path, fine_tuning, max_steps=4, logging_steps=2, learning_rate=0.01)
    seen = {"train": [], "eval": []}
    trainer.model.register_forward_pre_hook(
        lambda module, args, kwargs: seen["train" if module.training else "eval"].append(kwargs["pixel_values"]),
        with_kwargs=True)
    trainer.train()
    originals = {float(v) for v in range(50)}
    # in training every clip is a blend or a collage of two clips: values that are no single clip's index
    mixed = [clip for batch in seen["train"] for clip in batch]
    assert sum(set(clip.unique().tolist()) <= originals and clip.unique().numel() == 1 for clip in mixed) < len(mixed)
    accuracies = [entry["train_accuracy"] for entry in trainer.state.log_history if "train_accuracy" in entry]
    assert len(accuracies) == 2 and all(0.0 <= a <= 1.0 for a in accuracies)
    trainer.evaluate(Labelled())
    assert all(set(batch.unique().tolist()) <= originals for batch in seen["eval"])


def test_gradient_accumulation_gives_the_gradient_of_the_whole_batch(tmp_path):
    """TimeSformer's (and I3D's) own loss is a per-micro-batch mean while the Trainer, seeing ``**kwargs`` in their
    forward, skips its division by the accumulation steps; the one loss divides by the whole batch's row count."""
    def one_step(batch, accumulation):
        args = TrainingArguments(str(tmp_path / f"ga{accumulation}"), per_device_train_batch_size=batch,
                                 gradient_accumulation_steps=accumulation, max_steps=1, learning_rate=0.1,
                                 optim="sgd", weight_decay=0.0, max_grad_norm=0.0, lr_scheduler_type="constant",
                                 report_to="none", use_cpu=True, disable_tqdm=True, save_strategy="no",
                                 train_sampling_strategy="sequential")
        model = tiny_model("timesformer")
        before = model.classifier.weight.detach().clone()
        VideoTrainer(model=model, args=args, train_dataset=Labelled(),
                     fine_tuning=FineTuning(loss=ClassificationLoss(3))).train()
        return model.classifier.weight.detach() - before

    torch.testing.assert_close(one_step(2, 4), one_step(8, 1), rtol=1e-4, atol=1e-7)
