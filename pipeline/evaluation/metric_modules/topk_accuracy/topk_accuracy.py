"""Top-1 and top-k accuracy from class scores, as an `evaluate` metric module.

Shipped with the repository and loaded by path (``pipeline.evaluation.metric_modules.load_metric``)
so it works offline. Only standalone imports here: `evaluate` copies this file
into its module cache and imports it on its own, outside the ``pipeline`` package.

Ties: classes are ranked by descending score and equal scores keep ascending class
index, so the top-1 class is ``np.argmax`` (the prediction written everywhere else)
and a tie at the k-th place is given to the lower class index. scikit-learn's
``top_k_accuracy_score`` breaks ties the other way (higher index first); both agree
whenever scores have no ties, which is the case for softmax outputs in practice.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Top-1 accuracy (fraction of samples whose highest-scoring class is the label) and
top-k accuracy (fraction whose label is among the k highest-scoring classes).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `float`, shape (N, C)): class scores (logits or probabilities).
    references (`list` of `int`, shape (N,)): true class indices in [0, C).
    k (`int`, default 5): the k of top-k; clipped to C when there are fewer classes.
Returns:
    accuracy (`float`): top-1 accuracy.
    top{k}_accuracy (`float`): top-k accuracy, e.g. `top5_accuracy`.
Examples:
    >>> metric = load_metric("topk_accuracy")
    >>> metric.compute(predictions=[[0.1, 0.7, 0.2], [0.5, 0.1, 0.4]], references=[2, 2], k=2)
    {'accuracy': 0.0, 'top2_accuracy': 1.0}
"""

_CITATION = ""


def topk_hits(scores, labels, k):
    """Boolean (N,) array: is each label among its row's k best classes (ties -> lower index)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if scores.ndim != 2:
        raise ValueError(f"topk_accuracy: predictions must be (N, C) scores, got shape {scores.shape}")
    if labels.shape != (scores.shape[0],):
        raise ValueError(f"topk_accuracy: references shape {labels.shape} does not match predictions {scores.shape}")
    num_classes = scores.shape[1]
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"topk_accuracy: references must lie in [0, {num_classes}), got {labels.min()}..{labels.max()}")
    k = min(int(k), num_classes)
    label_scores = scores[np.arange(len(labels)), labels]
    # Rank of the label = classes scoring strictly higher + tied classes with a lower index.
    higher = (scores > label_scores[:, None]).sum(axis=1)
    tied_before = ((scores == label_scores[:, None]) & (np.arange(num_classes) < labels[:, None])).sum(axis=1)
    return higher + tied_before < k


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TopkAccuracy(evaluate.Metric):
    """`evaluate` module computing top-1 and top-k accuracy from (N, C) scores."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # float64 so float32 model scores pass unchanged (a float32 feature would round
            # float64 probabilities and could create ties that are not in the input).
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float64")),
                    "references": datasets.Value("int64"),
                }
            ),
        )

    def _compute(self, predictions, references, k=5):
        scores = np.asarray(predictions, dtype=np.float64)
        if len(references) == 0:
            raise ValueError("topk_accuracy: no predictions to score")
        top1 = topk_hits(scores, references, 1).mean()
        topk = topk_hits(scores, references, k).mean()
        return {"accuracy": float(top1), f"top{int(k)}_accuracy": float(topk)}
