"""Multi-view evaluation: view batching, video-level aggregation, skipped videos, output files, the command line on
real encoded videos, and 2 processes giving exactly the metrics of 1."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import distributed_eval_worker as worker
from pipeline.inference.decoding import VideoDecodeError
from pipeline.evaluation import (
    dataset_clips, evaluate_model, score_dataset,
)
from pipeline.models.loading import load_trained
from pipeline.inference.clip_spec import ClipSpec
from pipeline.inference.preprocessing import VideoPreprocessing
from tiny_videomae import LABELS, save_tiny_videomae

REPO = Path(__file__).resolve().parents[1]
REQUIRED_KEYS = {"video_top1", "video_top5", "clip_top1", "clip_top5", "mean_class_accuracy", "macro_f1",
                 "macro_precision", "macro_recall", "weighted_f1", "num_videos", "num_clips", "num_crops",
                 "skipped_videos"}


class _MeanColourModel(torch.nn.Module):
    """logits = a linear map of each view's mean colour; records the batch sizes it was called with."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.proj = torch.nn.Linear(3, 4)
        self.batch_sizes = []

    def forward(self, pixel_values):
        self.batch_sizes.append(len(pixel_values))
        return type("Output", (), {"logits": self.proj(pixel_values.mean(dim=(1, 3, 4)))})()


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


TINY_PREP = VideoPreprocessing(36, (32, 32))


