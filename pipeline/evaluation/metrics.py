"""Every number of an evaluation, computed from score arrays: the shipped `evaluate` modules plus scikit-learn.

``compute_metrics(video_scores, labels, class_names, clip_scores=..., clip_labels=...)`` returns one dict with the
headline numbers (video/clip top-1 and top-5, mean class accuracy, macro and weighted precision/recall/F1), a
per-class table, the confusion matrix, the top confusions and scikit-learn's classification report. The writers
below turn it into ``metrics.json`` and ``per_class.csv``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.metrics import classification_report

from .metric_modules import load_metric

# Headline keys, in the order a reader wants them (metrics.json and the report's first table).
HEADLINE_KEYS = (
    "video_top1", "video_top5", "clip_top1", "clip_top5", "mean_class_accuracy",
    "macro_precision", "macro_recall", "macro_f1", "weighted_precision", "weighted_recall", "weighted_f1",
)


def _topk(scores: np.ndarray, labels: np.ndarray, k: int) -> tuple[float, float]:
    result = load_metric("topk_accuracy").compute(predictions=scores, references=labels, k=k)
    return result["accuracy"], result[f"top{k}_accuracy"]


def top_confusions(confusion: np.ndarray, class_names: Sequence[str], limit: int = 15) -> list[dict[str, Any]]:
    """The largest off-diagonal cells of a confusion matrix (rows: true), most frequent first.

    ``fraction`` is the share of the true class's videos that went to that wrong class.
    """
    confusion = np.asarray(confusion)
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    rows, cols = np.nonzero(off)
    counts = off[rows, cols]
    # ties: by true class then predicted class index, so the list is stable across runs
    order = np.lexsort((cols, rows, -counts))[:limit]
    support = confusion.sum(axis=1)
    return [
        {
            "true": class_names[rows[i]],
            "predicted": class_names[cols[i]],
            "count": int(counts[i]),
            "fraction": float(counts[i] / support[rows[i]]),
        }
        for i in order
    ]


def compute_metrics(
    video_scores: np.ndarray,
    labels: Sequence[int],
    class_names: Sequence[str],
    *,
    clip_scores: np.ndarray | None = None,
    clip_labels: Sequence[int] | None = None,
    k: int = 5,
    zero_division: float = 0.0,
    num_top_confusions: int = 15,
) -> dict[str, Any]:
    """All metrics of one evaluation.

    video_scores: (N, C) video-level scores (averaged softmax over views); labels: (N,) true class indices.
    clip_scores / clip_labels: (M, C) and (M,) per-view scores and labels for clip-level accuracy (default: the
    video-level arrays, i.e. one view per video). Per-class values cover all ``class_names``; a class with no
    videos gets support 0 and NaN accuracy; 0/0 precision/recall/F1 take ``zero_division``.
    """
    video_scores = np.asarray(video_scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    num_classes = len(class_names)
    if video_scores.ndim != 2 or video_scores.shape != (len(labels), num_classes):
        raise ValueError(
            f"video_scores must be (num_videos={len(labels)}, num_classes={num_classes}), got {video_scores.shape}"
        )
    if clip_scores is None:
        clip_scores, clip_labels = video_scores, labels
    clip_scores = np.asarray(clip_scores, dtype=np.float64)
    clip_labels = np.asarray(clip_labels, dtype=np.int64)
    # argmax: the same tie rule as topk_accuracy, so top-1 agrees with the predictions written out
    predictions = video_scores.argmax(axis=1)

    video_top1, video_topk = _topk(video_scores, labels, k)
    clip_top1, clip_topk = _topk(clip_scores, clip_labels, k)
    mean_class = load_metric("mean_class_accuracy").compute(
        predictions=predictions, references=labels, num_classes=num_classes
    )
    classification = load_metric("classification_metrics").compute(
        predictions=predictions, references=labels, labels=list(range(num_classes)), zero_division=zero_division
    )
    confusion = np.asarray(classification["confusion_matrix"], dtype=np.int64)
    predicted_counts = confusion.sum(axis=0)

    per_class = [
        {
            "index": index,
            "class": name,
            "support": int(classification["support"][index]),
            "accuracy": float(mean_class["per_class_accuracy"][index]),
            "precision": float(classification["precision"][index]),
            "recall": float(classification["recall"][index]),
            "f1": float(classification["f1"][index]),
            "predicted": int(predicted_counts[index]),
        }
        for index, name in enumerate(class_names)
    ]
    # scikit-learn's report over the classes that occur, so its averages are the macro/weighted numbers above
    present = np.union1d(labels, predictions)
    report_text = classification_report(
        labels, predictions, labels=present, target_names=[class_names[i] for i in present],
        digits=4, zero_division=zero_division,
    )
    result: dict[str, Any] = {
        "video_top1": video_top1,
        f"video_top{k}": video_topk,
        "clip_top1": clip_top1,
        f"clip_top{k}": clip_topk,
        "mean_class_accuracy": mean_class["mean_class_accuracy"],
    }
    for average in ("macro", "weighted"):
        for name in ("precision", "recall", "f1"):
            result[f"{average}_{name}"] = classification[f"{average}_{name}"]
    result.update(
        num_videos=int(len(labels)),
        num_views_scored=int(len(clip_labels)),
        num_classes=num_classes,
        per_class=per_class,
        confusion_matrix=confusion.tolist(),
        top_confusions=top_confusions(confusion, class_names, num_top_confusions),
        classification_report=report_text,
    )
    return result


def worst_classes(per_class: Sequence[dict[str, Any]], limit: int = 10) -> list[dict[str, Any]]:
    """Classes with videos and errors, lowest accuracy first (then lowest F1, then name)."""
    rated = [row for row in per_class if row["support"] > 0 and row["accuracy"] < 1.0]
    return sorted(rated, key=lambda row: (row["accuracy"], row["f1"], row["class"]))[:limit]


def _json_safe(value: Any) -> Any:
    """NaN is not JSON: write null for it (a class without videos has no accuracy)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def write_metrics_json(path: str | os.PathLike, metrics: dict[str, Any]) -> Path:
    """``metrics.json``: every scalar, the top confusions and run facts (per-class rows and the confusion matrix
    go to their CSV files, the classification report to text)."""
    path = Path(path)
    kept = {k: v for k, v in metrics.items() if k not in ("per_class", "classification_report", "confusion_matrix")}
    path.write_text(json.dumps(_json_safe(kept), indent=2) + "\n")
    return path


def write_per_class_csv(path: str | os.PathLike, per_class: Sequence[dict[str, Any]]) -> Path:
    """``per_class.csv``: one row per class (index, class, support, accuracy, precision, recall, f1, predicted)."""
    path = Path(path)
    fields = ["index", "class", "support", "accuracy", "precision", "recall", "f1", "predicted"]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in per_class:
            writer.writerow({k: ("" if isinstance(row[k], float) and math.isnan(row[k]) else row[k]) for k in fields})
    return path


def write_confusion_csv(
    path: str | os.PathLike, confusion: Sequence[Sequence[int]], class_names: Sequence[str]
) -> Path:
    """``confusion_matrix.csv``: counts, one row per true class, one column per predicted class, names as headers."""
    path = Path(path)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true \\ predicted", *class_names])
        for name, row in zip(class_names, confusion):
            writer.writerow([name, *(int(c) for c in row)])
    return path
