"""Streamed datasets: WebDataset shards (``--dataset webdataset``) and Hub / local datasets read with
``streaming=True`` (``--dataset hf --streaming true``), as ``datasets.IterableDataset`` splits.

Nothing is copied: rows carry the video's bytes, which the decoder reads in memory (``pipeline.inference.decoding``
accepts bytes and file objects), so the only files a stream touches are the shards themselves and ``datasets``' own
cache. Every split has the pipeline's columns: ``video`` ({"bytes", "path"}: the bytes and a name for logs),
``label`` (ClassLabel), ``group`` and ``video_info`` (the probe; shards carry it, so training never probes; a Hub
stream has none and its videos are probed from memory in the loader workers). Class names come from the shards'
manifest or the source's ClassLabel. How many videos each split holds is kept where ``datasets`` keeps it
(``IterableDataset.info.splits``): the Trainer needs ``max_steps`` for a stream, and ``training_steps`` turns
``num_train_epochs`` into it.

Per rank and per loader worker, a training stream reads its own shards: accelerate shards a
``datasets.IterableDataset`` itself under the Trainer (``IterableDataset.shard``; a second split by
``split_dataset_by_node`` would split each rank's share again), and ``datasets`` splits a rank's shards between its
loader workers. Multi-view evaluation, which iterates itself, splits with ``split_dataset_by_node``. The Trainer's
evaluation splits a stream by batches instead (``EvaluationStream``: equal step counts on every rank). Training streams are
shuffled by shard order and a buffer of ``shuffle_buffer_size`` videos, reseeded every epoch (the Trainer calls
``set_epoch``).
"""

from __future__ import annotations

import fnmatch
import io
import json
import logging
import math
import os
import posixpath
from typing import Any, Optional

import datasets
import torch
from datasets import ClassLabel, Features, IterableDataset, IterableDatasetDict, Value

from pipeline.data.metadata import INFO_COLUMN, INFO_FEATURES
from pipeline.data.shards import MANIFEST_FORMAT, MANIFEST_NAME, METADATA_FIELD, SPLIT_ORDER, VIDEO_FIELD
from pipeline.data.splits import parse_ucf_group

logger = logging.getLogger(__name__)

VIDEO_FEATURE = {"bytes": Value("binary"), "path": Value("string")}


def stream_features(class_names) -> Features:
    """The columns of every streamed split (a file dataset's, with the video as bytes)."""
    return Features({"video": VIDEO_FEATURE, "label": ClassLabel(names=list(class_names)), "group": Value("string"),
                     INFO_COLUMN: INFO_FEATURES})


def is_stream(splits) -> bool:
    """Whether ``build_dataset`` returned streamed splits (an ``IterableDatasetDict``)."""
    return isinstance(splits, IterableDatasetDict)


def video_source(cell) -> Any:
    """What the decoder reads for a video cell: a path, or a named in-memory file for {"bytes", "path"} cells."""
    if isinstance(cell, dict):
        if cell.get("bytes") is not None:
            memory = io.BytesIO(cell["bytes"])
            memory.name = video_name(cell)
            return memory
        return cell.get("path")
    return cell


def video_name(cell) -> str:
    """How logs and skip lists name a video cell: its path (a stream's: shard/key), never its bytes."""
    if isinstance(cell, dict):
        return str(cell.get("path") or "<video in memory>")
    return str(cell)


def split_length(split) -> Optional[int]:
    """Videos in a split: ``len`` of a file dataset, the recorded count of a stream (None where unknown)."""
    if not isinstance(split, IterableDataset):
        return len(split)
    splits = split.info.splits
    name = str(split.split) if split.split is not None else None
    if splits and name in splits and splits[name].num_examples:
        return int(splits[name].num_examples)
    return None


def _record_lengths(streams: dict, lengths: dict) -> None:
    for name, stream in streams.items():
        if lengths.get(name) is not None:
            stream.info.splits = datasets.SplitDict(
                {name: datasets.SplitInfo(name=name, num_examples=int(lengths[name]))})


# ---- WebDataset shards ---------------------------------------------------------------------------------------------

def _read_text(url: str) -> str:
    import fsspec

    with fsspec.open(url, "rt") as handle:
        return handle.read()


