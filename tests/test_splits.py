"""Group-aware, class-stratified splitting."""

import logging
from collections import defaultdict

import numpy as np
import pytest

from pipeline.data.splits import group_stratified_split, parse_ucf_group


def make(groups_per_class, clips=2):
    """labels and groups for classes with the given numbers of groups of `clips` clips."""
    labels, groups = [], []
    for label, count in enumerate(groups_per_class):
        for g in range(count):
            labels += [label] * clips
            groups += [f"c{label}_g{g}"] * clips
    return labels, groups


def held_groups(parts, labels, groups):
    per = {name: defaultdict(set) for name in parts}
    for name, indices in parts.items():
        for i in indices:
            per[name][labels[i]].add(groups[i])
    return per


def test_counts_per_class_round_half_up_with_at_least_one_and_train_keeps_one():
    labels, groups = make([20, 5, 2, 1])
    parts = group_stratified_split(labels, groups, {"test": 0.25, "validation": 0.1}, seed=0)
    per = held_groups(parts, labels, groups)
    counts = {name: {lab: len(per[name][lab]) for lab in range(4)} for name in parts}
    # 20 groups: 5 test, 2 val; 5 groups: 1.25 -> 1 test, 0.5 -> 1 val; 2 groups: 1 test, none left for
    # val; 1 group: stays in train.
    assert counts["test"] == {0: 5, 1: 1, 2: 1, 3: 0}
    assert counts["validation"] == {0: 2, 1: 1, 2: 0, 3: 0}
    assert counts["train"] == {0: 13, 1: 3, 2: 1, 3: 1}
    # Every index exactly once.
    assert sorted(np.concatenate(list(parts.values()))) == list(range(len(labels)))


def test_groups_are_never_split_and_mixed_groups_follow_their_majority_label():
    labels = [0, 0, 1] + [0, 0] * 5 + [1, 1] * 5
    groups = ["mixed"] * 3 + [f"a{i // 2}" for i in range(10)] + [f"b{i // 2}" for i in range(10)]
    for seed in range(10):
        parts = group_stratified_split(labels, groups, {"validation": 0.5}, seed=seed)
        side = {}
        for name, indices in parts.items():
            for i in indices:
                assert side.setdefault(groups[i], name) == name
        per = held_groups(parts, labels, groups)
        # class 0 owns 6 groups (a0..a4 and "mixed"): 3 held out; class 1 owns 5: 2.5 -> 3.
        assert sum(len(g) for g in per["validation"].values()) - ("mixed" in per["validation"][1]) == 6


def test_examples_without_group_are_groups_of_one():
    labels = [0] * 10 + [1] * 10
    parts = group_stratified_split(labels, [None] * 20, {"test": 0.3}, seed=0)
    assert np.bincount(np.asarray(labels)[parts["test"]]).tolist() == [3, 3]


def test_deterministic_per_class_and_seed_sensitive():
    labels, groups = make([12, 12])
    base = group_stratified_split(labels, groups, {"validation": 0.25}, seed=3)
    again = group_stratified_split(labels, groups, {"validation": 0.25}, seed=3)
    assert all(np.array_equal(base[k], again[k]) for k in base)
    other = group_stratified_split(labels, groups, {"validation": 0.25}, seed=4)
    assert not np.array_equal(base["validation"], other["validation"])
    # Adding a class does not change what the existing classes hold out.
    more_labels, more_groups = make([12, 12, 7])
    grown = group_stratified_split(more_labels, more_groups, {"validation": 0.25}, seed=3)
    assert set(grown["validation"][grown["validation"] < 48]) == set(base["validation"])


def test_starved_classes_are_logged(caplog):
    labels, groups = make([10, 1])
    with caplog.at_level(logging.WARNING, logger="pipeline.data.splits"):
        group_stratified_split(labels, groups, {"validation": 0.1}, seed=0)
    assert "1 class(es) have too few groups" in caplog.text and "[1]" in caplog.text


@pytest.mark.parametrize("fractions", [{"validation": 1.0}, {"validation": -0.1}, {"a": 0.6, "b": 0.4}])
def test_bad_fractions_are_rejected(fractions):
    with pytest.raises(ValueError):
        group_stratified_split([0, 0], ["g", "h"], fractions)


def test_parse_ucf_group():
    assert parse_ucf_group("/x/HandstandPushups/v_HandStandPushups_g08_c01.avi") == "HandStandPushups_g08"
    assert parse_ucf_group("V_Yo_Yo_g3_c12.mp4") == "Yo_Yo_g03"
    assert parse_ucf_group("clip_001.mp4") is None
