"""Class balance: loss weights and sampler frequencies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.training.sampling_weights import BalancedSampler, balanced_class_weights, class_counts

LABELS = [0] * 60 + [1] * 30 + [2] * 8 + [3] * 2  # 100 videos, very unequal classes


def test_balanced_weights_are_inverse_frequencies_averaging_one():
    weights = balanced_class_weights(LABELS, 5).numpy()  # class 4 has no video
    counts = class_counts(LABELS, 5)
    np.testing.assert_allclose(weights[:4], 100 / (4 * counts[:4]), rtol=1e-6)
    assert weights[4] == 1.0
    # every present class carries the same total weight, and the mean weight per video is 1
    np.testing.assert_allclose(weights[:4] * counts[:4], 25.0, rtol=1e-6)
    assert np.mean(weights[LABELS]) == pytest.approx(1.0)


def test_sampler_draws_every_class_equally_often():
    sampler = BalancedSampler(LABELS, 4, num_samples=20000, seed=0)
    drawn = np.asarray(LABELS)[list(sampler)]
    frequencies = np.bincount(drawn, minlength=4) / len(drawn)
    # 1/4 each, within 4 standard deviations of a binomial over 20,000 draws
    assert np.all(np.abs(frequencies - 0.25) < 4 * np.sqrt(0.25 * 0.75 / 20000)), frequencies
    assert len(sampler) == 20000


def test_sampler_depends_on_seed_and_epoch_only():
    def draws(seed, epoch):
        sampler = BalancedSampler(LABELS, 4, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert draws(1, 3) == draws(1, 3)  # what every process of a distributed run draws
    assert draws(1, 3) != draws(1, 4) and draws(1, 3) != draws(2, 3)
    # without set_epoch, consecutive epochs still differ (and follow the same sequence as with it)
    sampler = BalancedSampler(LABELS, 4, seed=1)
    assert [list(sampler), list(sampler)] == [draws(1, 0), draws(1, 1)]
    assert len(draws(1, 0)) == len(LABELS)


def test_bad_labels_are_named():
    with pytest.raises(ValueError, match="labels must lie in"):
        class_counts([0, 7], 4)
