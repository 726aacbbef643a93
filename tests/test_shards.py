"""The shard writer (pipeline.data.shards) and the streams read from its shards (pipeline.data.streaming)."""

import json
import tarfile
from collections import Counter

import numpy as np
import pytest

from pipeline.configs import DataArguments
from pipeline.data.shards import MANIFEST_NAME, ShardArguments, write_shards
from pipeline.data.streaming import load_webdataset, split_length, training_stream, video_source
from pipeline.inference.decoding import decode_frames, probe_video
from synthetic_videos import sequential_frames, write_video

CLASSES = ("jump", "run", "wave")
# video kinds of different containers and layouts, one per group: the shards keep each file's bytes as they are
KINDS = ("xvid_gop12", "h264", "xvid_packed", "h264_vfr_mkv")
SUFFIX = {"h264": ".mp4", "h264_vfr_mkv": ".mkv"}


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    """3 classes x 4 groups x 2 clips of synthetic videos, UCF-style names (groups kept together by the splits)."""
    root = tmp_path_factory.mktemp("folder")
    for label in CLASSES:
        for group, kind in enumerate(KINDS, start=1):
            for clip in (1, 2):
                path = root / label / f"v_{label}_g{group:02d}_c{clip:02d}{SUFFIX.get(kind, '.avi')}"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_video(path, kind, 20 + 3 * group + clip)
    return root


def _write(folder, out, **shard_settings):
    data_args = DataArguments(dataset="videofolder", dataset_dir=str(folder), validation_fraction=0.25,
                              test_fraction=0.25, split_seed=3)
    return write_shards(data_args, ShardArguments(output_dir=str(out), **shard_settings), probe_num_proc=None)


@pytest.fixture(scope="module")
def shards(video_folder, tmp_path_factory, monkeypatch_module):
    root = tmp_path_factory.mktemp("shards")
    manifest = _write(video_folder, root / "a", shard_size_mb=0.02, min_shards=2)
    return root / "a", manifest


