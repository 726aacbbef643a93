"""A `datasets` dataset (Hub id, local `save_to_disk` folder, or any folder `load_dataset` reads)
with a video column and a label column, normalised to the columns the pipeline trains on:
`video` (local file path), `label` (ClassLabel) and `group`.

Videos stay files: a `Video` column is read with `Video(decode=False)` (decoding in
`datasets` needs torchcodec, we decode with PyAV), and videos stored as bytes (what
`save_to_disk` and Hub Parquet files hold) are written once to a content-addressed folder.
Missing validation/test splits are carved from train, stratified by label and by group.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path, PurePath

import datasets
from datasets import ClassLabel, Dataset, DatasetDict, Features, Video

from .splits import parse_ucf_group, split_dataset, video_features

logger = logging.getLogger(__name__)

VALIDATION_SPLIT_NAMES = ("validation", "val", "valid", "dev")
TEST_SPLIT_NAMES = ("test",)
READ_BATCH_SIZE = 64


def _is_saved_to_disk(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def _load(name_or_path: str, config_name, revision, cache_dir) -> tuple[DatasetDict, Path | None]:
    """The raw DatasetDict, and the local folder it came from (to resolve relative video paths)."""
    local = Path(name_or_path).expanduser()
    if local.is_dir() and _is_saved_to_disk(local):
        loaded = datasets.load_from_disk(str(local))
    else:
        if local.exists() and not local.is_dir():
            raise ValueError(f"{local} is a file; give a dataset folder or a Hub dataset id")
        loaded = datasets.load_dataset(name_or_path, name=config_name, revision=revision, cache_dir=cache_dir)
    if isinstance(loaded, Dataset):
        loaded = DatasetDict({"train": loaded})
    return loaded, (local.absolute() if local.is_dir() else None)


def _pick_splits(
    raw: DatasetDict, source: str, train_split: str, validation_split: str | None, test_split: str | None
) -> dict[str, Dataset]:
    """Map the source's split names to train / validation / test; unknown explicit names are errors."""
    available = list(raw)

    def pick(wanted, defaults):
        if wanted is not None:
            if wanted not in raw:
                raise KeyError(f"{source} has no split {wanted!r}; it has {available}")
            return wanted
        return next((name for name in defaults if name in raw), None)

    chosen = {
        "train": pick(train_split, ()),
        "validation": pick(validation_split, VALIDATION_SPLIT_NAMES),
        "test": pick(test_split, TEST_SPLIT_NAMES),
    }
    return {ours: raw[theirs] for ours, theirs in chosen.items() if theirs is not None}


def _class_names(splits: dict[str, Dataset], label_column: str, source: str) -> tuple[list[str], dict | None]:
    """(class names, {raw value: label id} or None when the column already is a ClassLabel)."""
    features = [ds.features[label_column] for ds in splits.values()]
    if isinstance(features[0], ClassLabel):
        if any(not isinstance(f, ClassLabel) or f.names != features[0].names for f in features):
            raise ValueError(f"{source}: the splits disagree on the {label_column!r} class names")
        return list(features[0].names), None
    values = set()
    for ds in splits.values():
        values.update(ds.unique(label_column))
    if None in values:
        raise ValueError(f"{source}: column {label_column!r} has empty labels")
    ordered = sorted(values)  # strings alphabetically, integers numerically
    return [str(v) for v in ordered], {v: i for i, v in enumerate(ordered)}


def _materialise(value: dict, videos_dir: Path) -> str:
    """Write embedded video bytes once, under a folder named by their hash; keep the file name."""
    data = value["bytes"]
    name = PurePath(value.get("path") or "video.mp4").name
    target = videos_dir / hashlib.sha1(data).hexdigest()[:16] / name
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(target.name + f".tmp{os.getpid()}")
        temporary.write_bytes(data)
        os.replace(temporary, target)  # atomic: concurrent ranks never see half a file
    return str(target)


