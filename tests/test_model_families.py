"""ViViT and V-JEPA 2 through the project: get_model (config and strict pretrained loading), their processors in the
one clip contract (ViViT's [-1, 1]), V-JEPA 2's `pixel_values_videos` mapped in one place for the Trainer, the
evaluation and pipeline(), and the frozen-backbone attentive probe."""

from __future__ import annotations

import csv
import logging

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import (
    AutoModelForVideoClassification,
    TrainingArguments,
    VideoMAEConfig,
    VideoMAEForVideoClassification,
    VivitImageProcessor,
    VJEPA2VideoProcessor,
)

from pipeline.evaluation import evaluate_model
from pipeline.models.loading import load_trained
from pipeline.inference import load_pipeline
from pipeline.inference.model_inputs import as_model_inputs, config_num_frames, input_name, model_inputs
from pipeline.inference.clip_spec import ClipSpec
from pipeline.inference.preprocessing import VideoPreprocessing
from pipeline.inference.views import load_views
from pipeline.models import BackboneMismatchError, get_model
from pipeline.models.backbone_freezing import backbone_of
from pipeline.models.processors import vivit_input_range
from pipeline.training.trainer import VideoTrainer
from synthetic_videos import sequential_frames, write_video
from tiny_families import (
    IMAGE_SIZE,
    LABELS,
    NUM_FRAMES,
    VIVIT_OVERRIDES,
    VJEPA2_OVERRIDES,
    save_vivit_backbone,
    save_vjepa2_backbone,
)


def tiny(model_type: str, **kwargs):
    overrides = VJEPA2_OVERRIDES if model_type == "vjepa2" else VIVIT_OVERRIDES
    torch.manual_seed(0)
    return get_model(LABELS, model_type=model_type, config_overrides=overrides, image_size=IMAGE_SIZE,
                     num_frames=NUM_FRAMES, **kwargs)


def clips(batch=2, seed=0):
    return torch.randn(batch, NUM_FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(seed))


# ---- one input-name adapter -----------------------------------------------------------------------------------------

def test_each_model_gets_its_input_name_from_its_class():
    vjepa2, _ = tiny("vjepa2")
    vivit, _ = tiny("vivit")
    videomae = VideoMAEForVideoClassification(VideoMAEConfig(image_size=32, patch_size=16, num_frames=4,
                                                             hidden_size=32, num_hidden_layers=1,
                                                             num_attention_heads=2, intermediate_size=37))
    assert input_name(vjepa2) == "pixel_values_videos"
    assert input_name(vivit) == input_name(videomae) == "pixel_values"
    batch = {"pixel_values": clips(), "labels": torch.tensor([0, 1])}
    renamed = as_model_inputs(vjepa2, batch)
    assert set(renamed) == {"pixel_values_videos", "labels"} and renamed["pixel_values_videos"] is batch["pixel_values"]
    assert as_model_inputs(vivit, batch) is batch
    assert vjepa2(**model_inputs(vjepa2, clips())).logits.shape == (2, len(LABELS))


def test_frame_count_of_configs_that_name_it_otherwise():
    from transformers import VJEPA2Config, XCLIPConfig

    assert config_num_frames(VJEPA2Config(frames_per_clip=16)) == 16
    assert config_num_frames(XCLIPConfig(vision_config={"num_frames": 8})) == 8
    assert config_num_frames(VideoMAEConfig(num_frames=4)) == 4


# ---- V-JEPA 2 ----------------------------------------------------------------------------------------------------

def test_vjepa2_from_config_uses_its_video_processor_and_freezes_the_unused_predictor():
    model, processor = tiny("vjepa2")
    assert model.config.crop_size == IMAGE_SIZE and model.config.num_frames == NUM_FRAMES
    assert isinstance(processor, VJEPA2VideoProcessor)
    prep = VideoPreprocessing.from_processor(processor)
    assert prep.crop_size == (IMAGE_SIZE, IMAGE_SIZE) and prep.resize_shortest == int(IMAGE_SIZE * 256 / 224)
    assert prep.mean == pytest.approx((0.485, 0.456, 0.406))
    assert not any(p.requires_grad for p in model.vjepa2.predictor.parameters())
    assert all(p.requires_grad for p in model.vjepa2.encoder.parameters())