def read_manifest(dir_or_glob: str) -> tuple[dict, str, Optional[str]]:
    """(manifest, folder holding the shards, file-name pattern or None) of ``--dataset_dir`` for webdataset."""
    text = str(dir_or_glob).rstrip("/")
    pattern = None
    if any(ch in posixpath.basename(text) for ch in "*?["):
        text, pattern = posixpath.dirname(text), posixpath.basename(text)
    url = f"{text}/{MANIFEST_NAME}"
    try:
        manifest = json.loads(_read_text(url))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{url} not found: --dataset webdataset reads shards written by python -m pipeline.data.shards "
            "(give their folder, or a glob of shards in it)") from None
    except ValueError as error:
        raise ValueError(f"{url}: not a JSON manifest ({error})") from None
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{url}: not a manifest of pipeline.data.shards (format {manifest.get('format')!r})")
    return manifest, text, pattern


def load_webdataset(dir_or_glob: str, cache_dir: Optional[str] = None) -> IterableDatasetDict:
    """The shards' splits as streams through ``datasets``' own webdataset loader (``streaming=True``)."""
    manifest, folder, pattern = read_manifest(dir_or_glob)
    class_names = manifest["class_names"]
    data_files, lengths = {}, {}
    for name, entry in manifest["splits"].items():
        shards = [s for s in entry["shards"] if pattern is None or fnmatch.fnmatch(s["file"], pattern)]
        if shards:
            data_files[name] = [f"{folder}/{s['file']}" for s in shards]
            lengths[name] = sum(s["samples"] for s in shards)
    if "train" not in data_files:
        raise ValueError(f"{dir_or_glob}: no train shards ({', '.join(data_files) or 'no shards'} matched)")
    metadata = {"label": Value("string"), "label_id": Value("int64"), "group": Value("string"),
                "name": Value("string"), "video_info": INFO_FEATURES}
    # the features are given, not inferred from the first rows (an empty list there would be typed null)
    raw_features = Features({VIDEO_FIELD: Value("binary"), METADATA_FIELD: metadata, "__key__": Value("string"),
                             "__url__": Value("string")})
    raw = datasets.load_dataset("webdataset", data_files=data_files, streaming=True, features=raw_features,
                                cache_dir=cache_dir)
    features = stream_features(class_names)

    def normalise(row):
        meta = row[METADATA_FIELD]
        label = meta["label_id"]
        if not 0 <= label < len(class_names) or class_names[label] != meta["label"]:
            raise ValueError(f"{row['__url__']}: sample {row['__key__']} is labelled {meta['label']!r} (id {label}), "
                             "which the manifest's class names do not match")
        name = f"{posixpath.basename(row['__url__'])}/{row['__key__']}"
        return {"video": {"bytes": row[VIDEO_FIELD], "path": name}, "label": label, "group": meta["group"],
                INFO_COLUMN: meta["video_info"]}

    streams = {name: raw[name].map(normalise, remove_columns=list(raw_features), features=features)
               for name in _ordered(data_files)}
    _record_lengths(streams, lengths)
    logger.info("webdataset %s: %s (%d classes)", dir_or_glob,
                ", ".join(f"{k}={lengths[k]} videos in {len(data_files[k])} shard(s)" for k in streams),
                len(class_names))
    return IterableDatasetDict(streams)


def _ordered(names) -> list[str]:
    return [n for n in SPLIT_ORDER if n in names] + sorted(set(names) - set(SPLIT_ORDER))


# ---- Hub / local datasets, streamed --------------------------------------------------------------------------------