def _video_path(value, base_dir: Path | None, videos_dir: Path) -> tuple[str, str]:
    """(local path to decode, original name for group parsing) of one video-column value."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return _materialise(value, videos_dir), value.get("path") or ""
        value = value.get("path")
    if not value:
        raise ValueError("a video entry has neither a path nor bytes")
    path = Path(value)
    if not path.is_absolute() and base_dir is not None and (base_dir / path).exists():
        path = base_dir / path
    return str(path), str(value)


def _normalise(
    dataset: Dataset, video_column: str, label_column: str, group_column: str | None,
    label_ids: dict | None, features: Features, base_dir: Path | None, videos_dir: Path,
) -> Dataset:
    """A new in-memory Dataset with only video (path), label (id) and group (string)."""
    if isinstance(dataset.features[video_column], Video):
        dataset = dataset.cast_column(video_column, Video(decode=False))
    videos, originals = [], []
    # Batches keep memory flat when the column holds the videos' bytes.
    for batch in dataset.select_columns([video_column]).iter(batch_size=READ_BATCH_SIZE):
        for value in batch[video_column]:
            path, original = _video_path(value, base_dir, videos_dir)
            videos.append(path)
            originals.append(original)
    raw_labels = list(dataset[label_column])
    labels = raw_labels if label_ids is None else [label_ids[v] for v in raw_labels]
    if group_column is not None:
        groups = [None if g is None else str(g) for g in dataset[group_column]]
    else:
        # Videos with no UCF-style group are groups of their own.
        groups = [parse_ucf_group(o) if o else None for o in originals]
        groups = [g if g is not None else v for g, v in zip(groups, videos)]
    return Dataset.from_dict({"video": videos, "label": labels, "group": groups}, features=features)


def load_hf_video_dataset(
    name_or_path: str | os.PathLike,
    video_column: str = "video",
    label_column: str = "label",
    group_column: str | None = None,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 42,
    train_split: str = "train",
    validation_split: str | None = None,
    test_split: str | None = None,
    config_name: str | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    videos_dir: str | os.PathLike | None = None,
) -> DatasetDict:
    """Load a video dataset with `datasets` and return train / validation / test.

    `name_or_path`: Hub id, a `save_to_disk` folder, or a folder `load_dataset` reads
    (e.g. `<root>/<label>/<video>`, or files plus metadata.csv). Splits named
    `validation_split`/`test_split` (default: "validation"/"val"/"valid"/"dev" and "test")
    are kept; a missing one is carved from train by its fraction (0 leaves it out).
    Labels keep their ClassLabel names, else are the sorted distinct values. Groups come
    from `group_column`, else from UCF-style file names, else each video is its own.
    Embedded video bytes are written under `videos_dir` (default: <datasets cache>/extracted_videos).
    """
    for name, fraction in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0 <= fraction < 1:
            raise ValueError(f"{name} must be in [0, 1), got {fraction}")
    source = str(name_or_path)
    raw, base_dir = _load(source, config_name, revision, str(cache_dir) if cache_dir else None)
    given = _pick_splits(raw, source, train_split, validation_split, test_split)
    for split_name, ds in given.items():
        wanted = [c for c in (video_column, label_column, group_column) if c is not None]
        missing = [c for c in wanted if c not in ds.column_names]
        if missing:
            raise KeyError(
                f"{source} split {split_name!r} lacks column(s) {missing}; it has {ds.column_names}"
            )

    class_names, label_ids = _class_names(given, label_column, source)
    features = video_features(class_names)
    videos_dir = Path(videos_dir or Path(cache_dir or datasets.config.HF_DATASETS_CACHE) / "extracted_videos")
    normalised = {
        name: _normalise(
            ds, video_column, label_column, group_column, label_ids, features, base_dir, videos_dir
        )
        for name, ds in given.items()
    }
    to_carve = {
        name: fraction
        for name, fraction in (("test", test_fraction), ("validation", validation_fraction))
        if name not in normalised and fraction > 0
    }
    if to_carve:
        normalised.update(split_dataset(normalised["train"], to_carve, seed=seed))
    order = [name for name in ("train", "validation", "test") if name in normalised]
    result = DatasetDict({name: normalised[name] for name in order})
    logger.info(
        "video dataset %s: %s (%d classes)", source, ", ".join(f"{k}={len(v)}" for k, v in result.items()),
        len(class_names),
    )
    return result