def test_vjepa2_backbone_checkpoint_loads_strictly_with_a_new_attentive_probe(tmp_path):
    folder = save_vjepa2_backbone(tmp_path / "backbone")
    from transformers import VJEPA2Model

    saved = VJEPA2Model.from_pretrained(folder).state_dict()
    model, processor = get_model(LABELS, model_name_or_path=str(folder), freeze_backbone=True)
    assert isinstance(processor, VJEPA2VideoProcessor)  # the checkpoint has no image processor
    assert model.config.num_frames == NUM_FRAMES  # from frames_per_clip: the checkpoint's config has no num_frames
    loaded = model.vjepa2.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in saved.items()), "a backbone weight was not loaded"
    trainable = {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"pooler", "classifier"}  # the attentive probe: pooler + linear classifier

    # the frozen backbone stays in eval mode while the Trainer switches the model to training
    model.train()
    assert model.training and model.pooler.training and not backbone_of(model).training
    assert not any(m.training for m in model.vjepa2.modules())

    # one optimisation step moves the probe only
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(**model_inputs(model, clips()), labels=torch.tensor([0, 1])).loss.backward()
    optimizer.step()
    after = model.state_dict()
    changed = {k.split(".")[0] for k in after if not torch.equal(after[k], before[k])}
    assert changed == {"pooler", "classifier"}


def test_vjepa2_checkpoint_missing_an_encoder_weight_fails_loudly(tmp_path):
    from safetensors.torch import load_file, save_file

    folder = save_vjepa2_backbone(tmp_path / "backbone")
    weights = load_file(folder / "model.safetensors")
    dropped = next(k for k in weights if k.startswith("encoder.layer.0.attention.query"))
    del weights[dropped]
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(BackboneMismatchError, match="missing"):
        get_model(LABELS, model_name_or_path=str(folder))


def stack_rows(rows):
    """Ready clips and labels as one batch (what the collator gives when the workers made the clips)."""
    return {"pixel_values": torch.stack([r["pixel_values"] for r in rows]),
            "labels": torch.tensor([r["labels"] for r in rows])}


def test_trainer_feeds_vjepa2_its_pixel_values_videos(tmp_path):
    """A batch's {"pixel_values", "labels"} reaches V-JEPA 2 as `pixel_values_videos` through VideoTrainer."""
    model, processor = tiny("vjepa2")
    generator = torch.Generator().manual_seed(0)
    rows = [{"pixel_values": torch.randn(NUM_FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator), "labels": i % 4}
            for i in range(8)]
    dataset = Dataset.from_list([{"i": i} for i in range(8)]).with_transform(
        lambda batch: {"pixel_values": [rows[i]["pixel_values"] for i in batch["i"]],
                       "labels": [rows[i]["labels"] for i in batch["i"]]})
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=2, learning_rate=1e-2,
                             report_to=[], use_cpu=True, remove_unused_columns=False, save_strategy="no",
                             label_names=["labels"], disable_tqdm=True)
    before = model.classifier.weight.detach().clone()
    trainer = VideoTrainer(model=model, args=args, train_dataset=dataset, eval_dataset=dataset,
                           data_collator=stack_rows, processing_class=processor)
    result = trainer.train()
    assert np.isfinite(result.training_loss)
    assert not torch.equal(model.classifier.weight, before)
    metrics = trainer.evaluate()
    assert np.isfinite(metrics["eval_loss"])


@pytest.fixture(scope="module")
def vjepa2_dir(tmp_path_factory):
    """A tiny V-JEPA 2 classifier saved as train.py leaves it: weights, config with sampling, video processor."""
    folder = tmp_path_factory.mktemp("tiny-vjepa2")
    model, processor = tiny("vjepa2")
    with torch.no_grad():
        model.classifier.weight.normal_(std=3.0)  # scores that differ between inputs
    model.config.frame_sampling_rate, model.config.frame_sampling_strategy = 2, "dense"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_vjepa2_pipeline_and_evaluation_score_the_same_views(vjepa2_dir, tmp_path):
    assert (vjepa2_dir / "video_preprocessor_config.json").is_file()
    assert not (vjepa2_dir / "preprocessor_config.json").exists()
    video = write_video(tmp_path / "clip.avi", "xvid_gop12", 30)
    classifier = load_pipeline(str(vjepa2_dir))
    assert classifier.image_processor is None and isinstance(classifier.video_processor, VJEPA2VideoProcessor)

    model, processor = load_trained(str(vjepa2_dir))
    assert isinstance(processor, VJEPA2VideoProcessor)
    views = load_views(str(video), ClipSpec(NUM_FRAMES, 2, num_clips=2, num_crops=3,
                                            preprocessing=VideoPreprocessing.from_processor(processor)))
    with torch.no_grad():
        expected = model(pixel_values_videos=views).logits.softmax(-1).mean(0)
    for source in (str(video), video.read_bytes(), sequential_frames(video)):
        top = classifier(source, num_clips=2, num_crops=3, top_k=len(LABELS))
        by_label = {p["label"]: p["score"] for p in top}
        np.testing.assert_allclose([by_label[name] for name in LABELS], expected.numpy(), atol=1e-5)
    batched = classifier([str(video), str(video)], num_clips=2, num_crops=3, top_k=len(LABELS), batch_size=4)
    for top in batched:  # views of several videos batched together
        by_label = {p["label"]: p["score"] for p in top}
        np.testing.assert_allclose([by_label[name] for name in LABELS], expected.numpy(), atol=1e-5)

    # the evaluation command's scoring goes through the same adapter
    from datasets import ClassLabel, Features, Value

    dataset = Dataset.from_dict({"video": [str(video)], "label": [0]},
                                features=Features({"video": Value("string"), "label": ClassLabel(names=list(LABELS))}))
    evaluate_model(model.eval(), processor, dataset, num_clips=2, num_crops=3, batch_size=4, num_workers=0,
                   output_dir=tmp_path / "eval", sample_figures=False)
    row = next(csv.DictReader(open(tmp_path / "eval" / "predictions.csv", newline="")))
    scores = {row[f"top{k}_label"]: float(row[f"top{k}_score"]) for k in range(1, len(LABELS) + 1)}
    np.testing.assert_allclose([scores[name] for name in LABELS], expected.numpy(), atol=1e-5)


