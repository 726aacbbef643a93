"""TimeSformer's SDPA path computes what the library's eager TimeSformer computes, and really runs SDPA."""

import copy
import json

import pytest
import torch
from transformers import AutoModelForVideoClassification, TimesformerConfig, TimesformerForVideoClassification

from pipeline.models.timesformer_sdpa import (
    TimesformerSdpaForVideoClassification,
    enable_timesformer_sdpa,
)

NUM_LAYERS = 2
TOLERANCE = 1e-5


def tiny_config(**overrides) -> TimesformerConfig:
    values = dict(
        hidden_size=64,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=4,
        intermediate_size=128,
        image_size=32,
        patch_size=8,
        num_frames=4,
        num_labels=5,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    values.update(overrides)
    return TimesformerConfig(**values)


def eager_and_sdpa(**overrides):
    torch.manual_seed(0)
    eager = TimesformerForVideoClassification(tiny_config(**overrides))
    sdpa = enable_timesformer_sdpa(copy.deepcopy(eager))
    return eager, sdpa


def batch(seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(2, 4, 3, 32, 32, generator=generator), torch.tensor([1, 3])


@pytest.fixture
def sdpa_calls(monkeypatch):
    """Counts calls of torch's scaled_dot_product_attention (the interface looks it up at call time)."""
    calls = []
    real = torch.nn.functional.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counting)
    return calls


def max_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


@pytest.mark.parametrize("train_mode", [True, False], ids=["train", "eval"])
def test_outputs_and_gradients_match_eager(train_mode, sdpa_calls):
    eager, sdpa = eager_and_sdpa()
    pixel_values, labels = batch()
    results = []
    for model in (eager, sdpa):
        model.train(train_mode)
        model.zero_grad()
        output = model(pixel_values=pixel_values, labels=labels)
        output.loss.backward()
        results.append((output, dict(model.named_parameters())))

    (eager_out, eager_params), (sdpa_out, sdpa_params) = results
    assert max_difference(eager_out.logits, sdpa_out.logits) <= TOLERANCE
    assert abs(eager_out.loss.item() - sdpa_out.loss.item()) <= TOLERANCE
    assert eager_params.keys() == sdpa_params.keys()
    for name, parameter in eager_params.items():
        assert parameter.grad is not None, name
        assert max_difference(parameter.grad, sdpa_params[name].grad) <= TOLERANCE, name
    # Only the SDPA model called it: per layer a temporal attention over 4 frames
    # (batch 2 x 16 patches sequences) and a spatial one over CLS + 16 patches (batch 2 x 4 frames).
    assert sdpa_calls == [torch.Size([32, 4, 4, 16]), torch.Size([8, 4, 17, 16])] * NUM_LAYERS


@pytest.mark.parametrize("attention_type", ["divided_space_time", "space_only", "joint_space_time"])
def test_eval_with_dropout_configured_matches_eager(attention_type):
    eager, sdpa = eager_and_sdpa(
        attention_type=attention_type, attention_probs_dropout_prob=0.3, hidden_dropout_prob=0.1
    )
    eager.eval()
    sdpa.eval()
    pixel_values, _ = batch()
    with torch.no_grad():
        expected = eager(pixel_values=pixel_values).logits
        actual = sdpa(pixel_values=pixel_values).logits
    assert max_difference(expected, actual) <= TOLERANCE


def test_attention_dropout_is_applied_in_training(sdpa_calls):
    _, sdpa = eager_and_sdpa(attention_probs_dropout_prob=0.5)
    pixel_values, _ = batch()
    with torch.no_grad():
        evaluated = sdpa.eval()(pixel_values=pixel_values).logits
        torch.manual_seed(3)
        trained = sdpa.train()(pixel_values=pixel_values).logits
    assert len(sdpa_calls) == 4 * NUM_LAYERS
    assert max_difference(evaluated, trained) > 1e-3


def test_output_attentions_falls_back_to_eager(sdpa_calls):
    eager, sdpa = eager_and_sdpa()
    eager.eval()
    sdpa.eval()
    pixel_values, _ = batch()
    with torch.no_grad():
        expected = eager(pixel_values=pixel_values, output_attentions=True)
        actual = sdpa(pixel_values=pixel_values, output_attentions=True)
    assert len(actual.attentions) == NUM_LAYERS
    for eager_attention, sdpa_attention in zip(expected.attentions, actual.attentions):
        assert sdpa_attention.shape == (8, 4, 17, 17)
        assert max_difference(eager_attention, sdpa_attention) <= TOLERANCE
    assert max_difference(expected.logits, actual.logits) <= TOLERANCE
    # The library returns only the spatial attentions; the temporal ones still ran through SDPA.
    assert sdpa_calls == [torch.Size([32, 4, 4, 16])] * NUM_LAYERS


def test_switching_back_to_eager_stops_sdpa(sdpa_calls):
    _, sdpa = eager_and_sdpa()
    assert sdpa.config._attn_implementation == "sdpa"
    enable_timesformer_sdpa(sdpa, "eager")
    assert sdpa.config._attn_implementation == "eager"
    with torch.no_grad():
        sdpa(pixel_values=batch()[0])
    assert sdpa_calls == []


def test_state_dict_and_checkpoints_are_interchangeable(tmp_path, sdpa_calls):
    eager, sdpa = eager_and_sdpa()
    assert list(eager.state_dict()) == list(sdpa.state_dict())
    sdpa.save_pretrained(tmp_path)

    saved_config = json.loads((tmp_path / "config.json").read_text())
    assert saved_config["architectures"] == ["TimesformerForVideoClassification"]
    assert not any("attn_implementation" in key for key in saved_config)

    # A plain transformers user gets the library's eager TimeSformer, with every weight.
    plain, info = AutoModelForVideoClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert type(plain) is TimesformerForVideoClassification
    assert plain.config._attn_implementation == "eager"
    assert not info["missing_keys"] and not info["unexpected_keys"]
    reloaded = enable_timesformer_sdpa(AutoModelForVideoClassification.from_pretrained(tmp_path))

    pixel_values, _ = batch()
    with torch.no_grad():
        expected = eager.eval()(pixel_values=pixel_values).logits
        assert sdpa_calls == []
        assert max_difference(expected, plain.eval()(pixel_values=pixel_values).logits) == 0.0
        assert max_difference(expected, reloaded.eval()(pixel_values=pixel_values).logits) <= TOLERANCE
    assert len(sdpa_calls) == 2 * NUM_LAYERS


def test_subclass_uses_the_library_attention_switch(tmp_path, sdpa_calls):
    eager, _ = eager_and_sdpa()
    eager.save_pretrained(tmp_path)

    model, info = TimesformerSdpaForVideoClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert model.config._attn_implementation == "sdpa"  # the default, as for VideoMAE
    pixel_values, _ = batch()
    with torch.no_grad():
        expected = eager.eval()(pixel_values=pixel_values).logits
        assert max_difference(expected, model.eval()(pixel_values=pixel_values).logits) <= TOLERANCE
        assert len(sdpa_calls) == 2 * NUM_LAYERS

        model.set_attn_implementation("eager")
        assert model.config._attn_implementation == "eager"
        model(pixel_values=pixel_values)
        assert len(sdpa_calls) == 2 * NUM_LAYERS

    explicit = TimesformerSdpaForVideoClassification.from_pretrained(tmp_path, attn_implementation="eager")
    assert explicit.config._attn_implementation == "eager"


def test_rejects_unknown_implementation_and_other_models():
    _, sdpa = eager_and_sdpa()
    with pytest.raises(ValueError, match="timesformer_sdpa.py.*flash"):
        enable_timesformer_sdpa(sdpa, "flash")
    with pytest.raises(TypeError, match="timesformer_sdpa.py.*Linear"):
        enable_timesformer_sdpa(torch.nn.Linear(2, 2))
