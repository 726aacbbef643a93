"""Class balance: loss weights per class and a sampler that draws every class equally often.

- ``balanced_class_weights``: scikit-learn's "balanced" weights ``n / (K x n_k)`` for the classes present in the
  training labels (their mean over the training videos is exactly 1); a class without training videos gets 1.
- ``BalancedSampler``: draws ``num_samples`` videos per epoch with replacement, each with probability proportional
  to ``1 / n_k`` of its class, so every class present is drawn with probability ``1 / K``. The draws depend only on
  (seed, epoch): every process of a distributed run draws the same sequence (accelerate then gives each its share),
  and a resumed run draws what the interrupted one would have.
"""

from __future__ import annotations

import logging
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

logger = logging.getLogger(__name__)


def class_counts(labels: Sequence[int], num_classes: int) -> np.ndarray:
    """Videos per class, (num_classes,)."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got {labels.min()}..{labels.max()}")
    return np.bincount(labels, minlength=num_classes)


def balanced_class_weights(labels: Sequence[int], num_classes: int) -> torch.Tensor:
    """Loss weight per class: ``n / (K_present x n_k)`` (scikit-learn ``compute_class_weight("balanced")``)."""
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.asarray(labels, dtype=np.int64)
    counts = class_counts(labels, num_classes)
    present = np.flatnonzero(counts)
    if present.size == 0:
        raise ValueError("class_weighting: no training labels")
    weights = np.ones(num_classes, dtype=np.float64)
    weights[present] = compute_class_weight("balanced", classes=present, y=labels)
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        logger.warning("class_weighting: %d class(es) have no training video (weight 1): %s", missing.size,
                       missing.tolist()[:10])
    return torch.tensor(weights, dtype=torch.float32)


def balanced_sample_weights(labels: Sequence[int], num_classes: int) -> torch.Tensor:
    """Per-video sampling weight ``1 / n_k`` of its class (float64, for ``torch.multinomial``)."""
    labels = np.asarray(labels, dtype=np.int64)
    counts = class_counts(labels, num_classes)
    return torch.from_numpy(1.0 / counts[labels].astype(np.float64))


class BalancedSampler(Sampler[int]):
    """Class-balanced sampling with replacement; ``set_epoch`` (called by the Trainer) picks the epoch's draws."""

    def __init__(self, labels: Sequence[int], num_classes: int, num_samples: int | None = None, seed: int = 0):
        self.weights = balanced_sample_weights(labels, num_classes)
        self.num_samples = int(num_samples if num_samples is not None else len(self.weights))
        if self.num_samples <= 0 or len(self.weights) == 0:
            raise ValueError("balanced_sampler: empty training set")
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        draws = torch.multinomial(self.weights, self.num_samples, replacement=True, generator=generator)
        # the next epoch differs even where nobody calls set_epoch
        self.epoch += 1
        return iter(draws.tolist())
