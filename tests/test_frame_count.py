"""Temporal position embeddings at other frame counts: identity when equal, correct shape and smooth values when
not, models that run at the new length, and checkpoints that keep (VideoMAE: rebuild) what they were trained with."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import (
    TimesformerConfig,
    TimesformerForVideoClassification,
    VideoMAEConfig,
    VideoMAEForVideoClassification,
    VivitConfig,
    VivitForVideoClassification,
    XCLIPModel,
)
from transformers.models.videomae.modeling_videomae import get_sinusoid_encoding_table

from pipeline.models.loading import load_trained
from pipeline.inference.frame_count import (
    SOURCE_FRAMES_FIELD,
    resize_time_axis,
    restore_temporal_positions,
    set_num_frames,
)
from pipeline.models import get_model
from tiny_families import VIVIT
from tiny_xclip import tiny_tokenizer, tiny_xclip_config

VIDEOMAE = dict(image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=1,
                num_attention_heads=2, intermediate_size=37, use_mean_pooling=True)
TIMESFORMER = dict(image_size=32, patch_size=16, num_frames=4, hidden_size=32, num_hidden_layers=1,
                   num_attention_heads=2, intermediate_size=37)


def _clips(frames: int, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, frames, 3, 32, 32, generator=torch.Generator().manual_seed(frames))


def _steps_are_smooth(original: torch.Tensor, resized: torch.Tensor, dim: int) -> None:
    """Resampled values stay within the original's range, and neighbours differ no more than the original's do."""
    assert resized.min() >= original.min() - 1e-6 and resized.max() <= original.max() + 1e-6
    step = lambda t: t.diff(dim=dim).abs().max()  # noqa: E731
    assert step(resized) <= step(original) + 1e-6


# ---- the interpolation itself ---------------------------------------------------------------------------------------

def test_equal_length_is_the_identity():
    table = torch.randn(1, 6, 5)
    assert resize_time_axis(table, 6, dim=1) is table


def test_linear_in_time_stays_linear_and_keeps_its_span():
    # values linear in the time index: any linear resampling (align_corners=False) gives the same line, stretched
    time = torch.arange(4, dtype=torch.float32)
    table = (2.0 * time + 1.0).view(1, 4, 1).expand(1, 4, 3).contiguous()
    doubled = resize_time_axis(table, 8, dim=1)
    assert doubled.shape == (1, 8, 3)
    centres = (torch.arange(8) + 0.5) / 2 - 0.5  # where the 8 new entries sit on the old axis
    expected = 2.0 * centres.clamp(0, 3) + 1.0
    torch.testing.assert_close(doubled[0, :, 0], expected)
    halved = resize_time_axis(table, 2, dim=1)
    torch.testing.assert_close(halved[0, :, 0], torch.tensor([2.0, 6.0]))  # means of pairs, span kept


def test_resized_tables_are_smooth():
    table = torch.randn(1, 8, 16, generator=torch.Generator().manual_seed(0)).cumsum(dim=1)
    for length in (3, 5, 16, 32):
        _steps_are_smooth(table, resize_time_axis(table, length, dim=1), dim=1)


def test_bad_requests_name_the_problem():
    model = VideoMAEForVideoClassification(VideoMAEConfig(**VIDEOMAE))
    with pytest.raises(ValueError, match="not a multiple of the tubelet size"):
        set_num_frames(model, 5)

    class Other(torch.nn.Module):
        config = type("C", (), {"model_type": "made-up", "num_frames": 4})()

    with pytest.raises(ValueError, match="no known way"):
        set_num_frames(Other(), 8)


# ---- VideoMAE: the fixed sin-cos table ------------------------------------------------------------------------------

def test_videomae_table_is_interpolated_along_time_and_the_model_runs():
    model = VideoMAEForVideoClassification(VideoMAEConfig(**VIDEOMAE)).eval()
    original = model.videomae.embeddings.position_embeddings.clone()
    assert not set_num_frames(model, 4)
    assert torch.equal(model.videomae.embeddings.position_embeddings, original)

    assert set_num_frames(model, 8)
    table = model.videomae.embeddings.position_embeddings
    spatial = (32 // 16) ** 2
    assert table.shape == (1, 8 // 2 * spatial, 32) and model.config.num_frames == 8
    assert getattr(model.config, SOURCE_FRAMES_FIELD) == 4
    grid, old = table.view(4, spatial, 32), original.view(2, spatial, 32)
    _steps_are_smooth(old, grid, dim=0)
    # not the plain table of 8 frames: the first time step is no longer the old first one shifted
    assert not torch.allclose(table, get_sinusoid_encoding_table(4 * spatial, 32))
    with torch.no_grad():
        assert model(pixel_values=_clips(8)).logits.shape == (2, model.config.num_labels)


def test_videomae_checkpoint_at_another_length_rebuilds_its_table(tmp_path):
    """The table is not saved with the weights: the config names its source length and every loader of this
    project (the evaluation's here; get_model and the pipeline() class too) rebuilds it."""
    model = VideoMAEForVideoClassification(VideoMAEConfig(**VIDEOMAE)).eval()
    set_num_frames(model, 8)
    with torch.no_grad():
        expected = model(pixel_values=_clips(8)).logits
    model.save_pretrained(tmp_path)
    from pipeline.models import scratch_processor

    scratch_processor(32).save_pretrained(tmp_path)
    plain = VideoMAEForVideoClassification.from_pretrained(tmp_path).eval()
    assert not torch.equal(plain.videomae.embeddings.position_embeddings, model.videomae.embeddings.position_embeddings)
    assert restore_temporal_positions(plain)
    torch.testing.assert_close(plain.videomae.embeddings.position_embeddings,
                               model.videomae.embeddings.position_embeddings)
    reloaded, _ = load_trained(str(tmp_path))
    with torch.no_grad():
        torch.testing.assert_close(reloaded.eval()(pixel_values=_clips(8)).logits, expected)
    # going back to the source length gives back the plain table exactly
    set_num_frames(reloaded, 4)
    assert getattr(reloaded.config, SOURCE_FRAMES_FIELD) is None
    torch.testing.assert_close(reloaded.videomae.embeddings.position_embeddings,
                               get_sinusoid_encoding_table(2 * 4, 32))


def test_get_model_loads_a_checkpoint_at_its_length_then_interpolates(tmp_path):
    torch.manual_seed(0)
    VideoMAEForVideoClassification(VideoMAEConfig(**VIDEOMAE, num_labels=3)).save_pretrained(tmp_path)
    from pipeline.models import scratch_processor

    scratch_processor(32).save_pretrained(tmp_path)
    model, _ = get_model(["a", "b"], model_name_or_path=str(tmp_path), num_frames=8)
    assert model.config.num_frames == 8 and getattr(model.config, SOURCE_FRAMES_FIELD) == 4
    with torch.no_grad():
        assert model(pixel_values=_clips(8)).logits.shape == (2, 2)


# ---- learned tables: TimeSformer, ViViT, X-CLIP ---------------------------------------------------------------------

def test_timesformer_time_embeddings_resized_and_saved_at_the_new_length(tmp_path):
    torch.manual_seed(0)
    model = TimesformerForVideoClassification(TimesformerConfig(**TIMESFORMER)).eval()
    with torch.no_grad():
        model.timesformer.embeddings.time_embeddings.normal_()
    original = model.timesformer.embeddings.time_embeddings.detach().clone()
    set_num_frames(model, 4)
    assert torch.equal(model.timesformer.embeddings.time_embeddings, original)
    set_num_frames(model, 8)
    resized = model.timesformer.embeddings.time_embeddings
    assert resized.shape == (1, 8, 32) and resized.requires_grad
    _steps_are_smooth(original, resized.detach(), dim=1)
    with torch.no_grad():
        expected = model(pixel_values=_clips(8)).logits
    model.save_pretrained(tmp_path)
    reloaded = TimesformerForVideoClassification.from_pretrained(tmp_path).eval()  # shapes match: no warning path
    assert reloaded.config.num_frames == 8
    with torch.no_grad():
        torch.testing.assert_close(reloaded(pixel_values=_clips(8)).logits, expected)


def test_vivit_space_time_table_resized_along_time_only():
    torch.manual_seed(0)
    model = VivitForVideoClassification(VivitConfig(**VIVIT)).eval()
    with torch.no_grad():
        model.vivit.embeddings.position_embeddings.normal_()
    original = model.vivit.embeddings.position_embeddings.detach().clone()
    set_num_frames(model, 4)
    assert torch.equal(model.vivit.embeddings.position_embeddings, original)
    set_num_frames(model, 12)
    table = model.vivit.embeddings.position_embeddings.detach()
    spatial = (32 // 16) ** 2
    assert table.shape == (1, 1 + 6 * spatial, 32)
    assert torch.equal(table[:, 0], original[:, 0])  # the CLS position is not a time step
    old, new = original[0, 1:].view(2, spatial, 32), table[0, 1:].view(6, spatial, 32)
    _steps_are_smooth(old, new, dim=0)
    # every spatial position keeps its own values over time: time step 0 of the new table is close to the old one's
    assert (new[0] - old[0]).abs().max() < (new[0] - old[1]).abs().max()
    with torch.no_grad():
        assert model(pixel_values=_clips(12)).logits.shape == (2, 2)


def test_xclip_runs_at_another_frame_count():
    torch.manual_seed(0)
    model = XCLIPModel(tiny_xclip_config(len(tiny_tokenizer()))).eval()
    set_num_frames(model, 8)
    assert model.mit.position_embedding.shape[1] == 8 and model.config.vision_config.num_frames == 8
    tokens = tiny_tokenizer()(["a video of a dog.", "a video of a cat."], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"], pixel_values=_clips(8))
    assert out.logits_per_video.shape == (2, 2) and np.isfinite(out.logits_per_video.numpy()).all()


def test_vjepa2_needs_no_table_any_length_runs():
    from tiny_families import IMAGE_SIZE, VJEPA2_OVERRIDES

    model, _ = get_model(["a", "b"], model_type="vjepa2", config_overrides=VJEPA2_OVERRIDES, image_size=IMAGE_SIZE,
                         num_frames=4)
    assert set_num_frames(model, 8) and model.config.num_frames == 8
    with torch.no_grad():
        assert model(pixel_values_videos=_clips(8)).logits.shape == (2, 2)
