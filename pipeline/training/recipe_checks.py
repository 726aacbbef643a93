"""Recipe values that cannot work, found before any data is read; splits that cannot train; short videos, counted.

``check_recipe`` runs first in train.py: ``num_frames: 0`` or a negative value, an unknown sampling strategy, a
crop scale outside (0, 1], and the like are one-line ``RecipeError``s naming the key and the value, instead of a
crash inside transformers after the dataset was probed. ``check_model_frames`` does the same for what the model's
config allows (VideoMAE-style tubelets need at least ``tubelet_size`` frames, and a multiple of it).

``check_splits`` runs once the splits are known: an empty train split, or an empty validation split while
evaluation is on (a video folder whose classes have too few groups to hold one out), is an error that says why
and what to change, instead of a KeyError at the first evaluation.

``report_short_videos`` says once how many videos are shorter than a clip's span (their clips repeat frames).

``check_numeric_fields`` runs in ``parse_args``, before any dataclass is built: every int or float field of the
argument dataclasses, ``TrainingArguments``' own included, is checked by its declared type (a number of that
type, finite), its sign (no negative value unless the field's default is negative, a sentinel such as
``max_steps: -1``) and, for sizes and counts (a positive default and a name ending in ``_size``, ``_steps``,
``_epochs`` or starting with ``num_``), that it is above 0. The rules come from the dataclasses, so a key a new
transformers release adds is checked without a change here.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import types
import typing
from numbers import Integral, Real
from typing import Any, Optional

from pipeline.inference.clip_spec import ClipSpec
from pipeline.inference.sampling import SHORT_POLICIES, STRATEGIES
from pipeline.training.fine_tuning import check_args as check_fine_tuning_args
from pipeline.user_errors import RecipeError

logger = logging.getLogger("pipeline.train")


def _positive_int(key: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise RecipeError(f"{key}: {value!r} is not possible; it must be a positive integer")


def _fraction(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value < 1:
        raise RecipeError(f"{key}: {value!r} is not possible; it must be at least 0 and below 1")


def _choice(key: str, value: Any, choices) -> None:
    if value not in choices:
        raise RecipeError(f"{key}: {value!r} is not one of {' | '.join(choices)}")


def _numeric_type(annotation) -> tuple[Optional[type], bool]:
    """(int or float, whether None is allowed) of a field annotation; (None, _) for anything not plainly one."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and rest[0] in (int, float):
            return rest[0], len(rest) < len(args)
        return None, False
    return (annotation, False) if annotation in (int, float) else (None, False)


def _is_count(name: str, default: Any) -> bool:
    """A size or a count that 0 makes meaningless (a batch size, accumulation steps, logging every N steps)."""
    return (isinstance(default, Real) and not isinstance(default, bool) and default > 0
            and (name.endswith(("_size", "_steps", "_epochs")) or name.startswith("num_")))


def check_numeric_fields(classes, values: dict[str, Any]) -> None:
    """RecipeError for the first int / float field of ``classes`` whose value in ``values`` has the wrong type,
    is not finite, or is out of range (see the module docstring)."""
    for cls in classes:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # noqa: BLE001 - an annotation this Python cannot resolve: use the raw one
            hints = {}
        for field in dataclasses.fields(cls):
            if not field.init or field.name not in values:
                continue
            kind, optional = _numeric_type(hints.get(field.name, field.type))
            if kind is None:
                continue
            value, name = values[field.name], field.name
            default = field.default if field.default is not dataclasses.MISSING else None
            if value is None and (optional or default is None):
                continue
            wanted = "an integer" if kind is int else "a number"
            if isinstance(value, bool) or not isinstance(value, Integral if kind is int else Real):
                raise RecipeError(f"{name}: {value!r} is not possible; it must be {wanted}")
            if not math.isfinite(value):
                raise RecipeError(f"{name}: {value!r} is not possible; it must be a finite number")
            negative_default = isinstance(default, Real) and default < 0
            if value < 0 and not (negative_default and value == default):
                allowed = f" (or {default} for its default)" if negative_default else ""
                raise RecipeError(f"{name}: {value!r} is not possible; it must be at least 0{allowed}")
            if value <= 0 and _is_count(name, default):
                raise RecipeError(f"{name}: {value!r} is not possible; it must be above 0")


