"""The shipped `evaluate` metric modules and the metrics report, checked number by number against scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, top_k_accuracy_score

from pipeline.evaluation.metric_modules import available_metrics, load_metric


@pytest.fixture(scope="module")
def topk():
    return load_metric("topk_accuracy")


def _scores(num, num_classes, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(num, num_classes)).astype(np.float32)
    labels = rng.integers(0, num_classes, size=num)
    return logits, labels


def test_topk_accuracy_is_shipped_and_loads_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "topk_accuracy" in available_metrics()
    assert load_metric("topk_accuracy").name == "topk_accuracy"
    with pytest.raises(FileNotFoundError, match="no_such_metric"):
        load_metric("no_such_metric")


@pytest.mark.filterwarnings("ignore:'k' .* greater than or equal to 'n_classes'")
@pytest.mark.parametrize("num_classes,k", [(101, 5), (7, 3), (3, 5)])
def test_topk_accuracy_matches_sklearn(topk, num_classes, k):
    scores, labels = _scores(200, num_classes, seed=num_classes)
    result = topk.compute(predictions=scores, references=labels, k=k)
    assert set(result) == {"accuracy", f"top{k}_accuracy"}
    assert result["accuracy"] == pytest.approx(accuracy_score(labels, scores.argmax(1)), abs=0)
    expected = top_k_accuracy_score(labels, scores, k=min(k, num_classes), labels=np.arange(num_classes))
    assert result[f"top{k}_accuracy"] == pytest.approx(expected, abs=0)
    assert 0 < result["accuracy"] < result[f"top{k}_accuracy"] <= 1


def test_topk_accuracy_on_hand_made_scores(topk):
    scores = [[0.1, 0.7, 0.2], [0.5, 0.1, 0.4], [0.2, 0.3, 0.5]]
    assert topk.compute(predictions=scores, references=[1, 2, 0], k=2) == {"accuracy": 1 / 3, "top2_accuracy": 2 / 3}


def test_topk_accuracy_ties_go_to_the_lower_class_index(topk):
    # Row 0: all tied -> ranking 0, 1, 2, 3 (np.argmax order). Row 1: classes 1 and 3 tie for first.
    scores = np.array([[0.25, 0.25, 0.25, 0.25], [0.0, 0.5, 0.0, 0.5]])
    assert topk.compute(predictions=scores, references=[0, 1], k=1)["accuracy"] == 1.0
    assert topk.compute(predictions=scores, references=[1, 3], k=1)["accuracy"] == 0.0
    assert topk.compute(predictions=scores, references=[1, 3], k=2)["top2_accuracy"] == 1.0
    assert topk.compute(predictions=scores, references=[3, 2], k=2)["top2_accuracy"] == 0.0
    # top-1 always agrees with the argmax prediction, tied or not.
    assert topk.compute(predictions=scores, references=scores.argmax(1), k=1)["accuracy"] == 1.0
    # scikit-learn breaks ties towards the higher index instead: documented difference.
    assert top_k_accuracy_score([3, 3], scores, k=1, labels=np.arange(4)) == 1.0
    assert topk.compute(predictions=scores, references=[3, 3], k=1)["accuracy"] == 0.0


def test_topk_accuracy_rejects_bad_labels(topk):
    with pytest.raises(ValueError, match="references must lie in"):
        topk.compute(predictions=[[0.1, 0.9]], references=[2], k=1)


# ---- the full metrics report on fixed predictions ---------------------------------------------------------------

from sklearn.metrics import (  # noqa: E402
    balanced_accuracy_score,
    classification_report,
    confusion_matrix,
    precision_recall_fscore_support,
)

from pipeline.evaluation.metrics import compute_metrics, top_confusions, worst_classes, write_per_class_csv  # noqa: E402

CLASS_NAMES = ["Archery", "Biking", "Bowling", "Diving", "Fencing", "Rowing", "Surfing"]
# Class 4 (Fencing) has videos but is never predicted; class 5 (Rowing) is predicted but has no videos;
# class 6 (Surfing) appears nowhere.
LABELS = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 4, 4, 0, 1, 3])
PREDICTED = np.array([0, 0, 1, 1, 1, 2, 2, 5, 0, 3, 2, 0, 1, 0, 5, 3])


def _fixed_scores(seed=0):
    """Scores whose argmax is PREDICTED and whose runner-up classes vary (top-5 is not trivially 1)."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0.0, 0.5, size=(len(LABELS), len(CLASS_NAMES)))
    scores[np.arange(len(LABELS)), PREDICTED] = 1.0
    return scores / scores.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("zero_division", [0.0, 1.0])
