"""``get_model``: a video classifier and its processor from a Hub id, a local folder, or a config (from scratch).

Pretrained backbones load strictly: a missing or unexpected backbone weight is an error, because transformers
reports such keys only as a warning and leaves the layers at their init (DESIGN fact 9: VideoMAE's q_bias/v_bias).
Only the classifier may be re-created (new label set), and, for V-JEPA 2, the attentive pooler (absent from its
self-supervised backbone checkpoints) and the predictor (which its classifier never runs).

Families: VideoMAE, TimeSformer, ViViT, V-JEPA 2, VideoPrism (transformers' ``AutoModelForVideoClassification``)
and our I3D. VideoPrism's processor is made to give its [0, 1] frames at the model's size
(``ensure_videoprism_inputs``).
A pretrained checkpoint asked for another ``num_frames`` than it was trained with loads at its own length, then its
temporal position embeddings are interpolated (``pipeline.inference.frame_count``). ``freeze_backbone`` trains only
the head (V-JEPA 2's attentive probe protocol).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from transformers import AutoConfig, AutoModelForVideoClassification, PretrainedConfig, PreTrainedModel

from ..inference.frame_count import restore_temporal_positions, set_num_frames
from ..inference.model_inputs import config_num_frames
from ..inference.model_outputs import flatten_single_query_logits
from .backbone_freezing import UNUSED_BY_CLASSIFIER, freeze_backbone as freeze_backbone_of, freeze_unused
from .processors import (
    VIDEOPRISM_TYPES,
    ensure_videoprism_inputs,
    ensure_vivit_input_range,
    load_processor,
    scratch_processor_for,
)
from .registration import register_auto_classes
from .scratch_init import init_scratch_positions

logger = logging.getLogger(__name__)

# parameter-name fragments of the classification heads that we re-create for a new label set ("pooler.": V-JEPA 2's
# attentive pooler, and the unused pooler of a ViViT/ViT base checkpoint loaded into a classifier; "head." and
# "head_layernorm.": VideoPrism's attention-pooling head, absent from its video-encoder checkpoints)
HEAD_PREFIXES = ("classifier.", "fc_norm.", "logits.", "head.", "head_layernorm.", "pooler.")
# config field names that differ by family: (our name, the family's name)
CONFIG_ALIASES = {"vjepa2": {"image_size": "crop_size"}}


class BackboneMismatchError(RuntimeError):
    """A pretrained checkpoint did not load cleanly into the model's backbone."""


def _label_maps(labels: Sequence[str]) -> dict[str, Any]:
    return {
        "num_labels": len(labels),
        "id2label": {i: name for i, name in enumerate(labels)},
        "label2id": {name: i for i, name in enumerate(labels)},
    }


def _is_head(key: str, model_type: str | None = None) -> bool:
    unused = [f"{model_type}.{m}." for m in UNUSED_BY_CLASSIFIER.get(model_type, ())]
    return any(key.startswith(p) or f".{p}" in f".{key}" for p in HEAD_PREFIXES) or any(
        key.startswith(u) for u in unused)


def _check_loading(name: str, info: dict[str, list], allow: bool, model_type: str | None = None) -> None:
    missing = [k for k in info.get("missing_keys", []) if not _is_head(k, model_type)]
    unexpected = [k for k in info.get("unexpected_keys", []) if not _is_head(k, model_type)]
    mismatched = [k[0] if isinstance(k, tuple) else k for k in info.get("mismatched_keys", [])]
    mismatched = [k for k in mismatched if not _is_head(k, model_type)]
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


