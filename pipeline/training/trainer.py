"""``VideoTrainer``: the HF Trainer, with checkpoint reloads that keep every weight.

transformers 5 renames some weights between the live model and the files it writes (VideoMAE's
``query.bias``/``value.bias`` are saved as ``q_bias``/``v_bias``, the names of the original checkpoints), and
``from_pretrained`` maps them back. The Trainer's own reloads (``resume_from_checkpoint`` and
``load_best_model_at_end``) call ``load_state_dict`` on the raw file instead, which loads neither name: a resumed
run silently restarts those biases from their initial values, and the "best" model keeps the last epoch's biases
(DESIGN fact 9, measured here on the demo). This class reloads plain (non-sharded) checkpoints through
``from_pretrained`` and fails if any weight does not match; FSDP / DeepSpeed checkpoints keep the library's path.
"""

from __future__ import annotations

import logging
import os

from transformers import Trainer
from transformers.utils import SAFE_WEIGHTS_NAME, WEIGHTS_NAME

from pipeline.inference.model_inputs import as_model_inputs

logger = logging.getLogger(__name__)


class VideoTrainer(Trainer):
    """``Trainer`` whose resume and best-model reloads go through ``from_pretrained`` (weight renames applied), and
    that hands each model its clips under the name it takes (V-JEPA 2: ``pixel_values_videos``)."""

    # the public per-batch hooks (not the private _prepare_inputs): both see the collated batch before the model does
    def training_step(self, model, inputs, num_items_in_batch=None):
        return super().training_step(model, as_model_inputs(model, inputs), num_items_in_batch)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        return super().prediction_step(model, as_model_inputs(model, inputs), prediction_loss_only, ignore_keys)

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
