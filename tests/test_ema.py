"""EMA of the weights: the closed form after N steps, and what the callback does inside a Trainer run."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import Dataset
from transformers import TrainerCallback, TrainingArguments

from fine_tuning_models import one_compute_thread, tiny_model  # noqa: F401 (fixture)
from pipeline.training.classification_loss import ClassificationLoss
from pipeline.training.ema import EMA_WEIGHTS_NAME, EMACallback, ema_decay_at
from pipeline.training.fine_tuning import FineTuning
from pipeline.training.trainer import VideoTrainer

pytestmark = pytest.mark.usefixtures("one_compute_thread")


@pytest.mark.parametrize("warmup", [False, True])
def test_closed_form_after_n_steps_of_constant_weights(warmup):
    model = torch.nn.Linear(3, 2)
    w0 = model.weight.detach().clone()
    ema = EMACallback(0.9, warmup=warmup)
    ema.start(model)
    target = torch.full_like(w0, 2.5)
    with torch.no_grad():
        model.weight.copy_(target)
    steps = 25
    for t in range(steps):
        ema.update(t)
    kept = 0.9 ** steps if not warmup else math.prod(min(0.9, (1 + t) / (10 + t)) for t in range(steps))
    # ema_N = c + (w_0 - c) x prod_t d_t
    torch.testing.assert_close(ema.shadow["weight"], target + (w0 - target) * kept)
    assert ema_decay_at(0, 0.9, True) == pytest.approx(0.1) and ema_decay_at(100, 0.9, True) == 0.9


class RandomClips(Dataset):
    def __len__(self):
        return 24

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"pixel_values": torch.randn(4, 3, 32, 32, generator=g), "labels": i % 3}


class Recorder(TrainerCallback):
    """The weights at the start and after every optimizer step."""

    def __init__(self):
        self.weights = []

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.weights.append({k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()})

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.weights.append({k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()})


def test_trainer_run_follows_the_closed_form_saves_evaluates_and_installs_it(tmp_path):
    model = tiny_model("videomae")
    ema = EMACallback(0.8, warmup=True, as_model=True)
    recorder = Recorder()
    args = TrainingArguments(str(tmp_path), per_device_train_batch_size=4, learning_rate=0.01, max_steps=6,
                             eval_strategy="steps", eval_steps=3, save_strategy="steps", save_steps=3,
                             report_to="none", use_cpu=True, disable_tqdm=True)
    fine_tuning = FineTuning(loss=ClassificationLoss(3), callbacks=[ema], ema=ema)
    trainer = VideoTrainer(model=model, args=args, train_dataset=RandomClips(), eval_dataset=RandomClips(),
                           fine_tuning=fine_tuning, callbacks=[recorder])
    trainer.train()
    # sum over the trajectory: ema_N = prod_t d_t w_0 + sum_t (1 - d_t) prod_{s > t} d_s w_{t+1}
    decays = [ema_decay_at(t, 0.8, True) for t in range(6)]
    for name, average in ema.shadow.items():
        expected = recorder.weights[0][name] * math.prod(decays)
        for t in range(6):
            expected = expected + recorder.weights[t + 1][name] * (1 - decays[t]) * math.prod(decays[t + 1:])
        torch.testing.assert_close(average, expected.float(), msg=name)
    # checkpoints hold the average of their step; evaluations during training scored it
    saved = load_file(str(tmp_path / "checkpoint-6" / EMA_WEIGHTS_NAME))
    assert set(saved) == set(ema.shadow) and all(torch.equal(saved[k], ema.shadow[k]) for k in saved)
    logged = [entry for entry in trainer.state.log_history if "eval_ema_loss" in entry]
    assert [entry["step"] for entry in logged] == [3, 6]
    # as_model: the model now holds the EMA weights
    for name, value in trainer.model.state_dict().items():
        if name in ema.shadow:
            torch.testing.assert_close(value.float(), ema.shadow[name], msg=name)
    assert not torch.equal(recorder.weights[-1]["classifier.weight"], trainer.model.classifier.weight.detach())


def test_resume_continues_the_average(tmp_path):
    def run(max_steps, resume=None):
        ema = EMACallback(0.7, warmup=False)
        args = TrainingArguments(str(tmp_path), per_device_train_batch_size=4, learning_rate=0.01, max_steps=max_steps,
                                 save_strategy="steps", save_steps=2, report_to="none", use_cpu=True,
                                 disable_tqdm=True, seed=3)
        trainer = VideoTrainer(model=tiny_model("videomae"), args=args, train_dataset=RandomClips(),
                               fine_tuning=FineTuning(loss=ClassificationLoss(3), callbacks=[ema], ema=ema))
        trainer.train(resume_from_checkpoint=resume)
        return ema

    straight = run(4)
    saved_at_2 = load_file(str(tmp_path / "checkpoint-2" / EMA_WEIGHTS_NAME))
    resumed = run(4, resume=str(tmp_path / "checkpoint-2"))
    # the resumed run started from checkpoint-2's average, not from that checkpoint's raw weights
    assert not all(torch.equal(saved_at_2[k], resumed.shadow[k]) for k in saved_at_2)
    for name in straight.shadow:
        torch.testing.assert_close(resumed.shadow[name], straight.shadow[name], msg=name, rtol=1e-4, atol=1e-5)
