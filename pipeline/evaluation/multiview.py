"""Multi-view evaluation like the papers: K temporal clips x C spatial crops per video, softmax averaged.

``evaluate_model(model, processor, dataset, ...)`` (``train.py`` calls it after training; the command line,
``python -m pipeline.evaluation``, is ``pipeline.evaluation.command``).

Clips are cut by the model's clip contract (``ClipSpec``: config.json + processor), the one ``pipeline()`` uses, so
the numbers here are what ``pipeline()`` reproduces. Loader workers decode each video's clips; the model's device
makes the views and scores them in batches across videos (``pipeline.inference.video_scoring``).
Under several processes (``accelerate launch`` / ``torchrun``) the videos are split between processes without
padding, per-video scores are gathered and keyed by dataset index, so no video is counted twice.

Writes to ``output_dir``: ``metrics.json``, ``per_class.csv``, ``predictions.csv``, ``classification_report.txt``,
``figures/*.png`` and ``report.md``. Videos that cannot be decoded are skipped, logged with path and reason, and
counted in ``metrics.json`` (``skipped_videos``).
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import av
import numpy as np
import torch
from accelerate import PartialState
from accelerate.utils import gather_object
from datasets import IterableDataset
from tqdm.auto import tqdm

from pipeline.inference.decoding import VideoDecodeError
from pipeline.inference.model_inputs import model_inputs
from pipeline.inference.preprocessing import VideoPreprocessing
from pipeline.inference.clip_spec import ClipSpec
from pipeline.inference.video_scoring import VideoClips, default_num_workers, score_videos
from pipeline.evaluation.metrics import compute_metrics
from pipeline.evaluation.outputs import TOP_K, write_outputs

logger = logging.getLogger("pipeline.evaluation")

# What makes a video "undecodable" (skipped and counted) rather than a bug (raised).
SKIPPABLE_ERRORS = (VideoDecodeError, av.error.FFmpegError, OSError)
INFO_COLUMN = "video_info"
# Videos of a stream held in memory at a time (their bytes) while a loader decodes them.
STREAM_CHUNK = 256

ClipLoader = Callable[[str, Any], tuple[torch.Tensor, torch.Tensor]]


def spec_facts(spec: ClipSpec) -> dict[str, Any]:
    """The contract's sampling and views as plain values (metrics.json, the report)."""
    return {**spec.fields(), "recorded_in_config": spec.recorded}


def _video_path(value: Any) -> str:
    """A video cell: a path string or a ``datasets`` ``Video(decode=False)`` dict."""
    return os.fspath(value["path"] if isinstance(value, dict) else value)


def dataset_clips(dataset, indices: Sequence[int], spec: ClipSpec, video_column: str = "video",
                  clip_loader: ClipLoader | None = None) -> VideoClips:
    """The ``VideoClips`` of rows ``indices`` of a ``datasets`` split (its ``video_info`` column saves the probes).

    ``clip_loader(path, info) -> (uint8 frames (U, H, W, 3), positions (K, T))`` replaces decoding (tests).
    """
    indices = list(indices)
    has_info = INFO_COLUMN in getattr(dataset, "column_names", ())

    def get_video(position: int):
        row = dataset[indices[position]]
        return _video_path(row[video_column]), (row.get(INFO_COLUMN) if has_info else None)

    return VideoClips(get_video, len(indices), spec, skippable=SKIPPABLE_ERRORS, decode=clip_loader)