def test_views_of_consecutive_videos_share_batches_and_failures_are_skipped():
    dataset = worker.fake_dataset()
    plan = ClipSpec(4, 2, "dense", num_clips=worker.NUM_CLIPS)
    videos = dataset_clips(dataset, range(len(dataset)), plan, clip_loader=worker.fake_clips)
    model = _MeanColourModel().eval()
    scores, skipped = score_dataset(model, videos, prep=TINY_PREP, num_crops=1, batch_size=3, show_progress=False)
    views = (len(dataset) - len(worker.BROKEN)) * worker.NUM_CLIPS
    assert model.batch_sizes == [3] * (views // 3) + ([views % 3] if views % 3 else [])
    assert skipped == [{"video": "/videos/5.avi", "reason": "invalid data found when processing input"}]
    assert sorted(scores) == [i for i in range(len(dataset)) if i not in worker.BROKEN]
    for index, got in scores.items():
        with torch.no_grad():
            expected = model(worker.fake_views(f"/videos/{index}.avi", TINY_PREP)).logits.softmax(-1).numpy()
        assert got.shape == (worker.NUM_CLIPS, 4) and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_gathered_results_count_each_video_once(monkeypatch):
    import pipeline.evaluation.multiview as evaluation

    # what a padded DistributedSampler does: the last process repeats video 0 to even out the shares
    shares = [({0: np.ones((2, 3)), 1: np.zeros((2, 3))}, []),
              ({2: np.full((2, 3), 2.0), 0: np.ones((2, 3))}, [{"video": "/v/9.avi", "reason": "bad"}])]
    monkeypatch.setattr(evaluation, "gather_object", lambda items: [
        entry for scores, skipped in shares
        for entry in [("scores", i, v) for i, v in scores.items()] + [("skipped", None, s) for s in skipped]])
    state = type("TwoProcesses", (), {"num_processes": 2})()
    merged, skipped = evaluation.gather_scores(state, *shares[0])
    assert sorted(merged) == [0, 1, 2] and merged[2][0, 0] == 2.0
    assert skipped == [{"video": "/v/9.avi", "reason": "bad"}]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    return save_tiny_videomae(tmp_path_factory.mktemp("tiny_videomae"))


@pytest.fixture(scope="module")
def single_process_run(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("one_process")
    return worker.run(str(tiny_model_dir), str(out)), out / "evaluation"


def test_video_scores_average_softmax_over_views_and_files_agree(tiny_model_dir, single_process_run):
    metrics, out = single_process_run
    model, processor = load_trained(str(tiny_model_dir))
    dataset = worker.fake_dataset()
    kept = [i for i in range(len(dataset)) if i not in worker.BROKEN]
    with torch.no_grad():
        view_probs = {i: model(pixel_values=worker.fake_views(f"/videos/{i}.avi", processor)).logits.softmax(-1).numpy()
                      for i in kept}
    labels = np.array(dataset["label"])[kept]
    video_scores = np.stack([view_probs[i].mean(0) for i in kept])
    clip_predictions = np.concatenate([view_probs[i].argmax(1) for i in kept])

    assert metrics["video_top1"] == np.mean(video_scores.argmax(1) == labels)
    assert metrics["clip_top1"] == np.mean(clip_predictions == np.repeat(labels, worker.NUM_CLIPS))
    assert metrics["num_videos"] == len(kept) and metrics["num_views_scored"] == len(kept) * worker.NUM_CLIPS
    assert metrics["skipped_videos"] == 1 and metrics["skipped"][0]["video"] == "/videos/5.avi"

    rows = _rows(out / "predictions.csv")
    assert [r["video"] for r in rows] == [f"/videos/{i}.avi" for i in kept]
    assert np.mean([r["label"] == r["prediction"] for r in rows]) == metrics["video_top1"]
    for row, scores in zip(rows, video_scores):
        order = np.argsort(-scores, kind="stable")
        assert [row[f"top{k + 1}_label"] for k in range(4)] == [LABELS[c] for c in order]
        np.testing.assert_allclose([float(row[f"top{k + 1}_score"]) for k in range(4)], scores[order], atol=1e-6)

    saved = json.loads((out / "metrics.json").read_text())
    assert REQUIRED_KEYS <= set(saved)
    assert saved["video_top1"] == metrics["video_top1"] and saved["num_clips"] == worker.NUM_CLIPS
    assert saved["skipped"] == [{"video": "/videos/5.avi", "reason": "invalid data found when processing input"}]
    per_class = _rows(out / "per_class.csv")
    assert [r["class"] for r in per_class] == list(LABELS)
    assert sum(int(r["support"]) for r in per_class) == len(kept)

    report = (out / "report.md").read_text()
    first_table = report[report.index("|"):].split("\n")
    assert first_table[0].startswith("| Video top-1 | Video top-5 | Clip top-1 | Mean class acc. | Macro F1")
    assert f"{100 * metrics['video_top1']:.2f}%" in first_table[2]
    for name, relative in saved["figures"].items():
        assert f"]({relative})" in report and (out / relative).is_file(), name


def test_every_number_needs_a_decodable_video(tiny_model_dir):
    model, processor = load_trained(str(tiny_model_dir))

    def broken(path, info=None):
        raise VideoDecodeError(path, "zero-byte file")

    with pytest.raises(RuntimeError, match="no video could be evaluated: 11 of 11"):
        evaluate_model(model, processor, worker.fake_dataset(), clip_loader=broken, num_workers=0)


def test_labels_of_another_dataset_are_refused(tiny_model_dir):
    import datasets

    model, processor = load_trained(str(tiny_model_dir))
    other = datasets.Dataset.from_dict(
        {"video": ["/videos/0.avi"], "label": [0]},
        features=datasets.Features({"video": datasets.Value("string"),
                                    "label": datasets.ClassLabel(names=["w", "x", "y", "z"])}))
    with pytest.raises(ValueError, match="not the dataset's classes"):
        evaluate_model(model, processor, other, clip_loader=worker.fake_clips, num_workers=0)


@pytest.mark.slow
def test_two_processes_give_exactly_the_metrics_of_one(tiny_model_dir, single_process_run, tmp_path):
    one, one_dir = single_process_run
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(REPO / "tests" / "distributed_eval_worker.py"), str(tiny_model_dir), str(tmp_path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0]["num_processes"] == ranks[1]["num_processes"] == 2
    ignored = {"num_processes", "elapsed_s", "videos_per_second", "figures", "classification_report"}
    for two in ranks:  # every process returns the full, gathered metrics
        for key, value in one.items():
            if key not in ignored:
                assert two[key] == value, key
    assert ranks[0]["num_videos"] == 10 and ranks[0]["skipped_videos"] == 1
    assert _rows(tmp_path / "evaluation" / "predictions.csv") == _rows(one_dir / "predictions.csv")


@pytest.mark.slow
def test_command_line_on_real_videos_matches_pipeline(tiny_model_dir, tmp_path, monkeypatch):
    from synthetic_videos import write_video

    import pipeline.data.metadata as metadata
    from pipeline.evaluation.command import main
    from pipeline.inference import load_pipeline

    monkeypatch.setattr(metadata, "DEFAULT_CACHE_DIR", tmp_path / "probe_cache")
    root = tmp_path / "videos"
    for split, per_class in (("train", 1), ("test", 2)):
        for c, name in enumerate(LABELS):
            (root / split / name).mkdir(parents=True)
            for v in range(per_class):
                write_video(root / split / name / f"{name}_{v}.avi", "xvid_gop12", 20 + 7 * c + 3 * v)
    (root / "test" / "diving" / "broken.avi").write_bytes(b"not a video at all")
    out = tmp_path / "eval"
    metrics = main(["--model", str(tiny_model_dir), "--dataset", "videofolder", "--dataset_dir", str(root),
                    "--num_clips", "2", "--num_crops", "3", "--batch_size", "5", "--num_workers", "0",
                    "--output_dir", str(out)])
    assert metrics["num_videos"] == 8 and metrics["views_per_video"] == 6 and metrics["num_views_scored"] == 48
    assert metrics["skipped_videos"] == 1 and metrics["skipped"][0]["video"].endswith("broken.avi")
    saved = json.loads((out / "metrics.json").read_text())
    assert REQUIRED_KEYS <= set(saved) and saved["split"] == "test"
    assert set(saved["figures"]) == {"confusion_matrix", "per_class_accuracy", "class_distribution",
                                     "sample_predictions", "attention_maps"}
    rows = _rows(out / "predictions.csv")
    assert np.mean([r["label"] == r["prediction"] for r in rows]) == saved["video_top1"]
    # the number is what pipeline() gives for the same video with the same views
    classifier = load_pipeline(str(tiny_model_dir))
    for row in rows[:2]:
        top = classifier(row["video"], num_clips=2, num_crops=3, top_k=4)
        assert [p["label"] for p in top] == [row[f"top{k}_label"] for k in range(1, 5)]
        np.testing.assert_allclose([p["score"] for p in top], [float(row[f"top{k}_score"]) for k in range(1, 5)],
                                   atol=2e-6)
