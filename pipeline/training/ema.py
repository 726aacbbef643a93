"""An exponential moving average (EMA) of the weights, as a Trainer callback.

After every optimizer step ``t`` (0-based), every floating-point tensor of the model's ``state_dict`` (parameters
and buffers such as BatchNorm statistics) updates its average

    ema <- d_t ema + (1 - d_t) w,        d_t = decay, or min(decay, (1 + t) / (10 + t)) with warm-up

so after N steps from weights ``w_0``, ``ema_N = (prod_t d_t) w_0 + sum_t (1 - d_t) (prod_{s > t} d_s) w_t``.
Warm-up (TensorFlow's ``ExponentialMovingAverage(num_updates=...)`` rule, also timm's ``ModelEmaV3`` warm-up) keeps
the random initial weights from dominating the average of a short run; without it the average after N steps
still holds ``decay ** N`` of them.

What it does around training:
- every evaluation during training also scores the EMA weights on the same data: ``eval_ema_accuracy``,
  ``eval_ema_loss``, ... are logged and added to the evaluation's metrics, so ``metric_for_best_model: ema_loss``
  selects checkpoints by the EMA (done automatically with ``ema_as_model``);
- every checkpoint holds the average (``ema_model.safetensors``), and a resumed run continues it;
- at the end, when the Trainer reloaded its best checkpoint, the average is that checkpoint's; with ``as_model``
  the EMA weights then replace the raw ones, so ``save_model`` saves (and the final evaluation scores) the EMA;
- ``evaluate(eval_dataset, metric_key_prefix)`` scores the EMA on any dataset (train.py uses it on test).

Not supported with FSDP / DeepSpeed (sharded parameters): an error at start.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager

import torch
from transformers import TrainerCallback

logger = logging.getLogger(__name__)

EMA_WEIGHTS_NAME = "ema_model.safetensors"


def ema_decay_at(step: int, decay: float, warmup: bool) -> float:
    """The decay used by the update after optimizer step ``step`` (0-based)."""
    return min(decay, (1.0 + step) / (10.0 + step)) if warmup else decay


class EMACallback(TrainerCallback):
    """Keeps, evaluates, checkpoints and (optionally) installs an EMA of the model's weights."""

    def __init__(self, decay: float, warmup: bool = True, as_model: bool = False):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.as_model = bool(as_model)
        self.trainer = None
        self.shadow: dict[str, torch.Tensor] | None = None
        self._live: dict[str, torch.Tensor] | None = None
        self._evaluating = False

    def bind(self, trainer) -> "EMACallback":
        """The trainer whose model is averaged and evaluated (callbacks are not given it by the library)."""
        if trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled:
            raise ValueError("ema_decay: not supported with FSDP / DeepSpeed (the weights are sharded)")
        self.trainer = trainer
        return self

    # --- the average itself ---

    def start(self, model: torch.nn.Module) -> None:
        """Starts the average at ``model``'s current weights."""
        # state_dict() tensors share storage with the live parameters/buffers: updates show through
        self._live = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
        self.shadow = {k: v.detach().clone().float() for k, v in self._live.items()}

    @torch.no_grad()
    def update(self, step: int) -> None:
        """One EMA update after optimizer step ``step`` (0-based)."""
        weight = 1.0 - ema_decay_at(step, self.decay, self.warmup)
        for name, average in self.shadow.items():
            average.lerp_(self._live[name].float(), weight)

    @torch.no_grad()
    def copy_to_model(self) -> None:
        for name, average in self.shadow.items():
            self._live[name].copy_(average)

    @contextmanager
    def swapped_in(self):
        """The EMA weights in the model for the duration, the raw ones restored afterwards."""
        backup = {k: v.detach().clone() for k, v in self._live.items()}
        self.copy_to_model()
        try:
            yield
        finally:
            with torch.no_grad():
                for name, value in backup.items():
                    self._live[name].copy_(value)

    def save(self, folder: str) -> None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous().cpu() for k, v in self.shadow.items()}, os.path.join(folder, EMA_WEIGHTS_NAME))

    def load(self, folder: str) -> bool:
        path = os.path.join(folder, EMA_WEIGHTS_NAME)
        if not os.path.isfile(path):
            return False
        from safetensors.torch import load_file

        loaded = load_file(path)
        if set(loaded) != set(self.shadow):
            raise RuntimeError(f"{path} does not match the model: {sorted(set(loaded) ^ set(self.shadow))[:8]}")
        for name, average in self.shadow.items():
            average.copy_(loaded[name])
        return True

    # --- evaluation ---

    def evaluate(self, eval_dataset=None, metric_key_prefix: str = "eval_ema") -> dict[str, float]:
        """Scores the EMA weights with the trainer's evaluation loop (no logging, no callbacks)."""
        trainer = self.trainer
        dataloader = trainer.get_eval_dataloader(eval_dataset)
        self._evaluating = True
        try:
            with self.swapped_in():
                output = trainer.evaluation_loop(
                    dataloader, description="Evaluation (EMA weights)", metric_key_prefix=metric_key_prefix
                )
        finally:
            self._evaluating = False
        return output.metrics

    # --- Trainer events ---

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.start(model)
        if state.global_step > 0:  # resumed: continue the average of the checkpoint
            candidates = [os.path.join(args.output_dir, f"checkpoint-{state.global_step}")]
            if args.resume_from_checkpoint:
                candidates.insert(0, args.resume_from_checkpoint)
            if not any(os.path.isdir(c) and self.load(c) for c in candidates):
                logger.warning("EMA: no %s in the resumed checkpoint; the average restarts from its weights",
                               EMA_WEIGHTS_NAME)

    def on_step_end(self, args, state, control, **kwargs):
        self.update(state.global_step - 1)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        # only the evaluations of the training loop; train.py scores the final evaluations itself
        if self._evaluating or self.trainer is None or not self.trainer.is_in_train or metrics is None:
            return
        prefix = _prefix_of(metrics)
        ema_metrics = self.evaluate(None, f"{prefix}_ema")
        metrics.update(ema_metrics)  # the caller's dict: best-model selection and early stopping see them
        self.trainer.log(dict(ema_metrics))

    def on_save(self, args, state, control, **kwargs):
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if args.should_save and os.path.isdir(folder):
            self.save(folder)

    def on_train_end(self, args, state, control, **kwargs):
        best = state.best_model_checkpoint
        if args.load_best_model_at_end and best and self.load(best):
            logger.info("EMA: the average of the best checkpoint %s", best)
        if self.as_model:
            self.copy_to_model()
            logger.info("EMA: the model now holds the EMA weights (ema_as_model)")


def _prefix_of(metrics: dict) -> str:
    for key in metrics:
        if key.endswith("_loss"):
            return key[: -len("_loss")]
    return "eval"
