"""The recipe key `gradient_checkpointing` reaches transformers under the name the installed release uses
(`activation_checkpointing` from 5.25, the only name in 6): no FutureWarning now, no unknown key later."""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch
from transformers import TrainingArguments

from pipeline.configs import parse_args
from pipeline.training.checkpointing_names import (
    argv_with_library_names,
    checkpointing_enabled,
    enable_checkpointing,
    library_name,
    library_uses_new_names,
    with_library_names,
)


def test_the_version_check_matches_the_installed_training_arguments():
    """Fails loudly when a release renames (or drops) the fields without the version check knowing."""
    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    assert library_uses_new_names() == ("activation_checkpointing" in fields)
    assert library_name("gradient_checkpointing") in fields
    assert library_name("gradient_checkpointing_kwargs") in fields


def test_names_for_releases_before_and_after_the_rename():
    assert library_name("gradient_checkpointing", "5.24.0") == "gradient_checkpointing"
    assert library_name("activation_checkpointing", "5.24.0") == "gradient_checkpointing"
    assert library_name("gradient_checkpointing", "5.25.0") == "activation_checkpointing"
    assert library_name("gradient_checkpointing_kwargs", "6.0.0") == "activation_checkpointing_kwargs"
    assert library_name("learning_rate", "6.0.0") == "learning_rate"
    assert argv_with_library_names(["--gradient_checkpointing", "--output_dir", "x", "--gradient_checkpointing=true"],
                                   "6.0.0") == ["--activation_checkpointing", "--output_dir", "x",
                                                "--activation_checkpointing=true"]
    # transformers 6 has no gradient_checkpointing field: the recipe key still reaches TrainingArguments
    assert with_library_names({"gradient_checkpointing": True, "seed": 1}, "r.yaml", "6.0.0") == {
        "activation_checkpointing": True, "seed": 1}


def test_both_spellings_in_one_recipe_is_an_error():
    with pytest.raises(ValueError, match="r.yaml gives both"):
        with_library_names({"gradient_checkpointing": True, "activation_checkpointing": False}, "r.yaml", "5.25.0")


@pytest.mark.parametrize("how", ["recipe", "cli", "new-name"])
def test_recipe_key_turns_checkpointing_on_without_a_future_warning(tmp_path, how):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model_type: videomae\ndataset: demo\noutput_dir: out\nuse_cpu: true\n"
                      + ("gradient_checkpointing: true\ngradient_checkpointing_kwargs: {use_reentrant: false}\n"
                         if how == "recipe" else ""))
    argv = {"recipe": [], "cli": ["--gradient_checkpointing"], "new-name": ["--activation_checkpointing", "true"]}[how]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        *_, training_args = parse_args([str(recipe), *argv])
    assert checkpointing_enabled(training_args)
    if library_uses_new_names():
        assert training_args.activation_checkpointing is True
    if how == "recipe":
        kwargs = getattr(training_args, library_name("gradient_checkpointing_kwargs"))
        assert kwargs == {"use_reentrant": False}


def test_off_by_default(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model_type: videomae\ndataset: demo\noutput_dir: out\nuse_cpu: true\n")
    *_, training_args = parse_args([str(recipe)])
    assert not checkpointing_enabled(training_args)


def test_enable_checkpointing_uses_the_current_method_and_recomputes():
    """A tiny VideoPrism (the new family) under activation checkpointing: no FutureWarning, its blocks really
    recompute in backward, and the gradients equal those without checkpointing."""
    from deployment_models import FAMILIES
    from pipeline.models import get_model

    torch.manual_seed(0)
    plain, _ = get_model(["a", "b"], **FAMILIES["videoprism"])
    checkpointed, _ = get_model(["a", "b"], **FAMILIES["videoprism"])
    checkpointed.load_state_dict(plain.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        enable_checkpointing(checkpointed, {"use_reentrant": False})
    assert getattr(checkpointed, "is_activation_checkpointing", None) or checkpointed.is_gradient_checkpointing
    calls = []
    # transformers checkpoints a layer's forward: the hook sits on a module inside a temporal layer
    checkpointed.vision_model.temporal_layers[0].layernorm_before.register_forward_pre_hook(
        lambda *args: calls.append(1))
    clips = torch.rand(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1])
    for model in (plain.train(), checkpointed.train()):
        model.zero_grad()
        model(pixel_values_videos=clips, labels=labels).loss.backward()
    assert len(calls) == 2  # forward, then again in backward
    for (name, a), (_, b) in zip(plain.named_parameters(), checkpointed.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name, rtol=1e-4, atol=1e-6)
