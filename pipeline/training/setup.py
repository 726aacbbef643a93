"""One run setup: the data a run sees and the model, clip contract, transforms and fine-tuning it trains with.

``pipeline/train.py``, ``python -m pipeline.benchmark train`` / ``gpu`` and ``python -m pipeline.evaluation`` all
build through these functions, so a benchmark measures exactly what trains and an evaluation reads the data the run
split:

- ``resolve_num_frames``: the recipe's ``num_frames``, or the model config's when the recipe gives none, written
  into the recipe's DataArguments before anything is saved (recipe.yaml states the frame count trained with);
- ``prepare_splits``: build the dataset (``data.sources``), probe every video once (``data.metadata``: unreadable
  ones are left out and counted), truncate (``max_train_samples`` / ``max_eval_samples``), check the splits;
- ``build_run``: fine-tuning (``FineTuning``), the model and processor with the clip contract saved into its config,
  the fine-tuning changes to the model (probe, drop path, frozen backbone), the training and evaluation transforms
  and the device-side batch step.
"""

from __future__ import annotations

import logging
import os
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
from transformers import set_seed

from pipeline.data.metadata import add_video_info
from pipeline.data.sources import build_dataset
from pipeline.data.streaming import is_stream
from pipeline.inference.clip_spec import ClipSpec
from pipeline.inference.preprocessing import VideoPreprocessing
from pipeline.models import get_model
from pipeline.models.loading import config_frame_count
from pipeline.training.augmentation import AugmentationSettings
from pipeline.training.checkpointing_names import checkpointing_enabled
from pipeline.training.clip_transform import ClipTransform
from pipeline.training.device_batch import DeviceBatch
from pipeline.training.fine_tuning import FineTuning
from pipeline.training.recipe_checks import check_splits, report_short_videos
from pipeline.training.video_counts import VideoCounts

logger = logging.getLogger("pipeline.train")


