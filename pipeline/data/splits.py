"""Group-aware, class-stratified splitting of a labelled video list.

Clips that share a group (in UCF101: cut from one long video) look alike, so a
held-out split must take whole groups or its accuracy is inflated. Groups are
split per class, which keeps every split balanced over classes.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping, Sequence
from pathlib import PurePath

import numpy as np
from datasets import ClassLabel, Features, Value

logger = logging.getLogger(__name__)

# v_<Class>_g<GG>_c<CC>: the UCF101 (and HMDB-style derivative) clip naming.
UCF_NAME_PATTERN = re.compile(r"^v_(?P<cls>.+)_g(?P<group>\d+)_c(?P<clip>\d+)$", re.IGNORECASE)


def video_features(class_names: Sequence[str]) -> Features:
    """The columns every dataset source yields: video path, ClassLabel label, group id."""
    return Features(
        {"video": Value("string"), "label": ClassLabel(names=list(class_names)), "group": Value("string")}
    )


def parse_ucf_group(path: str | PurePath) -> str | None:
    """Return "<Class>_gNN" for a UCF-style file name (v_<Class>_gNN_cMM.ext), else None."""
    match = UCF_NAME_PATTERN.match(PurePath(path).stem)
    if match is None:
        return None
    return f"{match['cls']}_g{int(match['group']):02d}"


def _round_half_up(x: float) -> int:
    # Python's round() rounds 2.5 to 2; a fraction of groups should round 2.5 up.
    return int(math.floor(x + 0.5))


def _holdout_counts(num_groups: int, fractions: Sequence[float]) -> list[int]:
    """Groups of one class to give each held-out split; the rest (at least one) stays in train.

    Each split with a positive fraction gets about fraction x num_groups groups and at
    least one while groups remain; when a class has too few groups the later splits
    lose out first, so train keeps one group and the first-named split is served first.
    """
    wanted = [max(1, _round_half_up(f * num_groups)) if f > 0 else 0 for f in fractions]
    available = num_groups - 1
    counts = []
    for want in wanted:
        take = min(want, available)
        counts.append(take)
        available -= take
    return counts


def group_stratified_split(
    labels: Sequence[int],
    groups: Sequence[Hashable | None],
    fractions: Mapping[str, float],
    seed: int = 42,
    remainder: str = "train",
) -> dict[str, np.ndarray]:
    """Split example indices into `remainder` plus one split per entry of `fractions`.

    Per class, about `fraction` x (number of groups of that class) whole groups go to each
    named split (at least one when the fraction is positive and the class has a group to
    spare); everything else goes to `remainder`. A group whose examples carry several
    labels is assigned by its most frequent label and moves as a whole. An example whose
    group is None is a group of its own. Deterministic for a seed, and a class's choice
    does not depend on the other classes. Returns sorted int64 index arrays.
    """
    if len(labels) != len(groups):
        raise ValueError(f"labels ({len(labels)}) and groups ({len(groups)}) differ in length")
    for name, fraction in fractions.items():
        if not 0 <= fraction < 1:
            raise ValueError(f"fraction for split {name!r} must be in [0, 1), got {fraction}")
    if sum(fractions.values()) >= 1:
        raise ValueError(f"split fractions {dict(fractions)} leave nothing for {remainder!r}")
    if remainder in fractions:
        raise ValueError(f"split name {remainder!r} is used for the remainder")

    members: dict[Hashable, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        key = ("__own__", index) if group is None else group
        members[key].append(index)

    groups_of_class: dict[int, list[Hashable]] = defaultdict(list)
    for key, indices in members.items():
        label_counts = Counter(int(labels[i]) for i in indices)
        # most_common breaks ties by first occurrence; sort for a seed-stable choice.
        top = max(label_counts.values())
        groups_of_class[min(lab for lab, n in label_counts.items() if n == top)].append(key)

    names = list(fractions)
    assigned: dict[str, list[int]] = {name: [] for name in [remainder, *names]}
    starved: dict[str, list[int]] = defaultdict(list)
    for label in sorted(groups_of_class):
        keys = sorted(groups_of_class[label], key=repr)
        order = np.random.default_rng([seed, label]).permutation(len(keys))
        counts = _holdout_counts(len(keys), [fractions[n] for n in names])
        start = 0
        for name, count in zip(names, counts):
            if fractions[name] > 0 and count == 0:
                starved[name].append(label)
            for position in order[start:start + count]:
                assigned[name].extend(members[keys[position]])
            start += count
        for position in order[start:]:
            assigned[remainder].extend(members[keys[position]])

    for name, classes in starved.items():
        logger.warning(
            "split %r: %d class(es) have too few groups to hold one out (label ids %s)",
            name, len(classes), classes[:20],
        )
    return {name: np.asarray(sorted(indices), dtype=np.int64) for name, indices in assigned.items()}


def split_dataset(dataset, fractions: Mapping[str, float], seed: int = 42, remainder: str = "train") -> dict:
    """Split a `datasets.Dataset` with `label` and `group` columns by `group_stratified_split`.

    Returns {remainder: Dataset, name: Dataset, ...}; splits whose fraction is 0 are left out.
    """
    parts = group_stratified_split(
        list(dataset["label"]), list(dataset["group"]), fractions, seed=seed, remainder=remainder
    )
    return {
        name: dataset.select(indices)
        for name, indices in parts.items()
        if name == remainder or fractions[name] > 0
    }
