"""The one clip contract: read from a model config with its defaults, written with the model, and the same frames
everywhere: for a config without sampling fields and for one with, the model card's text, the evaluation and
pipeline() describe and feed exactly the frames ClipSpec names."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEImageProcessor

from pipeline.evaluation import evaluate_model
from pipeline.inference import load_pipeline
from pipeline.inference.clip_spec import DEFAULT_RATE, ClipSpec
from pipeline.publish.model_card import build_model_card
from synthetic_videos import read_frame_index, write_video

FRAMES, SIZE, NUM_FRAMES = 120, 96, 8
LABELS = ("a", "b")


def test_defaults_and_overrides():
    plain = VideoMAEConfig(num_frames=16)  # a checkpoint trained elsewhere records no sampling
    spec = ClipSpec.from_config(plain)
    assert (spec.num_frames, spec.frame_sampling_rate, spec.frame_sampling_strategy, spec.short_video) == (
        16, DEFAULT_RATE, "dense", "clamp")
    assert not spec.recorded and "records no frame sampling" in spec.describe()
    trained = VideoMAEConfig(num_frames=8)
    ClipSpec(8, 3, "uniform", num_clips=5, num_crops=3).save_to(trained)
    spec = ClipSpec.from_config(trained)
    assert (spec.frame_sampling_rate, spec.frame_sampling_strategy, spec.num_clips, spec.num_crops,
            spec.recorded) == (3, "uniform", 5, 3, True)
    assert ClipSpec.from_config(trained, num_frames=4, num_clips=1).num_frames == 4
    assert ClipSpec.from_config(trained, num_clips=None).num_clips == 5  # None: keep the saved value
    with pytest.raises(ValueError, match="no frame count"):
        ClipSpec.from_config(type("Config", (), {"_name_or_path": "x"})())
    with pytest.raises(ValueError, match="rate must be a positive integer"):
        ClipSpec(8, 0)
    with pytest.raises(ValueError, match="strategy must be one of"):
        ClipSpec(8, 2, "sparse")
    with pytest.raises(TypeError, match="unknown field"):
        ClipSpec.from_config(trained, rate=2)  # one name per field: the attribute is frame_sampling_rate


def test_one_name_per_field_everywhere():
    """The contract's fields are the attribute, the config.json key, the recipe key and the pipeline() option."""
    import dataclasses
    import inspect

    from pipeline.configs import DataArguments
    from pipeline.inference.clip_spec import FIELDS
    from pipeline.inference.video_pipeline import PyAVVideoClassificationPipeline

    assert [f.name for f in dataclasses.fields(ClipSpec)][:len(FIELDS)] == list(FIELDS)
    assert set(FIELDS) <= {f.name for f in dataclasses.fields(DataArguments)}
    options = inspect.signature(PyAVVideoClassificationPipeline._sanitize_parameters).parameters
    assert set(FIELDS) <= set(options)
    config = VideoMAEConfig(num_frames=8)
    ClipSpec(8, 2, "uniform", "loop", 3, 2).save_to(config)
    assert {name: config.to_dict()[name] for name in FIELDS} == dict(zip(FIELDS, (8, 2, "uniform", "loop", 3, 2)))


OLD = Path(__file__).parent / "fixtures" / "saved_before_field_rename"


def test_config_json_written_before_the_rename_loads_the_same_contract(tmp_path):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(OLD)
    assert config.to_dict()["eval_num_clips"] == 5  # the fixture really is the old layout
    spec = ClipSpec.from_config(config)
    assert spec.fields() == {"num_frames": 8, "frame_sampling_rate": 3, "frame_sampling_strategy": "uniform",
                             "short_video": "loop", "num_clips": 5, "num_crops": 3}
    assert spec.recorded
    spec.save_to(config)  # saved again: one name per field, the old keys gone
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert (saved["num_clips"], saved["num_crops"]) == (5, 3) and "eval_num_clips" not in saved
    assert ClipSpec.from_config(AutoConfig.from_pretrained(tmp_path)) == spec


