"""add_video_info: probe each video once, cache on disk, drop and report unreadable videos."""

import logging

import datasets
import numpy as np
import pytest

from pipeline.data import metadata
from pipeline.inference.decoding import VideoInfo, decode_frames
from synthetic_videos import write_video


@pytest.fixture()
def video_dir(tmp_path):
    good = [write_video(tmp_path / f"good{i}.avi", "xvid_gop12", 30 + 10 * i) for i in range(3)]
    (tmp_path / "zero.avi").write_bytes(b"")
    (tmp_path / "text.avi").write_text("not a video\n" * 50)
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(good[2].read_bytes()[:300])  # headers only: no decodable frame
    return tmp_path, [str(p) for p in good]


@pytest.fixture()
def count_probes(monkeypatch):
    calls = []
    original = metadata.probe_video

    def counting(path):
        calls.append(path)
        return original(path)

    monkeypatch.setattr(metadata, "probe_video", counting)
    return calls


def _dataset_dict(root, good):
    bad = [str(root / name) for name in ("zero.avi", "text.avi", "truncated.avi")]
    train = datasets.Dataset.from_dict({"video": good[:2] + bad[:2] + good[:1], "label": [0, 1, 0, 1, 0]})
    test = datasets.Dataset.from_dict({"video": [good[2], bad[2]], "label": [1, 1]})
    return datasets.DatasetDict(train=train, test=test), bad


def test_adds_info_removes_bad_rows_and_logs_each(video_dir, tmp_path_factory, count_probes, caplog):
    root, good = video_dir
    data, bad = _dataset_dict(root, good)
    cache = tmp_path_factory.mktemp("cache")
    with caplog.at_level(logging.WARNING, logger=metadata.__name__):
        out, removed = metadata.add_video_info(data, cache_dir=cache)
    assert isinstance(out, datasets.DatasetDict)
    assert out["train"]["video"] == [good[0], good[1], good[0]] and out["test"]["video"] == [good[2]]
    assert [info["num_frames"] for info in out["train"]["video_info"]] == [30, 40, 30]
    assert out["test"][0]["video_info"]["keyframes"] == [0, 12, 24, 36, 48]
    assert sorted(path for path, _ in removed) == sorted(bad)
    reasons = dict(removed)
    assert "empty" in reasons[bad[0]] and "not a readable video" in reasons[bad[1]]
    for path in bad:
        assert sum(path in record.getMessage() for record in caplog.records) == 1
    assert any("3 unreadable video(s) removed (3 row(s))" in record.getMessage() for record in caplog.records)
    assert sorted(count_probes) == sorted(good + bad)  # each distinct file probed exactly once

    # The stored info is what decode_frames needs, straight from the Arrow row.
    row = out["test"][0]
    frames = decode_frames(row["video"], [49, 13], info=VideoInfo.from_dict(row["video_info"]))
    assert frames.shape == (2, 48, 64, 3)

    count_probes.clear()
    again, removed_again = metadata.add_video_info(data, cache_dir=cache)
    # the readable files came from the cache; the unreadable ones are probed again (they may have been fixed
    # without a change of size or mtime, e.g. by chmod)
    assert sorted(count_probes) == sorted(bad)
    assert again["train"]["video_info"] == out["train"]["video_info"]
    assert sorted(removed_again) == sorted(removed)


def test_changed_file_is_probed_again(video_dir, tmp_path_factory, count_probes):
    root, good = video_dir
    dataset = datasets.Dataset.from_dict({"video": good})
    cache = tmp_path_factory.mktemp("cache")
    metadata.add_video_info(dataset, cache_dir=cache)
    write_video(good[1], "xvid_gop12", 55)  # rewritten: new size and mtime
    count_probes.clear()
    out, removed = metadata.add_video_info(dataset, cache_dir=cache)
    assert count_probes == [good[1]] and removed == []
    assert out["video_info"][1]["num_frames"] == 55


def test_parallel_probing_matches_serial(video_dir, tmp_path_factory):
    root, good = video_dir
    dataset = datasets.Dataset.from_dict({"video": [{"path": p, "bytes": None} for p in good]})
    serial, _ = metadata.add_video_info(dataset, cache_dir=tmp_path_factory.mktemp("a"))
    parallel, _ = metadata.add_video_info(dataset, num_proc=2, cache_dir=tmp_path_factory.mktemp("b"))
    assert parallel["video_info"] == serial["video_info"]
    assert np.all([info["fps"] == 25.0 for info in parallel["video_info"]])


def test_missing_column_is_named(video_dir, tmp_path):
    with pytest.raises(KeyError, match="clip"):
        metadata.add_video_info(datasets.Dataset.from_dict({"video": video_dir[1]}), video_column="clip",
                                cache_dir=tmp_path)
