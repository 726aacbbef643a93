"""``VideoTrainer``: the HF Trainer, with checkpoint reloads that keep every weight.

transformers 5 renames some weights between the live model and the files it writes (VideoMAE's
``query.bias``/``value.bias`` are saved as ``q_bias``/``v_bias``, the names of the original checkpoints), and
``from_pretrained`` maps them back. The Trainer's own reloads (``resume_from_checkpoint`` and
``load_best_model_at_end``) call ``load_state_dict`` on the raw file instead, which loads neither name: a resumed
run silently restarts those biases from their initial values, and the "best" model keeps the last epoch's biases
(DESIGN fact 9, measured here on the demo). This class reloads plain (non-sharded) checkpoints through
``from_pretrained`` and fails if any weight does not match; FSDP / DeepSpeed checkpoints keep the library's path.

Fine-tuning (``fine_tuning=FineTuning``, pipeline/training/fine_tuning.py) enters through the Trainer's own hooks:
``compute_loss_func`` (soft targets, label smoothing, class weights), callbacks (EMA), ``create_optimizer`` /
``get_decay_parameter_names`` (layer-wise lr decay, no decay on norms and learned tokens), ``compute_loss`` (Mixup /
CutMix of the training batch on its device), ``_get_train_sampler`` (class-balanced sampling; a private method,
guarded by tests/test_fine_tuning_trainer.py) and ``log`` (``train_accuracy``).
"""

from __future__ import annotations

import logging
import os

from transformers import Trainer
from transformers.utils import SAFE_WEIGHTS_NAME, WEIGHTS_NAME

from .optimizer_groups import decay_parameter_names

logger = logging.getLogger(__name__)


class VideoTrainer(Trainer):
    """``Trainer`` whose resume and best-model reloads go through ``from_pretrained`` (weight renames applied)."""

    def __init__(self, *args, fine_tuning=None, **kwargs):
        self.fine_tuning = fine_tuning
        if fine_tuning is not None:
            kwargs.setdefault("compute_loss_func", fine_tuning.loss)
            kwargs["callbacks"] = [*fine_tuning.callbacks, *(kwargs.get("callbacks") or [])]
        super().__init__(*args, **kwargs)
        if fine_tuning is not None:
            fine_tuning.bind(self)

    def get_decay_parameter_names(self, model) -> list[str]:
        return decay_parameter_names(model, super().get_decay_parameter_names(model))

    def create_optimizer(self, model=None):
        if self.optimizer is None and self.fine_tuning is not None:
            self.optimizer = self.fine_tuning.create_optimizer(self, self.model if model is None else model)
        return super().create_optimizer(model)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.fine_tuning is not None and model.training:
            inputs = self.fine_tuning.mix(inputs)
        return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)

    def _get_train_sampler(self, train_dataset=None):
        if self.fine_tuning is not None:
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            sampler = self.fine_tuning.train_sampler(seed)
            if sampler is not None:
                return sampler
        return super()._get_train_sampler(train_dataset)

    def log(self, logs, start_time=None):
        if self.fine_tuning is not None:
            self.fine_tuning.log_metrics(logs, self.accelerator)
        super().log(logs, start_time)

    def _plain_checkpoint(self, folder: str | None) -> bool:
        if not folder or self.is_fsdp_enabled or self.is_deepspeed_enabled:
            return False
        return any(os.path.isfile(os.path.join(folder, name)) for name in (SAFE_WEIGHTS_NAME, WEIGHTS_NAME))

    def _reload_weights(self, folder: str) -> None:
        model = self.accelerator.unwrap_model(self.model)
        reloaded = type(model).from_pretrained(folder, config=model.config)
        result = model.load_state_dict(reloaded.state_dict(), strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise RuntimeError(
                f"checkpoint {folder} does not match the model: missing {result.missing_keys[:8]}, "
                f"unexpected {result.unexpected_keys[:8]}"
            )
        logger.info("reloaded every weight from %s", folder)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        if model is None and self._plain_checkpoint(resume_from_checkpoint):
            self._reload_weights(resume_from_checkpoint)
            return
        super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_best_model(self):
        best = self.state.best_model_checkpoint
        if self._plain_checkpoint(best):
            logger.info("loading the best model from %s (score: %s)", best, self.state.best_metric)
            self._reload_weights(best)
            return
        super()._load_best_model()