def _score_stream(model, stream, spec: ClipSpec, state: PartialState, *, prep, num_crops, batch_size, num_workers,
                  video_column, label_column, clip_loader, description):
    """Scores a streamed split (``datasets.IterableDataset``): this process's share (``split_dataset_by_node``), read
    in chunks of ``STREAM_CHUNK`` videos held in memory, each decoded by loader workers. Returns scores and rows
    ({name: (label, probe)}) keyed by the video's name in the stream (shard/key), which gathering keeps unique."""
    from datasets.distributed import split_dataset_by_node

    from pipeline.data.streaming import video_name, video_source

    if state.num_processes > 1:
        stream = split_dataset_by_node(stream, rank=state.process_index, world_size=state.num_processes)
    scores: dict[str, np.ndarray] = {}
    failed: list[dict[str, str]] = []
    rows: dict[str, tuple[int, Any]] = {}
    iterator = iter(stream)
    while chunk := list(itertools.islice(iterator, STREAM_CHUNK)):
        names = [video_name(row[video_column]) for row in chunk]

        def get_video(position: int, chunk=chunk):
            row = chunk[position]
            return video_source(row[video_column]), row.get(INFO_COLUMN)

        videos = VideoClips(get_video, len(chunk), spec, skippable=SKIPPABLE_ERRORS, decode=clip_loader)
        workers = default_num_workers(len(chunk), state.num_processes) if num_workers is None else num_workers
        by_position, bad = score_dataset(model, videos, prep=prep, num_crops=num_crops, batch_size=batch_size,
                                         num_workers=workers, show_progress=state.is_main_process,
                                         description=description)
        scores.update({names[position]: value for position, value in by_position.items()})
        failed += bad
        rows.update({name: (int(row[label_column]), row.get(INFO_COLUMN)) for name, row in zip(names, chunk)})
    return scores, failed, rows


def _gather_rows(state: PartialState, rows: dict) -> dict:
    if state.num_processes == 1:
        return rows
    merged: dict = {}
    for name, value in gather_object(list(rows.items())):
        merged.setdefault(name, value)
    return merged


def process_state() -> PartialState:
    """This process's place in a multi-process run (or a single process), as accelerate sees it.

    Under ``torchrun`` / ``accelerate launch`` on a machine without CUDA, accelerate forms the gloo process group
    only when asked for CPU; otherwise every process would evaluate every video alone. A state the Trainer already
    set up is returned as it is.
    """
    multi_process = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return PartialState(cpu=multi_process and not torch.cuda.is_available())


