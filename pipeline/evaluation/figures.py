"""Figures of an evaluation, as PNG files readable from 3 to 101+ classes.

Figures are built with ``matplotlib.figure.Figure`` (the Agg canvas, no pyplot state), so plotting works headless,
in threads and under multi-process runs. Sizes and fonts scale with the number of classes; past
``CELL_TEXT_MAX_CLASSES`` the confusion matrix drops per-cell numbers and lists the top confusions beside it.
Each ``plot_*`` returns the path written. The data helpers (``training_curves``, ``normalize_confusion``,
``order_samples``, ``overlay_heatmap``) carry the logic and are what the tests check.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

CELL_TEXT_MAX_CLASSES = 20
DPI = 110
CORRECT_COLOR = "#1a7f37"
WRONG_COLOR = "#cf222e"


def _tick_fontsize(axis_inches: float, num_rows: int) -> float:
    """Label font size that fills 60% of a row's height (72 pt per inch), between 4.5 and 9 pt."""
    return float(np.clip(0.6 * 72 * axis_inches / max(num_rows, 1), 4.5, 9.0))


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


# ---- training curves -----------------------------------------------------------------------------------------------

def training_curves(log_history: Sequence[Mapping[str, Any]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Series by name -> (steps, values) from a ``trainer_state.json`` ``log_history``.

    Names: ``loss`` (training), ``eval_loss``, ``learning_rate`` and every ``eval_*accuracy*`` / ``eval_*f1*``
    metric. Entries without a ``step`` or with a non-finite value are left out.
    """
    series: dict[str, list[tuple[float, float]]] = {}
    for entry in log_history:
        step = entry.get("step")
        if step is None:
            continue
        for key, value in entry.items():
            wanted = key in ("loss", "eval_loss", "learning_rate") or (
                key.startswith("eval_") and ("accuracy" in key or "f1" in key)
            )
            if wanted and isinstance(value, (int, float)) and math.isfinite(value):
                series.setdefault(key, []).append((float(step), float(value)))
    return {k: (np.array([s for s, _ in v]), np.array([y for _, y in v])) for k, v in series.items()}


def load_log_history(trainer_state: str | os.PathLike | Mapping[str, Any]) -> list[dict[str, Any]]:
    """``log_history`` of a ``trainer_state.json`` path, or of the already loaded dict."""
    if isinstance(trainer_state, Mapping):
        return list(trainer_state.get("log_history", []))
    path = Path(trainer_state)
    try:
        return list(json.loads(path.read_text()).get("log_history", []))
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read training log history from {path}: {err}") from err


def plot_training_curves(log_history: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path | None:
    """Loss, evaluation accuracy and learning rate against the optimisation step; None when nothing was logged."""
    curves = training_curves(log_history)
    panels = [
        ("Loss", [k for k in ("loss", "eval_loss") if k in curves]),
        ("Evaluation metrics", sorted(k for k in curves if k not in ("loss", "eval_loss", "learning_rate"))),
        ("Learning rate", [k for k in ("learning_rate",) if k in curves]),
    ]
    panels = [(title, keys) for title, keys in panels if keys]
    if not panels:
        return None
    fig = Figure(figsize=(5.2 * len(panels), 4.0))
    # one step axis for all panels, so an evaluation lines up with the loss and learning rate of its time
    first = min(float(steps.min()) for steps, _ in curves.values())
    last = max(float(steps.max()) for steps, _ in curves.values())
    for i, (title, keys) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for key in keys:
            steps, values = curves[key]
            label = {"loss": "train loss", "eval_loss": "eval loss"}.get(key, key.removeprefix("eval_"))
            # evaluations are few: show the points; training logs are many: a line
            ax.plot(steps, values, marker="o" if key.startswith("eval_") else None, markersize=3, label=label)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_xlim(first - 0.02 * (last - first) - 0.5, last + 0.02 * (last - first) + 0.5)
        ax.grid(alpha=0.3)
        if title == "Learning rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        else:
            ax.legend(fontsize=8)
        if title == "Evaluation metrics":
            ax.set_ylim(0, 1.02)
    fig.suptitle("Training curves")
    fig.tight_layout()
    return _save(fig, path)


# ---- confusion matrix ----------------------------------------------------------------------------------------------

def normalize_confusion(confusion: np.ndarray) -> np.ndarray:
    """Rows divided by their totals (recall on the diagonal); rows of classes without videos stay 0."""
    confusion = np.asarray(confusion, dtype=np.float64)
    totals = confusion.sum(axis=1, keepdims=True)
    return np.divide(confusion, totals, out=np.zeros_like(confusion), where=totals > 0)


def plot_confusion_matrix(
    confusion: np.ndarray,
    class_names: Sequence[str],
    path: str | os.PathLike,
    top_confusions: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Row-normalised confusion matrix; numbers in the cells up to ``CELL_TEXT_MAX_CLASSES`` classes, and the
    top confusions listed in a panel beside it (``confusion_matrix_figure``), saved to ``path``."""
    return _save(confusion_matrix_figure(confusion, class_names, top_confusions), path)


def confusion_matrix_figure(
    confusion: np.ndarray, class_names: Sequence[str], top_confusions: Sequence[Mapping[str, Any]] = ()
) -> Figure:
    """The figure ``plot_confusion_matrix`` saves."""
    matrix = normalize_confusion(confusion)
    counts = np.asarray(confusion)
    n = len(class_names)
    side = float(np.clip(0.16 * n + 3.0, 5.0, 20.0))
    list_width = 0.45 * side if top_confusions else 0.0
    fig = Figure(figsize=(side + 1.2 + list_width, side))
    grid = fig.add_gridspec(1, 2, width_ratios=[side + 1.2, list_width]) if top_confusions else fig.add_gridspec(1, 1)
    ax = fig.add_subplot(grid[0, 0])
    image = ax.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.035, pad=0.015, shrink=0.7, label="fraction of the true class")
    fontsize = _tick_fontsize(0.85 * side, n)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(class_names, rotation=90, fontsize=fontsize)
    ax.set_yticklabels(class_names, fontsize=fontsize)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    # two lines: on one, a few classes' narrow matrix lets the title run into the top-confusions panel's
    ax.set_title(f"Normalised confusion matrix\n{n} classes, {int(counts.sum())} videos")
    if n <= CELL_TEXT_MAX_CLASSES:
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=max(fontsize - 1, 5),
                            color="white" if matrix[i, j] > 0.5 else "black")
    if top_confusions:
        side_ax = fig.add_subplot(grid[0, 1])
        side_ax.axis("off")
        lines = [f"{c['count']:>3}  ({c['fraction']:.0%})  {c['true']}  \u2192  {c['predicted']}"
                 for c in top_confusions]
        side_ax.set_title("Top confusions\ncount (share of true class)  true \u2192 predicted",
                         fontsize=float(np.clip(side / 1.6, 9, 13)), loc="left")
        side_ax.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", family="monospace",
                     fontsize=float(np.clip(side / 1.6, 8, 12)), transform=side_ax.transAxes)
    fig.tight_layout()
    return fig