def load_hf_stream(name_or_path: str, video_column: str = "video", label_column: str = "label",
                   group_column: Optional[str] = None, config_name: Optional[str] = None,
                   revision: Optional[str] = None, cache_dir: Optional[str] = None) -> IterableDatasetDict:
    """A ``datasets`` dataset read with ``streaming=True``: the source's own train / validation / test splits
    (a stream cannot be carved by group without reading it whole: write shards for that), ClassLabel labels,
    videos as bytes (``Video(decode=False)``: Parquet / Hub datasets hold them) or paths of local files (a local
    folder dataset), read where they are."""
    from pipeline.data.hf_video_dataset import _pick_splits

    raw = datasets.load_dataset(name_or_path, name=config_name, revision=revision, cache_dir=cache_dir,
                                streaming=True)
    if isinstance(raw, IterableDataset):
        raw = IterableDatasetDict({"train": raw})
    given = _pick_splits(raw, name_or_path, "train", None, None)
    missing = [name for name in ("validation", "test") if name not in given]
    if missing:
        raise ValueError(
            f"{name_or_path} has no {' or '.join(missing)} split: a stream cannot be split by group without reading "
            "it whole. Write shards (python -m pipeline.data.shards --dataset hf ...), which carve them, and train "
            "with --dataset webdataset")
    class_names = None
    for split_name, stream in given.items():
        features = stream.features
        if features is None or video_column not in features or label_column not in features:
            raise KeyError(f"{name_or_path} split {split_name!r}: streaming needs known columns {video_column!r} and "
                           f"{label_column!r} (it has {list(features or {})})")
        label = features[label_column]
        if not isinstance(label, ClassLabel):
            raise ValueError(f"{name_or_path}: column {label_column!r} is {label}, not a ClassLabel; streaming "
                             "takes class names from a ClassLabel (write shards to label by value instead)")
        if class_names is not None and list(label.names) != class_names:
            raise ValueError(f"{name_or_path}: the splits disagree on the {label_column!r} class names")
        class_names = list(label.names)
    features = stream_features(class_names)
    streams, lengths = {}, {}
    for split_name, stream in given.items():
        if isinstance(stream.features[video_column], datasets.Video):
            stream = stream.cast_column(video_column, datasets.Video(decode=False))

        def normalise(row, split_name=split_name):
            cell = row[video_column]
            if isinstance(cell, str):
                cell = {"bytes": None, "path": cell}
            if not isinstance(cell, dict) or (cell.get("bytes") is None and not os.path.isfile(cell.get("path") or "")):
                raise ValueError(f"{name_or_path} split {split_name!r}: a video holds neither bytes nor the path of a "
                                 f"readable local file ({str(cell)[:80]})")
            path = cell.get("path") or ""
            group = row[group_column] if group_column else (parse_ucf_group(path) if path else None)
            return {"video": {"bytes": cell["bytes"], "path": path}, "label": row[label_column],
                    "group": None if group is None else str(group), INFO_COLUMN: None}

        streams[split_name] = stream.map(normalise, remove_columns=list(stream.features), features=features)
        info_splits = stream.info.splits
        if info_splits and split_name in info_splits:
            lengths[split_name] = info_splits[split_name].num_examples
        theirs = next((k for k, v in raw.items() if v is given[split_name]), split_name)
        if lengths.get(split_name) is None and info_splits and theirs in info_splits:
            lengths[split_name] = info_splits[theirs].num_examples
    _record_lengths(streams, lengths)
    return IterableDatasetDict({name: streams[name] for name in _ordered(streams)})


# ---- what training and evaluation do with a stream -----------------------------------------------------------------

def training_stream(stream: IterableDataset, transform, *, batch_size: int, seed: int,
                    shuffle_buffer_size: int) -> IterableDataset:
    """The training split, shuffled (shard order + a buffer of ``shuffle_buffer_size`` videos, reseeded per epoch by
    ``set_epoch``) and decoded by ``transform`` (a ``ClipTransform``) one loader batch at a time."""
    if shuffle_buffer_size > 1:
        stream = stream.shuffle(seed=seed, buffer_size=shuffle_buffer_size)
    return decoded_stream(stream, transform, batch_size)


def decoded_stream(stream: IterableDataset, transform, batch_size: int) -> IterableDataset:
    """``stream`` through a batch transform, in batches of the loader's size (so a loader batch is one transform
    call: the collator then passes the transform's shared batch on without copying)."""
    return stream.map(transform, batched=True, batch_size=batch_size, remove_columns=list(stream.column_names))


def training_steps(train_length: Optional[int], training_args) -> int:
    """``max_steps`` for a streamed train split: the recipe's, or ``num_train_epochs`` epochs of the recorded count
    (the per-rank share rounded up, in optimizer steps)."""
    if training_args.max_steps and training_args.max_steps > 0:
        return int(training_args.max_steps)
    if train_length is None:
        raise ValueError("the train stream does not say how many videos it holds: give max_steps")
    per_rank = math.ceil(train_length / max(1, training_args.world_size))
    batches = math.ceil(per_rank / training_args.per_device_train_batch_size)
    per_epoch = max(1, math.ceil(batches / training_args.gradient_accumulation_steps))
    return int(math.ceil(per_epoch * training_args.num_train_epochs))