def check_recipe(model_args, data_args, run_args, training_args=None) -> None:
    """Raises RecipeError for the first value that cannot work (see the module docstring)."""
    _positive_int("num_frames", data_args.num_frames, allow_none=True)
    _positive_int("frame_sampling_rate", data_args.frame_sampling_rate)
    _choice("frame_sampling_strategy", data_args.frame_sampling_strategy, STRATEGIES)
    _choice("short_video", data_args.short_video, SHORT_POLICIES)
    _choice("on_missing_video", data_args.on_missing_video, ("error", "skip"))
    _positive_int("repeated_augmentation", data_args.repeated_augmentation)
    _positive_int("ucf101_split", data_args.ucf101_split)
    _fraction("validation_fraction", data_args.validation_fraction)
    _fraction("test_fraction", data_args.test_fraction)
    if data_args.validation_fraction + data_args.test_fraction >= 1:
        raise RecipeError(f"validation_fraction + test_fraction = "
                          f"{data_args.validation_fraction + data_args.test_fraction:g} leaves nothing to train on")
    scale = list(data_args.crop_scale or [])
    if len(scale) != 2 or not all(isinstance(v, Real) and not isinstance(v, bool) for v in scale) \
            or not 0 < scale[0] <= scale[1] <= 1:
        raise RecipeError(f"crop_scale: {data_args.crop_scale!r} is not possible; it must be [low, high] with "
                          "0 < low <= high <= 1 (the share of the frame's area a random crop keeps)")
    for key in ("color_jitter", "rotation_range"):
        value = getattr(data_args, key)
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value < 0:
            raise RecipeError(f"{key}: {value!r} is not possible; it must be 0 (off) or a positive number")
    _positive_int("max_train_samples", data_args.max_train_samples, allow_none=True)
    _positive_int("max_eval_samples", data_args.max_eval_samples, allow_none=True)
    _positive_int("num_clips", data_args.num_clips)
    _positive_int("num_crops", data_args.num_crops)
    if model_args.image_size is not None:
        _positive_int("image_size", model_args.image_size)
    try:  # the fine-tuning keys too, before any data is read
        check_fine_tuning_args(model_args, data_args, run_args)
    except ValueError as error:
        raise RecipeError(str(error)) from None
    check_model_frames(model_args, data_args)
    if training_args is not None and training_args.push_to_hub:
        # the Trainer pushes the folder (at each save with hub_strategy every_save): a symbolic link in it would
        # publish what it points to; stop before any training (train.py checks again before the last push)
        from pipeline.publish.hub import regular_files

        regular_files(training_args.output_dir)


def _model_config(model_args) -> Optional[Any]:
    """The config the model will be built from (without weights), or None when it cannot be had cheaply."""
    from transformers import AutoConfig

    from pipeline.models.registration import register_auto_classes

    register_auto_classes()
    try:
        if model_args.model_type:
            return AutoConfig.for_model(model_args.model_type, **model_args.overrides())
        if model_args.model_name_or_path:
            return AutoConfig.from_pretrained(model_args.model_name_or_path, cache_dir=model_args.cache_dir)
    except Exception:  # noqa: BLE001 - an unknown model is get_model's to report, with its own message
        return None
    return None


def check_model_frames(model_args, data_args) -> None:
    """num_frames against the model's temporal patching: at least one tubelet, and whole tubelets."""
    config = _model_config(model_args)
    if config is None:
        return
    num_frames = data_args.num_frames or getattr(config, "num_frames", None)
    tubelet = getattr(config, "tubelet_size", None)
    if isinstance(tubelet, (list, tuple)):
        tubelet = tubelet[0]  # ViViT: (time, height, width)
    if not num_frames or not isinstance(tubelet, int) or tubelet <= 1:
        return
    source = "num_frames" if data_args.num_frames else f"the model's num_frames ({model_args.model_name_or_path})"
    if num_frames < tubelet:
        raise RecipeError(f"{source}: {num_frames} is not possible; {config.model_type} groups frames in tubelets of "
                          f"{tubelet} (tubelet_size), so a clip needs at least {tubelet} frames")
    if num_frames % tubelet:
        raise RecipeError(f"{source}: {num_frames} is not a multiple of tubelet_size {tubelet} ({config.model_type}): "
                          f"the last {num_frames % tubelet} frame(s) of every clip would be ignored; use "
                          f"{num_frames - num_frames % tubelet} or {num_frames + tubelet - num_frames % tubelet}")


def check_splits(splits, data_args, evaluation_on: bool) -> None:
    """An empty train split, or an empty validation split while evaluation is on, stops the run here."""
    train = splits.get("train")
    if train is None or len(train) == 0:
        raise RecipeError(f"the train split is empty (dataset {data_args.dataset} at {data_args.dataset_dir}): no "
                          "readable video is left to train on; see the warnings above")
    validation = splits.get("validation")
    if evaluation_on and validation is not None and len(validation) == 0:
        raise RecipeError(
            f"the validation split is empty: with validation_fraction {data_args.validation_fraction:g}, no class "
            f"of {data_args.dataset_dir} has a group of videos to spare for it (a class needs two groups, or two "
            "videos without group names); add videos, or set validation_fraction: 0 to train without validation")
    for name, split in splits.items():
        if name not in ("train", "validation") and len(split) == 0:
            raise RecipeError(f"the {name} split is empty: no readable video is left in it; see the warnings above"
                              + (" (or set test_fraction: 0)" if data_args.dataset in ("videofolder", "hf") else ""))


def short_video_count(splits, spec: ClipSpec) -> tuple[int, int, int]:
    """(videos shorter than a clip needs, videos in all, frames a clip needs) over every split."""
    need = spec.span or spec.num_frames
    short = total = 0
    for split in splits.values():
        if "video_info" not in split.column_names:
            continue
        frames = [info["num_frames"] for info in split["video_info"]]
        total += len(frames)
        short += sum(1 for n in frames if n < need)
    return short, total, need


def report_short_videos(splits, spec: ClipSpec) -> int:
    """Logs once how many videos are shorter than a clip needs (their clips repeat frames); returns the count."""
    short, total, need = short_video_count(splits, spec)
    if short:
        how = "the last frame repeats" if spec.short_video == "clamp" else "the clip wraps around to the start"
        spread = (f"num_frames {spec.num_frames} x frame_sampling_rate {spec.frame_sampling_rate}"
                  if spec.frame_sampling_strategy == "dense" else f"num_frames {spec.num_frames}")
        logger.warning("%d of %d videos (%.0f%%) are shorter than the %d frames a clip spans (%s): in their clips "
                       "%s (short_video: %s)", short, total, 100.0 * short / max(total, 1), need, spread, how,
                       spec.short_video)
    return short
