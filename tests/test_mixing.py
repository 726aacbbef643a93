"""Mixup / CutMix on video batches: label mass 1, box area = 1 - lambda, one box for every frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fine_tuning_models import one_compute_thread  # noqa: F401 (fixture)
from pipeline.training.mixing import VideoMixup, cutmix_box

pytestmark = pytest.mark.usefixtures("one_compute_thread")

B, T, C, H, W, K = 6, 5, 3, 20, 28, 4


def batch():
    # every clip holds its own index everywhere, so the source of every pixel is readable after mixing
    pixel_values = torch.arange(B, dtype=torch.float32).view(B, 1, 1, 1, 1).expand(B, T, C, H, W).contiguous()
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    return pixel_values, labels


def test_cutmix_pastes_one_box_in_every_frame_and_lambda_is_the_area_kept():
    mixer = VideoMixup(K, cutmix_alpha=1.0)
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        pixel_values, labels = batch()
        result = mixer(pixel_values, labels, generator=generator)
        top, bottom, left, right = result.box
        area = (bottom - top) * (right - left)
        assert result.lam == pytest.approx(1 - area / (H * W))
        inside = torch.zeros(H, W, dtype=torch.bool)
        inside[top:bottom, left:right] = True
        for i in range(B):
            partner = B - 1 - i
            clip = result.pixel_values[i]
            # the same box in every frame and channel: partner inside, itself outside
            assert bool((clip[:, :, inside] == partner).all()) and bool((clip[:, :, ~inside] == i).all())
            expected = torch.zeros(K)
            expected[labels[i]] += result.lam
            expected[labels[partner]] += 1 - result.lam
            torch.testing.assert_close(result.targets[i], expected)
        torch.testing.assert_close(result.targets.sum(1), torch.ones(B))
        assert torch.equal(pixel_values, batch()[0])  # the input batch is not changed in place


def test_mixup_blends_clips_and_labels_with_the_same_weight():
    mixer = VideoMixup(K, mixup_alpha=0.8)
    pixel_values, labels = batch()
    result = mixer(pixel_values, labels, generator=torch.Generator().manual_seed(3))
    lam = result.lam
    assert result.box is None and 0 < lam < 1
    for i in range(B):
        torch.testing.assert_close(result.pixel_values[i], torch.full((T, C, H, W), lam * i + (1 - lam) * (B - 1 - i)))
    torch.testing.assert_close(result.targets.sum(1), torch.ones(B))
    torch.testing.assert_close(result.targets[0, 0] + result.targets[0, 1], torch.tensor(1.0))  # labels 0 and 1


def test_lambda_follows_beta_alpha_alpha():
    mixer = VideoMixup(K, mixup_alpha=0.8)
    generator = torch.Generator().manual_seed(0)
    tiny, labels = torch.zeros(2, 1, 1, 1, 1), torch.tensor([0, 1])
    lams = np.array([mixer(tiny, labels, generator=generator).lam for _ in range(1500)])
    # Beta(0.8, 0.8): mean 1/2, variance 1 / (4 (2 alpha + 1)) = 0.096; 4-sigma bounds
    assert abs(lams.mean() - 0.5) < 4 * (0.096 / 1500) ** 0.5 and abs(lams.var() - 1 / (4 * 2.6)) < 0.012


def test_switch_and_prob():
    generator = torch.Generator().manual_seed(0)
    mixer = VideoMixup(K, mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5)
    tiny, labels = torch.zeros(2, 1, 1, 4, 4), torch.tensor([0, 1])
    boxes = sum(mixer(tiny, labels, generator=generator).box is not None for _ in range(400))
    assert abs(boxes - 200) < 4 * 10  # binomial(400, 1/2): std 10
    never = VideoMixup(K, mixup_alpha=0.8, cutmix_alpha=1.0, prob=0.0)
    pixel_values, labels = batch()
    result = never(pixel_values, labels, generator=generator)
    assert result.pixel_values is pixel_values and result.lam == 1.0
    assert torch.equal(result.targets, torch.nn.functional.one_hot(labels, K).float())


def test_box_is_clipped_at_the_borders_and_covers_about_one_minus_lambda():
    rng = np.random.default_rng(0)
    for lam in (0.0, 0.3, 0.7, 0.99):
        areas = []
        for _ in range(200):
            top, bottom, left, right = cutmix_box(H, W, lam, rng)
            assert 0 <= top <= bottom <= H and 0 <= left <= right <= W
            areas.append((bottom - top) * (right - left) / (H * W))
        assert max(areas) <= (1 - lam) + 0.1  # clipping only shrinks the box (rounding adds a little)


def test_rejects_what_it_cannot_mix():
    with pytest.raises(ValueError, match="B, T, C, H, W"):
        VideoMixup(K, mixup_alpha=1.0)(torch.zeros(2, 3, 8, 8), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="mixup_alpha"):
        VideoMixup(K, mixup_alpha=-1.0)
