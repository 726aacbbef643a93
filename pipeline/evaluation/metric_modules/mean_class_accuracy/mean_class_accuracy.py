"""Mean class accuracy (the mean over classes of per-class recall), as an `evaluate` metric module.

Shipped with the repository and loaded by path (``pipeline.evaluation.metric_modules.load_metric``) so it
works offline; only standalone imports, one per line (`evaluate` imports the file on its own).

Only classes that occur in ``references`` are averaged: a class without test videos has
no accuracy, and a class that is only ever predicted costs the classes it was confused
with, not a term of its own: scikit-learn's ``balanced_accuracy_score``, which computes it,
with the per-class recalls (``recall_score(average=None)``) beside it.
"""

import warnings

import datasets
import evaluate
import numpy as np
from sklearn.metrics import balanced_accuracy_score
from sklearn.metrics import recall_score

_DESCRIPTION = """
Mean class accuracy: for each class present in the references, the fraction of its
samples predicted correctly; then the unweighted mean over those classes. Unlike plain
accuracy it is not dominated by large classes.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted class indices.
    references (`list` of `int`): true class indices.
    num_classes (`int`, optional): length of the returned per-class list (default: 1 + the largest index seen).
Returns:
    mean_class_accuracy (`float`): mean over classes with references of their accuracy.
    per_class_accuracy (`list` of `float`): accuracy of each class index; NaN for a class without references.
Examples:
    >>> metric = load_metric("mean_class_accuracy")
    >>> metric.compute(predictions=[0, 0, 1, 1], references=[0, 0, 0, 1])["mean_class_accuracy"]
    0.8333333333333333
"""

_CITATION = ""


class MeanClassAccuracy(evaluate.Metric):
    """`evaluate` module computing the mean over classes of per-class accuracy (recall)."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, num_classes=None):
        predictions = np.asarray(predictions, dtype=np.int64)
        references = np.asarray(references, dtype=np.int64)
        if references.size == 0:
            raise ValueError("mean_class_accuracy: no predictions to score")
        seen = int(max(predictions.max(), references.max())) + 1
        num_classes = seen if num_classes is None else int(num_classes)
        if num_classes < seen:
            raise ValueError(f"mean_class_accuracy: num_classes={num_classes} but class index {seen - 1} occurs")
        present = np.unique(references)
        per_class = np.full(num_classes, np.nan)
        per_class[present] = recall_score(references, predictions, labels=present, average=None, zero_division=0)
        with warnings.catch_warnings():
            # a class only ever predicted is expected here (it costs the classes it took), not a problem to report
            warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
            mean = float(balanced_accuracy_score(references, predictions))
        return {
            "mean_class_accuracy": mean,
            "per_class_accuracy": per_class.tolist(),
        }