# ---- ViViT -------------------------------------------------------------------------------------------------------

def test_vivit_from_config_maps_frames_to_minus_one_one():
    model, processor = tiny("vivit")
    assert isinstance(processor, VivitImageProcessor)
    assert vivit_input_range(processor) == pytest.approx((-1.0, 1.0))
    frames = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    normalised = load_views(frames.permute(0, 2, 3, 1).contiguous().numpy(),
                            ClipSpec(2, 1, preprocessing=VideoPreprocessing.from_processor(processor)))[0]
    assert normalised[0].min() == pytest.approx(-1.0) and normalised[1].max() == pytest.approx(1.0)
    assert model(pixel_values=clips()).logits.shape == (2, len(LABELS))


@pytest.mark.parametrize("do_normalize", [True, False])
def test_vivit_processors_fold_into_the_clip_contract_exactly(do_normalize):
    """ViViT's processors subtract 1 after rescaling; the clip contract reproduces transformers' output."""
    from transformers import VivitVideoProcessor

    frames = np.random.default_rng(0).integers(0, 256, (NUM_FRAMES, 40, 48, 3), dtype=np.uint8)
    video = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()
    processor = VivitVideoProcessor(size={"shortest_edge": IMAGE_SIZE},
                                    crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, do_normalize=do_normalize)
    expected = processor(video, return_tensors="pt")["pixel_values"][0]
    ours = load_views(frames, ClipSpec(NUM_FRAMES, 1, preprocessing=VideoPreprocessing.from_processor(processor)))[0]
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)


def test_vivit_checkpoint_loads_strictly_and_its_inputs_become_minus_one_one(tmp_path, caplog):
    folder = save_vivit_backbone(tmp_path / "vivit")
    assert vivit_input_range(VivitImageProcessor.from_pretrained(folder)) == pytest.approx((-3.0, 1.0))
    with caplog.at_level(logging.WARNING):
        model, processor = get_model(LABELS, model_name_or_path=str(folder))
    assert "trained on [-1, 1]" in caplog.text
    assert vivit_input_range(processor) == pytest.approx((-1.0, 1.0))
    from transformers import VivitModel

    saved = VivitModel.from_pretrained(folder).state_dict()
    loaded = model.vivit.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in saved.items() if not k.startswith("pooler."))
    assert model.config.num_labels == len(LABELS)


def test_frozen_vivit_trains_only_its_classifier(tmp_path):
    model, _ = get_model(LABELS, model_name_or_path=str(save_vivit_backbone(tmp_path / "vivit")),
                         freeze_backbone=True)
    assert {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad} == {"classifier"}


def test_saved_classifier_reloads_with_the_auto_class(vjepa2_dir):
    model = AutoModelForVideoClassification.from_pretrained(vjepa2_dir)
    assert type(model).__name__ == "VJEPA2ForVideoClassification" and model.config.num_frames == NUM_FRAMES


def test_model_card_of_a_frozen_vjepa2_probe(vjepa2_dir, tmp_path):
    import shutil

    from pipeline.publish.model_card import build_model_card

    folder = tmp_path / "probe"
    shutil.copytree(vjepa2_dir, folder)
    (folder / "recipe.yaml").write_text("model_name_or_path: facebook/vjepa2-vitl-fpc64-256\nfreeze_backbone: true\n"
                                        "dataset: ucf101\nnum_frames: 4\n")
    card, _ = build_model_card(folder, repo_id="someone/vjepa2-probe")
    text = str(card)
    assert card.data.license == "mit" and card.data.base_model == "facebook/vjepa2-vitl-fpc64-256"
    assert "V-JEPA 2 video classifier" in text and "only the attentive probe" in text
    assert "video_preprocessor_config.json" in text and "assran2025vjepa2" in text
    assert "| freeze_backbone | `True` |" in text