def test_recipe_written_before_the_rename_reads_and_compares_as_the_same_run(tmp_path):
    import yaml

    from pipeline.configs import parse_args, resolved_recipe
    from pipeline.training.checkpoints import current_recipe, recipe_differences

    demo = Path(__file__).parents[1] / "recipes" / "demo.yaml"
    old_recipe = tmp_path / "old.yaml"  # the demo recipe under the old key names
    old_recipe.write_text(demo.read_text().replace("frame_sampling_strategy:", "sampling_strategy:")
                          + "eval_num_clips: 2\neval_num_crops: 3\n")
    _, data_args, _, _ = parse_args([str(old_recipe)])
    assert (data_args.frame_sampling_strategy, data_args.num_clips, data_args.num_crops) == ("dense", 2, 3)
    # the old command-line flags still work
    _, data_args, _, _ = parse_args(["recipes/demo.yaml", "--output_dir", "x", "--eval_num_clips", "3",
                                     "--sampling_strategy", "uniform"])
    assert (data_args.num_clips, data_args.frame_sampling_strategy) == (3, "uniform")
    with pytest.raises(ValueError, match="one key now"):
        from pipeline.configs import current_names

        current_names({"sampling_strategy": "dense", "frame_sampling_strategy": "dense"}, where="recipe x")
    # a run folder written before the rename: relaunching it with the same arguments finds no difference
    old = yaml.safe_load((OLD / "recipe.yaml").read_text())
    new = resolved_recipe(*parse_args(["recipes/demo.yaml", "--output_dir", "outputs/demo", "--num_clips", "2"]))
    assert "sampling_strategy" in old and "eval_num_clips" in old  # the fixture really is the old layout
    old = current_recipe(old)
    assert recipe_differences(old, {k: v for k, v in new.items() if k in old}) == []
    assert recipe_differences(old, {**{k: v for k, v in new.items() if k in old}, "num_clips": 4}) == [
        ("num_clips", 2, 4)]


def test_span_and_description_say_the_same_frames():
    spec = ClipSpec(16, 4, num_clips=2, num_crops=3)
    assert spec.span == 61 and "a span of 61 frames" in spec.describe(fps=25)
    assert "2.44 s at 25 fps" in spec.describe(fps=25) and "2 clips evenly spaced" in spec.describe()
    assert "3 crops" in spec.describe() and ClipSpec(8, frame_sampling_strategy="uniform").span is None
    clips = spec.eval_clips(200)
    assert [len(c) for c in clips] == [16, 16] and all(np.all(np.diff(c) == 4) for c in clips)


def _model_dir(folder, recorded: bool):
    torch.manual_seed(0)
    config = VideoMAEConfig(image_size=SIZE, patch_size=16, num_frames=NUM_FRAMES, tubelet_size=2, hidden_size=32,
                            num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                            num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
                            label2id={name: i for i, name in enumerate(LABELS)})
    if recorded:
        ClipSpec(NUM_FRAMES, 3, "dense", num_clips=2).save_to(config)
    VideoMAEForVideoClassification(config).save_pretrained(folder)
    VideoMAEImageProcessor(size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE}).save_pretrained(
        folder)
    return folder


def _frames_fed(model, run) -> list[list[int]]:
    """The frame numbers of every view the model receives while ``run()`` runs."""
    seen = []
    hook = model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["pixel_values"]),
                                           with_kwargs=True)
    try:
        run()
    finally:
        hook.remove()
    processor = VideoMAEImageProcessor()
    mean, std = torch.tensor(processor.image_mean).view(1, 3, 1, 1), torch.tensor(processor.image_std).view(1, 3, 1, 1)
    numbers = []
    for batch in seen:
        for view in batch:
            pixels = ((view.float() * std + mean) * 255).round().clamp(0, 255).byte()
            numbers.append([read_frame_index(f.permute(1, 2, 0).numpy()) for f in pixels])
    return numbers


@pytest.mark.parametrize("recorded", [False, True], ids=["config_without_sampling", "config_with_sampling"])
def test_card_evaluation_and_pipeline_use_the_same_frames(recorded, tmp_path):
    video = str(write_video(tmp_path / "v.avi", "xvid_gop12", FRAMES, size=(SIZE, SIZE)))
    folder = _model_dir(tmp_path / "model", recorded)
    spec = ClipSpec.from_config(json.loads((folder / "config.json").read_text(), object_hook=lambda d: type(
        "Config", (), d)()))
    expected = [clip.tolist() for clip in spec.eval_clips(FRAMES)]
    assert len(expected) == (2 if recorded else 1)

    classifier = load_pipeline(str(folder))
    assert _frames_fed(classifier.model, lambda: classifier(video)) == expected

    dataset = datasets.Dataset.from_dict(
        {"video": [video], "label": [0]},
        features=datasets.Features({"video": datasets.Value("string"), "label": datasets.ClassLabel(names=LABELS)}))
    model = classifier.model
    assert _frames_fed(model, lambda: evaluate_model(model, classifier.image_processor, dataset, num_workers=0,
                                                     batch_size=4)) == expected

    card = str(build_model_card(folder)[0])
    assert ClipSpec.from_config(classifier.model.config, classifier.image_processor).describe() in card
    span = (NUM_FRAMES - 1) * spec.frame_sampling_rate + 1
    assert (f"{NUM_FRAMES} frames, one frame every {spec.frame_sampling_rate} frames (a span of {span} frames)"
            in card)
    assert ("records no frame sampling" in card) == (not recorded)