# ---- per-class accuracy and class distribution ---------------------------------------------------------------------

def _bar_height(num_rows: int) -> float:
    return float(np.clip(0.17 * num_rows + 1.5, 3.0, 24.0))


def plot_per_class_accuracy(per_class: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Horizontal bars of each class's accuracy, worst at the top, with the mean class accuracy as a line."""
    rows = sorted((r for r in per_class if r["support"] > 0), key=lambda r: (r["accuracy"], r["class"]))
    names = [r["class"] for r in rows]
    accuracy = np.array([r["accuracy"] for r in rows])
    height = _bar_height(len(rows))
    fig = Figure(figsize=(8.0, height))
    ax = fig.add_subplot(1, 1, 1)
    colors = colormaps["RdYlGn"](accuracy)
    ax.barh(range(len(rows)), accuracy, color=colors, edgecolor="none")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{name} ({r['support']})" for name, r in zip(names, rows)],
                       fontsize=_tick_fontsize(0.85 * height, len(rows)))
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    mean = float(accuracy.mean()) if len(rows) else float("nan")
    if len(rows):
        ax.axvline(mean, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("accuracy (videos of the class predicted correctly)")
    # the mean goes in the title, not a legend: a legend would hide bars
    ax.set_title(f"Per-class accuracy, worst first (videos in brackets)\nmean class accuracy {mean:.3f} (dashed)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_class_distribution(
    counts_by_split: Mapping[str, Sequence[int]], class_names: Sequence[str], path: str | os.PathLike
) -> Path:
    """Videos per class, stacked by split (train / validation / test ...), one horizontal bar per class."""
    height = _bar_height(len(class_names))
    fig = Figure(figsize=(8.0, height))
    ax = fig.add_subplot(1, 1, 1)
    left = np.zeros(len(class_names))
    for split, counts in counts_by_split.items():
        counts = np.asarray(counts, dtype=np.float64)
        if counts.shape != (len(class_names),):
            raise ValueError(f"split {split!r}: {counts.shape[0]} counts for {len(class_names)} classes")
        ax.barh(range(len(class_names)), counts, left=left, label=f"{split} ({int(counts.sum())})")
        left += counts
    ax.set_yticks(range(len(class_names)))
    ax.set_yticklabels(class_names, fontsize=_tick_fontsize(0.85 * height, len(class_names)))
    ax.invert_yaxis()
    ax.set_xlabel("videos")
    ax.set_title("Class distribution per split")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # outside: never over the bars
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


# ---- sample predictions --------------------------------------------------------------------------------------------

def order_samples(samples: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Errors first, then correct predictions; most confident first within each."""
    wrong = [s for s in samples if s["label"] != s["prediction"]]
    right = [s for s in samples if s["label"] == s["prediction"]]
    return sorted(wrong, key=lambda s: -s["score"]) + sorted(right, key=lambda s: -s["score"])


def plot_sample_predictions(samples: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Contact sheet: one row per video (its frames side by side), titled with true and predicted class.

    Each sample: ``frames`` uint8 (F, H, W, 3), ``label`` and ``prediction`` (class names), ``score`` (probability
    of the prediction), ``video`` (a name). Rows are ordered by ``order_samples``.
    """
    ordered = order_samples(samples)
    if not ordered:
        raise ValueError("plot_sample_predictions: no samples")
    per_row = max(len(s["frames"]) for s in ordered)
    height, width = ordered[0]["frames"].shape[1:3]
    cell = 1.8
    # one subfigure per video: its title sits above its own frames whatever the frame size
    fig = Figure(figsize=(max(cell * per_row * width / height, 7.0), (cell + 0.4) * len(ordered)),
                 layout="constrained")
    rows = np.atleast_1d(fig.subfigures(len(ordered), 1))
    for row, sample in zip(rows, ordered):
        correct = sample["label"] == sample["prediction"]
        color = CORRECT_COLOR if correct else WRONG_COLOR
        verdict = "\u2713" if correct else "\u2717"
        row.suptitle(
            f"{verdict}  true: {sample['label']}   predicted: {sample['prediction']} "
            f"({sample['score']:.2f})   {sample.get('video', '')}",
            x=0.01, ha="left", fontsize=9, color=color,
        )
        axes = np.atleast_1d(row.subplots(1, per_row))
        for ax, frame in zip(axes, sample["frames"]):
            ax.imshow(frame)
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_color(color)
                spine.set_linewidth(2)
        for ax in axes[len(sample["frames"]):]:
            ax.axis("off")
    fig.suptitle("Sample predictions (errors first, most confident first)")
    return _save(fig, path)


# ---- attention / Grad-CAM overlays ---------------------------------------------------------------------------------

def overlay_heatmap(frames: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blends a [0, 1] heat map (T, H, W) over uint8 frames (T, H, W, 3) with the 'jet' colour map -> uint8."""
    frames = np.asarray(frames)
    heatmap = np.asarray(heatmap, dtype=np.float64)
    if heatmap.shape != frames.shape[:3]:
        raise ValueError(f"heat map shape {heatmap.shape} does not match frames {frames.shape[:3]}")
    colored = colormaps["jet"](np.clip(heatmap, 0.0, 1.0))[..., :3] * 255.0
    blended = (1.0 - alpha) * frames.astype(np.float64) + alpha * colored
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def plot_attention_overlay(
    videos: Sequence[Mapping[str, Any]], path: str | os.PathLike, method: str, max_frames: int = 8
) -> Path:
    """Frames with the model's heat map overlaid: per video a row of input frames and a row of overlays.

    Each video: ``frames`` uint8 (T, H, W, 3) as the model saw them, ``heatmap`` (T, H, W) in [0, 1], ``title``.
    """
    if not videos:
        raise ValueError("plot_attention_overlay: no videos")
    num_frames = min(max(len(v["frames"]) for v in videos), max_frames)
    cell = 1.6
    fig = Figure(figsize=(max(cell * num_frames, 7.0), (2 * cell + 0.5) * len(videos)), layout="constrained")
    blocks = np.atleast_1d(fig.subfigures(len(videos), 1))
    for block, video in zip(blocks, videos):
        shown = np.linspace(0, len(video["frames"]) - 1, num_frames).round().astype(int)
        blended = overlay_heatmap(video["frames"][shown], video["heatmap"][shown])
        block.suptitle(video.get("title", ""), x=0.01, ha="left", fontsize=9)
        axes = np.asarray(block.subplots(2, num_frames, squeeze=False))
        for col, t in enumerate(shown):
            for r, image in enumerate((video["frames"][t], blended[col])):
                ax = axes[r, col]
                ax.imshow(image)
                ax.set_xticks([])
                ax.set_yticks([])
            axes[1, col].set_xlabel(f"frame {t}", fontsize=7)
    fig.suptitle(f"Where the model looks: {method} (upper row: input frames, lower row: overlay)")
    return _save(fig, path)