@pytest.fixture(scope="module")
def monkeypatch_module(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    # the probe cache goes to a temporary folder, not the user's ~/.cache
    patch.setattr("pipeline.data.metadata.DEFAULT_CACHE_DIR", tmp_path_factory.mktemp("probe_cache"))
    yield patch
    patch.undo()


def _members(path):
    with tarfile.open(path) as tar:
        return [(m, tar.extractfile(m).read()) for m in tar.getmembers()]


def test_same_input_and_settings_give_the_same_bytes(video_folder, shards, tmp_path):
    first, manifest = shards
    second = tmp_path / "b"
    _write(video_folder, second, shard_size_mb=0.02, min_shards=2)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    assert len([n for n in names if n.endswith(".tar")]) == sum(len(s["shards"]) for s in manifest["splits"].values())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    # other settings, other shards (the comparison can fail)
    third = tmp_path / "c"
    _write(video_folder, third, shard_size_mb=0.02, min_shards=3)
    assert (third / MANIFEST_NAME).read_bytes() != (first / MANIFEST_NAME).read_bytes()


def test_members_have_fixed_metadata_and_untouched_bytes(video_folder, shards):
    root, manifest = shards
    for split in manifest["splits"].values():
        for shard in split["shards"]:
            members = _members(root / shard["file"])
            assert len(members) == 2 * shard["samples"]
            for (video, data), (meta, text) in zip(members[::2], members[1::2]):
                for member in (video, meta):
                    assert (member.mtime, member.uid, member.gid, member.uname, member.gname, member.mode) == (
                        0, 0, 0, "", "", 0o644)
                key = video.name.rsplit(".", 1)[0]
                assert video.name == f"{key}.video" and meta.name == f"{key}.json" and "." not in key
                record = json.loads(text)
                source = video_folder / record["label"] / record["name"]
                assert data == source.read_bytes()  # the original container, byte for byte
                assert record["label"] == CLASSES[record["label_id"]]
                assert record["group"] == f"{record['label']}_g{record['name'].split('_g')[1][:2]}"
                assert record["video_info"] == probe_video(source).to_dict()  # training never probes


def test_manifest_counts_classes_and_split_definition(video_folder, shards):
    root, manifest = shards
    assert manifest["class_names"] == list(CLASSES)
    assert manifest["source"]["dataset"] == "videofolder" and manifest["source"]["split_seed"] == 3
    assert manifest["source"]["validation_fraction"] == 0.25
    total = 0
    groups = {}
    for name, split in manifest["splits"].items():
        labels, keys = Counter(), []
        for shard in split["shards"]:
            members = _members(root / shard["file"])
            assert shard["bytes"] == (root / shard["file"]).stat().st_size
            records = [json.loads(text) for _, text in members[1::2]]
            labels.update(r["label"] for r in records)
            keys += [m.name for m, _ in members[::2]]
            for r in records:
                groups.setdefault(r["group"], set()).add(name)
        assert dict(labels) == {k: v for k, v in split["per_class"].items() if v}
        assert sum(s["samples"] for s in split["shards"]) == split["samples"] == len(set(keys))
        counts = [s["samples"] for s in split["shards"]]
        assert max(counts) - min(counts) <= 1  # balanced shards
        assert split["bytes"] == sum(s["bytes"] for s in split["shards"])
        total += split["samples"]
    assert total == len(CLASSES) * len(KINDS) * 2
    assert all(len(splits) == 1 for splits in groups.values())  # a group never straddles two splits
    assert set(manifest["splits"]) == {"train", "validation", "test"}
    assert len(manifest["splits"]["train"]["shards"]) >= 2


def test_writer_refuses_a_folder_that_already_holds_shards(video_folder, shards):
    root, _ = shards
    with pytest.raises(FileExistsError, match="already holds shards"):
        _write(video_folder, root)


def test_streams_yield_every_video_once_with_labels_and_probe(video_folder, shards, tmp_path):
    root, manifest = shards
    streams = load_webdataset(str(root), cache_dir=str(tmp_path / "hf"))
    assert list(streams) == ["train", "validation", "test"]
    assert streams["train"].features["label"].names == list(CLASSES)
    for name, stream in streams.items():
        rows = list(stream)
        assert split_length(stream) == manifest["splits"][name]["samples"] == len(rows)
        assert len({row["video"]["path"] for row in rows}) == len(rows)
        for i, row in enumerate(rows[:3]):
            info = row["video_info"]
            source = video_source(row["video"])
            copy = tmp_path / f"{name}{i}.video"
            copy.write_bytes(row["video"]["bytes"])
            reference = sequential_frames(copy)
            indices = np.array([info["num_frames"] - 1, 0, 5])
            assert np.array_equal(decode_frames(source, indices, info=info), reference[indices])
    # a glob picks shards of the same folder (and their manifest)
    only = load_webdataset(str(root / "train-*.tar"), cache_dir=str(tmp_path / "hf"))
    assert list(only) == ["train"]


def test_training_stream_is_shuffled_per_epoch_and_complete(shards, tmp_path):
    root, manifest = shards
    stream = load_webdataset(str(root), cache_dir=str(tmp_path / "hf"))["train"]

    def names(batch):
        return {"name": [v["path"] for v in batch["video"]]}

    shuffled = training_stream(stream, names, batch_size=4, seed=0, shuffle_buffer_size=100)
    first = [row["name"] for row in shuffled]
    shuffled.set_epoch(1)
    second = [row["name"] for row in shuffled]
    plain = [row["video"]["path"] for row in stream]
    assert sorted(first) == sorted(second) == sorted(plain) and len(plain) == manifest["splits"]["train"]["samples"]
    assert first != plain and first != second


def test_a_missing_manifest_is_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.json not found.*pipeline.data.shards"):
        load_webdataset(str(tmp_path))


def test_a_resumed_stream_continues_without_repeats(shards, tmp_path):
    # what the Trainer does on resume: skip the batches of the epoch already trained on (accelerate's
    # skip_first_batches), in a fresh loader; a seeded stream gives the same order again
    from accelerate import skip_first_batches
    from torch.utils.data import DataLoader

    root, manifest = shards

    def names(batch):
        return {"name": [v["path"] for v in batch["video"]]}

    def loader():
        stream = load_webdataset(str(root), cache_dir=str(tmp_path / "hf"))["train"]
        stream = training_stream(stream, names, batch_size=2, seed=7, shuffle_buffer_size=5)
        stream.set_epoch(1)
        return DataLoader(stream, batch_size=2, num_workers=2, collate_fn=lambda rows: [r["name"] for r in rows])

    full = list(loader())
    resumed = list(skip_first_batches(loader(), 3))
    assert resumed == full[3:]
    seen = [name for batch in full[:3] + resumed for name in batch]
    assert len(seen) == len(set(seen)) == manifest["splits"]["train"]["samples"]


def test_hf_dataset_streamed_with_bytes_in_memory(video_folder, tmp_path):
    # a dataset whose videos are stored in its Parquet files (what the Hub holds), read with streaming=True
    import datasets

    from pipeline.data.sources import build_dataset

    features = datasets.Features({"video": datasets.Video(), "label": datasets.ClassLabel(names=list(CLASSES))})
    folder = tmp_path / "parquet"
    folder.mkdir()
    expected = {}
    for split, groups in (("train", (1, 2)), ("validation", (3,)), ("test", (4,))):
        rows = [{"video": {"bytes": path.read_bytes(), "path": path.name}, "label": CLASSES.index(label)}
                for label in CLASSES for group in groups
                for path in sorted((video_folder / label).glob(f"v_{label}_g{group:02d}_*"))]
        datasets.Dataset.from_list(rows, features=features).to_parquet(str(folder / f"{split}.parquet"))
        expected[split] = {row["video"]["path"]: row for row in rows}
    data_args = DataArguments(dataset="hf", dataset_dir=str(folder), streaming=True)
    streams = build_dataset(data_args)
    assert list(streams) == ["train", "validation", "test"]
    assert streams["test"].features["label"].names == list(CLASSES)
    for split, stream in streams.items():
        rows = list(stream)
        assert len(rows) == len(expected[split])
        for row in rows:
            source = expected[split][row["video"]["path"]]
            assert row["video"]["bytes"] == source["video"]["bytes"] and row["label"] == source["label"]
            assert row["group"] == row["video"]["path"].rsplit("_c", 1)[0][2:]  # UCF-style name: Class_gNN
        row = rows[0]
        info = probe_video(video_source(row["video"]))  # no stored probe: probed from memory
        original = video_folder / CLASSES[row["label"]] / row["video"]["path"]
        assert info.to_dict() == probe_video(original).to_dict()
    assert not (tmp_path / "parquet" / "extracted_videos").exists()