def _model_device_dtype(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    parameter = next(model.parameters())
    return parameter.device, parameter.dtype


def score_dataset(
    model: torch.nn.Module,
    videos: VideoClips,
    *,
    prep: VideoPreprocessing,
    num_crops: int,
    batch_size: int,
    num_workers: int = 0,
    show_progress: bool = True,
    description: str = "evaluating",
) -> tuple[dict[int, np.ndarray], list[dict[str, str]]]:
    """Softmax scores of every view of every video: ``{position in videos: (views, classes) float32}`` and the
    skipped videos. Views of consecutive videos share batches of exactly ``batch_size`` (the last may be smaller)."""
    device, dtype = _model_device_dtype(model)
    with tqdm(total=len(videos), desc=description, unit="video", disable=not show_progress) as progress:
        def seen(item):
            if "error" in item:
                logger.warning("skipping %s: %s", item["video"], item["error"])
            progress.update(1)

        return score_videos(lambda pixel_values: model(**model_inputs(model, pixel_values)).logits, videos, prep=prep,
                            num_crops=num_crops, batch_size=batch_size, num_workers=num_workers, device=device,
                            dtype=dtype, on_video=seen)


def gather_scores(
    state: PartialState, scores: Mapping[int, np.ndarray], skipped: Sequence[dict[str, str]]
) -> tuple[dict[int, np.ndarray], list[dict[str, str]]]:
    """Every process's per-video results on every process, keyed by dataset index (a video scored twice, e.g. by
    a padded sampler, counts once)."""
    if state.num_processes == 1:
        return dict(scores), list(skipped)
    gathered = gather_object([("scores", index, value) for index, value in scores.items()]
                             + [("skipped", None, item) for item in skipped])
    merged: dict[int, np.ndarray] = {}
    skipped_by_video: dict[str, dict[str, str]] = {}
    for kind, index, value in gathered:
        if kind == "scores":
            merged.setdefault(index, value)
        else:
            skipped_by_video.setdefault(value["video"], value)
    return merged, list(skipped_by_video.values())


def _class_names(dataset, model_config, label_column: str) -> list[str]:
    """The dataset's class names, checked against the model's labels (same classes, same order)."""
    feature = getattr(dataset, "features", {}).get(label_column)
    model_names = [model_config.id2label[i] for i in range(len(model_config.id2label))] if getattr(
        model_config, "id2label", None) else None
    names = list(getattr(feature, "names", None) or model_names or [])
    if not names:
        raise ValueError(
            f"no class names: the dataset's {label_column!r} column is no ClassLabel and the model has none")
    generic = model_names is None or all(name == f"LABEL_{i}" for i, name in enumerate(model_names))
    if model_names is not None and not generic and [n.lower() for n in model_names] != [n.lower() for n in names]:
        raise ValueError(
            f"the model's labels ({len(model_names)}: {', '.join(model_names[:5])}, ...) are not the dataset's "
            f"classes "
            f"({len(names)}: {', '.join(names[:5])}, ...) in the same order; evaluate a model trained on this dataset"
        )
    if model_names is not None and len(model_names) != len(names):
        raise ValueError(f"the model has {len(model_names)} outputs but the dataset {len(names)} classes")
    return names


# ---- outputs -------------------------------------------------------------------------------------------------------

def evaluate_model(
    model: torch.nn.Module,
    processor: Any,
    dataset,
    *,
    num_clips: int | None = None,
    num_crops: int | None = None,
    output_dir: str | os.PathLike | None = None,
    batch_size: int = 8,
    num_workers: int | None = None,
    spec: ClipSpec | None = None,
    clip_loader: ClipLoader | None = None,
    video_column: str = "video",
    label_column: str = "label",
    trainer_state: str | os.PathLike | None = None,
    dataset_splits: Mapping[str, Any] | None = None,
    skipped: Sequence[tuple[str, str]] = (),
    sample_figures: bool = True,
    attention_maps: bool = True,
    description: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Scores every video of ``dataset`` over ``num_clips`` x ``num_crops`` views and returns the metrics.

    dataset: a ``datasets.Dataset`` with a video path column and a ClassLabel column (and optionally the
    ``video_info`` column of ``add_video_info``), or a streamed split (``datasets.IterableDataset`` of
    ``pipeline.data.streaming``: videos as bytes; no figure that decodes videos again). ``clip_loader(path, info) -> (uint8 frames, positions)``
    replaces decoding (tests inject fakes). Decoding runs in ``num_workers`` loader workers (default: every core
    but one per process), views are made and scored on the model's device (``pipeline.inference.video_scoring``). ``skipped``: (path, reason) of videos already found unreadable
    (e.g. by probing), counted with those that fail here. With ``output_dir``, the main process writes the files
    listed in the module docstring; ``sample_figures`` / ``attention_maps`` off: no figure that decodes videos
    again (sample predictions, attention maps) / no attention maps. ``description``: extra facts for metrics.json
    and the report (model, split, ...).
    Run it on every process of a multi-process job: each scores its share and all get the full metrics.
    """
    state = process_state()
    model = getattr(model, "module", model)  # a DDP-wrapped model: evaluate the plain one
    was_training = model.training
    model.eval()
    if next(model.parameters()).device != state.device:
        model.to(state.device)
    # the model's clip contract (config.json + processor); the views asked for here, else those it was saved with
    spec = (spec or ClipSpec.from_config(model.config, processor)).with_views(num_clips, num_crops)
    num_clips, num_crops = spec.num_clips, spec.num_crops
    prep = VideoPreprocessing.from_processor(processor)
    class_names = _class_names(dataset, model.config, label_column)

    started = time.perf_counter()
    description_text = f"evaluating {num_clips} clip(s) x {num_crops} crop(s)"
    streamed = isinstance(dataset, IterableDataset)
    if streamed:
        scores, failed, rows = _score_stream(
            model, dataset, spec, state, prep=prep, num_crops=num_crops, batch_size=batch_size,
            num_workers=num_workers, video_column=video_column, label_column=label_column, clip_loader=clip_loader,
            description=description_text)
        rows = _gather_rows(state, rows)
        # bytes in memory cannot be opened again by path for the figures that decode videos
        sample_figures, dataset_splits = False, None
    else:
        with state.split_between_processes(list(range(len(dataset)))) as shard:
            videos = dataset_clips(dataset, shard, spec, video_column, clip_loader)
            workers = default_num_workers(len(shard), state.num_processes) if num_workers is None else num_workers
            by_position, failed = score_dataset(
                model, videos, prep=prep, num_crops=num_crops, batch_size=batch_size, num_workers=workers,
                show_progress=state.is_main_process, description=description_text,
            )
            scores = {shard[position]: value for position, value in by_position.items()}
    scores, failed = gather_scores(state, scores, failed)
    elapsed = time.perf_counter() - started
    model.train(was_training)
    listed_here = len(rows) if streamed else len(dataset)
    if not scores:
        raise RuntimeError(f"no video could be evaluated: {len(failed)} of {listed_here} failed to decode")

    order = sorted(scores)
    view_counts = {len(scores[i]) for i in order}
    if streamed:
        labels = np.asarray([rows[key][0] for key in order], dtype=np.int64)
    elif hasattr(dataset, "select"):
        labels = np.asarray(dataset.select(order)[label_column], dtype=np.int64)
    else:
        labels = np.asarray([dataset[i][label_column] for i in order], dtype=np.int64)
    view_scores = [scores[i] for i in order]
    video_scores = np.stack([v.mean(axis=0) for v in view_scores])
    clip_scores = np.concatenate(view_scores)
    clip_labels = np.repeat(labels, [len(v) for v in view_scores])
    metrics = compute_metrics(video_scores, labels, class_names, clip_scores=clip_scores, clip_labels=clip_labels,
                              k=TOP_K)
    all_skipped = [{"video": os.fspath(p), "reason": r} for p, r in skipped] + failed
    listed = listed_here + len(skipped)
    if len(order) + len(all_skipped) != listed and state.is_main_process:
        logger.warning("%d video(s) listed but %d scored and %d skipped", listed, len(order), len(all_skipped))
    metrics.update(
        listed_videos=listed,
        num_clips=num_clips,
        num_crops=num_crops,
        views_per_video=sorted(view_counts)[0] if len(view_counts) == 1 else sorted(view_counts),
        skipped_videos=len(all_skipped),
        skipped=all_skipped,
        sampling=spec_facts(spec),
        num_processes=state.num_processes,
        elapsed_s=round(elapsed, 3),
        videos_per_second=round(len(order) / elapsed, 3) if elapsed > 0 else None,
        model=getattr(model.config, "_name_or_path", None) or type(model).__name__,
    )
    metrics.update(description or {})
    if failed and state.is_main_process:
        logger.warning("%d video(s) could not be decoded and were skipped", len(failed))
    if state.is_main_process:
        logger.info("video top-1 %.4f, top-5 %.4f, clip top-1 %.4f, mean class accuracy %.4f over %d videos",
                    metrics["video_top1"], metrics["video_top5"], metrics["clip_top1"],
                    metrics["mean_class_accuracy"], len(order))

    if output_dir is not None and state.is_main_process:
        if streamed:
            video_paths, infos = list(order), [rows[key][1] for key in order]
        else:
            video_paths = [_video_path(v) for v in dataset.select(order)[video_column]]
            infos = dataset.select(order)[INFO_COLUMN] if INFO_COLUMN in dataset.column_names else [None] * len(order)
        write_outputs(
            Path(output_dir), metrics, video_paths, labels, video_scores, class_names,
            model=model, processor=processor, spec=spec, infos=infos, trainer_state=trainer_state,
            dataset_splits=dataset_splits, label_column=label_column, sample_figures=sample_figures,
            attention_maps=attention_maps,
        )
    state.wait_for_everyone()
    return metrics