def _aliased(model_type: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Overrides under the family's own config names (V-JEPA 2's input size is ``crop_size``)."""
    aliases = CONFIG_ALIASES.get(model_type, {})
    return {aliases.get(key, key): value for key, value in overrides.items()}


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
    freeze_backbone: bool = False,
    cache_dir: str | None = None,
) -> tuple[PreTrainedModel, Any]:
    """Returns ``(model, processor)`` for ``labels``; exactly one of ``model_name_or_path`` / ``model_type``.

    The model's ``config.num_frames`` is always set (V-JEPA 2 checkpoints name it ``frames_per_clip``).
    """
    register_auto_classes()
    if bool(model_name_or_path) == bool(model_type):
        raise ValueError("give exactly one of model_name_or_path (pretrained) or model_type (from a config)")
    family = _family(model_name_or_path, model_type, cache_dir)
    overrides = dict(config_overrides or {})
    if image_size is not None:
        overrides["image_size"] = image_size
    overrides = _aliased(family, overrides)
    kwargs = _attention_kwargs(family, attn_implementation)

    if model_type:
        if num_frames is not None:
            overrides["num_frames"] = num_frames
            if family == "vjepa2":  # the length it is "pretrained" with: informative only (3-D RoPE)
                overrides.setdefault("frames_per_clip", num_frames)
        config = AutoConfig.for_model(model_type, **overrides, **_label_maps(labels))
        model = AutoModelForVideoClassification.from_config(config, **kwargs)
        if family in VIDEOPRISM_TYPES:
            init_scratch_positions(model)
        size = getattr(config, "image_size", None) or getattr(config, "crop_size", None) or 224
        processor = (
            load_processor(processor_name_or_path, cache_dir=cache_dir)
            if processor_name_or_path
            else scratch_processor_for(family, size)
        )
    else:
        # built at the checkpoint's own length: a learned temporal table of another length would not load
        config = AutoConfig.from_pretrained(model_name_or_path, cache_dir=cache_dir, **overrides, **_label_maps(labels))
        model, info = AutoModelForVideoClassification.from_pretrained(
            model_name_or_path,
            config=config,
            cache_dir=cache_dir,
            ignore_mismatched_sizes=True,
            output_loading_info=True,
            **kwargs,
        )
        _check_loading(model_name_or_path, info, ignore_mismatched_backbone, family)
        restore_temporal_positions(model)
        processor = load_processor(processor_name_or_path or model_name_or_path, cache_dir=cache_dir)
        if family == "vivit":
            ensure_vivit_input_range(processor, name=f"{processor_name_or_path or model_name_or_path}'s processor")
        if family in VIDEOPRISM_TYPES:
            ensure_videoprism_inputs(processor, model.config.image_size,
                                     name=f"{processor_name_or_path or model_name_or_path}'s processor")

    length = num_frames or config_num_frames(model.config)
    if not length:
        raise ValueError(f"{model_name_or_path or model_type}: the config has no frame count; give num_frames")
    if getattr(model.config, "num_frames", None) and length != model.config.num_frames:
        set_num_frames(model, length)
    model.config.num_frames = int(length)

    flatten_single_query_logits(model)
    frozen = freeze_unused(model)
    if frozen:
        logger.info("not trained (never run by the classifier): %s", ", ".join(frozen))
    if freeze_backbone:
        freeze_backbone_of(model)
    return _with_attention(model, attn_implementation), processor


def config_frame_count(*, model_name_or_path: str | None = None, model_type: str | None = None,
                       config_overrides: dict[str, Any] | None = None, cache_dir: str | None = None) -> int | None:
    """The frame count the model's config gives (``get_model`` without ``num_frames`` builds it at this length),
    read from the config alone; None when the config declares none."""
    register_auto_classes()
    if bool(model_name_or_path) == bool(model_type):
        raise ValueError("give exactly one of model_name_or_path (pretrained) or model_type (from a config)")
    family = _family(model_name_or_path, model_type, cache_dir)
    overrides = _aliased(family, dict(config_overrides or {}))
    if model_type:
        config = AutoConfig.for_model(model_type, **overrides)
    else:
        config = AutoConfig.from_pretrained(model_name_or_path, cache_dir=cache_dir, **overrides)
    return config_num_frames(config)


def _family(model_name_or_path: str | None, model_type: str | None, cache_dir: str | None) -> str | None:
    if model_type:
        return model_type
    config: PretrainedConfig = AutoConfig.from_pretrained(model_name_or_path, cache_dir=cache_dir)
    return config.model_type


def load_trained(name_or_path: str, attn_implementation: str | None = None, cache_dir: str | None = None):
    """(model, processor) of a trained checkpoint as it was saved (local folder or Hub id; our I3D included), for
    evaluation and inference: no new head, the attention kernel chosen as ``get_model`` chooses it."""
    register_auto_classes()
    config = AutoConfig.from_pretrained(name_or_path, cache_dir=cache_dir)
    model = AutoModelForVideoClassification.from_pretrained(
        name_or_path, cache_dir=cache_dir, **_attention_kwargs(config.model_type, attn_implementation))
    restore_temporal_positions(model)
    flatten_single_query_logits(model)
    return _with_attention(model, attn_implementation), load_processor(name_or_path, cache_dir=cache_dir)


def _attention_kwargs(family: str | None, attn_implementation: str | None) -> dict[str, Any]:
    """from_pretrained / from_config keywords for an attention kernel. TimeSformer's SDPA is ours, not
    transformers': the library must still build it as eager (``_with_attention`` converts it)."""
    if attn_implementation in (None, "eager") or family != "timesformer":
        return {"attn_implementation": attn_implementation} if attn_implementation else {}
    return {"attn_implementation": "eager"}


def _with_attention(model: PreTrainedModel, attn_implementation: str | None) -> PreTrainedModel:
    if attn_implementation == "sdpa" and model.config.model_type == "timesformer":
        from .timesformer_sdpa import enable_timesformer_sdpa

        return enable_timesformer_sdpa(model)
    return model
