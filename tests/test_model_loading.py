"""get_model: from a config, from a local pretrained folder (classifier re-created), strict backbone loading."""


import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import VideoMAEConfig, VideoMAEForVideoClassification

from pipeline.models import BackboneMismatchError, get_model

TINY = dict(image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=1,
            num_attention_heads=2, intermediate_size=64, use_mean_pooling=True)


@pytest.fixture()
def pretrained_dir(tmp_path):
    """A 'Kinetics-pretrained' tiny VideoMAE with 5 labels and non-zero q/v biases, saved like a Hub checkpoint."""
    torch.manual_seed(0)
    config = VideoMAEConfig(**TINY, num_labels=5, qkv_bias=True)
    model = VideoMAEForVideoClassification(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(tmp_path)
    from pipeline.models import scratch_processor

    scratch_processor(32).save_pretrained(tmp_path)
    return tmp_path, model


def test_from_config_sets_labels_and_processor():
    model, processor = get_model(["a", "b", "c"], model_type="videomae", config_overrides=TINY, num_frames=4)
    assert model.config.id2label == {0: "a", 1: "b", 2: "c"} and model.config.label2id["c"] == 2
    assert processor.crop_size["height"] == 32
    assert model(pixel_values=torch.randn(1, 4, 3, 32, 32)).logits.shape == (1, 3)


def test_pretrained_backbone_loads_exactly_and_head_is_new(pretrained_dir):
    path, source = pretrained_dir
    model, _ = get_model(["x", "y"], model_name_or_path=str(path))
    assert model.classifier.out_features == 2
    src, dst = source.state_dict(), model.state_dict()
    backbone = [k for k in src if k.startswith("videomae.")]
    assert backbone
    for key in backbone:
        torch.testing.assert_close(dst[key], src[key], msg=key)


def test_legacy_q_bias_v_bias_keys_load(pretrained_dir):
    """Hub VideoMAE checkpoints store q_bias / v_bias (DESIGN fact 9): they must land in query/value biases."""
    path, source = pretrained_dir
    weights = load_file(path / "model.safetensors")
    legacy = {}
    for key, value in weights.items():
        key = key.replace("attention.attention.query.bias", "attention.attention.q_bias")
        key = key.replace("attention.attention.value.bias", "attention.attention.v_bias")
        legacy[key] = value
    assert any("q_bias" in k for k in legacy)
    save_file(legacy, path / "model.safetensors", metadata={"format": "pt"})
    model, _ = get_model(["x", "y"], model_name_or_path=str(path))
    expected = source.videomae.encoder.layer[0].attention.attention.query.bias
    torch.testing.assert_close(model.videomae.encoder.layer[0].attention.attention.query.bias, expected)
    assert expected.abs().sum() > 0


def test_unexpected_backbone_keys_fail_loudly(pretrained_dir):
    path, _ = pretrained_dir
    weights = load_file(path / "model.safetensors")
    weights["videomae.encoder.layer.0.attention.attention.mystery"] = torch.zeros(3)
    del weights["videomae.encoder.layer.0.output.dense.weight"]
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(BackboneMismatchError, match="1 missing.*output.dense.weight.*1 unexpected.*mystery"):
        get_model(["x", "y"], model_name_or_path=str(path))
    model, _ = get_model(["x", "y"], model_name_or_path=str(path), ignore_mismatched_backbone=True)
    assert model.classifier.out_features == 2


def test_exactly_one_source_required():
    with pytest.raises(ValueError, match="exactly one"):
        get_model(["a"], model_type="videomae", model_name_or_path="x")
