"""``VideoTrainer``: the HF Trainer, with batches made on the training device and checkpoint reloads that keep every
weight.

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

Preemption (pipeline/training/preemption.py): SIGTERM / SIGUSR1 to any rank stops every rank after the current step
with a checkpoint saved; ``train`` then raises ``Preempted`` (the command exits with status 75). Exact mid-epoch
resume (pipeline/training/clip_randomness.py): a training transform that carries ``ClipRandomness`` gets the run's
seed and the epoch from a callback, so a clip's random draws do not depend on which process loads it, or when. A run
streamed from an ``IterableDataset`` resumes in the stream's epoch and at its batch (pipeline/training/stream_position.py).
"""

from __future__ import annotations

import logging
import os

from transformers import Trainer
from transformers.trainer_utils import has_length
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import SAFE_WEIGHTS_NAME, WEIGHTS_NAME

from pipeline.compatibility import require, warn_if_untested
from pipeline.training.device_batch import DeviceBatch
from .checkpoints import RunFolderState, checkpoint_writes
from .clip_randomness import ClipRandomnessEpochs
from .preemption import Preemption, ignore_signals_in_workers
from .stream_position import StreamPosition
from .optimizer_groups import decay_parameter_names
from .video_counts import empty_prediction
from pipeline.inference.model_inputs import as_model_inputs, input_name

logger = logging.getLogger(__name__)


class VideoTrainer(Trainer):
    """``Trainer`` whose resume and best-model reloads go through ``from_pretrained`` (weight renames applied),
    whose batches are turned into model inputs on the training device (``device_batch``: uint8 clips from the
    loader augmented, resized and normalised there) before every training and prediction step, and whose run
    folders are self-contained and write failures name the file and the space (pipeline.training.checkpoints). Each
    model gets its clips under the name it takes (V-JEPA 2: ``pixel_values_videos``; inference/model_inputs.py)."""

    def __init__(self, *args, device_batch: DeviceBatch | None = None, fine_tuning=None, clip_randomness=None,
                 **kwargs):
        # clip_randomness: the training transform's ClipRandomness when the train set is a stream, whose transform
        # runs inside a datasets map where the Trainer cannot find it (a map-style set's is found by itself)
        # the private Trainer methods overridden below must still be the ones the Trainer calls: an override of a
        # renamed method would be silently bypassed (pipeline/compatibility.py)
        for key in ("trainer_load_from_checkpoint", "trainer_load_best_model", "trainer_save_checkpoint",
                    "trainer_get_train_sampler", "trainer_init_training_state"):
            require(key)
        warn_if_untested()
        self.fine_tuning = fine_tuning  # training/fine_tuning.py: loss, optimizer groups, mixing, sampler, EMA
        if fine_tuning is not None:
            kwargs.setdefault("compute_loss_func", fine_tuning.loss)
            kwargs["callbacks"] = [*fine_tuning.callbacks, *(kwargs.get("callbacks") or [])]
        super().__init__(*args, **kwargs)
        self.device_batch = device_batch
        self.add_callback(RunFolderState())
        self.preemption = Preemption()
        self.add_callback(self.preemption)
        randomness = ClipRandomnessEpochs.of(self.train_dataset)
        if randomness is not None:
            self.add_callback(randomness)
        self.stream_position = None
        if self.train_dataset is not None and not has_length(self.train_dataset):
            self.stream_position = StreamPosition()
            self.add_callback(self.stream_position)
            if randomness is None and clip_randomness is not None:  # after the position: it reads its epoch
                self.add_callback(ClipRandomnessEpochs(clip_randomness, position=self.stream_position))
        if fine_tuning is not None:
            fine_tuning.bind(self)

    def train(self, *args, **kwargs):
        """``Trainer.train``; raises ``Preempted`` when a signal stopped it (its checkpoint is saved by then)."""
        try:
            result = super().train(*args, **kwargs)
        finally:
            self.preemption.restore()  # also when training raised (on_train_end did not run)
        if self.preemption.stopped is not None:
            self.accelerator.wait_for_everyone()  # the ranks leave together: the launcher sees one outcome
            self.preemption.raise_if_stopped(self.args.output_dir)
        return result

    def _init_training_state(self, max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint,
                             trial):
        """The Trainer's (epochs trained, batches to skip in the next): for a stream, from the checkpoint's
        ``StreamPosition`` (the Trainer's own count assumes one epoch of ``max_steps`` batches)."""
        epochs, skip = super()._init_training_state(max_steps, num_update_steps_per_epoch, num_train_epochs,
                                                    resume_from_checkpoint, trial)
        if self.stream_position is None or resume_from_checkpoint is None or self.state.global_step == 0:
            return epochs, skip
        saved = StreamPosition.saved(self.state)
        if saved is None:
            logger.warning("%s holds no stream position (written by another version?): resuming %d batches into the "
                           "stream's first epoch, as the Trainer does", resume_from_checkpoint, skip)
            return epochs, skip
        self.stream_position.resume_at(saved)
        if self.args.ignore_data_skip:
            return saved.epoch, 0
        logger.info("resuming the stream in its epoch %d after %d step(s) of it", saved.epoch, saved.steps)
        return saved.epoch, saved.steps * self.args.gradient_accumulation_steps

    def get_train_dataloader(self):
        return ignore_signals_in_workers(super().get_train_dataloader())  # a preemption signal is the rank's

    def get_eval_dataloader(self, eval_dataset=None):
        return ignore_signals_in_workers(super().get_eval_dataloader(eval_dataset))

    def _device_inputs(self, model, inputs):
        """The batch as the model takes it: made on the device (device_batch) and named for the model."""
        if self.device_batch is not None:
            inputs = self.device_batch(inputs, self.args.device)
        return as_model_inputs(model, inputs)

    def training_step(self, model, inputs, num_items_in_batch=None):
        return super().training_step(model, self._device_inputs(model, inputs), num_items_in_batch)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        labels = inputs.get("labels")
        if labels is not None and labels.numel() == 0:  # every video of this evaluation batch failed to decode
            return empty_prediction(self.model, labels.to(self.args.device), prediction_loss_only)
        return super().prediction_step(model, self._device_inputs(model, inputs), prediction_loss_only, ignore_keys)

    def _save_checkpoint(self, model, trial):
        folder = os.path.join(self.args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        with checkpoint_writes(folder, model=self.model):
            super()._save_checkpoint(model, trial)

    def save_model(self, output_dir=None, _internal_call=False):
        if _internal_call:  # inside _save_checkpoint, which reports for the whole checkpoint
            return super().save_model(output_dir, _internal_call)
        with checkpoint_writes(output_dir or self.args.output_dir, model=self.model, is_checkpoint=False):
            return super().save_model(output_dir, _internal_call)

    def get_decay_parameter_names(self, model) -> list[str]:
        return decay_parameter_names(model, super().get_decay_parameter_names(model))

    def create_optimizer(self, model=None):
        if self.optimizer is None and self.fine_tuning is not None:
            self.optimizer = self.fine_tuning.create_optimizer(self, self.model if model is None else model)
        return super().create_optimizer(model)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.fine_tuning is not None and model.training:
            inputs = self.fine_tuning.mix(inputs, input_name(model))
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
        if self.preemption.stopped is not None:
            return  # the run goes on after the relaunch; the grace period is for saving, not reloading
        best = self.state.best_model_checkpoint
        if self._plain_checkpoint(best):
            logger.info("loading the best model from %s (score: %s)", best, self.state.best_metric)
            self._reload_weights(best)
            return
        super()._load_best_model()
