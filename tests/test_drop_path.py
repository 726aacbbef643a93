"""Stochastic depth: identity in eval, expectation kept in training, linear rates, no change to weights or keys."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForVideoClassification

from fine_tuning_models import clips, one_compute_thread, tiny_model  # noqa: F401 (fixture)
from pipeline.models.drop_path import drop_path_rates, set_drop_path, transformer_layers

pytestmark = pytest.mark.usefixtures("one_compute_thread")


def branch_module(family: str, layer):
    return layer.attention if family == "videomae" else layer.dropout


def test_rates_rise_linearly_from_zero():
    assert drop_path_rates(0.2, 5) == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2])


@pytest.mark.parametrize("family", ["videomae", "vivit", "timesformer"])
def test_identity_in_eval_and_same_state_dict(family, tmp_path):
    reference = tiny_model(family).eval()
    model = tiny_model(family).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    set_drop_path(model, 0.5)
    assert list(model.state_dict()) == list(before)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    x = clips(family)
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, reference(x).logits, rtol=0, atol=0)
    # checkpoints load both ways, strictly
    model.save_pretrained(tmp_path / "with")
    reloaded, info = AutoModelForVideoClassification.from_pretrained(tmp_path / "with", output_loading_info=True)
    assert not (info["missing_keys"] or info["unexpected_keys"])
    plain = tiny_model(family)
    set_drop_path(plain, 0.3)
    assert plain.load_state_dict(reference.state_dict()).missing_keys == []


@pytest.mark.parametrize("family", ["videomae", "vivit"])
def test_branches_are_dropped_per_sample_with_the_expectation_kept(family):
    model = tiny_model(family)  # dropout probabilities are 0: drop path is the only randomness
    layers = transformer_layers(model)
    raw, dropped, first = [], [], []
    # hooks run in the order they were registered: one before the drop-path hook, one after it
    branch_module(family, layers[-1]).register_forward_hook(lambda m, a, out: raw.append(out))
    rates = set_drop_path(model, 0.4)
    branch_module(family, layers[-1]).register_forward_hook(lambda m, a, out: dropped.append(out))
    branch_module(family, layers[0]).register_forward_hook(lambda m, a, out: first.append(out))
    assert rates == pytest.approx([0.0, 0.2, 0.4])
    x = clips(family, batch=1).expand(800, -1, -1, -1, -1)
    torch.manual_seed(0)
    with torch.no_grad():
        model.train()(x)
    before, after = raw[0], dropped[0]
    keep = 1 - 0.4
    zero = after.flatten(1).abs().amax(1) == 0
    scaled = torch.isclose(after, before / keep, rtol=1e-5, atol=1e-7).flatten(1).all(1)
    assert bool((zero ^ scaled).all()), "each sample's branch is either dropped or scaled by 1 / keep"
    # P(drop) = 0.4: within 4 standard deviations of the binomial over 800 samples, so E[mask] = 1 holds
    assert abs(float(zero.float().mean()) - 0.4) < 4 * (0.4 * 0.6 / 800) ** 0.5
    mask = torch.where(zero, 0.0, 1.0 / keep)
    assert abs(float(mask.mean()) - 1.0) < 4 * (0.4 / 0.6 / 800) ** 0.5
    # the first block's rate is 0: never dropped
    assert bool((first[0].flatten(1).abs().amax(1) > 0).all())


def test_timesformer_uses_its_own_drop_path_modules():
    model = tiny_model("timesformer")
    set_drop_path(model, 0.2)
    rates = [getattr(layer.drop_path, "drop_prob", 0.0) for layer in transformer_layers(model)]
    assert rates == pytest.approx([0.0, 0.1, 0.2])
    set_drop_path(model, 0.0)
    assert all(isinstance(layer.drop_path, torch.nn.Identity) for layer in transformer_layers(model))


def test_i3d_has_no_residual_blocks_to_drop():
    model = tiny_model("i3d")
    with pytest.raises(ValueError, match="no residual transformer blocks"):
        set_drop_path(model, 0.1)
    assert set_drop_path(model, 0.0) == []


def test_calling_again_replaces_the_hooks():
    model = tiny_model("videomae")
    set_drop_path(model, 0.3)
    set_drop_path(model, 0.0)
    x = clips("videomae")
    reference = tiny_model("videomae")
    torch.testing.assert_close(model.train()(x).logits, reference.train()(x).logits, rtol=0, atol=0)


@pytest.mark.parametrize("family", ["videomae", "timesformer"])
def test_activation_checkpointing_recomputes_the_same_mask(family):
    plain = tiny_model(family)
    checkpointed = tiny_model(family)
    for model in (plain, checkpointed):
        set_drop_path(model, 0.5)
    getattr(checkpointed, "activation_checkpointing_enable", checkpointed.gradient_checkpointing_enable)()
    x, labels = clips(family, batch=8), torch.arange(8) % 3
    for model in (plain, checkpointed):
        torch.manual_seed(1)
        model(x, labels=labels).loss.backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), checkpointed.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)
