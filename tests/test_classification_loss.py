"""The one training loss: equal to transformers' own losses on hard labels, exact on soft targets and weights."""

from __future__ import annotations

import pytest
import torch
from transformers.trainer_pt_utils import LabelSmoother

from pipeline.training.classification_loss import ClassificationLoss

K = 5


def logits_and_labels(batch=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, K, generator=g), torch.randint(0, K, (batch,), generator=g)


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_hard_labels_equal_transformers_label_smoother(eps):
    logits, labels = logits_and_labels()
    ours = ClassificationLoss(K, label_smoothing=eps)({"logits": logits}, labels)
    if eps:
        reference = LabelSmoother(epsilon=eps)({"logits": logits}, labels)
    else:
        reference = torch.nn.functional.cross_entropy(logits, labels)
    torch.testing.assert_close(ours, reference)


def test_soft_targets_are_smoothed_then_used_as_a_distribution():
    logits, _ = logits_and_labels()
    targets = torch.softmax(torch.randn(8, K), dim=-1)
    loss = ClassificationLoss(K, label_smoothing=0.1)({"logits": logits}, targets)
    smoothed = targets * 0.9 + 0.1 / K
    torch.testing.assert_close(loss, -(smoothed * torch.log_softmax(logits, -1)).sum(-1).mean())
    # a one-hot "soft" target gives the same loss as its hard label
    _, labels = logits_and_labels()
    one_hot = torch.nn.functional.one_hot(labels, K).float()
    loss_fn = ClassificationLoss(K, label_smoothing=0.1)
    torch.testing.assert_close(loss_fn({"logits": logits}, one_hot), loss_fn({"logits": logits}, labels))


def test_class_weights_scale_each_rows_loss_by_its_class_weight():
    logits, labels = logits_and_labels()
    weights = torch.tensor([0.5, 1.0, 2.0, 1.5, 0.25])
    loss = ClassificationLoss(K, class_weights=weights)({"logits": logits}, labels, num_items_in_batch=torch.tensor(8))
    per_row = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    torch.testing.assert_close(loss, (weights[labels] * per_row).sum() / 8)


def test_gradient_accumulation_divides_by_the_whole_batch():
    logits, labels = logits_and_labels()
    loss_fn = ClassificationLoss(K)
    halves = sum(loss_fn({"logits": logits[i:i + 4]}, labels[i:i + 4], num_items_in_batch=8) for i in (0, 4))
    torch.testing.assert_close(halves, loss_fn({"logits": logits}, labels))


def test_train_accuracy_counts_the_dominant_label_in_training_only():
    loss_fn = ClassificationLoss(K)
    logits = torch.zeros(4, K)
    logits[torch.arange(4), torch.tensor([0, 1, 2, 3])] = 5.0
    targets = torch.zeros(4, K)
    targets[0, 0], targets[0, 4] = 0.7, 0.3  # dominant 0: right
    targets[1, 1], targets[1, 2] = 0.4, 0.6  # dominant 2: wrong
    targets[2, 2] = 1.0  # right
    targets[3, 0], targets[3, 3] = 0.9, 0.1  # dominant 0: wrong
    loss_fn({"logits": logits.requires_grad_()}, targets)
    loss_fn({"logits": torch.zeros(4, K)}, torch.zeros(4, dtype=torch.long))  # evaluation: not counted
    assert loss_fn.pop_train_accuracy() == {"train_accuracy": 0.5}
    assert loss_fn.pop_train_accuracy() == {}


def test_rejects_bad_settings():
    with pytest.raises(ValueError, match="label_smoothing"):
        ClassificationLoss(K, label_smoothing=1.0)
    with pytest.raises(ValueError, match="soft targets"):
        ClassificationLoss(K)({"logits": torch.zeros(2, K)}, torch.zeros(2, K + 1))
