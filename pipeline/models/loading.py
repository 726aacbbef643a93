"""``get_model``: a video classifier and its processor from a Hub id, a local folder, or a config (from scratch).

Pretrained backbones load strictly: a missing or unexpected backbone weight is an error, because transformers
reports such keys only as a warning and leaves the layers at their init (DESIGN fact 9: VideoMAE's q_bias/v_bias).
Only the classifier may be re-created (new label set).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModelForVideoClassification,
    PretrainedConfig,
    PreTrainedModel,
    VideoMAEImageProcessor,
)

from .registration import register_auto_classes

logger = logging.getLogger(__name__)

# parameter-name fragments of the classification heads that we re-create for a new label set
HEAD_PREFIXES = ("classifier.", "fc_norm.", "logits.", "head.")


class BackboneMismatchError(RuntimeError):
    """A pretrained checkpoint did not load cleanly into the model's backbone."""


def _label_maps(labels: Sequence[str]) -> dict[str, Any]:
    return {
        "num_labels": len(labels),
        "id2label": {i: name for i, name in enumerate(labels)},
        "label2id": {name: i for i, name in enumerate(labels)},
    }


def _is_head(key: str) -> bool:
    return any(key.startswith(p) or f".{p}" in f".{key}" for p in HEAD_PREFIXES)


def _check_loading(name: str, info: dict[str, list], allow: bool) -> None:
    missing = [k for k in info.get("missing_keys", []) if not _is_head(k)]
    unexpected = [k for k in info.get("unexpected_keys", []) if not _is_head(k)]
    mismatched = [k[0] if isinstance(k, tuple) else k for k in info.get("mismatched_keys", [])]
    mismatched = [k for k in mismatched if not _is_head(k)]
    if not (missing or unexpected or mismatched):
        return
    message = (
        f"checkpoint {name} did not load cleanly into the backbone: "
        f"{len(missing)} missing {missing[:8]}, {len(unexpected)} unexpected {unexpected[:8]}, "
        f"{len(mismatched)} of mismatched shape {mismatched[:8]}"
    )
    if allow:
        logger.warning(message + " (continuing: ignore_mismatched_backbone=True)")
        return
    raise BackboneMismatchError(message + ". Set ignore_mismatched_backbone=True to train anyway.")


def scratch_processor(image_size: int, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)) -> VideoMAEImageProcessor:
    """The processor of a model built from a config: resize the shorter side to the input size, centre crop."""
    return VideoMAEImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        image_mean=list(mean),
        image_std=list(std),
    )


def get_model(
    labels: Sequence[str],
    *,
    model_name_or_path: str | None = None,
    model_type: str | None = None,
    config_overrides: dict[str, Any] | None = None,
    processor_name_or_path: str | None = None,
    image_size: int | None = None,
    num_frames: int | None = None,
    attn_implementation: str | None = None,
    ignore_mismatched_backbone: bool = False,
    cache_dir: str | None = None,
) -> tuple[PreTrainedModel, Any]:
    """Returns ``(model, processor)`` for ``labels``; exactly one of ``model_name_or_path`` / ``model_type``."""
    register_auto_classes()
    if bool(model_name_or_path) == bool(model_type):
        raise ValueError("give exactly one of model_name_or_path (pretrained) or model_type (from a config)")
    overrides = dict(config_overrides or {})
    if num_frames is not None:
        overrides["num_frames"] = num_frames
    if image_size is not None:
        overrides["image_size"] = image_size
    # TimeSformer's SDPA is ours, not transformers'; the library must still build it as eager
    hf_attn = attn_implementation if attn_implementation in (None, "eager") or _family(model_name_or_path, model_type, cache_dir) != "timesformer" else "eager"
    kwargs = {"attn_implementation": hf_attn} if hf_attn else {}

    if model_type:
        config = AutoConfig.for_model(model_type, **overrides, **_label_maps(labels))
        model = AutoModelForVideoClassification.from_config(config, **kwargs)
        size = getattr(config, "image_size", None) or 224
        processor = (
            AutoImageProcessor.from_pretrained(processor_name_or_path, cache_dir=cache_dir)
            if processor_name_or_path
            else scratch_processor(size)
        )
    else:
        config = AutoConfig.from_pretrained(model_name_or_path, cache_dir=cache_dir, **overrides, **_label_maps(labels))
        model, info = AutoModelForVideoClassification.from_pretrained(
            model_name_or_path,
            config=config,
            cache_dir=cache_dir,
            ignore_mismatched_sizes=True,
            output_loading_info=True,
            **kwargs,
        )
        _check_loading(model_name_or_path, info, ignore_mismatched_backbone)
        processor = AutoImageProcessor.from_pretrained(processor_name_or_path or model_name_or_path, cache_dir=cache_dir)

    if attn_implementation == "sdpa" and model.config.model_type == "timesformer":
        from .timesformer_sdpa import enable_timesformer_sdpa

        model = enable_timesformer_sdpa(model)
    return model, processor


def _family(model_name_or_path: str | None, model_type: str | None, cache_dir: str | None) -> str | None:
    if model_type:
        return model_type
    config: PretrainedConfig = AutoConfig.from_pretrained(model_name_or_path, cache_dir=cache_dir)
    return config.model_type
