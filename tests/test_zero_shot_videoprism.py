"""Zero-shot video classification with a tiny VideoPrism video-text model (VideoPrismClipModel) built from a config:
its own prompt format and tokenisation, scores equal to VideoPrismClipModel's own similarities, the
zero-shot-video-classification pipeline and python -m pipeline.evaluation --zero_shot end to end, agreeing."""

from __future__ import annotations

import csv
import json
import logging

import numpy as np
import pytest
import torch
import transformers
from transformers import AutoModel, AutoTokenizer, VideoPrismProcessor

import pipeline  # noqa: F401  (registers the zero-shot task with transformers)
from pipeline.evaluation.zero_shot import load_zero_shot_classifier
from pipeline.inference import load_zero_shot_pipeline
from pipeline.inference.clip_spec import ClipSpec
from pipeline.inference.preprocessing import VideoPreprocessing
from pipeline.inference.views import load_views
from pipeline.inference.zero_shot_scoring import (
    VIDEOPRISM_TEMPERATURE,
    default_template,
    prompts_for,
    text_embeddings,
    video_text_logits,
    words_of,
)
from synthetic_videos import write_video
from tiny_videoprism import IMAGE_SIZE, NUM_FRAMES, TEXT_LENGTH, save_tiny_videoprism_clip

LABELS = ["move left", "grow", "rotate clockwise", "juggling"]


@pytest.fixture(scope="module")
def videoprism_dir(tmp_path_factory):
    return save_tiny_videoprism_clip(tmp_path_factory.mktemp("tiny-videoprism"))


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("videos") / "clip.avi", "xvid_gop12", 40)


def test_prompts_are_videoprisms_own_format_and_tokenised_as_its_processor_does(videoprism_dir):
    model = AutoModel.from_pretrained(videoprism_dir)
    assert default_template(model) == "a video of {}."
    assert prompts_for(["MoveLeft"], default_template(model)) == ["a video of move left."]
    processor = VideoPrismProcessor.from_pretrained(videoprism_dir)
    prompts = prompts_for(LABELS, default_template(model))
    theirs = processor(text=prompts, return_tensors="pt")
    assert theirs["input_ids"].shape == (len(LABELS), TEXT_LENGTH)
    tokenizer = AutoTokenizer.from_pretrained(videoprism_dir)
    with torch.no_grad():
        expected = model.get_text_features(**theirs).pooler_output
    torch.testing.assert_close(text_embeddings(model, tokenizer, prompts), expected)


def test_scores_equal_videoprisms_own_similarities(videoprism_dir):
    model = AutoModel.from_pretrained(videoprism_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(videoprism_dir)
    prompts = prompts_for(LABELS, default_template(model))
    tokens = tokenizer(prompts, padding="max_length", max_length=TEXT_LENGTH, return_tensors="pt")
    pixels = torch.rand(3, NUM_FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        output = model(pixel_values_videos=pixels, input_ids=tokens["input_ids"],
                       attention_mask=tokens["attention_mask"])
    expected = output.video_embeds @ output.text_embeds.T / VIDEOPRISM_TEMPERATURE
    logits = video_text_logits(model, pixels, text_embeddings(model, tokenizer, prompts))
    assert logits.shape == (3, len(LABELS))
    torch.testing.assert_close(logits, expected)
    assert logits.std(0).max() > 0.5  # the clips are told apart


def test_checkpoint_processor_is_read_as_videoprism_takes_frames(videoprism_dir, caplog):
    with caplog.at_level(logging.WARNING):
        _, processor = load_zero_shot_classifier(str(videoprism_dir), ["MoveLeft", "Grow"])
    assert "[0, 1] at 32x32" in caplog.text  # the saved processor said CLIP mean/std at 384 px
    white = load_views(np.full((NUM_FRAMES, 40, 48, 3), 255, np.uint8),
                       ClipSpec(NUM_FRAMES, preprocessing=VideoPreprocessing.from_processor(processor)))
    assert white.shape[-2:] == (IMAGE_SIZE, IMAGE_SIZE) and white.min() == white.max() == pytest.approx(1.0)
    classifier = transformers.pipeline("zero-shot-video-classification", model=str(videoprism_dir))
    assert classifier.preprocessing.crop_size == (IMAGE_SIZE, IMAGE_SIZE)
    assert classifier.preprocessing.mean == (0.0, 0.0, 0.0) and classifier.preprocessing.std == (1.0, 1.0, 1.0)


def test_pipeline_scores_are_the_softmax_over_labels_averaged_over_views(videoprism_dir, video):
    classifier = transformers.pipeline("zero-shot-video-classification", model=str(videoprism_dir))
    result = classifier(str(video), candidate_labels=LABELS, num_clips=2, num_crops=3)
    assert sorted(r["label"] for r in result) == sorted(LABELS)
    assert sum(r["score"] for r in result) == pytest.approx(1.0, abs=1e-5)
    model = AutoModel.from_pretrained(videoprism_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(videoprism_dir)
    views = classifier.views(str(video), num_clips=2, num_crops=3)
    text = text_embeddings(model, tokenizer, [f"a video of {label}." for label in LABELS])
    expected = video_text_logits(model, views, text).softmax(-1).mean(0)
    by_label = {r["label"]: r["score"] for r in result}
    np.testing.assert_allclose([by_label[label] for label in LABELS], expected.numpy(), atol=1e-5)


def test_zero_shot_evaluation_end_to_end_agrees_with_the_pipeline(videoprism_dir, tmp_path, monkeypatch):
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
    metrics = main(["--zero_shot", "--model", str(videoprism_dir), "--dataset", "videofolder", "--dataset_dir",
                    str(root), "--num_clips", "2", "--num_crops", "3", "--batch_size", "4", "--num_workers", "0",
                    "--output_dir", str(out)])
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["zero_shot"] is True and saved["num_videos"] == 6 and saved["views_per_video"] == 6
    assert saved["prompt_template"] == "a video of {}."
    assert saved["prompts"] == ["a video of grow.", "a video of move left.", "a video of rotate clockwise."]
    assert saved["sampling"]["frame_sampling_strategy"] == "uniform" and saved["sampling"]["num_frames"] == NUM_FRAMES
    assert metrics["video_top1"] == saved["video_top1"]

    with open(out / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    classifier = load_zero_shot_pipeline(str(videoprism_dir))
    for row in rows:
        result = classifier(row["video"], candidate_labels=["grow", "move left", "rotate clockwise"],
                            num_clips=2, num_crops=3)
        top = {r["label"]: r["score"] for r in result}
        best = max(top, key=top.get)
        assert best == words_of(row["prediction"])  # the dataset's CamelCase class, as words
        assert top[best] == pytest.approx(float(row["score"]), abs=2e-6)
