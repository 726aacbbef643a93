"""Parity of an exported graph with its PyTorch model, on views of real decoded videos.

The views are made by the ``video-classification`` pipeline's own ``preprocess`` (decoding, the model's clip
sampling, its processor), so the check covers exactly the tensors a deployed model will be fed. Logits of every
view are compared in float32; the export fails when the largest absolute difference exceeds the tolerance.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

# The acceptance bound for float32 graphs: max |logit difference| over all views.
DEFAULT_TOLERANCE = 1e-3


class ParityError(RuntimeError):
    """The exported graph's logits differ from PyTorch's by more than the tolerance."""

    def __init__(self, report: "ParityReport"):
        self.report = report
        super().__init__(report.summary())


@dataclass
class ParityReport:
    """Largest logit difference between the two backends, where it occurred, and whether top-1 agreed."""

    tolerance: float
    max_abs_diff: float
    worst_video: str
    num_videos: int
    num_views: int
    top1_agreement: float
    largest_batch: int
    per_video: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.max_abs_diff)) and self.max_abs_diff <= self.tolerance

    def summary(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (f"parity {verdict}: max |logit difference| {self.max_abs_diff:.3g} "
                f"({'<=' if self.passed else '>'} tolerance {self.tolerance:g}) over {self.num_views} views of "
                f"{self.num_videos} videos (worst: {self.worst_video}); top-1 agreement "
                f"{self.top1_agreement:.3f}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def video_views(classifier, videos: Sequence[str | os.PathLike], num_clips: int) -> list[torch.Tensor]:
    """Per video, its views as the pipeline feeds them: float (num_clips, T, C, H, W)."""
    views = []
    for video in videos:
        views.append(classifier.views(os.fspath(video), num_clips=num_clips).cpu())
    return views


def check_parity(
    reference: Callable[[torch.Tensor], torch.Tensor],
    candidate: Callable[[np.ndarray], np.ndarray],
    views: Sequence[torch.Tensor],
    names: Sequence[str],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    batch_all: bool = False,
) -> ParityReport:
    """Compares ``reference(pixel_values) -> logits`` (PyTorch) with ``candidate(array) -> logits`` (ONNX).

    Each video's views go through both in one batch; with ``batch_all`` the candidate also runs all views of
    all videos in one batch (a dynamic-batch graph), and that output is compared too.
    """
    if not views:
        raise ValueError("parity check needs at least one video")
    per_video, worst, worst_name = [], -1.0, ""
    agree = total = 0
    references = []
    for name, batch in zip(names, views):
        with torch.inference_mode():
            expected = reference(batch).float().numpy()
        references.append(expected)
        got = candidate(batch.numpy())
        diff = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else float("inf")
        same = int((got.argmax(-1) == expected.argmax(-1)).sum()) if got.shape == expected.shape else 0
        agree, total = agree + same, total + len(expected)
        per_video.append({"video": str(name), "views": len(expected), "max_abs_diff": diff,
                          "top1_agree": same == len(expected)})
        if not diff <= worst:  # also catches nan
            worst, worst_name = diff, str(name)
    largest = max(len(v) for v in views)
    if batch_all and len(views) > 1:
        together = candidate(torch.cat(list(views)).numpy())
        expected = np.concatenate(references)
        diff = float(np.max(np.abs(together - expected))) if together.shape == expected.shape else float("inf")
        largest = len(expected)
        if not diff <= worst:
            worst, worst_name = diff, f"all {len(views)} videos in one batch"
    return ParityReport(tolerance=tolerance, max_abs_diff=worst, worst_video=worst_name, num_videos=len(views),
                        num_views=total, top1_agreement=agree / max(total, 1), largest_batch=largest,
                        per_video=per_video)
