"""The training loss of every classifier here, in one place: cross-entropy against hard or soft targets, with label
smoothing and optional class weights; installed as the Trainer's ``compute_loss_func``.

For a row with target distribution ``t`` (one-hot for a class label, a mixture after Mixup / CutMix), smoothing
``eps`` over ``K`` classes and class weights ``w`` (all 1 unless ``class_weighting: balanced``):

    t' = (1 - eps) t + eps / K            loss = - sum_k w_k t'_k log softmax(z)_k

With hard labels and unit weights this is exactly transformers' ``LabelSmoother`` (and plain cross-entropy at
``eps = 0``). Rows are summed and divided by ``num_items_in_batch`` when the Trainer passes it (the row count of the
whole accumulated batch, so gradient accumulation averages correctly), else averaged. Balanced weights average 1
over the training set, so the loss keeps its scale.

During training (logits that require gradients) it also counts how often the argmax of the logits equals the
dominant label of the target (the label itself for hard targets): ``train_accuracy`` in the logs stays meaningful
under Mixup / CutMix, where the loss alone is not comparable between runs.
"""

from __future__ import annotations

from typing import Any

import torch


class ClassificationLoss:
    """``compute_loss_func(outputs, labels, num_items_in_batch=None)`` for single-label video classification."""

    def __init__(self, num_classes: int, label_smoothing: float = 0.0, class_weights: torch.Tensor | None = None):
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing_factor must be in [0, 1), got {label_smoothing}")
        if class_weights is not None and class_weights.shape != (num_classes,):
            raise ValueError(f"class weights have shape {tuple(class_weights.shape)}, expected ({num_classes},)")
        self.num_classes = num_classes
        self.label_smoothing = float(label_smoothing)
        self.class_weights = class_weights
        self._correct: torch.Tensor | None = None
        self._seen: torch.Tensor | None = None

    def targets(self, labels: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Smoothed target distributions (B, K) from class indices (B,) or distributions (B, K)."""
        if labels.dtype.is_floating_point:
            if labels.dim() != 2 or labels.shape[1] != self.num_classes:
                raise ValueError(f"soft targets must be (batch, {self.num_classes}), got {tuple(labels.shape)}")
            targets = labels.to(device=device, dtype=torch.float32)
        else:
            targets = torch.nn.functional.one_hot(labels.to(device).long(), self.num_classes).to(torch.float32)
        if self.label_smoothing:
            targets = targets * (1.0 - self.label_smoothing) + self.label_smoothing / self.num_classes
        return targets

    def __call__(self, outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        targets = self.targets(labels, logits.device)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        if self.class_weights is not None:
            targets = targets * self.class_weights.to(logits.device)
        per_row = -(targets * log_probs).sum(dim=-1)
        if logits.requires_grad:
            self._count(logits.detach(), labels)
        if num_items_in_batch is None:
            return per_row.mean()
        if torch.is_tensor(num_items_in_batch):
            num_items_in_batch = num_items_in_batch.to(per_row.device)
        return per_row.sum() / num_items_in_batch

    def _count(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        dominant = labels.argmax(dim=-1) if labels.dtype.is_floating_point else labels
        correct = (logits.argmax(dim=-1) == dominant.to(logits.device)).sum()
        if self._correct is None:
            self._correct = torch.zeros((), dtype=torch.long, device=logits.device)
            self._seen = torch.zeros((), dtype=torch.long, device=logits.device)
        self._correct += correct
        self._seen += labels.shape[0]

    def pop_train_accuracy(self, accelerator=None) -> dict[str, float]:
        """``{"train_accuracy": ...}`` over the rows seen since the last call (all processes when an accelerator
        is given: every process must call it), then resets; empty when nothing was counted."""
        if self._correct is None:
            counts = torch.zeros(2, dtype=torch.long)
        else:
            counts = torch.stack([self._correct, self._seen])
        if accelerator is not None and accelerator.num_processes > 1:
            counts = accelerator.reduce(counts.to(accelerator.device), reduction="sum")
        self._correct = self._seen = None
        correct, seen = (int(v) for v in counts.tolist())
        return {"train_accuracy": round(correct / seen, 4)} if seen else {}
