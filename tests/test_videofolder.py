"""`<root>/<label>/<video>` folders: sorted labels, stratified group-aware splits, predefined splits."""

from collections import Counter, defaultdict
from pathlib import Path

import pytest

from pipeline.data.videofolder import load_video_folder


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def write_tree(root: Path, grouped=("Walk", "Jump", "Clap"), groups=10, clips=3, plain=20) -> Path:
    """UCF-named classes (whole groups of `clips` clips) plus one class of ungrouped names."""
    for cls in grouped:
        for g in range(1, groups + 1):
            for c in range(1, clips + 1):
                touch(root / cls / f"v_{cls}_g{g:02d}_c{c:02d}.avi")
    for i in range(plain):
        touch(root / "Wave" / f"clip_{i:03d}.mp4")
    touch(root / "Wave" / "notes.txt")          # not a video
    touch(root / "Wave" / ".hidden.mp4")        # hidden files are ignored
    touch(root / "Wave" / "nested" / "UPPER.MP4")  # extensions match case-insensitively, subfolders count
    return root


def groups_per_label(split):
    found = defaultdict(set)
    for label, group in zip(split["label"], split["group"]):
        found[label].add(group)
    return found


def test_labels_sorted_and_splits_stratified_and_group_disjoint(tmp_path):
    root = write_tree(tmp_path)
    data = load_video_folder(root, validation_fraction=0.1, test_fraction=0.2, seed=0)
    assert list(data) == ["train", "validation", "test"]
    names = data["train"].features["label"].names
    assert names == ["Clap", "Jump", "Walk", "Wave"]

    videos = [v for name in data for v in data[name]["video"]]
    assert len(videos) == len(set(videos)) == 3 * 10 * 3 + 21
    assert all(Path(v).is_absolute() and Path(v).parent.name in (*names, "nested") for v in videos)
    assert not any(v.endswith(("notes.txt", ".hidden.mp4")) for v in videos)

    # Per class: 10 groups -> 2 test, 1 validation; 21 ungrouped Wave clips -> 4 test, 2 validation.
    wave = names.index("Wave")
    for split, grouped_count, wave_count in (("test", 2, 4), ("validation", 1, 2)):
        per_label = groups_per_label(data[split])
        assert {label: len(g) for label, g in per_label.items()} == {0: grouped_count, 1: grouped_count,
                                                                      2: grouped_count, wave: wave_count}
    # Whole groups only, and no group in two splits.
    group_sizes = Counter(g for name in data for g in data[name]["group"])
    assert all(size == 3 for g, size in group_sizes.items() if "_g" in g)
    splits_of_group = defaultdict(set)
    for name in data:
        for group in data[name]["group"]:
            splits_of_group[group].add(name)
    assert all(len(s) == 1 for s in splits_of_group.values())


def test_split_is_deterministic_for_a_seed(tmp_path):
    root = write_tree(tmp_path)
    first, again, other = (load_video_folder(root, seed=s) for s in (5, 5, 6))
    for name in first:
        assert list(first[name]["video"]) == list(again[name]["video"])
    assert set(first["test"]["group"]) != set(other["test"]["group"])


def test_zero_fractions_leave_the_splits_out(tmp_path):
    root = write_tree(tmp_path)
    data = load_video_folder(root, validation_fraction=0, test_fraction=0)
    assert list(data) == ["train"] and len(data["train"]) == 111


def test_predefined_split_folders_are_used_as_given(tmp_path):
    for split, groups in (("train", range(1, 6)), ("val", range(6, 8)), ("test", range(8, 10))):
        for cls in ("b_run", "a_sit"):
            for g in groups:
                touch(tmp_path / split / cls / f"v_{cls}_g{g:02d}_c01.avi")
    touch(tmp_path / "test" / "c_only_in_test" / "x.avi")
    data = load_video_folder(tmp_path, validation_fraction=0.5, test_fraction=0.5)
    assert {k: len(v) for k, v in data.items()} == {"train": 10, "validation": 4, "test": 5}
    assert data["test"].features["label"].names == ["a_sit", "b_run", "c_only_in_test"]
    assert all("/val/" in v for v in data["validation"]["video"])
    assert sorted(data["test"]["label"]) == [0, 0, 1, 1, 2]


def test_missing_predefined_validation_is_carved_from_train(tmp_path):
    for cls in ("x", "y"):
        for g in range(1, 11):
            touch(tmp_path / "train" / cls / f"v_{cls}_g{g:02d}_c01.avi")
        touch(tmp_path / "test" / cls / f"v_{cls}_g11_c01.avi")
    data = load_video_folder(tmp_path, validation_fraction=0.2, test_fraction=0.3)
    assert {k: len(v) for k, v in data.items()} == {"train": 16, "validation": 4, "test": 2}


def test_missing_or_empty_root_fails_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent"):
        load_video_folder(tmp_path / "absent")
    touch(tmp_path / "empty" / "cls" / "readme.txt")
    with pytest.raises(FileNotFoundError, match="empty"):
        load_video_folder(tmp_path / "empty")
