"""Per-video metadata (frame count, fps, keyframe table) probed once and kept with the dataset.

`add_video_info` adds a "video_info" column (a `VideoInfo` as a dict) to a `datasets.Dataset` or
`DatasetDict`, so that no training sample re-probes its file, and removes the rows whose video cannot be read.
Probe results are cached on disk in an SQLite file keyed by absolute path, size, modification time (ns) and a
hash of the file's first and last FINGERPRINT_BLOCK bytes: a second run re-probes only new or changed files,
including a file replaced by another of the same size whose modification time was restored (``cp -p``, a
restored backup, ``touch -r``): its container header or index differs, so its key does. Only successful probes are cached: a file that could not be
read is probed again on the next run (fixing its permissions with chmod leaves size and mtime alone). A cache
file that is not a readable database is moved aside (named in a warning, never deleted) and a new one started;
a cache folder that cannot be written leaves the run without a cache, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import sqlite3
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Optional, Union

import datasets

from pipeline.inference.decoding import PROBE_FORMAT_VERSION, VideoDecodeError, VideoInfo, probe_video

logger = logging.getLogger(__name__)

INFO_COLUMN = "video_info"
DEFAULT_CACHE_DIR = Path(os.environ.get("VIDEO_PIPELINE_CACHE", Path.home() / ".cache" / "video_pipeline"))

# Arrow schema of the column: fixed, so that splits and runs agree even when a list is empty or all-None.
INFO_FEATURES = datasets.Features({
    "num_frames": datasets.Value("int64"),
    "fps": datasets.Value("float64"),
    "width": datasets.Value("int32"),
    "height": datasets.Value("int32"),
    "keyframes": datasets.List(datasets.Value("int64")),
    "keyframe_pts": datasets.List(datasets.Value("int64")),
    "keyframe_dts": datasets.List(datasets.Value("int64")),
    "keyframe_packets": datasets.List(datasets.Value("int64")),
    "skip_groups": datasets.List(datasets.List(datasets.Value("int64"))),
    "time_base": datasets.Value("string"),
    "codec": datasets.Value("string"),
    "duration": datasets.Value("float64"),
    "damage": datasets.Value("string"),
    "skip_note": datasets.Value("string"),
})

# Bytes hashed at each end of a file for its cache key: the container's header and its end (an MP4's index, an
# AVI's idx1) live there; two reads per file, whatever its size.
FINGERPRINT_BLOCK = 16 << 10

ProbeResult = Union[VideoInfo, str]  # a VideoInfo, or the reason the video is unreadable


def video_path(value) -> str:
    """The file path held in a video column cell: a path string, or a datasets Video(decode=False) dict."""
    if isinstance(value, dict):
        value = value.get("path")
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"video column holds {type(value).__name__}, expected a file path")
    return os.fspath(value)


def add_video_info(dataset_or_dict, video_column: str = "video", num_proc: Optional[int] = None,
                   cache_dir=None):
    """Add a "video_info" column and drop rows with unreadable videos.

    Returns (same type as the input, list of (path, reason) of the unreadable videos removed, one per file).
    num_proc > 1 probes in that many processes; cache_dir defaults to $VIDEO_PIPELINE_CACHE or
    ~/.cache/video_pipeline.
    """
    splits = dataset_or_dict if isinstance(dataset_or_dict, dict) else {None: dataset_or_dict}
    for name, split in splits.items():
        if video_column not in split.column_names:
            raise KeyError(f"split {name!r} has no column {video_column!r}; columns: {split.column_names}")
    paths = sorted({video_path(v) for split in splits.values() for v in split[video_column]})
    results = probe_videos(paths, num_proc=num_proc, cache_dir=cache_dir)
    unreadable = [(path, result) for path, result in results.items() if isinstance(result, str)]
    for path, reason in unreadable:
        logger.warning("Skipping unreadable video %s: %s", path, reason)
    for path, result in results.items():
        if not isinstance(result, str) and result.damage:
            logger.warning("Damaged video %s (%s): using its %d decodable frames", path, result.damage,
                           result.num_frames)

    out = {}
    removed_rows = 0
    for name, split in splits.items():
        column = [video_path(v) for v in split[video_column]]
        keep = [i for i, path in enumerate(column) if not isinstance(results[path], str)]
        removed_rows += len(column) - len(keep)
        if len(keep) != len(column):
            split = split.select(keep)
        if INFO_COLUMN in split.column_names:
            split = split.remove_columns(INFO_COLUMN)
        infos = [results[column[i]].to_dict() for i in keep]
        out[name] = split.add_column(INFO_COLUMN, infos, feature=INFO_FEATURES)
    if unreadable:
        logger.warning("%d unreadable video(s) removed (%d row(s))", len(unreadable), removed_rows)
    if isinstance(dataset_or_dict, datasets.DatasetDict):
        return datasets.DatasetDict(out), unreadable
    if isinstance(dataset_or_dict, dict):
        return out, unreadable
    return out[None], unreadable


def probe_videos(paths, num_proc: Optional[int] = None, cache_dir=None) -> dict[str, ProbeResult]:
    """Probe each path once (cached on disk); maps path -> VideoInfo, or -> reason string when unreadable."""
    cache = _ProbeCache(Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR)
    results: dict[str, ProbeResult] = {}
    todo = []
    for path in dict.fromkeys(paths):
        key = _cache_key(path)
        cached = cache.get(key) if key else None
        if cached is not None:
            results[path] = cached
        elif key is None:
            results[path] = "cannot read file (missing or not accessible)"  # not cached: it may appear later
        else:
            todo.append((path, key))
    if todo:
        logger.info("Probing %d video(s) (%d found in the cache %s)", len(todo), len(results), cache.path)
        if num_proc and num_proc > 1 and len(todo) > 1:
            # fork: workers need only av and this module, not a fresh interpreter re-importing the package.
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
            context = multiprocessing.get_context(method)
            with ProcessPoolExecutor(num_proc, mp_context=context) as pool:
                probed = list(pool.map(_probe_one, [path for path, _ in todo], chunksize=16))
        else:
            probed = [_probe_one(path) for path, _ in todo]
        cache.put_many([(key, result) for (_, key), result in zip(todo, probed)])
        results.update({path: result for (path, _), result in zip(todo, probed)})
    cache.close()
    return results


def _probe_one(path: str) -> ProbeResult:
    try:
        return probe_video(path)
    except VideoDecodeError as error:
        return error.reason


def _cache_key(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as handle:
            stat = os.fstat(handle.fileno())
            digest = hashlib.blake2b(handle.read(FINGERPRINT_BLOCK), digest_size=16)
            if stat.st_size > FINGERPRINT_BLOCK:
                handle.seek(max(FINGERPRINT_BLOCK, stat.st_size - FINGERPRINT_BLOCK))
                digest.update(handle.read(FINGERPRINT_BLOCK))
    except OSError:
        return None
    # the probe format version is part of the key: a cache written by an older decoder is never trusted
    return (f"v{PROBE_FORMAT_VERSION}|{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}|"
            f"{digest.hexdigest()}")


class _ProbeCache:
    """SQLite table: key -> JSON of a VideoInfo. Safe for concurrent runs (DDP).

    A corrupt database file is moved aside (``video_info.sqlite.corrupt-<time>``) and replaced by a new one; an
    unusable cache (unwritable folder, a database that fails later) degrades to an in-memory one, with a
    warning naming the file: the cache only saves time, it must never stop a run."""

    def __init__(self, directory: Path):
        self.path = directory / "video_info.sqlite"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._db = self._open(self.path)
        except sqlite3.DatabaseError as error:
            if not self.path.is_file() or isinstance(error, sqlite3.OperationalError) and not _corrupt(error):
                self._db = self._without_cache(error)
                return
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            try:
                os.replace(self.path, aside)
            except OSError as move_error:
                self._db = self._without_cache(f"{error}; could not move it aside: {move_error}")
                return
            logger.warning("video probe cache %s is not a readable database (%s): moved to %s, starting a new one",
                           self.path, error, aside)
            try:
                self._db = self._open(self.path)
            except sqlite3.DatabaseError as again:
                self._db = self._without_cache(again)
        except OSError as error:
            self._db = self._without_cache(error)

    @staticmethod
    def _open(path) -> sqlite3.Connection:
        db = sqlite3.connect(path, timeout=60)
        try:
            db.execute("CREATE TABLE IF NOT EXISTS probes (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute("SELECT count(*) FROM probes LIMIT 1").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _without_cache(self, reason) -> sqlite3.Connection:
        logger.warning("video probe cache %s cannot be used (%s): probing without a cache this run", self.path, reason)
        self.path = Path(":memory:")
        return self._open(":memory:")

    def get(self, key: str) -> Optional[ProbeResult]:
        try:
            row = self._db.execute("SELECT value FROM probes WHERE key = ?", (key,)).fetchone()
        except sqlite3.DatabaseError as error:
            self._db = self._without_cache(error)
            return None
        if row is None:
            return None
        try:
            value = json.loads(row[0])
        except ValueError:
            return None
        if not isinstance(value, dict) or "error" in value:
            return None  # failures are probed again (entries written by older versions included)
        return VideoInfo.from_dict(value)

    def put_many(self, items) -> None:
        rows = [(key, json.dumps(r.to_dict())) for key, r in items if not isinstance(r, str)]
        try:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO probes (key, value) VALUES (?, ?)", rows)
        except sqlite3.DatabaseError as error:
            self._db = self._without_cache(error)

    def close(self) -> None:
        self._db.close()


def _corrupt(error: sqlite3.Error) -> bool:
    """An error that says the file itself is bad (rather than locked or unreachable)."""
    text = str(error).lower()
    return any(part in text for part in ("not a database", "malformed", "corrupt", "file is encrypted"))
