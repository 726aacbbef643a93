"""Multi-view evaluation like the papers: K temporal clips x C spatial crops per video, softmax averaged.

``python -m pipeline.evaluation --model DIR_OR_HUB_ID --dataset_dir DIR --output_dir OUT --num_clips K --num_crops C``
(``--zero_shot`` with a video-text model such as X-CLIP: classes scored by name, see ``pipeline.evaluation.zero_shot``)
or, from Python (``train.py`` does this after training), ``evaluate_model(model, processor, dataset, ...)``.

Every view is made by ``pipeline.inference.views.load_views``, the function ``pipeline()`` uses, with the frame sampling
stored in the model config, so the numbers here are what ``pipeline()`` reproduces. A DataLoader over videos
decodes all views of a video in a worker; views are flattened into batches of ``batch_size`` for the model.
Under several processes (``accelerate launch`` / ``torchrun``) the videos are split between processes without
padding, per-video scores are gathered and keyed by dataset index, so no video is counted twice.

Writes to ``output_dir``: ``metrics.json``, ``per_class.csv``, ``predictions.csv``, ``classification_report.txt``,
``figures/*.png`` and ``report.md``. Videos that cannot be decoded are skipped, logged with path and reason, and
counted in ``metrics.json`` (``skipped_videos``).
"""

from __future__ import annotations

import argparse
import csv
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
from tqdm.auto import tqdm

from pipeline.inference.decoding import VideoDecodeError, VideoInfo, decode_frames
from pipeline.inference.model_inputs import config_num_frames, model_inputs
from pipeline.inference.preprocessing import VideoPreprocessing, frames_of_view
from pipeline.inference.clip_spec import ClipSpec
from pipeline.inference.video_scoring import VideoClips, default_num_workers, score_videos
from pipeline.inference.views import load_views
from pipeline.evaluation.metrics import compute_metrics, write_confusion_csv, write_metrics_json, write_per_class_csv

logger = logging.getLogger("pipeline.evaluation")

# What makes a video "undecodable" (skipped and counted) rather than a bug (raised).
SKIPPABLE_ERRORS = (VideoDecodeError, av.error.FFmpegError, OSError)
INFO_COLUMN = "video_info"
TOP_K = 5
# Sample predictions and attention maps: how many videos to show.
NUM_ERROR_SAMPLES = 8
NUM_CORRECT_SAMPLES = 4
NUM_ATTENTION_VIDEOS = 4

ClipLoader = Callable[[str, Any], tuple[torch.Tensor, torch.Tensor]]


def spec_facts(spec: ClipSpec) -> dict[str, Any]:
    """The contract's sampling and views as plain values (metrics.json, the report)."""
    return {"num_frames": spec.num_frames, "rate": spec.rate, "strategy": spec.strategy, "short": spec.short,
            "num_clips": spec.num_clips, "num_crops": spec.num_crops, "recorded_in_config": spec.recorded}


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

