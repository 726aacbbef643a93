"""Mixup and CutMix for video batches, on whatever device the batch is on.

``VideoMixup(...)(pixel_values, labels)`` takes a normalised float batch (B, T, C, H, W) and integer labels (B,)
and returns the mixed batch and soft targets (B, num_classes) whose rows sum to 1. As in the image recipes that
VideoMAE follows (Zhang et al. 2018; Yun et al. 2019; the ``mixup_*`` options of DeiT / VideoMAE), one mixing weight
``lam ~ Beta(alpha, alpha)`` is drawn per batch and clip ``i`` is mixed with clip ``B - 1 - i``:

- Mixup: ``x = lam x_i + (1 - lam) x_j``, targets ``lam y_i + (1 - lam) y_j``;
- CutMix: a box of area ``(1 - lam) H W`` (side ratio of the frame, centre uniform, clipped at the borders) is
  pasted from clip ``j`` into clip ``i`` at the same place in EVERY frame (an object in the box stays where it is
  in time), and ``lam`` is then corrected to the area actually kept.

With probability ``1 - prob`` a batch is left alone (one-hot targets); with both alphas set, CutMix is chosen with
probability ``switch_prob``. Label smoothing is not applied here: the loss applies it to any target, hard or soft
(``classification_loss.py``), which equals smoothing each label before mixing, since both are linear.
The dominant label of a mixed target is its argmax; training accuracy is measured against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class MixResult:
    """A mixed batch: inputs, soft targets (B, K), the weight of the original clip, and the CutMix box or None."""

    pixel_values: torch.Tensor
    targets: torch.Tensor
    lam: float
    box: tuple[int, int, int, int] | None  # (top, bottom, left, right), rows/columns [top, bottom) x [left, right)


@dataclass
class VideoMixup:
    """Batch-level Mixup / CutMix for (B, T, C, H, W) clips; see the module docstring."""

    num_classes: int
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    prob: float = 1.0
    switch_prob: float = 0.5

    def __post_init__(self) -> None:
        if self.mixup_alpha < 0 or self.cutmix_alpha < 0:
            raise ValueError(f"mixup_alpha / cutmix_alpha must be >= 0, got {self.mixup_alpha} / {self.cutmix_alpha}")
        if not (0.0 <= self.prob <= 1.0 and 0.0 <= self.switch_prob <= 1.0):
            raise ValueError(f"mixup_prob / mixup_switch_prob must be in [0, 1], got {self.prob} / {self.switch_prob}")

    @property
    def enabled(self) -> bool:
        return (self.mixup_alpha > 0 or self.cutmix_alpha > 0) and self.prob > 0

    def __call__(self, pixel_values: torch.Tensor, labels: torch.Tensor,
                 generator: torch.Generator | None = None) -> MixResult:
        """Mixes the batch; ``generator`` (CPU) makes the draws reproducible, else torch's global generator."""
        if pixel_values.dim() != 5:
            raise ValueError(f"mixing expects clips (B, T, C, H, W), got shape {tuple(pixel_values.shape)}")
        if labels.dtype.is_floating_point or labels.dim() != 1:
            raise ValueError("mixing expects integer class labels (B,)")
        one_hot = torch.nn.functional.one_hot(labels.long(), self.num_classes).to(torch.float32)
        # numpy draws (Beta has no torch generator argument), seeded from torch so one seed governs everything
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (), generator=generator)))
        if not self.enabled or rng.random() >= self.prob:
            return MixResult(pixel_values, one_hot, 1.0, None)
        use_cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha <= 0 or rng.random() < self.switch_prob)
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        lam = float(rng.beta(alpha, alpha))
        box = None
        if use_cutmix:
            height, width = pixel_values.shape[-2:]
            box = cutmix_box(height, width, lam, rng)
            top, bottom, left, right = box
            mixed = pixel_values.clone()
            # the partner's region, for every frame at once: the box is the same in all T frames
            mixed[..., top:bottom, left:right] = pixel_values[..., top:bottom, left:right].flip(0)
            lam = 1.0 - (bottom - top) * (right - left) / (height * width)
        else:
            mixed = pixel_values * lam + pixel_values.flip(0) * (1.0 - lam)
        targets = one_hot * lam + one_hot.flip(0) * (1.0 - lam)
        return MixResult(mixed, targets.to(pixel_values.device), lam, box)


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A box covering about ``1 - lam`` of an H x W frame with the frame's aspect ratio, centred uniformly at
    random and clipped to the frame: (top, bottom, left, right)."""
    ratio = math.sqrt(max(0.0, 1.0 - lam))
    box_h, box_w = int(round(height * ratio)), int(round(width * ratio))
    cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
    top, bottom = max(cy - box_h // 2, 0), min(cy + box_h - box_h // 2, height)
    left, right = max(cx - box_w // 2, 0), min(cx + box_w - box_w // 2, width)
    return top, bottom, left, right