def set_cpu_threads(training_args) -> int | None:
    """On CPU, gives each data worker a core of its own and the compute threads the rest.

    torch defaults to one compute thread per core, which the DataLoader workers then fight for: on the 2-core
    demo, 1 compute thread + 2 workers trained 1.25-1.3x faster than 2 + 2 (measured, 200 steps). An explicit
    OMP_NUM_THREADS (set by the user, or by torchrun for several processes) wins. Returns the count it set.
    """
    if training_args.device.type != "cpu" or "OMP_NUM_THREADS" in os.environ:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    processes_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    threads = max(1, cores // processes_here - training_args.dataloader_num_workers)
    torch.set_num_threads(threads)
    logger.info("CPU: %d compute thread(s) per process beside %d data worker(s) on %d core(s)",
                threads, training_args.dataloader_num_workers, cores)
    return threads


# ---- the frame count ----------------------------------------------------------------------------------------

def resolve_num_frames(model_args, data_args) -> int:
    """Sets ``data_args.num_frames`` to the model config's frame count when the recipe gives none (only the config
    is read). Returns the model config's own count: what a recipe without ``num_frames`` trained with."""
    own = config_frame_count(model_name_or_path=model_args.model_name_or_path, model_type=model_args.model_type,
                             config_overrides=model_args.overrides(), cache_dir=model_args.cache_dir)
    if data_args.num_frames is None:
        if own is None:
            raise ValueError(f"{model_args.model_name_or_path or model_args.model_type}: the model config has no "
                             "frame count; give num_frames")
        data_args.num_frames = own
    return own


# ---- the data -------------------------------------------------------------------------------------------------

@dataclass
class PreparedSplits:
    """The probed, truncated splits; ``skipped``: (path, reason) of the videos probing left out; ``counts``: the
    exact video counts of a training run (None when ``counts_dir`` was not given); ``built``: every split as the
    dataset was built, before choosing, probing and truncating (the evaluation's split figures)."""

    splits: Any
    skipped: list
    counts: Optional[VideoCounts] = None
    built: Any = None
    # shards or a streamed dataset: probed when written (or in the loader workers), never read ahead here
    streamed: bool = False


def prepare_splits(data_args, *, keep: Optional[Sequence[str]] = None, limits: Optional[dict[str, int]] = None,
                   shuffle: bool = True, counts_dir: Optional[str] = None, is_main_process: bool = True,
                   evaluation_on: Optional[bool] = None, one_process_first=nullcontext) -> PreparedSplits:
    """Builds the dataset, keeps the ``keep`` splits (all when None), probes every video, truncates, checks.

    ``limits``: videos per split (default: ``max_train_samples`` for train, ``max_eval_samples`` for the others);
    a truncated split is a random subset (``split_seed``) of its readable videos when ``shuffle``, else its first
    rows, taken before probing (choosing them needs no probe, and the rest is not probed). ``counts_dir``:
    a training run's output_dir, where ``VideoCounts`` records what left each split. ``evaluation_on``: run
    ``check_splits`` (None: no check), saying whether evaluation during training needs a validation split.
    ``one_process_first``: a context in which the building and probing run (``main_process_first`` under several
    processes: the main process fills the caches, the others read them).
    """
    if limits is None:
        limits = {name: data_args.max_train_samples if name == "train" else data_args.max_eval_samples
                  for name in ("train", "validation", "test")}

    def truncate(splits, counts):
        for name in splits:
            limit = limits.get(name)
            if limit is not None and limit < len(splits[name]):
                subset = splits[name].shuffle(seed=data_args.split_seed) if shuffle else splits[name]
                splits[name] = subset.select(range(limit))
                if counts is not None:
                    counts.limited(name, limit)

    with one_process_first():
        built = splits = build_dataset(data_args)
        if keep is not None:
            missing = [name for name in keep if name not in splits]
            if missing:
                from pipeline.user_errors import UserValueError

                raise UserValueError(f"split {missing[0]!r} is not in the dataset (it has: {', '.join(splits)})")
            splits = type(splits)({name: splits[name] for name in keep})
        counts = VideoCounts(counts_dir, splits, is_main_process=is_main_process) if counts_dir is not None else None
        if is_stream(splits):  # nothing to probe, and choosing or checking videos would read the whole stream
            cut = {name: limit for name, limit in limits.items() if name in splits and limit is not None}
            if cut and shuffle:
                from pipeline.user_errors import UserValueError

                raise UserValueError(f"{', '.join(cut)}: max_train_samples / max_eval_samples choose a random subset, "
                                     "which a stream cannot without reading it whole; write shards of a subset instead")
            for name, limit in cut.items():  # the first videos of the stream, as read
                splits[name] = splits[name].take(limit)
            return PreparedSplits(splits, [], counts, built, streamed=True)
        if not shuffle:
            truncate(splits, counts)
        splits, skipped = add_video_info(splits, num_proc=data_args.probe_num_proc)
    if counts is not None:
        counts.probed(skipped)
    if skipped:
        logger.warning("%d unreadable video(s) left out: %s", len(skipped),
                       "; ".join(f"{p} ({r})" for p, r in skipped))
    if shuffle:
        truncate(splits, counts)
    if evaluation_on is not None:
        check_splits(splits, data_args, evaluation_on=evaluation_on)
    return PreparedSplits(splits, skipped, counts, built)


# ---- the model and what feeds it ------------------------------------------------------------------------------

def recipe_clip_spec(model, data_args, processor) -> ClipSpec:
    """The clip contract this run trains with: the recipe's sampling and evaluation views (``num_frames`` resolved,
    ``resolve_num_frames``), the processor's geometry. Written into config.json with the model."""
    return ClipSpec(data_args.num_frames, data_args.frame_sampling_rate, data_args.frame_sampling_strategy,
                    data_args.short_video, data_args.num_clips, data_args.num_crops,
                    preprocessing=VideoPreprocessing.from_processor(processor))


def build_model(model_args, data_args, labels):
    """(model, processor) for ``labels``, with the clip contract written into the config: it travels with every
    checkpoint, so evaluation and ``pipeline()`` sample frames exactly as training did."""
    model, processor = get_model(
        labels,
        model_name_or_path=model_args.model_name_or_path,
        model_type=model_args.model_type,
        config_overrides=model_args.overrides(),
        processor_name_or_path=model_args.processor_name_or_path,
        image_size=model_args.image_size,
        num_frames=data_args.num_frames,
        attn_implementation=model_args.attn_implementation,
        ignore_mismatched_backbone=model_args.ignore_mismatched_backbone,
        cache_dir=model_args.cache_dir,
    )
    recipe_clip_spec(model, data_args, processor).save_to(model.config)
    return model, processor


def augmentation_placement(data_args, device) -> str:
    """Where training clips are augmented and normalised: "device" (the loader sends uint8) or "workers".

    "auto" picks the device when it is an accelerator, and the loader workers when the model runs on the CPU (the
    workers already have cores of their own there; the main process has the model's compute to do).
    """
    if data_args.augment_on == "auto":
        return "workers" if torch.device(device).type == "cpu" else "device"
    if data_args.augment_on not in ("device", "workers"):
        raise ValueError(f"augment_on must be auto, device or workers, got {data_args.augment_on!r}")
    return data_args.augment_on


def build_clip_transforms(data_args, spec: ClipSpec, device="cpu"):
    """(training transform, evaluation transform, DeviceBatch) of a clip contract (with its preprocessing), for
    ``with_transform`` and ``VideoTrainer``."""
    prep = spec.preprocessing
    augmentation = AugmentationSettings(
        random_crop=data_args.random_crop,
        crop_scale=tuple(data_args.crop_scale),
        horizontal_flip=data_args.horizontal_flip,
        color_jitter=data_args.color_jitter,
        rotation_range=data_args.rotation_range,
        rand_augment=data_args.rand_augment,
    )
    placement = augmentation_placement(data_args, device)
    train = ClipTransform(spec, prep, train=True, augmentation=augmentation,
                          repeats=data_args.repeated_augmentation, placement=placement)
    evaluation = ClipTransform(spec, prep, train=False, placement=placement)
    return train, evaluation, DeviceBatch(prep, train.augmentation)


@dataclass
class Run:
    """What a run trains: the model (fine-tuning applied), its processor, the clip contract saved in its config,
    the fine-tuning settings, the dataset transforms and the device-side batch step."""

    model: Any
    processor: Any
    spec: ClipSpec
    fine_tuning: FineTuning
    train_transform: ClipTransform
    eval_transform: ClipTransform
    device_batch: DeviceBatch


def build_run(model_args, data_args, run_args, training_args, labels: Sequence[str],
              train_labels: Sequence[int], splits=None) -> Run:
    """The model and everything that feeds it, as ``pipeline/train.py`` trains it (see the module docstring).

    ``labels``: the class names; ``train_labels``: the training videos' labels (class weights, balanced sampling);
    ``splits`` (probed): when given, how many videos are shorter than a clip is logged once.
    """
    if data_args.num_frames is None:
        resolve_num_frames(model_args, data_args)
    fine_tuning = FineTuning.from_args(model_args, data_args, run_args, training_args, len(labels), train_labels)
    set_seed(training_args.seed)  # a model built from a config is initialised by the run's seed too
    model, processor = build_model(model_args, data_args, labels)
    model = fine_tuning.prepare_model(model)  # probe, drop path, frozen backbone
    spec = ClipSpec.from_config(model.config, processor)
    if splits is not None:
        report_short_videos(splits, spec)
    if checkpointing_enabled(training_args):
        model.config.use_cache = False
    train_transform, eval_transform, device_batch = build_clip_transforms(data_args, spec, training_args.device)
    return Run(model, processor, spec, fine_tuning, train_transform, eval_transform, device_batch)
