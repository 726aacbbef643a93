"""What an evaluation leaves behind: metrics.json, per_class.csv, predictions.csv, confusion_matrix.csv,
classification_report.txt, the figures and report.md (see ``write_outputs``).

Figures are a nice-to-have: one that cannot be made is logged and left out, never fatal. The contact sheet and the
attention maps decode a few videos again, with the model's own clip contract.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from pipeline.evaluation.metrics import write_confusion_csv, write_metrics_json, write_per_class_csv
from pipeline.inference.clip_spec import ClipSpec
from pipeline.inference.decoding import VideoDecodeError, VideoInfo, decode_frames
from pipeline.inference.preprocessing import VideoPreprocessing, frames_of_view
from pipeline.inference.views import load_views

logger = logging.getLogger("pipeline.evaluation")

# What makes a video "undecodable" for a figure (left out of it) rather than a bug.
FIGURE_ERRORS = (VideoDecodeError, OSError)
TOP_K = 5
# Sample predictions and attention maps: how many videos to show.
NUM_ERROR_SAMPLES = 8
NUM_CORRECT_SAMPLES = 4
NUM_ATTENTION_VIDEOS = 4


def _damage(info: Any) -> str:
    """The probe's damage note of a video_info (a dict, a VideoInfo or None)."""
    if info is None:
        return ""
    return (info.get("damage") if isinstance(info, dict) else getattr(info, "damage", "")) or ""


def write_predictions_csv(path: Path, videos: Sequence[str], labels: np.ndarray, video_scores: np.ndarray,
                          class_names: Sequence[str], k: int = TOP_K, infos: Sequence[Any] | None = None) -> Path:
    """One row per video: video, label, prediction, its score, correct, then top-k labels and scores, then
    ``damage``: what the probe found wrong with the file (``infos``: the videos' video_info), empty if nothing."""
    k = min(k, len(class_names))
    # stable sort of the negated scores: ties keep the lower class first, as argmax and topk_accuracy do
    ranking = np.argsort(-video_scores, axis=1, kind="stable")[:, :k]
    fields = ["video", "label", "prediction", "score", "correct"]
    for i in range(1, k + 1):
        fields += [f"top{i}_label", f"top{i}_score"]
    fields.append("damage")
    damages = [_damage(info) for info in (infos if infos is not None else [None] * len(videos))]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(fields)
        for video, label, row, ranked, damage in zip(videos, labels, video_scores, ranking, damages):
            prediction = int(ranked[0])
            cells = [video, class_names[label], class_names[prediction], f"{row[prediction]:.6f}",
                     int(prediction == label)]
            for c in ranked:
                cells += [class_names[c], f"{row[c]:.6f}"]
            writer.writerow(cells + [damage])
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
    centre = replace(spec, num_clips=1, num_crops=1, preprocessing=prep)  # one view: the centre clip and crop
    parameter = next(model.parameters())
    device, dtype = parameter.device, parameter.dtype
    wrong = [s for s in samples if s["label"] != s["prediction"]]
    right = [s for s in samples if s["label"] == s["prediction"]]
    chosen = (wrong[: NUM_ATTENTION_VIDEOS // 2] + right)[:NUM_ATTENTION_VIDEOS]
    videos, method = [], ""
    for sample in chosen:
        try:
            view = load_views(sample["path"], centre, info=sample.get("info"))
        except FIGURE_ERRORS as err:
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
            except FIGURE_ERRORS as err:
                logger.warning("sample %s not shown: %s", sample["path"], err)
        return plots.plot_sample_predictions(shown, path) if shown else None

    if picked:
        attempt("sample_predictions", contact_sheet)
        if attention:
            attempt("attention_maps", lambda p: _attention_figure(model, processor, spec, picked, p))
    return made


# ---- the entry points ----------------------------------------------------------------------------------------------



def write_outputs(output_dir: Path, metrics: dict[str, Any], video_paths: Sequence[str], labels: np.ndarray,
                  video_scores: np.ndarray, class_names: Sequence[str], *, model=None, processor=None,
                  spec: ClipSpec | None = None, infos: Sequence[Any] | None = None, trainer_state=None,
                  dataset_splits=None, label_column: str = "label", sample_figures: bool = True,
                  attention_maps: bool = True) -> None:
    """metrics.json, per_class.csv, predictions.csv, classification_report.txt, figures and report.md."""
    from pipeline.evaluation.report import write_report

    output_dir.mkdir(parents=True, exist_ok=True)
    write_predictions_csv(output_dir / "predictions.csv", video_paths, labels, video_scores, class_names,
                          infos=infos)
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