def test_compute_metrics_equals_sklearn(zero_division):
    scores = _fixed_scores()
    clip_scores = np.repeat(scores, 3, axis=0) + np.random.default_rng(1).normal(0, 0.2, (3 * len(LABELS), 7))
    clip_labels = np.repeat(LABELS, 3)
    m = compute_metrics(scores, LABELS, CLASS_NAMES, clip_scores=clip_scores, clip_labels=clip_labels,
                        zero_division=zero_division)
    assert (scores.argmax(1) == PREDICTED).all()
    all_labels = np.arange(len(CLASS_NAMES))
    assert m["video_top1"] == accuracy_score(LABELS, PREDICTED) == 9 / 16
    assert m["video_top5"] == top_k_accuracy_score(LABELS, scores, k=5, labels=all_labels)
    assert m["video_top5"] < 1.0
    assert m["clip_top1"] == accuracy_score(clip_labels, clip_scores.argmax(1))
    assert m["clip_top5"] == top_k_accuracy_score(clip_labels, clip_scores, k=5, labels=all_labels)
    assert m["clip_top1"] != m["video_top1"]
    with pytest.warns(UserWarning, match="y_pred contains classes not in y_true"):
        assert m["mean_class_accuracy"] == pytest.approx(balanced_accuracy_score(LABELS, PREDICTED), abs=1e-15)
    # by hand: Archery 3/4, Biking 2/3, Bowling 2/4, Diving 2/3, Fencing 0/2
    assert m["mean_class_accuracy"] == pytest.approx((3 / 4 + 2 / 3 + 2 / 4 + 2 / 3 + 0) / 5, abs=1e-15)
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(LABELS, PREDICTED, average=average, zero_division=zero_division)
        assert (m[f"{average}_precision"], m[f"{average}_recall"], m[f"{average}_f1"]) == pytest.approx(
            (p, r, f), abs=1e-15)
    p, r, f, s = precision_recall_fscore_support(LABELS, PREDICTED, labels=all_labels, average=None,
                                                 zero_division=zero_division)
    rows = m["per_class"]
    assert [row["class"] for row in rows] == CLASS_NAMES
    assert [row["precision"] for row in rows] == pytest.approx(p, abs=1e-15)
    assert [row["recall"] for row in rows] == pytest.approx(r, abs=1e-15)
    assert [row["f1"] for row in rows] == pytest.approx(f, abs=1e-15)
    assert [row["support"] for row in rows] == s.tolist() == [4, 3, 4, 3, 2, 0, 0]
    assert [row["predicted"] for row in rows] == [5, 4, 3, 2, 0, 2, 0]
    # zero_division reaches exactly the 0/0 cells: Fencing's precision (never predicted), Rowing's recall
    # (no videos), and everything of Surfing
    assert rows[4]["precision"] == zero_division and rows[5]["recall"] == zero_division
    assert rows[6]["precision"] == rows[6]["recall"] == zero_division
    assert rows[5]["precision"] == 0.0
    assert np.isnan(rows[5]["accuracy"]) and np.isnan(rows[6]["accuracy"]) and rows[4]["accuracy"] == 0.0
    assert m["confusion_matrix"] == confusion_matrix(LABELS, PREDICTED, labels=all_labels).tolist()
    present = np.union1d(LABELS, PREDICTED)
    report = classification_report(LABELS, PREDICTED, labels=present, output_dict=True, zero_division=zero_division)
    assert report["macro avg"]["f1-score"] == pytest.approx(m["macro_f1"], abs=1e-15)
    assert report["weighted avg"]["recall"] == pytest.approx(m["weighted_recall"], abs=1e-15)
    assert "Fencing" in m["classification_report"] and "Surfing" not in m["classification_report"]
    assert m["num_videos"] == 16 and m["num_views_scored"] == 48 and m["num_classes"] == 7


def test_compute_metrics_with_nan_zero_division_matches_sklearn():
    m = compute_metrics(_fixed_scores(), LABELS, CLASS_NAMES, zero_division=np.nan)
    p, r, f, _ = precision_recall_fscore_support(LABELS, PREDICTED, average="macro", zero_division=np.nan)
    assert (m["macro_precision"], m["macro_recall"], m["macro_f1"]) == pytest.approx((p, r, f), abs=1e-15)
    assert np.isnan(m["per_class"][4]["precision"])
    # one view per video by default: clip numbers are the video numbers
    assert m["clip_top1"] == m["video_top1"] and m["clip_top5"] == m["video_top5"]


def test_top_confusions_and_worst_classes():
    confusion = confusion_matrix(LABELS, PREDICTED, labels=np.arange(7))
    top = top_confusions(confusion, CLASS_NAMES, limit=3)
    # Fencing->Archery, Fencing->Biking, Archery->Biking, ... all count 1; ties in (true, predicted) index order
    assert top[0] == {"true": "Archery", "predicted": "Biking", "count": 1, "fraction": 0.25}
    assert len(top) == 3 and all(t["true"] != t["predicted"] for t in top)
    heavy = confusion.copy()
    heavy[3, 2] = 5
    assert top_confusions(heavy, CLASS_NAMES, limit=1)[0] == {
        "true": "Diving", "predicted": "Bowling", "count": 5, "fraction": 5 / 7}
    worst = worst_classes(compute_metrics(_fixed_scores(), LABELS, CLASS_NAMES)["per_class"], limit=2)
    assert [row["class"] for row in worst] == ["Fencing", "Bowling"]


def test_per_class_csv_round_trip(tmp_path):
    import csv

    m = compute_metrics(_fixed_scores(), LABELS, CLASS_NAMES)
    rows = list(csv.DictReader(write_per_class_csv(tmp_path / "per_class.csv", m["per_class"]).open()))
    assert [r["class"] for r in rows] == CLASS_NAMES
    assert float(rows[0]["accuracy"]) == 0.75 and rows[6]["accuracy"] == "" and rows[6]["support"] == "0"
