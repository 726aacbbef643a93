"""A `<root>/<label>/<video>` folder (the "videofolder" convention) as a `datasets.DatasetDict`.

Labels are the folder names, sorted alphabetically. Without predefined splits the
videos are split stratified by label, and by group when UCF-style names
(v_<Class>_gNN_cMM) give one, so a group never spans two splits. A root that holds
only `train/`, `validation/` (or `val/`) and `test/` folders, each in the same
convention, is used as given.

datasets' own "videofolder" builder lists only .mkv, .mp4, .avi, .mpeg and .mov files and labels a video by its
immediate folder; this one reads every suffix of VIDEO_EXTENSIONS and labels by the top folder under the root.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from datasets import Dataset, DatasetDict

from pipeline.inference.decoding import VIDEO_EXTENSIONS

from .splits import parse_ucf_group, split_dataset, video_features

logger = logging.getLogger(__name__)

SPLIT_FOLDER_NAMES = {"train": "train", "validation": "validation", "val": "validation", "test": "test"}


def _subfolders(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def _videos_under(folder: Path, extensions: tuple[str, ...]) -> list[Path]:
    """Video files anywhere below `folder`, in a stable order; hidden entries are ignored."""
    found = []
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(
            Path(current, name) for name in sorted(files)
            if not name.startswith(".") and name.lower().endswith(extensions)
        )
    return found


def _group_of(path: Path, root: Path) -> str:
    """UCF-style group "<Class>_gNN" when the name has one, else the video itself (its own group)."""
    return parse_ucf_group(path) or path.relative_to(root).as_posix()


def _scan(folder: Path, extensions: tuple[str, ...]) -> dict[str, list[Path]]:
    """{label folder name: its videos} for one `<folder>/<label>/<video>` tree."""
    return {label: _videos_under(folder / label, extensions) for label in _subfolders(folder)}


def _split_folders(root: Path) -> dict[str, Path] | None:
    """{split name: folder} when `root` holds only split folders including train/, else None."""
    names = _subfolders(root)
    lowered = [n.lower() for n in names]
    if "train" not in lowered or any(n not in SPLIT_FOLDER_NAMES for n in lowered):
        return None
    folders: dict[str, Path] = {}
    for name in names:
        split = SPLIT_FOLDER_NAMES[name.lower()]
        if split in folders:
            raise ValueError(f"{root} holds both {folders[split].name}/ and {name}/ for the {split} split")
        folders[split] = root / name
    return folders


def _to_dataset(videos: dict[str, list[Path]], class_names: list[str], root: Path) -> Dataset:
    label_of = {name: i for i, name in enumerate(class_names)}
    rows = [
        (str(p.absolute()), label_of[label], _group_of(p, root))
        for label, paths in videos.items()
        for p in paths
    ]
    return Dataset.from_dict(
        {"video": [r[0] for r in rows], "label": [r[1] for r in rows], "group": [r[2] for r in rows]},
        features=video_features(class_names),
    )


def _warn_on_shared_groups(splits: dict[str, Dataset]) -> None:
    """Predefined splits are kept as given, but a group spanning two of them inflates scores: say so."""
    names = list(splits)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            shared = set(splits[first]["group"]) & set(splits[second]["group"])
            if shared:
                logger.warning(
                    "%d group(s) appear in both %s and %s (e.g. %s): held-out scores may be optimistic",
                    len(shared), first, second, sorted(shared)[:5],
                )


def load_video_folder(
    root: str | os.PathLike,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 42,
    extensions: tuple[str, ...] = VIDEO_EXTENSIONS,
) -> DatasetDict:
    """Videos under `root/<label>/` as a DatasetDict with train / validation / test.

    Columns: `video` (absolute path), `label` (ClassLabel, folder names sorted), `group`.
    Fractions are of each class's groups (videos without a group are groups of one). With
    predefined split folders, the given splits are kept; a missing validation or test
    split is carved from train by its fraction. A split whose fraction is 0 is left out.
    """
    for name, fraction in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0 <= fraction < 1:
            raise ValueError(f"{name} must be in [0, 1), got {fraction}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"video folder not found: {root}")
    extensions = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)

    split_folders = _split_folders(root)
    scanned = {name: _scan(folder, extensions) for name, folder in (split_folders or {"train": root}).items()}
    class_names = sorted(
        {label for per_split in scanned.values() for label, paths in per_split.items() if paths}
    )
    if not class_names:
        raise FileNotFoundError(f"no videos ({', '.join(extensions)}) found in label folders under {root}")
    for name, per_split in scanned.items():
        folder = split_folders[name] if split_folders else root
        for label, paths in per_split.items():
            if not paths:
                logger.warning("label folder %s holds no videos", folder / label)

    given = {name: _to_dataset(per_split, class_names, root) for name, per_split in scanned.items()}
    if split_folders:
        _warn_on_shared_groups(given)
    to_carve = {
        name: fraction
        # test first: when a class has few groups, test gets served before validation.
        for name, fraction in (("test", test_fraction), ("validation", validation_fraction))
        if name not in given and fraction > 0
    }
    splits = dict(given)
    if to_carve:
        splits.update(split_dataset(given["train"], to_carve, seed=seed))
    result = DatasetDict({name: splits[name] for name in ("train", "validation", "test") if name in splits})
    sizes = ", ".join(f"{k}={len(v)}" for k, v in result.items())
    logger.info("video folder %s: %s (%d classes)", root, sizes, len(class_names))
    return result
