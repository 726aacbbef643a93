"""The shard writer: any dataset the pipeline reads -> WebDataset tar shards per split, plus ``manifest.json``.

``python -m pipeline.data.shards --dataset ucf101|videofolder|hf|demo --dataset_dir SRC --output_dir DIR
[--shard_size_mb 512] [--min_shards N]`` (any split key of the recipe's data section works too: ``--ucf101_split``,
``--validation_fraction``, ``--split_seed``, ...). Training then streams them: ``--dataset webdataset --dataset_dir
DIR`` (``pipeline.data.streaming``).

Each sample of a shard is two tar members sharing one key: ``<key>.video``, the video's bytes exactly as the source
file holds them (any container: one field name whatever the container, so every sample of a split has the same
fields), and ``<key>.json`` with the label name and id, the group, the original file name and the probe's
``VideoInfo`` (probed once here, so training from shards never probes). Splits are shard sets of their own
(``train-00000-of-00004.tar``, ``validation-...``, ``test-...``: the names ``datasets`` itself maps to splits).
Samples are shuffled once with the split seed before they are cut into shards, so a shard holds every class and a
small shuffle buffer suffices; shards of a split hold counts that differ by at most one.

The same input and settings give the same bytes: sample order, tar member order, mtimes (0), owners (0, no names)
and modes are fixed, and the manifest is written with sorted keys. Each shard is written under a temporary name
and renamed when complete.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import re
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Optional

import numpy as np

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "video-classification-shards"
MANIFEST_VERSION = 1
VIDEO_FIELD = "video"
METADATA_FIELD = "json"
SPLIT_ORDER = ("train", "validation", "test")
# DataArguments fields that define which videos make which split: recorded in the manifest as the split definition
SPLIT_DEFINITION_FIELDS = ("dataset", "dataset_dir", "splits_dir", "ucf101_split", "validation_fraction",
                           "test_fraction", "split_seed", "video_column", "label_column", "on_missing_video")


@dataclass
class ShardArguments:
    """Where the shards go and how big they are."""

    output_dir: str = field(metadata={"help": "Folder for the shards and manifest.json (created; must hold no shards)."})
    shard_size_mb: float = field(default=512.0, metadata={"help": "Target size of one shard in MB (10^6 bytes)."})
    min_shards: int = field(
        default=1,
        metadata={"help": "At least this many shards per split (give a multiple of the GPU count x loader workers "
                          "so that every rank and worker gets whole shards)."},
    )


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.tar"


def sample_key(position: int, video_name: str) -> str:
    """A key WebDataset readers split correctly: no dots (they start the field name), no slashes."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", PurePath(video_name).stem)
    return f"{position:08d}_{stem}"


