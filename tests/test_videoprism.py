"""VideoPrism (`videoprism_vision_model`, VideoPrismForVideoClassification) through the project: get_model from a
config and from a video-encoder checkpoint (strict backbone, new attention-pooling head, frames in [0, 1] at the
model's size), `pixel_values_videos`, (batch, classes) logits, the frozen-backbone protocol, temporal position
interpolation, pipeline() and the evaluation scoring the same views, and the model card."""

from __future__ import annotations

import csv
import logging

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Value
from transformers import (
    AutoModelForVideoClassification,
    LlavaOnevisionVideoProcessor,
    VideoPrismClipModel,
    VideoPrismForVideoClassification,
    VideoPrismVisionConfig,
    VideoPrismVisionModel,
)

from pipeline.evaluation import evaluate_model
from pipeline.inference import load_pipeline
from pipeline.inference.frame_count import set_num_frames
from pipeline.inference.model_inputs import input_name, model_inputs
from pipeline.inference.preprocessing import VideoPreprocessing
from pipeline.inference.clip_spec import ClipSpec
from pipeline.inference.views import load_views
from pipeline.models import BackboneMismatchError, get_model
from pipeline.models.backbone_freezing import backbone_of
from pipeline.models.loading import load_trained
from synthetic_videos import write_video

LABELS = ("archery", "bowling", "cycling", "diving")
SIZE, FRAMES = 32, 4
TINY = dict(tubelet_size=[1, 16, 16], hidden_size=32, num_attention_heads=2, intermediate_size=37,
            num_spatial_layers=1, num_temporal_layers=1)


def tiny(**kwargs):
    torch.manual_seed(0)
    return get_model(LABELS, model_type="videoprism_vision_model", config_overrides=TINY, image_size=SIZE,
                     num_frames=FRAMES, **kwargs)


def clips(batch=2, frames=FRAMES, seed=0):
    return torch.rand(batch, frames, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def save_backbone(folder, seed=0):
    """A VideoPrism video encoder (no head), as google/videoprism-base-f16r288 is, with its video processor class
    at that class's defaults (CLIP mean/std, 384 px)."""
    torch.manual_seed(seed)
    model = VideoPrismVisionModel(VideoPrismVisionConfig(image_size=SIZE, num_frames=FRAMES, **TINY))
    with torch.no_grad():
        generator = torch.Generator().manual_seed(seed)
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.1)
    model.save_pretrained(folder)
    LlavaOnevisionVideoProcessor().save_pretrained(folder)
    return folder


def test_transformers_still_returns_a_query_axis_in_videoprism_logits():
    """pipeline/inference/model_outputs.py drops it; once transformers returns (batch, classes) this fails and the
    hook can go."""
    torch.manual_seed(0)
    plain = VideoPrismForVideoClassification(VideoPrismVisionConfig(image_size=SIZE, num_frames=FRAMES,
                                                                    num_labels=len(LABELS), **TINY))
    assert plain(pixel_values_videos=clips()).logits.shape == (2, 1, len(LABELS))


def test_from_config_takes_pixel_values_videos_in_zero_one_and_gives_batch_by_classes():
    model, processor = tiny()
    assert type(model).__name__ == "VideoPrismForVideoClassification" and model.config.num_frames == FRAMES
    assert input_name(model) == "pixel_values_videos"
    assert isinstance(processor, LlavaOnevisionVideoProcessor)
    prep = VideoPreprocessing.from_processor(processor)
    assert prep.crop_size == (SIZE, SIZE) and prep.mean == (0.0, 0.0, 0.0) and prep.std == (1.0, 1.0, 1.0)
    output = model(**model_inputs(model, clips()), labels=torch.tensor([0, 3]))
    assert output.logits.shape == (2, len(LABELS))
    expected = torch.nn.functional.cross_entropy(output.logits, torch.tensor([0, 3]))
    torch.testing.assert_close(output.loss, expected)


