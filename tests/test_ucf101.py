"""UCF101 loader on a fake tree with the real naming, list formats and casing quirks."""

import logging
from collections import defaultdict
from pathlib import Path

import pytest
from fake_ucf101 import DEFAULT_CLASSES, clips_in_group, official_test_groups, write_fake_ucf101

from pipeline.data.ucf101 import load_ucf101


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return write_fake_ucf101(tmp_path_factory.mktemp("ucf"))


def group_keys(split):
    return {(row["label"], row["group"]) for row in split}


@pytest.mark.parametrize("split", [1, 2, 3])
def test_official_splits_are_group_disjoint_and_correctly_labelled(fake, split):
    data = load_ucf101(fake.root, split=split, validation_fraction=0.2, seed=0)
    assert list(data) == ["train", "validation", "test"]
    assert data["train"].features["label"].names == fake.class_names

    # Every listed video appears exactly once over the three splits, with classInd's label.
    all_videos = [v for name in data for v in data[name]["video"]]
    assert sorted(all_videos) == sorted(fake.label_of)
    for name in data:
        for video, label in zip(data[name]["video"], data[name]["label"]):
            assert label == fake.label_of[video], (name, video)

    groups = {name: set(data[name]["group"]) for name in data}
    assert not groups["train"] & groups["validation"]
    assert not groups["train"] & groups["test"]
    assert not groups["validation"] & groups["test"]

    # Test groups are exactly 7k-6..7k of every class, and nothing else.
    test_numbers = {fake.group_of[v] for v in data["test"]["video"]}
    expected = {(label, g) for label in range(len(DEFAULT_CLASSES)) for g in official_test_groups(split)}
    assert test_numbers == expected

    # Group ids use classInd's spelling whatever the file casing.
    assert "HandstandPushups_g08" in groups["train"] | groups["validation"] | groups["test"]


def test_validation_holds_out_whole_groups_balanced_over_classes(fake):
    data = load_ucf101(fake.root, split=1, validation_fraction=0.1, seed=3)
    held = defaultdict(set)
    for row in data["validation"]:
        held[row["label"]].add(row["group"])
    # 18 train groups per class; 0.1 x 18 = 1.8 -> 2 groups held out of every class.
    assert {label: len(g) for label, g in held.items()} == {label: 2 for label in range(len(DEFAULT_CLASSES))}
    # Whole groups: every clip of a held-out group is in validation.
    for label, group_ids in held.items():
        for group_id in group_ids:
            number = int(group_id.rsplit("_g", 1)[1])
            clips = [v for v in data["validation"]["video"] if fake.group_of[v] == (label, number)]
            assert len(clips) == clips_in_group(label, number)


def test_validation_is_deterministic_for_a_seed_and_varies_with_it(fake):
    first = load_ucf101(fake.root, split=2, seed=7)
    again = load_ucf101(fake.root, split=2, seed=7)
    other = load_ucf101(fake.root, split=2, seed=8)
    assert list(first["validation"]["video"]) == list(again["validation"]["video"])
    assert set(first["validation"]["group"]) != set(other["validation"]["group"])


def test_small_fraction_still_holds_out_one_group_per_class(fake):
    data = load_ucf101(fake.root, split=1, validation_fraction=0.01)
    assert len(group_keys(data["validation"])) == len(DEFAULT_CLASSES)


def test_zero_fraction_gives_no_validation_split(fake):
    data = load_ucf101(fake.root, split=3, validation_fraction=0)
    assert list(data) == ["train", "test"]
    assert len(data["train"]) + len(data["test"]) == len(fake.label_of)


def test_accepts_the_class_folder_root_and_an_explicit_splits_dir(fake):
    from_parent = load_ucf101(fake.root, split=1)
    from_videos = load_ucf101(fake.videos_dir, split=1, splits_dir=fake.splits_dir)
    assert list(from_parent["test"]["video"]) == list(from_videos["test"]["video"])


def test_missing_videos_are_listed_or_skipped_with_a_count(tmp_path, caplog):
    fake = write_fake_ucf101(tmp_path, groups_per_class=8, splits=(1,))
    gone = sorted(p for p in fake.label_of if "_g02_" in p or "_g08_" in p)
    for path in gone:
        Path(path).unlink()

    with pytest.raises(FileNotFoundError) as error:
        load_ucf101(tmp_path, split=1)
    message = str(error.value)
    assert f"{len(gone)} video(s)" in message
    assert "HandstandPushups/v_HandStandPushups_g08_c01.avi (trainlist01.txt:" in message
    assert message.count(".avi (") == 20  # the first 20 are listed by name
    assert f"... and {len(gone) - 20} more" in message

    with caplog.at_level(logging.WARNING, logger="pipeline.data.ucf101"):
        data = load_ucf101(tmp_path, split=1, on_missing="skip", validation_fraction=0)
    assert f"{len(gone)} video(s)" in caplog.text
    kept = [v for name in data for v in data[name]["video"]]
    assert sorted(kept) == sorted(set(fake.label_of) - set(gone))


def test_train_list_number_disagreeing_with_classind_is_an_error_naming_the_line(tmp_path):
    fake = write_fake_ucf101(tmp_path, groups_per_class=8, splits=(1,))
    train_list = fake.splits_dir / "trainlist01.txt"
    lines = train_list.read_bytes().decode().split("\r\n")
    lines[1] = lines[1].rsplit(" ", 1)[0] + " 3"  # an ApplyEyeMakeup (class 1) clip claimed as class 3
    train_list.write_bytes("\r\n".join(lines).encode())
    with pytest.raises(ValueError, match=r"trainlist01\.txt:2: .* class number 3 .*'ApplyEyeMakeup' as 1"):
        load_ucf101(tmp_path, split=1)


def test_missing_folders_and_split_files_fail_naming_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_ucf101(tmp_path / "nowhere")
    fake = write_fake_ucf101(tmp_path / "ucf", groups_per_class=8, splits=(1,))
    with pytest.raises(FileNotFoundError, match="trainlist02.txt"):
        load_ucf101(fake.root, split=2)
    (fake.splits_dir / "classInd.txt").unlink()
    with pytest.raises(FileNotFoundError, match="classInd.txt"):
        load_ucf101(fake.root, split=1)
    with pytest.raises(FileNotFoundError, match="ucfTrainTestlist"):
        load_ucf101(tmp_path)  # no UCF-101/ or ucfTrainTestlist/ here