def _member(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info, io.BytesIO(data)


def _write_shard(path: Path, samples: list[tuple[str, bytes, dict]]) -> int:
    """Writes one tar (temporary name, then renamed); returns its size in bytes."""
    temporary = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(temporary, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for key, video, metadata in samples:
            tar.addfile(*_member(f"{key}.{VIDEO_FIELD}", video))
            text = json.dumps(metadata, sort_keys=True, separators=(",", ":")).encode()
            tar.addfile(*_member(f"{key}.{METADATA_FIELD}", text))
    os.replace(temporary, path)
    return path.stat().st_size


def _shard_count(total_bytes: int, shard_size_mb: float, min_shards: int, samples: int) -> int:
    by_size = math.ceil(total_bytes / (shard_size_mb * 1e6)) if total_bytes else 1
    return max(1, min(samples, max(by_size, min_shards)))


def write_split(split_name: str, rows: list[dict], class_names: list[str], output_dir: Path, *, seed: int,
                shard_size_mb: float, min_shards: int) -> dict:
    """Writes the shards of one split; returns its manifest entry. ``rows``: {video (path), label, group,
    video_info} in the source's order."""
    from pipeline.data.metadata import video_path

    order = np.random.default_rng(seed).permutation(len(rows)).tolist()
    sizes = [os.path.getsize(video_path(rows[i]["video"])) for i in order]
    count = _shard_count(sum(sizes), shard_size_mb, min_shards, len(rows))
    # counts that differ by at most one per shard: ranks and loader workers then get near-equal shares
    bounds = np.cumsum([0] + [len(part) for part in np.array_split(np.arange(len(order)), count)]).tolist()
    shards, per_class, position = [], Counter(), 0
    for index in range(count):
        samples = []
        for i in order[bounds[index]:bounds[index + 1]]:
            row = rows[i]
            path = video_path(row["video"])
            label = int(row["label"])
            metadata = {"label": class_names[label], "label_id": label, "group": row["group"],
                        "name": PurePath(path).name, "video_info": row["video_info"]}
            samples.append((sample_key(position, path), Path(path).read_bytes(), metadata))
            per_class[class_names[label]] += 1
            position += 1
        name = shard_name(split_name, index, count)
        size = _write_shard(output_dir / name, samples)
        digest = hashlib.sha256((output_dir / name).read_bytes()).hexdigest()
        shards.append({"file": name, "samples": len(samples), "bytes": size, "sha256": digest})
        logger.info("%s: %d videos, %.1f MB", name, len(samples), size / 1e6)
    return {
        "samples": len(rows),
        "bytes": sum(s["bytes"] for s in shards),
        "video_bytes": sum(sizes),
        "per_class": {name: per_class.get(name, 0) for name in class_names},
        "shards": shards,
    }


def write_shards(data_args, shard_args: ShardArguments, probe_num_proc: Optional[int] = None) -> dict:
    """Reads the dataset ``data_args`` describes, probes it, writes the shards and the manifest; returns the manifest."""
    from pipeline.data.metadata import add_video_info
    from pipeline.data.sources import build_dataset

    if shard_args.shard_size_mb <= 0 or shard_args.min_shards < 1:
        raise ValueError("shard_size_mb must be > 0 and min_shards >= 1")
    if data_args.dataset == "webdataset":
        raise ValueError("the source is already shards; give the dataset they were written from")
    output_dir = Path(shard_args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    existing = sorted(p.name for p in output_dir.glob("*.tar")) + sorted(
        p.name for p in output_dir.glob(MANIFEST_NAME))
    if existing:
        raise FileExistsError(f"{output_dir} already holds shards ({existing[0]}, ...): give an empty folder")
    splits = build_dataset(data_args)
    splits, skipped = add_video_info(splits, num_proc=probe_num_proc or data_args.probe_num_proc)
    class_names = list(splits["train"].features["label"].names)
    entries = {}
    for split_name in [name for name in SPLIT_ORDER if name in splits] + sorted(set(splits) - set(SPLIT_ORDER)):
        rows = list(splits[split_name])
        entries[split_name] = write_split(
            split_name, rows, class_names, output_dir, seed=data_args.split_seed,
            shard_size_mb=shard_args.shard_size_mb, min_shards=shard_args.min_shards)
    definition = {name: getattr(data_args, name) for name in SPLIT_DEFINITION_FIELDS}
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "fields": {"video": VIDEO_FIELD, "metadata": METADATA_FIELD},
        "class_names": class_names,
        "source": definition,
        "shard_size_mb": shard_args.shard_size_mb,
        "min_shards": shard_args.min_shards,
        "splits": entries,
        "skipped": [{"video": path, "reason": reason} for path, reason in sorted(skipped)],
    }
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    temporary = output_dir / f"{MANIFEST_NAME}.tmp{os.getpid()}"
    temporary.write_text(text)
    os.replace(temporary, output_dir / MANIFEST_NAME)
    logger.info("wrote %s: %s", output_dir, ", ".join(f"{k}={v['samples']} videos in {len(v['shards'])} shard(s)"
                                                     for k, v in entries.items()))
    return manifest


def main(argv=None) -> dict:
    from transformers import HfArgumentParser

    from pipeline.configs import DataArguments

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    parser = HfArgumentParser((ShardArguments, DataArguments), allow_abbrev=False,
                              prog="python -m pipeline.data.shards", description=__doc__.split("\n")[0])
    shard_args, data_args = parser.parse_args_into_dataclasses(args=argv)
    return write_shards(data_args, shard_args)


if __name__ == "__main__":
    from pipeline.user_errors import one_line_errors

    one_line_errors("pipeline.data.shards")(main)()
