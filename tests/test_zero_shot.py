"""Zero-shot video classification with a tiny X-CLIP built from a config: prompts from class names, the split
scoring equal to X-CLIP's own forward, the zero-shot-video-classification pipeline on paths, bytes and arrays, and
python -m pipeline.evaluation --zero_shot writing the usual outputs with the pipeline's numbers."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
import transformers
from transformers import AutoModel, AutoTokenizer

import pipeline  # noqa: F401  (registers the zero-shot task with transformers)
from pipeline.evaluation.zero_shot import ZeroShotClassifier
from pipeline.inference import ZeroShotVideoClassificationPipeline, load_zero_shot_pipeline
from pipeline.inference.clip_spec import ClipSpec
from pipeline.inference.preprocessing import VideoPreprocessing
from pipeline.inference.views import load_views
from pipeline.inference.zero_shot_scoring import prompts_for, text_embeddings, video_text_logits, words_of
from synthetic_videos import sequential_frames, write_video
from tiny_xclip import NUM_FRAMES, save_tiny_xclip

LABELS = ["move left", "grow", "rotate clockwise", "juggling"]


@pytest.fixture(scope="module")
def xclip_dir(tmp_path_factory):
    return save_tiny_xclip(tmp_path_factory.mktemp("tiny-xclip"))


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("videos") / "clip.avi", "xvid_gop12", 40)


@pytest.fixture(scope="module")
def classifier(xclip_dir):
    return transformers.pipeline("zero-shot-video-classification", model=str(xclip_dir))


def test_class_names_become_prompts():
    assert words_of("ApplyEyeMakeup") == "apply eye makeup"
    assert words_of("playing_cricket") == "playing cricket"
    assert words_of("YoYo") == "yo yo" and words_of("HTTPServer") == "http server"
    assert prompts_for(["MoveLeft"], "a video of a person {}") == ["a video of a person move left"]
    assert prompts_for(["MoveLeft"], as_words=False) == ["MoveLeft"]
    assert prompts_for(["ApplyEyeMakeup"]) == ["apply eye makeup"]  # X-CLIP's default: the class text alone
    with pytest.raises(ValueError, match="no '{}'"):
        prompts_for(["a"], "a video")


def test_split_scoring_equals_xclips_forward(xclip_dir):
    model = AutoModel.from_pretrained(xclip_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(xclip_dir)
    prompts = prompts_for(LABELS)
    tokens = tokenizer(prompts, padding=True, return_tensors="pt")
    pixels = torch.randn(3, NUM_FRAMES, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"],
                         pixel_values=pixels).logits_per_video
    ours = video_text_logits(model, pixels, text_embeddings(model, tokenizer, prompts))
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)
    assert expected.std(dim=1).min() > 0.01  # the prompts are told apart: the test could fail


def test_pipeline_ranks_the_candidate_labels_with_scores_summing_to_one(classifier, video):
    assert isinstance(classifier, ZeroShotVideoClassificationPipeline)
    result = classifier(str(video), candidate_labels=LABELS)
    assert sorted(r["label"] for r in result) == sorted(LABELS)
    scores = [r["score"] for r in result]
    assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1.0, abs=1e-5)
    assert max(scores) - min(scores) > 1e-3


def test_pipeline_scores_are_the_softmax_over_labels_averaged_over_views(classifier, xclip_dir, video):
    model = AutoModel.from_pretrained(xclip_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(xclip_dir)
    views = load_views(str(video), ClipSpec(NUM_FRAMES, 2, "uniform", num_clips=2, num_crops=3,
                                            preprocessing=VideoPreprocessing.from_processor(
                                                classifier.image_processor)))
    template = "a clip of {}"
    expected = video_text_logits(model, views, text_embeddings(model, tokenizer, prompts_for(
        LABELS, template, as_words=False))).softmax(-1).mean(0)
    result = classifier(str(video), candidate_labels=LABELS, hypothesis_template=template, num_clips=2, num_crops=3)
    by_label = {r["label"]: r["score"] for r in result}
    np.testing.assert_allclose([by_label[label] for label in LABELS], expected.numpy(), atol=1e-5)


def test_paths_bytes_arrays_and_lists_agree(classifier, video):
    frames = sequential_frames(video)
    path = classifier(str(video), candidate_labels=LABELS)
    for other in (classifier(video.read_bytes(), candidate_labels=LABELS),
                  classifier(frames, candidate_labels=LABELS),
                  *classifier([str(video), frames], candidate_labels=", ".join(LABELS), batch_size=2)):
        assert [r["label"] for r in other] == [r["label"] for r in path]
        np.testing.assert_allclose([r["score"] for r in other], [r["score"] for r in path], atol=1e-5)


def test_bad_calls_name_the_problem(classifier, video):
    with pytest.raises(ValueError, match="candidate_labels"):
        classifier(str(video))
    with pytest.raises(ValueError, match="repeats"):
        classifier(str(video), candidate_labels=["a", "a"])
    with pytest.raises(ValueError, match="no '{}'"):
        classifier(str(video), candidate_labels=["a", "b"], hypothesis_template="a video")


def test_load_zero_shot_pipeline_and_a_classifier_refused(xclip_dir, tmp_path):
    assert isinstance(load_zero_shot_pipeline(str(xclip_dir)), ZeroShotVideoClassificationPipeline)
    from tiny_videomae import save_tiny_videomae
    from transformers import VideoMAEForVideoClassification

    videomae = VideoMAEForVideoClassification.from_pretrained(save_tiny_videomae(tmp_path / "videomae"))
    with pytest.raises(ValueError, match="video-text model"):
        ZeroShotClassifier(videomae, None, ["a", "b"])


def test_zero_shot_evaluation_writes_the_usual_outputs_with_the_pipelines_numbers(xclip_dir, tmp_path, monkeypatch):
    import pipeline.data.metadata as metadata
    from pipeline.evaluation.command import main

    monkeypatch.setattr(metadata, "DEFAULT_CACHE_DIR", tmp_path / "probe_cache")
    names = ["MoveLeft", "Grow", "RotateClockwise"]
    root = tmp_path / "videos"
    for split, per_class in (("train", 1), ("test", 2)):
        for c, name in enumerate(names):
            (root / split / name).mkdir(parents=True)
            for v in range(per_class):
                write_video(root / split / name / f"{name}_{v}.avi", "xvid_gop12", 24 + 7 * c + 3 * v)
    out = tmp_path / "eval"
    metrics = main(["--zero_shot", "--model", str(xclip_dir), "--dataset", "videofolder", "--dataset_dir", str(root),
                    "--num_clips", "2", "--num_crops", "3", "--batch_size", "4", "--num_workers", "0",
                    "--prompt_template", "a video of a shape that is {}.", "--output_dir", str(out)])
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["zero_shot"] is True and saved["num_videos"] == 6 and saved["views_per_video"] == 6
    assert saved["prompts"] == ["a video of a shape that is grow.", "a video of a shape that is move left.",
                                "a video of a shape that is rotate clockwise."]  # the dataset's (sorted) classes
    assert saved["sampling"]["frame_sampling_strategy"] == "uniform" and saved["sampling"]["num_frames"] == NUM_FRAMES
    for name in ("predictions.csv", "per_class.csv", "report.md", "confusion_matrix.csv"):
        assert (out / name).is_file(), name
    assert metrics["video_top1"] == saved["video_top1"]

    with open(out / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    classifier = load_zero_shot_pipeline(str(xclip_dir))
    for row in rows[:2]:
        result = classifier(row["video"], candidate_labels=saved["prompts"], hypothesis_template="{}",
                            num_clips=2, num_crops=3)
        top = {r["label"]: r["score"] for r in result}
        best = max(top, key=top.get)
        assert best == f"a video of a shape that is {words_of(row['prediction'])}."
        assert top[best] == pytest.approx(float(row["score"]), abs=2e-6)
