"""Precision, recall, F1 (macro, weighted, per class) and the confusion matrix, as an `evaluate` module.

A thin layer over scikit-learn so the numbers are scikit-learn's; shipped with the
repository and loaded by path (``pipeline.evaluation.metric_modules.load_metric``) so it works offline.
Only standalone imports, one per line (`evaluate` imports the file on its own).

Which classes count:
- per-class values and the confusion matrix cover ``labels`` (all classes when the
  caller passes ``labels=range(num_classes)``), in that order;
- the macro / weighted averages cover the classes that occur in the references or the
  predictions (scikit-learn's default), so a class absent from the whole evaluation set
  and never predicted does not drag the macro average down with an undefined 0/0.
``zero_division`` (0, 1 or NaN) is the value of a 0/0 precision, recall or F1, as in
scikit-learn; it is applied silently.
"""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import confusion_matrix
from sklearn.metrics import precision_recall_fscore_support

_DESCRIPTION = """
Macro and weighted precision, recall and F1, per-class precision / recall / F1 / support,
and the confusion matrix (rows: true class, columns: predicted class).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted class indices.
    references (`list` of `int`): true class indices.
    labels (`list` of `int`, optional): classes of the per-class values and the confusion matrix, in order
        (default: the sorted classes occurring in references or predictions).
    zero_division (`float`, default 0.0): value of an undefined (0/0) precision, recall or F1; 0, 1 or NaN.
Returns:
    macro_precision, macro_recall, macro_f1, weighted_precision, weighted_recall, weighted_f1 (`float`)
    labels (`list` of `int`): the classes of the per-class lists below.
    precision, recall, f1 (`list` of `float`), support (`list` of `int`): per class of `labels`.
    confusion_matrix (`list` of `list` of `int`): counts, row = true class, column = predicted class.
Examples:
    >>> metric = load_metric("classification_metrics")
    >>> metric.compute(predictions=[0, 1, 1], references=[0, 1, 0])["macro_f1"]
    0.6666666666666666
"""

_CITATION = ""


class ClassificationMetrics(evaluate.Metric):
    """`evaluate` module for precision / recall / F1 and the confusion matrix (via scikit-learn)."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
            reference_urls=["https://scikit-learn.org/stable/modules/model_evaluation.html"],
        )

    def _compute(self, predictions, references, labels=None, zero_division=0.0):
        predictions = np.asarray(predictions, dtype=np.int64)
        references = np.asarray(references, dtype=np.int64)
        if references.size == 0:
            raise ValueError("classification_metrics: no predictions to score")
        present = np.union1d(references, predictions)
        labels = present if labels is None else np.asarray(list(labels), dtype=np.int64)
        result = {}
        for average in ("macro", "weighted"):
            precision, recall, f1, _ = precision_recall_fscore_support(
                references, predictions, labels=present, average=average, zero_division=zero_division
            )
            result.update({f"{average}_precision": float(precision), f"{average}_recall": float(recall),
                           f"{average}_f1": float(f1)})
        precision, recall, f1, support = precision_recall_fscore_support(
            references, predictions, labels=labels, average=None, zero_division=zero_division
        )
        result.update(
            labels=labels.tolist(),
            precision=precision.tolist(),
            recall=recall.tolist(),
            f1=f1.tolist(),
            support=support.tolist(),
            confusion_matrix=confusion_matrix(references, predictions, labels=labels).tolist(),
        )
        return result