def stream_labels(stream: IterableDataset, manifest_counts: Optional[dict] = None) -> list[int]:
    """Train labels for class weighting: from the shards' per-class counts (no pass over the stream)."""
    names = stream.features["label"].names
    if manifest_counts is None:
        raise ValueError("class weighting needs per-class counts: stream from shards written by "
                         "python -m pipeline.data.shards (their manifest has them)")
    return [i for i, name in enumerate(names) for _ in range(int(manifest_counts.get(name, 0)))]


class EvaluationStream(torch.utils.data.IterableDataset):
    """An evaluation stream as the Trainer's accelerate splits it between ranks: by slices of each global batch.

    Every rank reads the whole stream in ONE loader worker (the others of an evaluation loader stay idle) and
    accelerate's ``IterableDatasetShard`` gives rank r the r-th slice of every global batch, so all ranks run the
    same number of evaluation steps (the Trainer gathers at each). Rows stay undecoded here: ``StreamCollator``
    decodes each rank's own slice. Split per rank or per worker instead, ranks would hold uneven counts and one that
    ended early would leave the others waiting in a gather. The price: accelerate fills the last global batch with
    the stream's first videos, which are scored again (fewer than ranks x batch size; none on one process), and it
    cannot drop them (its remainder is taken modulo one rank's batch); ``python -m pipeline.evaluation`` scores a
    stream exactly."""

    def __init__(self, stream: IterableDataset, read_batch: int = 64):
        self.stream = stream
        self.read_batch = read_batch

    def __iter__(self):
        worker = torch.utils.data.get_worker_info()
        if worker is not None and worker.id != 0:
            return
        # .iter(): the whole stream, without the per-worker split IterableDataset.__iter__ makes in a worker
        for batch in self.stream.iter(batch_size=self.read_batch):
            columns = list(batch)
            for i in range(len(batch[columns[0]])):
                yield {column: batch[column][i] for column in columns}


class StreamCollator:
    """The data collator of a streamed run: decoded training rows go to ``collator`` as they are; raw evaluation
    rows (``EvaluationStream``) are decoded by ``transform`` first (after accelerate took this rank's slice)."""

    def __init__(self, collator, transform):
        self.collator = collator
        self.transform = transform

    def __call__(self, rows: list[dict]) -> dict:
        if not rows or "clips" in rows[0]:
            return self.collator(rows)
        out = self.transform({key: [row[key] for row in rows] for key in rows[0]})
        return self.collator([{key: values[i] for key, values in out.items()} for i in range(len(rows))])


def prepare_for_trainer(splits, data_args, training_args, train_transform) -> dict:
    """{split: dataset for the Trainer} of streamed splits: the train stream shuffled and decoded, evaluation streams
    batch-split (``StreamCollator`` decodes them); sets ``max_steps`` (from ``num_train_epochs`` and the recorded count when the recipe
    gives none) and keeps accelerate from reading the whole stream on rank 0 and dispatching it
    (``dispatch_batches``: every rank reads its own shards)."""
    if data_args.balanced_sampler:
        raise ValueError("balanced_sampler draws videos by index, which a stream does not have: leave it off "
                         "(or use class_weighting: balanced)")
    training_args.max_steps = training_steps(split_length(splits["train"]), training_args)
    training_args.accelerator_config.dispatch_batches = False
    out = {"train": training_stream(splits["train"], train_transform,
                                    batch_size=training_args.per_device_train_batch_size,
                                    seed=training_args.data_seed if training_args.data_seed is not None
                                    else training_args.seed,
                                    shuffle_buffer_size=data_args.shuffle_buffer_size)}
    out.update({name: EvaluationStream(split) for name, split in splits.items() if name != "train"})
    logger.info("streaming: %d training steps (%s videos in train), shuffle buffer %d", training_args.max_steps,
                split_length(splits["train"]), data_args.shuffle_buffer_size)
    return out


def manifest_class_counts(data_args) -> Optional[dict]:
    """The train split's per-class counts from the shards' manifest (None for other streams)."""
    if data_args.dataset != "webdataset":
        return None
    manifest, _, _ = read_manifest(data_args.dataset_dir)
    return manifest["splits"]["train"]["per_class"]