def test_video_encoder_checkpoint_loads_strictly_under_a_new_head_and_frozen_backbone(tmp_path, caplog):
    folder = save_backbone(tmp_path / "encoder")
    saved = VideoPrismVisionModel.from_pretrained(folder).state_dict()
    with caplog.at_level(logging.WARNING):
        model, processor = get_model(LABELS, model_name_or_path=str(folder), freeze_backbone=True)
    assert "[0, 1] at 32x32" in caplog.text and "was 384x384" in caplog.text
    prep = VideoPreprocessing.from_processor(processor)
    assert prep.crop_size == (SIZE, SIZE) and prep.mean == (0.0, 0.0, 0.0) and prep.std == (1.0, 1.0, 1.0)
    loaded = model.vision_model.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(loaded[k], v) for k, v in saved.items()), "a backbone weight was not loaded"
    trainable = {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"head", "head_layernorm", "classifier"}  # attention pooling + linear: the paper's probe
    model.train()
    assert model.head.training and not backbone_of(model).training
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(**model_inputs(model, clips()), labels=torch.tensor([0, 1])).loss.backward()
    optimizer.step()
    changed = {k.split(".")[0] for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"head", "head_layernorm", "classifier"}


def test_video_encoder_checkpoint_missing_a_weight_fails_loudly(tmp_path):
    from safetensors.torch import load_file, save_file

    folder = save_backbone(tmp_path / "encoder")
    weights = load_file(folder / "model.safetensors")
    del weights[next(k for k in weights if "temporal_layers.0.attention.q_proj" in k)]
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(BackboneMismatchError, match="missing"):
        get_model(LABELS, model_name_or_path=str(folder))


def test_from_config_starts_its_temporal_positions_sinusoidal_and_a_checkpoint_keeps_its_own(tmp_path):
    model, _ = tiny()
    table = model.vision_model.temporal_embeddings.position_embeddings
    dim = TINY["hidden_size"]
    half = torch.arange(FRAMES, dtype=torch.float32)[:, None] / 10000 ** (torch.arange(0, dim, 2) / dim)
    torch.testing.assert_close(table[0], torch.cat((half.sin(), half.cos()), dim=1))
    # every frame its own code, at the scale of the layer-normed tokens it is added to (transformers' own draw
    # is lecun_normal over num_frames * hidden_size: std 0.09 here)
    assert torch.cdist(table[0], table[0]).add(torch.eye(FRAMES) * 9).min() > 0.5
    assert 0.5 < table.pow(2).mean().sqrt() < 1.0
    assert table.requires_grad  # still learned
    folder = save_backbone(tmp_path / "encoder")
    pretrained, _ = get_model(LABELS, model_name_or_path=str(folder))
    torch.testing.assert_close(pretrained.vision_model.temporal_embeddings.position_embeddings,
                               VideoPrismVisionModel.from_pretrained(folder).temporal_embeddings.position_embeddings)


def test_pretrained_model_at_another_frame_count_interpolates_its_temporal_positions(tmp_path):
    folder = save_backbone(tmp_path / "encoder")
    model, _ = get_model(LABELS, model_name_or_path=str(folder), num_frames=2 * FRAMES)
    original = VideoPrismVisionModel.from_pretrained(folder).temporal_embeddings.position_embeddings
    table = model.vision_model.temporal_embeddings.position_embeddings
    assert table.shape == (1, 2 * FRAMES, original.shape[-1]) and model.config.num_frames == 2 * FRAMES
    # linear along time, align_corners=False: new entry 2i + 1 sits a quarter step after old entry i
    torch.testing.assert_close(table[:, 1:-1:2], 0.75 * original[:, :-1] + 0.25 * original[:, 1:], rtol=0, atol=1e-6)
    torch.testing.assert_close(table[:, [0, -1]], original[:, [0, -1]])  # the ends are kept
    assert model(pixel_values_videos=clips(frames=2 * FRAMES)).logits.shape == (2, len(LABELS))
    model.save_pretrained(tmp_path / "saved")
    reloaded = AutoModelForVideoClassification.from_pretrained(tmp_path / "saved")
    torch.testing.assert_close(reloaded.vision_model.temporal_embeddings.position_embeddings, table)
    assert set_num_frames(model, 2 * FRAMES) is False  # already there: nothing changes


def test_video_text_model_frame_count_follows_its_vision_config():
    from tiny_videoprism import tiny_videoprism_config

    model = VideoPrismClipModel(tiny_videoprism_config(40))
    assert set_num_frames(model, 8)
    assert model.config.vision_config.num_frames == 8
    assert model.video_model.vision_model.temporal_embeddings.position_embeddings.shape[1] == 8
    pixels = torch.rand(1, 8, 3, 32, 32)
    assert model.get_video_features(pixel_values_videos=pixels).pooler_output.shape[-1] == 32


