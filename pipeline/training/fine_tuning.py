"""The fine-tuning recipe keys, turned into the objects that carry them out.

``FineTuning.from_args(...)`` checks the keys and gathers everything: ``prepare_model`` applies what changes the
network (attentive probe, drop path, frozen backbone), and ``VideoTrainer`` calls into it from its few overrides
for what the Trainer does (layer-wise lr decay, Mixup / CutMix, the loss with label smoothing and class weights,
the class-balanced sampler, ``train_accuracy``, the EMA callback). Each piece lives in its own module; this one
only wires them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

from pipeline.inference.model_inputs import CLIP_KEY
from pipeline.models.drop_path import set_drop_path
from pipeline.models.backbone_freezing import freeze_backbone
from pipeline.models.probe import attentive_probe

from .classification_loss import ClassificationLoss
from .ema import EMACallback
from .mixing import VideoMixup
from .optimizer_groups import create_layerwise_optimizer
from .rand_augment import VideoRandAugment
from .sampling_weights import BalancedSampler, balanced_class_weights

logger = logging.getLogger(__name__)

PROBES = ("linear", "attentive")
CLASS_WEIGHTINGS = ("none", "balanced")


def check_args(model_args, data_args, run_args) -> None:
    """One clear error per bad value, before anything is built."""
    if model_args.probe not in PROBES:
        raise ValueError(f"probe must be one of {', '.join(PROBES)}, got '{model_args.probe}'")
    if run_args.class_weighting not in CLASS_WEIGHTINGS:
        raise ValueError(f"class_weighting must be one of {', '.join(CLASS_WEIGHTINGS)}, got '{run_args.class_weighting}'")
    if not 0.0 <= model_args.drop_path_rate < 1.0:
        raise ValueError(f"drop_path_rate must be in [0, 1), got {model_args.drop_path_rate}")
    if not 0.0 < run_args.layer_decay <= 1.0:
        raise ValueError(f"layer_decay must be in (0, 1], got {run_args.layer_decay}")
    if run_args.ema_decay is not None and not 0.0 < run_args.ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in (0, 1), got {run_args.ema_decay}")
    if run_args.ema_as_model and run_args.ema_decay is None:
        raise ValueError("ema_as_model: true needs ema_decay (e.g. 0.9999)")
    if data_args.rand_augment:
        VideoRandAugment.from_spec(data_args.rand_augment)  # raises on a bad spec
    VideoMixup(2, data_args.mixup_alpha, data_args.cutmix_alpha, data_args.mixup_prob, data_args.mixup_switch_prob)


def _has_timesformer_layers(model) -> bool:
    return any(type(m).__name__.startswith("TimesformerLayer") for m in model.modules())


@dataclass
class FineTuning:
    """What VideoTrainer does beyond the library: see ``from_args``."""

    loss: ClassificationLoss
    probe: str = "linear"
    drop_path_rate: float = 0.0
    freeze_backbone: bool = False
    layer_decay: float = 1.0
    mixup: VideoMixup | None = None
    sampler_labels: Sequence[int] | None = None
    num_classes: int = 0
    callbacks: list = field(default_factory=list)
    ema: EMACallback | None = None

    @classmethod
    def from_args(cls, model_args, data_args, run_args, training_args, num_classes: int,
                  train_labels: Sequence[int]) -> "FineTuning":
        check_args(model_args, data_args, run_args)
        weights = balanced_class_weights(train_labels, num_classes) if run_args.class_weighting == "balanced" else None
        if weights is not None:
            logger.info("class weights (balanced): %s", [round(float(w), 3) for w in weights])
        loss = ClassificationLoss(num_classes, training_args.label_smoothing_factor, weights)
        mixup = VideoMixup(num_classes, data_args.mixup_alpha, data_args.cutmix_alpha, data_args.mixup_prob,
                           data_args.mixup_switch_prob)
        ema = None
        callbacks: list = []
        if run_args.ema_decay is not None:
            ema = EMACallback(run_args.ema_decay, warmup=run_args.ema_warmup, as_model=run_args.ema_as_model)
            callbacks.append(ema)
        if run_args.ema_as_model and training_args.metric_for_best_model:
            # the saved model is the EMA: checkpoints are selected by the EMA's metric as well
            metric = training_args.metric_for_best_model
            if not metric.startswith("ema_"):
                training_args.metric_for_best_model = f"ema_{metric.removeprefix('eval_')}"
                logger.info("ema_as_model: checkpoints selected by %s", training_args.metric_for_best_model)
        if model_args.freeze_backbone and model_args.drop_path_rate:
            logger.warning("drop_path_rate has no effect on a frozen backbone (kept in eval mode)")
        return cls(
            loss=loss,
            probe=model_args.probe,
            drop_path_rate=model_args.drop_path_rate,
            freeze_backbone=model_args.freeze_backbone,
            layer_decay=run_args.layer_decay,
            mixup=mixup if mixup.enabled else None,
            sampler_labels=list(train_labels) if data_args.balanced_sampler else None,
            num_classes=num_classes,
            callbacks=callbacks,
            ema=ema,
        )

    def prepare_model(self, model):
        """The probe (``attentive`` replaces the head), then drop path, then freezing; returns the model to train."""
        if self.probe == "attentive":
            model = attentive_probe(model)
            logger.info("attentive probe: %d query token(s), %d heads over %d-wide tokens",
                        model.config.probe_num_queries, model.config.probe_num_heads, model.config.hidden_size)
        # TimeSformer has its own drop-path modules (config.drop_path_rate): the recipe's rate wins, 0 included
        if self.drop_path_rate or _has_timesformer_layers(model):
            rates = set_drop_path(model, self.drop_path_rate)
            if self.drop_path_rate:
                logger.info("drop path: %d blocks, rates %.3f .. %.3f", len(rates), rates[0], rates[-1])
        if self.freeze_backbone:
            freeze_backbone(model)  # logs what still trains
        return model

    def bind(self, trainer) -> None:
        if self.ema is not None:
            self.ema.bind(trainer)

    # --- called by VideoTrainer ---

    def create_optimizer(self, trainer, model):
        """The layer-wise optimizer, or None to let the Trainer build its own (layer_decay 1)."""
        if self.layer_decay == 1.0:
            return None
        return create_layerwise_optimizer(trainer, model, self.layer_decay)

    def mix(self, inputs: dict[str, Any], key: str = CLIP_KEY) -> dict[str, Any]:
        """Mixup / CutMix of a training batch (targets become class distributions); ``key``: the clips' name."""
        if self.mixup is None or "labels" not in inputs:
            return inputs
        mixed = self.mixup(inputs[key], inputs["labels"])
        return {**inputs, key: mixed.pixel_values, "labels": mixed.targets}

    def train_sampler(self, seed: int) -> BalancedSampler | None:
        if self.sampler_labels is None:
            return None
        return BalancedSampler(self.sampler_labels, self.num_classes, seed=seed)

    def log_metrics(self, logs: dict[str, float], accelerator) -> None:
        """Adds ``train_accuracy`` to the Trainer's periodic training logs (every process calls this)."""
        if "loss" in logs and not any(k.startswith(("eval_", "test_")) for k in logs):
            logs.update(self.loss.pop_train_accuracy(accelerator))

    def evaluate_ema(self, eval_dataset, metric_key_prefix: str) -> dict[str, float]:
        """The EMA's metrics on a final evaluation set (when the model itself is not the EMA)."""
        if self.ema is None or self.ema.as_model:
            return {}
        return self.ema.evaluate(eval_dataset, f"{metric_key_prefix}_ema")
