"""Exact video counts for a training run's evaluations: per split, videos scored + skipped = videos listed.

Videos leave a split at two points: probing (``add_video_info`` drops unreadable files, and listed files that are
missing when ``on_missing_video: skip``), and decoding inside a loader worker during an evaluation (the clip
transform logs the failure and the collator drops the row). The second happens in other processes, so
``EvaluationFailures`` wraps the evaluation transform to append each failed video (path and reason) to a file in
output_dir (``_failed_videos.jsonl``: the leading underscore keeps it out of Hub uploads), which the main process
reads back after each final evaluation. A batch whose every video failed is scored as empty (``evaluation`` rows
tell the collator so) instead of repeating the last good batch, which would count its videos twice.

``VideoCounts`` turns that into ``{prefix}_samples`` (videos scored) and ``{prefix}_skipped_videos`` in the
metrics, and ``skipped_videos.json`` (every skipped video: split, path, reason).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from datasets import IterableDataset

from pipeline.data.streaming import split_length, video_name

logger = logging.getLogger("pipeline.train")

FAILURE_LOG = "_failed_videos.jsonl"
SKIPPED_NAME = "skipped_videos.json"
CLIP_TRANSFORM_LOGGER = "pipeline.training.clip_transform"


class _Capture(logging.Handler):
    """Collects (path, reason) of the clip transform's "skipping unreadable video PATH: REASON" warnings."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.reasons: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.args, tuple) and len(record.args) == 2:
            self.reasons[str(record.args[0])] = str(record.args[1])


class RecordingTransform:
    """An evaluation transform that also appends the videos it could not decode to ``log_path`` and marks its
    rows as evaluation rows (an all-failed batch is then scored as empty, never as a copy of another)."""

    def __init__(self, transform: Callable, log_path: str, video_column: str = "video"):
        self.transform = transform
        self.log_path = log_path
        self.video_column = video_column

    def __getattr__(self, name: str) -> Any:  # placement, sampling, ... of the wrapped transform
        if name == "transform":
            raise AttributeError(name)
        return getattr(self.transform, name)

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        capture = _Capture()
        clip_logger = logging.getLogger(CLIP_TRANSFORM_LOGGER)
        clip_logger.addHandler(capture)
        try:
            out = self.transform(batch)
        finally:
            clip_logger.removeHandler(capture)
        paths = batch[self.video_column]
        failed = [video_name(p) for p, row in zip(paths, out.get("row", [])) if row is None]
        if failed:
            lines = "".join(json.dumps({"video": p, "reason": capture.reasons.get(p, "could not be decoded")}) + "\n"
                            for p in failed)
            # one append per batch: lines of several workers and processes never interleave
            with open(self.log_path, "a", encoding="utf-8") as handle:
                handle.write(lines)
        out["evaluation"] = [True] * len(paths)
        return out


class VideoCounts:
    """What each split listed, what probing left out, and what each final evaluation could not decode."""

    def __init__(self, output_dir: str | os.PathLike, splits, is_main_process: bool = True):
        self.output_dir = Path(output_dir)
        self.log_path = self.output_dir / FAILURE_LOG
        # a stream lists the count recorded with it (its members are not read ahead: any failure logged during
        # its evaluation is its own)
        self.listed = {name: split_length(split) for name, split in splits.items()}
        self.members = {name: None if isinstance(split, IterableDataset) else set(map(str, split["video"]))
                        for name, split in splits.items()}
        self.skipped: list[dict[str, str]] = []
        if is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            self.log_path.write_text("")  # this launch's failures only

    def probed(self, unreadable) -> None:
        """The (path, reason) pairs probing left out, attributed to their splits."""
        for path, reason in unreadable:
            for name, members in self.members.items():
                if members is not None and str(path) in members:
                    self.skipped.append({"split": name, "video": str(path), "reason": str(reason)})

    def limited(self, name: str, size: int) -> None:
        """Split ``name`` was cut to ``size`` readable videos (max_train_samples / max_eval_samples): those are
        what it lists now."""
        self.listed[name] = size
        self.skipped = [e for e in self.skipped if e["split"] != name]

    def probe_skipped(self, name: str) -> list[tuple[str, str]]:
        """(path, reason) of the videos of split ``name`` that probing left out."""
        return [(e["video"], e["reason"]) for e in self.skipped if e["split"] == name]

    def wrap(self, transform: Callable) -> RecordingTransform:
        return RecordingTransform(transform, str(self.log_path))

    def mark(self) -> int:
        return self.log_path.stat().st_size if self.log_path.is_file() else 0

    def evaluated(self, name: str, prefix: str, metrics: dict, mark: int) -> None:
        """Sets ``{prefix}_samples`` (videos scored) and ``{prefix}_skipped_videos`` (listed - scored) after the
        final evaluation of split ``name``, and notes which of its videos failed since ``mark``."""
        scored = int(metrics.pop(f"{prefix}_videos", self.listed[name] or 0))
        if self.members[name] is None and self.listed[name] is not None and scored > self.listed[name]:
            # a stream evaluated by several processes: accelerate filled its last global batch with repeats
            logger.info("%s: %d videos scored, %d of them repeated to fill the last batch of every process (exact: "
                        "python -m pipeline.evaluation)", name, scored, scored - self.listed[name])
            scored = self.listed[name]
        failed: dict[str, str] = {}
        if self.log_path.is_file():
            with self.log_path.open(encoding="utf-8") as handle:
                handle.seek(mark)
                for line in handle:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    if self.members[name] is None or entry.get("video") in self.members[name]:
                        failed.setdefault(entry["video"], entry.get("reason", ""))
        if self.listed[name] is None:  # a stream of unknown length lists what it yielded
            self.listed[name] = scored + len(failed)
        known = {e["video"] for e in self.skipped if e["split"] == name}
        self.skipped += [{"split": name, "video": path, "reason": f"decoding failed during evaluation: {reason}"}
                         for path, reason in failed.items() if path not in known]
        metrics[f"{prefix}_samples"] = scored
        metrics[f"{prefix}_skipped_videos"] = self.listed[name] - scored
        named = sum(1 for e in self.skipped if e["split"] == name)
        if named != self.listed[name] - scored:
            logger.warning("%s: %d of %d listed videos scored, %d skipped but %d named in %s", name, scored,
                           self.listed[name], self.listed[name] - scored, named, SKIPPED_NAME)

    def write(self) -> Optional[Path]:
        """skipped_videos.json: every video listed but not scored, with its split and reason."""
        path = self.output_dir / SKIPPED_NAME
        path.write_text(json.dumps(self.skipped, indent=1) + "\n")
        return path


def empty_prediction(model, labels: torch.Tensor, prediction_loss_only: bool):
    """``prediction_step``'s answer for an evaluation batch whose every video failed: nothing scored."""
    if prediction_loss_only:
        return None, None, None
    num_labels = getattr(getattr(model, "config", None), "num_labels", 1)
    logits = torch.empty((0, num_labels), device=labels.device)
    return None, logits, labels