def write_predictions_csv(path: Path, videos: Sequence[str], labels: np.ndarray, video_scores: np.ndarray,
                          class_names: Sequence[str], k: int = TOP_K) -> Path:
    """One row per video: video, label, prediction, its score, correct, then top-k labels and scores."""
    k = min(k, len(class_names))
    # stable sort of the negated scores: ties keep the lower class first, as argmax and topk_accuracy do
    ranking = np.argsort(-video_scores, axis=1, kind="stable")[:, :k]
    fields = ["video", "label", "prediction", "score", "correct"]
    for i in range(1, k + 1):
        fields += [f"top{i}_label", f"top{i}_score"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(fields)
        for video, label, row, ranked in zip(videos, labels, video_scores, ranking):
            prediction = int(ranked[0])
            cells = [video, class_names[label], class_names[prediction], f"{row[prediction]:.6f}",
                     int(prediction == label)]
            for c in ranked:
                cells += [class_names[c], f"{row[c]:.6f}"]
            writer.writerow(cells)
    return path


def _class_counts(split, label_column: str, num_classes: int) -> np.ndarray:
    return np.bincount(np.asarray(split[label_column], dtype=np.int64), minlength=num_classes)


def _sample_frames(path: str, info: Any, count: int = 4, height: int = 112) -> np.ndarray:
    """``count`` evenly spread frames of a video, decoded small for a contact sheet."""
    info = VideoInfo.from_dict(info) if isinstance(info, dict) else info
    if info is None:
        from pipeline.inference.decoding import probe_video

        info = probe_video(path, skip_table=False)
    width = max(2, int(round(height * info.width / max(info.height, 1) / 2)) * 2)
    indices = np.linspace(0, info.num_frames - 1, count + 2)[1:-1].round().astype(np.int64)
    return decode_frames(path, indices, info=info, size=(height, width))


def _pick_samples(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The most confident errors and the most confident correct predictions (what the contact sheet shows)."""
    by_confidence = sorted(records, key=lambda r: -r["score"])
    wrong = [r for r in by_confidence if r["label"] != r["prediction"]][:NUM_ERROR_SAMPLES]
    right = [r for r in by_confidence if r["label"] == r["prediction"]][:NUM_CORRECT_SAMPLES]
    return wrong + right


def _attention_figure(model, processor, spec: ClipSpec, samples, path: Path) -> Path | None:
    """Attention rollout / Grad-CAM overlays on the centre view of a few sample videos."""
    from pipeline.evaluation.attention_maps import explain, upsample_heatmap
    from pipeline.evaluation.figures import plot_attention_overlay

    prep = VideoPreprocessing.from_processor(processor)
    device, dtype = _model_device_dtype(model)
    wrong = [s for s in samples if s["label"] != s["prediction"]]
    right = [s for s in samples if s["label"] == s["prediction"]]
    chosen = (wrong[: NUM_ATTENTION_VIDEOS // 2] + right)[:NUM_ATTENTION_VIDEOS]
    videos, method = [], ""
    for sample in chosen:
        try:
            view = load_views(sample["path"], processor_or_prep=prep, num_frames=spec.num_frames,
                              rate=spec.rate, strategy=spec.strategy, short=spec.short,
                              info=sample.get("info"))[:1]
        except SKIPPABLE_ERRORS as err:
            logger.warning("no attention map for %s: %s", sample["path"], err)
            continue
        heatmaps, method = explain(model, view.to(device=device, dtype=dtype))
        frames = frames_of_view(view[0], prep)
        heatmap = upsample_heatmap(heatmaps[0].float().cpu(), *frames.shape[:3]).numpy()
        verdict = "correct" if sample["label"] == sample["prediction"] else "wrong"
        title = f"{sample['video']}: true {sample['label']}, predicted {sample['prediction']} ({verdict})"
        videos.append({"frames": frames, "heatmap": heatmap, "title": title})
    return plot_attention_overlay(videos, path, method) if videos else None


def _figures(output_dir: Path, model, processor, spec, metrics, records, class_names, *,
             trainer_state, dataset_splits, label_column, samples: bool, attention: bool) -> dict[str, str]:
    """Every figure that can be made; a figure that fails is logged and left out, never fatal."""
    from pipeline.evaluation import figures as plots

    figures_dir = output_dir / "figures"
    made: dict[str, str] = {}

    def attempt(name: str, make: Callable[[Path], Path | None]) -> None:
        try:
            written = make(figures_dir / f"{name}.png")
        except Exception as err:  # a figure is a nice-to-have: report the reason and carry on
            logger.warning("figure %s not made: %s: %s", name, type(err).__name__, err)
            return
        if written is not None:
            made[name] = os.path.relpath(written, output_dir)

    if trainer_state is not None and Path(trainer_state).is_file():
        attempt("training_curves",
                lambda p: plots.plot_training_curves(plots.load_log_history(trainer_state), p))
    confusion = np.asarray(metrics["confusion_matrix"])
    attempt("confusion_matrix",
            lambda p: plots.plot_confusion_matrix(confusion, class_names, p, metrics["top_confusions"]))
    attempt("per_class_accuracy", lambda p: plots.plot_per_class_accuracy(metrics["per_class"], p))
    if dataset_splits:
        attempt("class_distribution", lambda p: plots.plot_class_distribution(
            {name: _class_counts(split, label_column, len(class_names)) for name, split in dataset_splits.items()},
            class_names, p))
    picked = _pick_samples(records) if samples else []

    def contact_sheet(path: Path) -> Path | None:
        shown = []
        for sample in picked:
            try:
                shown.append({**sample, "frames": _sample_frames(sample["path"], sample.get("info"))})
            except SKIPPABLE_ERRORS as err:
                logger.warning("sample %s not shown: %s", sample["path"], err)
        return plots.plot_sample_predictions(shown, path) if shown else None

    if picked:
        attempt("sample_predictions", contact_sheet)
        if attention:
            attempt("attention_maps", lambda p: _attention_figure(model, processor, spec, picked, p))
    return made


# ---- the entry points ----------------------------------------------------------------------------------------------

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
    ``video_info`` column of ``add_video_info``). ``clip_loader(path, info) -> (uint8 frames, positions)``
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
    with state.split_between_processes(list(range(len(dataset)))) as shard:
        videos = dataset_clips(dataset, shard, spec, video_column, clip_loader)
        workers = default_num_workers(len(shard), state.num_processes) if num_workers is None else num_workers
        by_position, failed = score_dataset(
            model, videos, prep=prep, num_crops=num_crops, batch_size=batch_size, num_workers=workers,
            show_progress=state.is_main_process,
            description=f"evaluating {num_clips} clip(s) x {num_crops} crop(s)",
        )
        scores = {shard[position]: value for position, value in by_position.items()}
    scores, failed = gather_scores(state, scores, failed)
    elapsed = time.perf_counter() - started
    model.train(was_training)
    if not scores:
        raise RuntimeError(f"no video could be evaluated: {len(failed)} of {len(dataset)} failed to decode")

    order = sorted(scores)
    view_counts = {len(scores[i]) for i in order}
    labels = np.asarray(dataset.select(order)[label_column], dtype=np.int64) if hasattr(dataset, "select") else \
        np.asarray([dataset[i][label_column] for i in order], dtype=np.int64)
    view_scores = [scores[i] for i in order]
    video_scores = np.stack([v.mean(axis=0) for v in view_scores])
    clip_scores = np.concatenate(view_scores)
    clip_labels = np.repeat(labels, [len(v) for v in view_scores])
    metrics = compute_metrics(video_scores, labels, class_names, clip_scores=clip_scores, clip_labels=clip_labels,
                              k=TOP_K)
    all_skipped = [{"video": os.fspath(p), "reason": r} for p, r in skipped] + failed
    listed = len(dataset) + len(skipped)
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


def write_outputs(output_dir: Path, metrics: dict[str, Any], video_paths: Sequence[str], labels: np.ndarray,
                  video_scores: np.ndarray, class_names: Sequence[str], *, model=None, processor=None,
                  spec: ClipSpec | None = None, infos: Sequence[Any] | None = None, trainer_state=None,
                  dataset_splits=None, label_column: str = "label", sample_figures: bool = True,
                  attention_maps: bool = True) -> None:
    """metrics.json, per_class.csv, predictions.csv, classification_report.txt, figures and report.md."""
    from pipeline.evaluation.report import write_report

    output_dir.mkdir(parents=True, exist_ok=True)
    write_predictions_csv(output_dir / "predictions.csv", video_paths, labels, video_scores, class_names)
    write_per_class_csv(output_dir / "per_class.csv", metrics["per_class"])
    write_confusion_csv(output_dir / "confusion_matrix.csv", metrics["confusion_matrix"], class_names)
    (output_dir / "classification_report.txt").write_text(metrics["classification_report"])
    predictions = video_scores.argmax(axis=1)
    records = [
        {"path": path, "video": Path(path).name, "label": class_names[label], "prediction": class_names[pred],
         "score": float(row[pred]), "info": info}
        for path, label, pred, row, info in zip(video_paths, labels, predictions, video_scores,
                                                infos or [None] * len(video_paths))
    ]
    figures = {}
    if model is not None:
        figures = _figures(output_dir, model, processor, spec, metrics, records, class_names,
                           trainer_state=trainer_state, dataset_splits=dataset_splits, label_column=label_column,
                           samples=sample_figures, attention=sample_figures and attention_maps)
    metrics["figures"] = figures
    write_metrics_json(output_dir / "metrics.json", metrics)
    write_report(output_dir / "report.md", metrics)
    logger.info("evaluation written to %s", output_dir)


def load_trained_model(name_or_path: str, attn_implementation: str | None = None, cache_dir: str | None = None):
    """(model, processor) of a trained checkpoint (local folder or Hub id), our I3D included."""
    import pipeline  # noqa: F401  (registers I3D with the Auto classes)
    from transformers import AutoConfig, AutoModelForVideoClassification

    from pipeline.inference.frame_count import restore_temporal_positions
    from pipeline.models.processors import load_processor

    config = AutoConfig.from_pretrained(name_or_path, cache_dir=cache_dir)
    kwargs = {}
    if attn_implementation and config.model_type != "timesformer":
        kwargs["attn_implementation"] = attn_implementation
    model = AutoModelForVideoClassification.from_pretrained(name_or_path, cache_dir=cache_dir, **kwargs)
    if attn_implementation == "sdpa" and config.model_type == "timesformer":
        from pipeline.models.timesformer_sdpa import enable_timesformer_sdpa

        model = enable_timesformer_sdpa(model)
    restore_temporal_positions(model)
    processor = load_processor(name_or_path, cache_dir=cache_dir)
    return model, processor


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.evaluation", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="trained model folder or Hub id")
    parser.add_argument("--dataset", default="ucf101", choices=["ucf101", "demo", "videofolder", "hf"])
    parser.add_argument("--dataset_dir", help="UCF101 / demo / video folder, or datasets name or path")
    parser.add_argument("--split", default="test", help="split to evaluate (default: test)")
    parser.add_argument("--ucf101_split", type=int, default=1, help="official UCF101 split 1, 2 or 3")
    parser.add_argument("--splits_dir", help="UCF101 ucfTrainTestlist folder, if elsewhere")
    parser.add_argument("--on_missing_video", default="error", choices=["error", "skip"],
                        help="a listed video that is not on disk: stop (error) or count it as skipped (skip)")
    parser.add_argument("--num_clips", type=int, default=None,
                        help="temporal clips per video (K; default: the views saved with the model, else 1)")
    parser.add_argument("--num_crops", type=int, default=None,
                        help="spatial crops per clip (C: 1 or 3; default: the views saved with the model, else 1)")
    parser.add_argument("--batch_size", type=int, default=8, help="views per forward pass")
    parser.add_argument("--num_workers", type=int, default=None, help="decoding workers (default: from CPU count)")
    parser.add_argument("--num_frames", type=int, help="override config.num_frames")
    parser.add_argument("--frame_sampling_rate", type=int, help="override config.frame_sampling_rate")
    parser.add_argument("--frame_sampling_strategy", choices=["dense", "uniform", "random"])
    parser.add_argument("--attn_implementation", choices=["eager", "sdpa"],
                        help="attention kernel (default: the model's)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--max_videos", type=int, help="evaluate only the first N videos (debugging)")
    parser.add_argument("--trainer_state",
                        help="trainer_state.json for the training curves (default: the model folder's)")
    parser.add_argument("--no_attention_maps", action="store_true", help="skip the attention / Grad-CAM figure")
    parser.add_argument("--output_dir", required=True, help="where metrics, figures and report.md go")
    zero_shot = parser.add_argument_group("zero-shot (a video-text model scores the classes by name, no training)")
    zero_shot.add_argument("--zero_shot", action="store_true",
                           help="--model is a video-text model (X-CLIP, e.g. microsoft/xclip-base-patch32)")
    zero_shot.add_argument("--prompt_template", default=None,
                           help="text for each class, '{}' = the class name (default: '{}', the name alone, as X-CLIP "
                                "was trained)")
    zero_shot.add_argument("--raw_class_names", action="store_true",
                           help="use class names as written (default: ApplyEyeMakeup -> 'apply eye makeup')")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The command line: load the model and the split, evaluate, write everything to --output_dir."""
    from pipeline.configs import DataArguments
    from pipeline.data.metadata import add_video_info
    from pipeline.data.sources import build_dataset

    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    state = process_state()
    data_args = DataArguments(dataset=args.dataset, dataset_dir=args.dataset_dir, splits_dir=args.splits_dir,
                              ucf101_split=args.ucf101_split, on_missing_video=args.on_missing_video)
    with state.main_process_first():
        splits = build_dataset(data_args)
        if args.split not in splits:
            from pipeline.user_errors import UserValueError

            raise UserValueError(f"--split {args.split!r} is not in the dataset (it has: {', '.join(splits)})")
        dataset = splits[args.split]
        if args.max_videos is not None and args.max_videos < len(dataset):
            dataset = dataset.select(range(args.max_videos))
        dataset, skipped = add_video_info(dataset)
    extra: dict[str, Any] = {}
    if args.zero_shot:
        from pipeline.evaluation.zero_shot import DEFAULT_TEMPLATE, load_zero_shot_classifier

        model, processor = load_zero_shot_classifier(
            args.model, dataset.features["label"].names, template=args.prompt_template or DEFAULT_TEMPLATE,
            as_words=not args.raw_class_names)
        extra = {"zero_shot": True, "prompt_template": model.template, "prompts": model.prompts}
    else:
        model, processor = load_trained_model(args.model, args.attn_implementation)
    model.to(dtype=getattr(torch, args.dtype))
    spec = ClipSpec.from_config(model.config, processor, num_frames=args.num_frames, rate=args.frame_sampling_rate,
                                strategy=args.frame_sampling_strategy)
    trainer_state = args.trainer_state or (Path(args.model) / "trainer_state.json")
    return evaluate_model(
        model, processor, dataset,
        num_clips=args.num_clips, num_crops=args.num_crops, output_dir=args.output_dir, batch_size=args.batch_size,
        num_workers=args.num_workers, spec=spec, trainer_state=trainer_state, dataset_splits=splits,
        skipped=skipped, attention_maps=not (args.no_attention_maps or args.zero_shot),
        description={"model": args.model, "dataset": args.dataset, "dataset_dir": args.dataset_dir,
                     "split": args.split, "dtype": args.dtype, **extra},
    )


if __name__ == "__main__":
    from pipeline.user_errors import one_line_errors

    with one_line_errors("python -m pipeline.evaluation"):
        main()
