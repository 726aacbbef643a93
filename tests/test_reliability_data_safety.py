"""User data survives: the demo builder never removes or overwrites a file it did not write, and the video probe
cache never stops a run nor hides a fixed file.

Run alone: ``python -m pytest -q tests/test_reliability_data_safety.py``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.configs import DataArguments
from pipeline.data import demo
from pipeline.data.demo import ensure_demo_dataset
from pipeline.data.demo_folder import DemoFolderConflict
from pipeline.data.metadata import probe_videos
from pipeline.data.sources import build_dataset
from synthetic_videos import write_video
from tiny_videomae import save_tiny_videomae

REPO = Path(__file__).resolve().parents[1]
TINY = dict(seed=5, clips_per_class=3, groups_per_class=3, num_frames=12)
OTHER = dict(TINY, num_frames=10)


def snapshot(root: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under ``root`` (the lock file aside)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != demo.LOCK_NAME}


@pytest.fixture
def tiny_demo(tmp_path) -> Path:
    return ensure_demo_dataset(tmp_path / "demo", **TINY, workers=1)


def plant_user_changes(root: Path) -> tuple[Path, Path]:
    """A clip the user added to a class folder and a train list the user edited (one line added)."""
    mine = write_video(root / "UCF-101" / "Grow" / "v_Grow_g09_c01.avi", "h264", 12)
    train_list = root / "ucfTrainTestlist" / "trainlist01.txt"
    train_list.write_text(train_list.read_text() + "Grow/v_Grow_g09_c01.avi 1\n")
    return mine, train_list


def test_demo_of_other_settings_with_a_user_file_and_edited_list_is_left_untouched(tiny_demo):
    mine, train_list = plant_user_changes(tiny_demo)
    before = snapshot(tiny_demo)
    with pytest.raises(DemoFolderConflict) as caught:
        ensure_demo_dataset(tiny_demo, **OTHER, workers=1)
    message = str(caught.value)
    assert "\n" not in message
    assert "UCF-101/Grow/v_Grow_g09_c01.avi (not written by the generator)" in message
    assert "ucfTrainTestlist/trainlist01.txt (changed since it was generated)" in message
    assert "num_frames 12 -> 10" in message and "Nothing was changed" in message
    assert snapshot(tiny_demo) == before  # not one byte lost, added or rewritten


@pytest.mark.slow
def test_the_training_and_evaluation_entry_points_refuse_too(tiny_demo, tmp_path):
    """dataset: demo (the demo recipe) and pipeline.evaluation --dataset demo ask for the default settings."""
    plant_user_changes(tiny_demo)
    before = snapshot(tiny_demo)
    with pytest.raises(DemoFolderConflict, match="v_Grow_g09_c01.avi"):
        build_dataset(DataArguments(dataset="demo", dataset_dir=str(tiny_demo)))
    model = save_tiny_videomae(tmp_path / "model")
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.evaluation", "--model", str(model), "--dataset", "demo",
         "--dataset_dir", str(tiny_demo), "--output_dir", str(tmp_path / "eval")],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("python -m pipeline.evaluation: error: demo dataset:") and "Traceback" not in result.stderr
    assert snapshot(tiny_demo) == before


def test_a_demo_that_is_all_the_generators_own_is_regenerated_and_nothing_else_touched(tmp_path):
    root = ensure_demo_dataset(tmp_path / "demo", **dict(TINY, clips_per_class=4), workers=1)
    notes = root / "my_notes.txt"  # beside the dataset folders: never looked at
    notes.write_text("keep me")
    stale = root / "UCF-101" / "Grow" / "v_Grow_g01_c02.avi"
    assert stale.is_file()
    ensure_demo_dataset(root, **TINY, workers=1)
    manifest = json.loads((root / demo.MANIFEST_NAME).read_text())
    assert manifest["params"]["clips_per_class"] == 3
    assert not stale.exists()  # the generator's own file of the old settings, not part of the new ones
    assert notes.read_text() == "keep me"
    assert set(manifest["files"]) == {p for p in snapshot(root) if p.startswith(("UCF-101/", "ucfTrain"))}


def test_manifest_without_hashes_still_protects_edited_lists(tiny_demo):
    """A demo written before file hashes were recorded: split lists are compared with what the generator
    writes, videos by modification time."""
    path = tiny_demo / demo.MANIFEST_NAME
    manifest = json.loads(path.read_text())
    del manifest["files"]
    path.write_text(json.dumps(manifest))
    test_list = tiny_demo / "ucfTrainTestlist" / "testlist01.txt"
    test_list.write_text(test_list.read_text().splitlines()[0] + "\n")  # the user kept one test video
    before = snapshot(tiny_demo)
    with pytest.raises(DemoFolderConflict, match=r"testlist01\.txt \(edited since it was generated\)"):
        ensure_demo_dataset(tiny_demo, **OTHER, workers=1)
    assert snapshot(tiny_demo) == before
    # restored to the generator's text: the folder is the generator's own again and may be regenerated
    test_list.write_text(demo.split_list_texts(demo.DemoParams(**TINY))["testlist01.txt"])
    ensure_demo_dataset(tiny_demo, **OTHER, workers=1)
    assert json.loads(path.read_text())["params"]["num_frames"] == 10


def test_interrupted_generation_is_finished_but_a_user_file_stops_it(tmp_path, monkeypatch):
    real_write, calls = demo.write_video, []

    def write_then_die(path, frames, fps):
        calls.append(path)
        if len(calls) == 4:
            raise KeyboardInterrupt("simulated kill")
        real_write(path, frames, fps)

    monkeypatch.setattr(demo, "write_video", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        ensure_demo_dataset(tmp_path, **TINY, workers=1)
    monkeypatch.setattr(demo, "write_video", real_write)
    mine = write_video(tmp_path / "UCF-101" / "Shrink" / "holiday.mp4", "h264", 12)
    before = snapshot(tmp_path)
    with pytest.raises(DemoFolderConflict, match=r"UCF-101/Shrink/holiday\.mp4 \(not written by the generator\)"):
        ensure_demo_dataset(tmp_path, **TINY, workers=1)
    assert snapshot(tmp_path) == before
    mine.unlink()
    root = ensure_demo_dataset(tmp_path, **TINY, workers=1)
    assert len(list(root.rglob("*.avi"))) == 8 * 3 and not (root / demo.IN_PROGRESS_NAME).exists()


def test_a_demo_with_missing_files_gets_only_those_written(tiny_demo):
    victim = next((tiny_demo / "UCF-101").rglob("*.avi"))
    victim.unlink()
    edited = tiny_demo / "UCF-101" / "MoveUp" / "v_MoveUp_g01_c01.avi"
    edited.write_bytes(edited.read_bytes()[:300])  # the user truncated one on purpose (a bad-input test)
    ensure_demo_dataset(tiny_demo, **TINY, workers=1)
    assert victim.is_file() and edited.stat().st_size == 300


# --- the video probe cache ------------------------------------------------------------------------------------

def test_corrupt_probe_cache_is_moved_aside_named_and_replaced(tmp_path, caplog):
    video = write_video(tmp_path / "clip.mp4", "h264", 20)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "video_info.sqlite").write_bytes(b"this is not a database" * 64)
    with caplog.at_level(logging.WARNING, logger="pipeline.data.metadata"):
        results = probe_videos([str(video)], cache_dir=cache)
    assert results[str(video)].num_frames == 20
    aside = list(cache.glob("video_info.sqlite.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == b"this is not a database" * 64  # kept, not deleted
    assert str(cache / "video_info.sqlite") in caplog.text and "not a readable database" in caplog.text
    assert probe_videos([str(video)], cache_dir=cache)[str(video)].num_frames == 20  # the new cache works


def test_unwritable_cache_folder_only_costs_the_cache(tmp_path, caplog):
    video = write_video(tmp_path / "clip.mp4", "h264", 20)
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder should be")
    with caplog.at_level(logging.WARNING, logger="pipeline.data.metadata"):
        results = probe_videos([str(video)], cache_dir=blocker / "cache")
    assert results[str(video)].num_frames == 20
    assert "cannot be used" in caplog.text and "without a cache" in caplog.text


def test_a_failed_probe_is_retried_on_the_next_run_even_with_the_same_size_and_mtime(tmp_path):
    """What chmod does to a file that failed with "Permission denied": fixed, with size and mtime unchanged."""
    good = write_video(tmp_path / "good.mp4", "h264", 20)
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\0" * good.stat().st_size)
    os.utime(video, ns=(1_000_000_000, 1_000_000_000))
    cache = tmp_path / "cache"
    assert isinstance(probe_videos([str(video)], cache_dir=cache)[str(video)], str)
    video.write_bytes(good.read_bytes())  # same size
    os.utime(video, ns=(1_000_000_000, 1_000_000_000))  # same mtime
    assert probe_videos([str(video)], cache_dir=cache)[str(video)].num_frames == 20


def test_a_file_replaced_by_another_video_of_the_same_size_and_mtime_is_probed_again(tmp_path):
    """The probe cache is keyed by content too: a readable video replaced by a damaged one of exactly the same
    size, its mtime restored, is probed again (and the reverse), never answered from the old entry."""
    video = write_video(tmp_path / "clip.avi", "xvid_gop12", 40)
    stamp = video.stat().st_mtime_ns
    cache = tmp_path / "cache"
    first = probe_videos([str(video)], cache_dir=cache)[str(video)]
    assert first.num_frames == 40 and not first.damage
    data = bytearray(video.read_bytes())
    data[len(data) // 2:] = bytes(len(data) - len(data) // 2)  # the second half zeroed: same size
    video.write_bytes(bytes(data))
    os.utime(video, ns=(stamp, stamp))
    assert video.stat().st_size == len(data) and video.stat().st_mtime_ns == stamp
    second = probe_videos([str(video)], cache_dir=cache)[str(video)]
    assert isinstance(second, str) or second.num_frames < 40 or second.damage, second
    good = write_video(tmp_path / "again.avi", "xvid_gop12", 40)
    video.write_bytes(good.read_bytes())
    os.utime(video, ns=(stamp, stamp))
    assert probe_videos([str(video)], cache_dir=cache)[str(video)].num_frames == 40
