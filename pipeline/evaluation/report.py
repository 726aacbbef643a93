"""``report.md``: an evaluation a person can take in at a glance, headline numbers first.

``render_report(metrics)`` turns the dict of ``pipeline.evaluation.evaluate_model`` (metrics + run facts +
``figures``: name -> path relative to the report) into Markdown; ``write_report`` writes it. The model card
(``pipeline.publish.hub``) can reuse ``headline_table`` and the figures.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from .metrics import worst_classes

FIGURE_TITLES = {
    "training_curves": "Training curves",
    "confusion_matrix": "Confusion matrix",
    "per_class_accuracy": "Per-class accuracy",
    "class_distribution": "Class distribution",
    "sample_predictions": "Sample predictions",
    "attention_maps": "Where the model looks",
}
FIGURE_NOTES = {
    "confusion_matrix": "Rows are true classes, normalised to 1; off-diagonal mass is confusion. "
                        "The most frequent confusions are listed beside the matrix.",
    "per_class_accuracy": "Worst classes at the top; the dashed line is the mean class accuracy.",
    "sample_predictions": "Errors first (most confident first), then correct predictions; the score is the "
                          "video-level probability of the predicted class.",
    "attention_maps": "Centre clip and crop, as the model saw it. VideoMAE / TimeSformer: attention rollout "
                      "(attention of all layers, residuals included, multiplied through); I3D: Grad-CAM on the "
                      "last 3D convolution for the predicted class.",
}


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.2f}%"


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _cell(text: Any) -> str:
    """Markdown table cells must not contain pipes or newlines."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def headline_table(metrics: Mapping[str, Any]) -> list[str]:
    """The one table a reader needs: accuracy at video and clip level, balance, views, coverage."""
    views = f"{metrics.get('num_clips', 1)} x {metrics.get('num_crops', 1)} (clips x crops)"
    return _table(
        ["Video top-1", "Video top-5", "Clip top-1", "Mean class acc.", "Macro F1", "Views / video", "Videos",
         "Skipped"],
        [[_pct(metrics["video_top1"]), _pct(metrics.get("video_top5")), _pct(metrics.get("clip_top1")),
          _pct(metrics.get("mean_class_accuracy")), _pct(metrics.get("macro_f1")), views,
          metrics.get("num_videos", "?"), metrics.get("skipped_videos", 0)]],
    )


def render_report(metrics: Mapping[str, Any]) -> str:
    """The whole report as Markdown (figure links are the relative paths in ``metrics["figures"]``)."""
    title = metrics.get("model") or "model"
    lines = [f"# Evaluation of `{title}`", ""]
    facts = [f"split **{metrics['split']}**" if metrics.get("split") else None,
             f"dataset {metrics['dataset']}" if metrics.get("dataset") else None,
             f"{metrics.get('num_classes', '?')} classes"]
    lines += [", ".join(f for f in facts if f) + ".", ""]
    lines += headline_table(metrics)
    sampling = metrics.get("sampling") or {}
    lines += [
        "",
        f"A video's prediction averages the softmax scores of its {metrics.get('num_clips', 1)} temporal clip(s) x "
        f"{metrics.get('num_crops', 1)} spatial crop(s); clip top-1 scores each of those views on its own"
        + (f" ({metrics['num_views_scored']} views)." if metrics.get("num_views_scored") else "."),
    ]
    if metrics.get("num_classes", 6) <= 5:
        lines.append(f"With {metrics['num_classes']} classes, top-5 accuracy is 100% by definition.")
    if sampling:
        lines.append(
            f"Each clip: {sampling.get('num_frames')} frames, {sampling.get('frame_sampling_strategy')} sampling"
            + (f" every {sampling.get('frame_sampling_rate')} frames"
               if sampling.get("frame_sampling_strategy") == "dense" else "")
            + ", as in training and `pipeline()`."
        )
    if metrics.get("elapsed_s"):
        lines.append(f"Evaluated in {metrics['elapsed_s']:.1f} s ({metrics.get('videos_per_second') or 0:.2f} "
                     f"videos/s, {metrics.get('num_processes', 1)} process(es)).")
    lines += ["", "## Averages", ""]
    lines += _table(
        ["Average", "Precision", "Recall", "F1"],
        [[name.capitalize(), _num(metrics.get(f"{name}_precision")), _num(metrics.get(f"{name}_recall")),
          _num(metrics.get(f"{name}_f1"))] for name in ("macro", "weighted")],
    )
    lines += ["", "Macro: unweighted mean over classes; weighted: by number of videos. Mean class accuracy is the "
                  "macro average of per-class accuracy (recall) over classes with videos.", ""]

    figures = metrics.get("figures") or {}
    for name, heading in FIGURE_TITLES.items():
        if name in figures:
            lines += [f"## {heading}", ""]
            if name in FIGURE_NOTES:
                lines += [FIGURE_NOTES[name], ""]
            lines += [f"![{heading}]({Path(figures[name]).as_posix()})", ""]

    per_class = metrics.get("per_class") or []
    worst = worst_classes(per_class, limit=10)
    if worst:
        lines += ["## Worst classes", ""]
        lines += _table(["Class", "Accuracy", "F1", "Videos", "Predicted as this class"],
                        [[r["class"], _pct(r["accuracy"]), _num(r["f1"]), r["support"], r["predicted"]]
                         for r in worst])
        lines.append("")
    confusions = metrics.get("top_confusions") or []
    if confusions:
        lines += ["## Top confusions", ""]
        lines += _table(["True class", "Predicted as", "Videos", "Share of the true class"],
                        [[c["true"], c["predicted"], c["count"], _pct(c["fraction"])] for c in confusions])
        lines.append("")
    if per_class:
        lines += ["## Per-class metrics", "", "Also in `per_class.csv`.", ""]
        lines += _table(["#", "Class", "Videos", "Accuracy", "Precision", "Recall", "F1", "Predicted"],
                        [[r["index"], r["class"], r["support"], _pct(r["accuracy"]), _num(r["precision"]),
                          _num(r["recall"]), _num(r["f1"]), r["predicted"]] for r in per_class])
        lines.append("")
    skipped = metrics.get("skipped") or []
    if skipped:
        lines += [f"## Skipped videos ({len(skipped)})", "", "These could not be decoded and are not in any number "
                  "above.", ""]
        lines += _table(["Video", "Reason"], [[s["video"], s["reason"]] for s in skipped])
        lines.append("")
    if metrics.get("classification_report"):
        lines += ["## scikit-learn classification report", "", "```", metrics["classification_report"].rstrip(),
                  "```", ""]
    lines += ["## Files", "",
              "`metrics.json` (every number), `predictions.csv` (one row per video, top-5 with scores), "
              "`per_class.csv`, `confusion_matrix.csv` (counts), `classification_report.txt`, `figures/`.", ""]
    return "\n".join(lines)


def write_report(path: str | os.PathLike, metrics: Mapping[str, Any]) -> Path:
    """Writes ``render_report(metrics)`` to ``path``."""
    path = Path(path)
    path.write_text(render_report(metrics))
    return path
