"""`datasets` video datasets (save_to_disk folders, folders load_dataset reads) normalised for training."""

import csv
from pathlib import Path

import pytest
from datasets import ClassLabel, Dataset, Features, Value, Video

from pipeline.data.hf_video_dataset import load_hf_video_dataset

CLIP = Path(__file__).resolve().parents[2] / "shared" / "assets" / "clips" / "v_CricketShot_g04_c01.avi"


def write_videos(folder: Path, names, payload=b"") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / n for n in names]
    for i, p in enumerate(paths):
        p.write_bytes(payload + bytes([i]))  # distinct contents, so each file's round trip is checkable
    return paths


def test_save_to_disk_dataset_with_embedded_videos(tmp_path):
    names = [f"v_{c}_g{g:02d}_c{k:02d}.avi" for c in ("Run", "Walk") for g in range(1, 11) for k in (1, 2)]
    paths = write_videos(tmp_path / "src", names, payload=b"RIFF....AVI ")
    labels = [n.split("_")[1].lower() for n in names]
    features = Features({"clip": Video(), "action": Value("string"), "extra": Value("int64")})
    source = Dataset.from_dict({"clip": [str(p) for p in paths], "action": labels, "extra": list(range(40))},
                               features=features)
    source.save_to_disk(str(tmp_path / "saved"))  # embeds the video bytes in the Arrow files
    for p in paths:
        p.unlink()  # the loader must not depend on the original files

    data = load_hf_video_dataset(tmp_path / "saved", video_column="clip", label_column="action",
                                 validation_fraction=0.1, test_fraction=0.2, seed=1,
                                 videos_dir=tmp_path / "extracted")
    assert list(data) == ["train", "validation", "test"]
    assert data["train"].column_names == ["video", "label", "group"]
    assert data["train"].features["label"] == ClassLabel(names=["run", "walk"])

    rows = [row for name in data for row in data[name]]
    assert len(rows) == 40
    original_bytes = {n: b"RIFF....AVI " + bytes([i]) for i, n in enumerate(names)}
    for row in rows:
        video = Path(row["video"])
        assert video.is_relative_to(tmp_path / "extracted")
        assert video.read_bytes() == original_bytes[video.name]
        assert row["label"] == ["run", "walk"].index(video.name.split("_")[1].lower())
        assert row["group"] == video.name.rsplit("_c", 1)[0][2:]  # "Run_g03"
    # 10 groups of 2 clips per class: 2 test groups and 1 validation group each, never shared.
    assert len(data["test"]) == 2 * 2 * 2 and len(data["validation"]) == 2 * 1 * 2
    assert not set(data["train"]["group"]) & (set(data["test"]["group"]) | set(data["validation"]["group"]))


def test_folder_read_by_load_dataset_keeps_its_splits_and_paths(tmp_path):
    root = tmp_path / "folder"
    for split, count in (("train", 12), ("test", 3)):
        for label in ("squat", "lunge"):
            write_videos(root / split / label, [f"{label}_{i}.mp4" for i in range(count)])
    data = load_hf_video_dataset(root, validation_fraction=0.25, test_fraction=0.5, seed=0,
                                 cache_dir=tmp_path / "cache")
    assert {k: len(v) for k, v in data.items()} == {"train": 18, "validation": 6, "test": 6}
    names = data["train"].features["label"].names
    assert sorted(names) == ["lunge", "squat"]
    for name in data:
        for row in data[name]:
            video = Path(row["video"])
            assert video.is_file() and video.is_relative_to(root / ("test" if name == "test" else "train"))
            assert names[row["label"]] == video.parent.name
            assert row["group"] == row["video"]  # no UCF name: each video is its own group


def test_csv_folder_with_relative_paths_and_a_group_column(tmp_path):
    root = tmp_path / "csvset"
    paths = write_videos(root / "videos", [f"{i}.mp4" for i in range(24)])
    with open(root / "train.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "y", "subject"])
        for i, p in enumerate(paths):
            writer.writerow([f"videos/{p.name}", [10, 2, 7][i % 3], f"s{i // 2}"])  # integer labels
    data = load_hf_video_dataset(root, video_column="file", label_column="y", group_column="subject",
                                 validation_fraction=0, test_fraction=0.25, cache_dir=tmp_path / "cache")
    assert list(data) == ["train", "test"]
    assert data["train"].features["label"].names == ["2", "7", "10"]  # numeric order, not string order
    for row in data["train"]:
        assert Path(row["video"]).parent == root / "videos"
        assert [10, 2, 7][int(Path(row["video"]).stem) % 3] == [2, 7, 10][row["label"]]
    assert not set(data["train"]["group"]) & set(data["test"]["group"])


def test_missing_column_or_split_names_what_exists(tmp_path):
    Dataset.from_dict({"path": [str(CLIP)], "label": [0]}).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(KeyError, match=r"lacks column\(s\) \['video'\].*'path'"):
        load_hf_video_dataset(tmp_path / "d")
    with pytest.raises(KeyError, match="no split 'holdout'.*'train'"):
        load_hf_video_dataset(tmp_path / "d", video_column="path", test_split="holdout")