@pytest.fixture(scope="module")
def videoprism_dir(tmp_path_factory):
    """A tiny VideoPrism classifier saved as train.py leaves it."""
    folder = tmp_path_factory.mktemp("tiny-videoprism")
    model, processor = tiny()
    with torch.no_grad():
        model.classifier.weight.normal_(std=3.0)  # scores that differ between inputs
    model.config.frame_sampling_rate, model.config.frame_sampling_strategy = 2, "dense"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_pipeline_and_evaluation_score_the_same_views(videoprism_dir, tmp_path):
    assert (videoprism_dir / "video_preprocessor_config.json").is_file()
    video = write_video(tmp_path / "clip.avi", "xvid_gop12", 30)
    classifier = load_pipeline(str(videoprism_dir))
    model, processor = load_trained(str(videoprism_dir))
    views = load_views(str(video), ClipSpec.from_config(model.config, processor, num_clips=2, num_crops=3))
    assert (views.shape[0], views.shape[1]) == (6, FRAMES)
    with torch.no_grad():
        expected = model(pixel_values_videos=views).logits.softmax(-1).mean(0)
    assert expected.shape == (len(LABELS),)
    top = classifier(str(video), num_clips=2, num_crops=3, top_k=len(LABELS))
    by_label = {p["label"]: p["score"] for p in top}
    np.testing.assert_allclose([by_label[name] for name in LABELS], expected.numpy(), atol=1e-5)

    dataset = Dataset.from_dict({"video": [str(video)], "label": [0]},
                                features=Features({"video": Value("string"), "label": ClassLabel(names=list(LABELS))}))
    evaluate_model(model.eval(), processor, dataset, num_clips=2, num_crops=3, batch_size=4, num_workers=0,
                   output_dir=tmp_path / "eval", sample_figures=False)
    row = next(csv.DictReader(open(tmp_path / "eval" / "predictions.csv", newline="")))
    scores = {row[f"top{k}_label"]: float(row[f"top{k}_score"]) for k in range(1, len(LABELS) + 1)}
    np.testing.assert_allclose([scores[name] for name in LABELS], expected.numpy(), atol=1e-5)


def test_model_card_of_a_frozen_videoprism(videoprism_dir, tmp_path):
    import shutil

    from pipeline.publish.model_card import build_model_card

    folder = tmp_path / "probe"
    shutil.copytree(videoprism_dir, folder)
    (folder / "recipe.yaml").write_text("model_name_or_path: google/videoprism-base-f16r288\nfreeze_backbone: true\n"
                                        "dataset: ucf101\nnum_frames: 4\n")
    card, _ = build_model_card(folder, repo_id="someone/videoprism-probe")
    text = str(card)
    assert card.data.license == "cc-by-4.0" and card.data.base_model == "google/videoprism-base-f16r288"
    assert "VideoPrism video classifier" in text and "attention-pooling head and linear classifier" in text
    assert "zhao2024videoprism" in text and "video_preprocessor_config.json" in text


def test_stream_of_a_file_equals_the_pipeline_timeline(videoprism_dir, tmp_path, capsys):
    """python -m pipeline.stream runs a VideoPrism classifier (pixel_values_videos, video processor only): its
    windows are pipeline()'s timeline windows, with the same scores."""
    import json

    from pipeline.data.demo_video import write_demo_video
    from pipeline.stream.__main__ import main as stream_main

    video = tmp_path / "demo_video.avi"
    frames = write_demo_video(video, ["MoveLeft", "Grow"])[-1].end_frame
    assert stream_main(["--model", str(videoprism_dir), "--source", str(video), "--top_k", "2", "--device",
                        "cpu"]) == 0
    captured = capsys.readouterr()
    windows = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    # 4 frames every 2: windows of 7 frames every 3, and a last one ending on the last frame
    grid = list(range(0, frames - 7 + 1, 3))
    assert [w["start_frame"] for w in windows] == grid + ([frames - 7] if grid[-1] != frames - 7 else [])
    timeline = load_pipeline(str(videoprism_dir), device="cpu")(str(video), timeline=True, window_frames=7,
                                                                stride_frames=3, top_k=2)["timeline"]
    by_start = {t["start_frame"]: t["predictions"] for t in timeline}
    for window in windows:
        expected = by_start[window["start_frame"]]
        assert [p["label"] for p in window["predictions"]] == [p["label"] for p in expected]
        np.testing.assert_allclose([p["score"] for p in window["predictions"]], [p["score"] for p in expected],
                                   atol=1e-4)
