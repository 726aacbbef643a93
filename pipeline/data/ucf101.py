"""UCF101 (videos + official ucfTrainTestlist) as a `datasets.DatasetDict`.

Layout: `UCF-101/<Class>/v_<Class>_g<GG>_c<CC>.avi` and `ucfTrainTestlist/` with
`classInd.txt` ("1 ApplyEyeMakeup"), `trainlist0K.txt` ("Class/v_..._g08_c01.avi 1")
and `testlist0K.txt` (path only). Names are matched case-insensitively because the
lists and the files disagree on casing for a few classes (HandstandPushups vs
v_HandStandPushups_...). Videos stay paths; decoding happens in the transform.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset, DatasetDict, Features

from .splits import group_stratified_split, parse_ucf_group, video_features

logger = logging.getLogger(__name__)

SPLITS_DIR_NAME = "ucfTrainTestlist"
VIDEOS_DIR_NAMES = ("ucf-101", "ucf101")
MAX_LISTED_MISSING = 20


@dataclass(frozen=True)
class ListEntry:
    """One line of a train/test list: where it came from, the path it names, and its label."""

    list_file: Path
    line_number: int
    relative_path: str
    label: int


def _child_dir(parent: Path, names_lower: tuple[str, ...]) -> Path | None:
    """The subdirectory of `parent` whose lower-cased name is one of `names_lower`, if any."""
    try:
        children = sorted(os.scandir(parent), key=lambda e: e.name)
    except OSError:
        return None
    for entry in children:
        if entry.is_dir() and entry.name.lower() in names_lower:
            return Path(entry.path)
    return None


def resolve_ucf101_dirs(
    dataset_dir: str | os.PathLike, splits_dir: str | os.PathLike | None = None
) -> tuple[Path, Path]:
    """Return (folder holding the class folders, folder holding classInd/train/test lists).

    `dataset_dir` is either the class-folder root (UCF-101/) or its parent holding UCF-101/.
    Without `splits_dir`, ucfTrainTestlist/ is looked for inside the video root, inside
    `dataset_dir`, and beside the video root.
    """
    dataset_dir = Path(dataset_dir).expanduser()
    if not dataset_dir.is_dir():
        raise FileNotFoundError(f"UCF101 dataset folder not found: {dataset_dir}")
    videos_dir = _child_dir(dataset_dir, VIDEOS_DIR_NAMES) or dataset_dir

    if splits_dir is not None:
        splits_path = Path(splits_dir).expanduser()
        if not splits_path.is_dir():
            raise FileNotFoundError(f"UCF101 split-list folder not found: {splits_path}")
        return videos_dir.absolute(), splits_path.absolute()

    candidates = [videos_dir, dataset_dir, videos_dir.parent]
    for folder in candidates:
        found = _child_dir(folder, (SPLITS_DIR_NAME.lower(),))
        if found is not None:
            return videos_dir.absolute(), found.absolute()
    searched = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise FileNotFoundError(f"no {SPLITS_DIR_NAME}/ folder found in {searched}; pass splits_dir")


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, stripped text) of the non-blank lines of a list file; errors name the file."""
    if not path.is_file():
        raise FileNotFoundError(f"UCF101 list file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise OSError(f"cannot read UCF101 list file {path}: {error}") from error
    # The official lists end lines with CRLF; strip() takes the CR.
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def read_class_index(path: Path) -> list[str]:
    """Class names from classInd.txt ("1 ApplyEyeMakeup"), ordered by their 1-based number."""
    numbered: dict[int, str] = {}
    seen_lower: dict[str, int] = {}
    for line_number, line in _read_lines(path):
        fields = line.split()
        if len(fields) != 2 or not fields[0].isdigit():
            raise ValueError(f"{path}:{line_number}: expected '<number> <ClassName>', got {line!r}")
        number, name = int(fields[0]), fields[1]
        if number in numbered:
            raise ValueError(f"{path}:{line_number}: class number {number} appears twice")
        if name.lower() in seen_lower:
            first = seen_lower[name.lower()]
            raise ValueError(f"{path}:{line_number}: class {name!r} is already number {first}")
        numbered[number] = name
        seen_lower[name.lower()] = number
    if not numbered:
        raise ValueError(f"{path}: no classes listed")
    if sorted(numbered) != list(range(1, len(numbered) + 1)):
        raise ValueError(f"{path}: class numbers must run 1..{len(numbered)}, got {sorted(numbered)}")
    return [numbered[n] for n in range(1, len(numbered) + 1)]


def read_split_list(path: Path, class_names: list[str], class_index_path: Path) -> list[ListEntry]:
    """Entries of a trainlist/testlist; the label comes from the folder part via classInd.

    A number after the path (train lists) must agree with classInd; a disagreement or an
    unknown class is an error naming the file and line.
    """
    label_of = {name.lower(): label for label, name in enumerate(class_names)}
    entries = []
    for line_number, line in _read_lines(path):
        fields = line.split()
        if len(fields) not in (1, 2):
            raise ValueError(f"{path}:{line_number}: expected '<Class>/<video> [number]', got {line!r}")
        relative = fields[0].replace("\\", "/")
        folder = relative.split("/")[0] if "/" in relative else None
        if folder is None or folder.lower() not in label_of:
            raise ValueError(
                f"{path}:{line_number}: {relative!r} is not under a class folder listed in {class_index_path}"
            )
        label = label_of[folder.lower()]
        if len(fields) == 2:
            if not fields[1].isdigit():
                raise ValueError(f"{path}:{line_number}: class number {fields[1]!r} is not a number")
            if int(fields[1]) != label + 1:
                raise ValueError(
                    f"{path}:{line_number}: {line!r} gives class number {fields[1]} but {class_index_path} "
                    f"numbers {class_names[label]!r} as {label + 1}"
                )
        entries.append(ListEntry(path, line_number, relative, label))
    return entries


class _CaseInsensitiveTree:
    """Finds `<Class>/<file>` under the video root ignoring case; lists each folder once."""

    def __init__(self, root: Path):
        self.root = root
        self._folders = {e.name.lower(): e.name for e in os.scandir(root) if e.is_dir()}
        self._files: dict[str, dict[str, str]] = {}

    def find(self, relative_path: str) -> Path | None:
        *folders, filename = relative_path.split("/")
        current = self.root
        # Nested lists are not official UCF101, but cost nothing to support.
        for folder in folders:
            actual = self._subfolders(current).get(folder.lower())
            if actual is None:
                return None
            current = current / actual
        actual_file = self._files_in(current).get(filename.lower())
        return None if actual_file is None else current / actual_file

    def _subfolders(self, folder: Path) -> dict[str, str]:
        if folder == self.root:
            return self._folders
        return {e.name.lower(): e.name for e in os.scandir(folder) if e.is_dir()}

    def _files_in(self, folder: Path) -> dict[str, str]:
        key = str(folder)
        if key not in self._files:
            self._files[key] = {e.name.lower(): e.name for e in os.scandir(folder) if e.is_file()}
        return self._files[key]


def _locate(
    entries: list[ListEntry], tree: _CaseInsensitiveTree
) -> tuple[list[tuple[ListEntry, Path]], list[ListEntry]]:
    """Pair entries with their files; also return the entries whose file is not on disk."""
    found, missing = [], []
    for entry in entries:
        path = tree.find(entry.relative_path)
        if path is None:
            missing.append(entry)
        else:
            found.append((entry, path))
    return found, missing


def _report_missing(missing: list[ListEntry], videos_dir: Path, on_missing: str) -> None:
    """Raise listing the missing videos (first few and the count), or warn that they are skipped."""
    if not missing:
        return
    listed = "\n".join(
        f"  {e.relative_path} ({e.list_file.name}:{e.line_number})" for e in missing[:MAX_LISTED_MISSING]
    )
    unlisted = len(missing) - MAX_LISTED_MISSING
    more = f"\n  ... and {unlisted} more" if unlisted > 0 else ""
    message = f"{len(missing)} video(s) named in the split lists are missing under {videos_dir}:"
    message += f"\n{listed}{more}"
    if on_missing == "error":
        raise FileNotFoundError(message + "\n(--on_missing_video skip, or on_missing='skip' from Python, "
                                          "leaves them out)")
    logger.warning("skipping %s", message)


def _group_of(path: Path, class_name: str) -> str:
    """Group id "<Class>_gNN" with the classInd spelling, so casing quirks never split a group."""
    parsed = parse_ucf_group(path)
    if parsed is None:
        # Not UCF naming: the clip is a group of its own.
        return f"{class_name}/{path.stem}"
    return f"{class_name}_{parsed.rsplit('_', 1)[1]}"


def _to_dataset(rows: list[tuple[str, int, str]], features: Features) -> Dataset:
    """Dataset from (video path, label, group) rows."""
    videos, labels, groups = zip(*rows) if rows else ((), (), ())
    columns = {"video": list(videos), "label": list(labels), "group": list(groups)}
    return Dataset.from_dict(columns, features=features)


def load_ucf101(
    dataset_dir: str | os.PathLike,
    split: int = 1,
    splits_dir: str | os.PathLike | None = None,
    validation_fraction: float = 0.1,
    seed: int = 42,
    on_missing: str = "error",
) -> DatasetDict:
    """UCF101 official split `split` as a DatasetDict with "train", "validation" and "test".

    Columns: `video` (absolute path), `label` (ClassLabel, classInd order), `group`
    ("<Class>_gNN"). "validation" holds whole groups carved from the train list, about
    `validation_fraction` of each class's groups (at least one); it is absent when the
    fraction is 0. `on_missing`: "error" (default) or "skip" for listed videos not on disk; "keep" also warns
    but keeps their rows (path as listed), for callers that probe every video next and report the missing
    ones with the unreadable ones (train.py and pipeline.evaluation: exact counts).
    """
    if on_missing not in ("error", "skip", "keep"):
        raise ValueError(f"on_missing_video must be 'error' or 'skip', got {on_missing!r}")
    if isinstance(split, bool) or not isinstance(split, int) or split < 1:
        raise ValueError(f"split must be a positive integer (1, 2 or 3 for UCF101), got {split!r}")
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    videos_dir, lists_dir = resolve_ucf101_dirs(dataset_dir, splits_dir)

    class_index_path = lists_dir / "classInd.txt"
    class_names = read_class_index(class_index_path)
    train_entries = read_split_list(lists_dir / f"trainlist{split:02d}.txt", class_names, class_index_path)
    test_entries = read_split_list(lists_dir / f"testlist{split:02d}.txt", class_names, class_index_path)

    tree = _CaseInsensitiveTree(videos_dir)
    train_found, train_missing = _locate(train_entries, tree)
    test_found, test_missing = _locate(test_entries, tree)
    _report_missing(train_missing + test_missing, videos_dir, on_missing)

    if on_missing == "keep":
        train_found += [(e, videos_dir / e.relative_path) for e in train_missing]
        test_found += [(e, videos_dir / e.relative_path) for e in test_missing]

    def rows(found: list[tuple[ListEntry, Path]]) -> list[tuple[str, int, str]]:
        return [(str(path), e.label, _group_of(path, class_names[e.label])) for e, path in found]

    train_rows, test_rows = rows(train_found), rows(test_found)
    features = video_features(class_names)
    splits = {"train": train_rows, "test": test_rows}
    if validation_fraction > 0:
        parts = group_stratified_split(
            [label for _, label, _ in train_rows],
            [group for _, _, group in train_rows],
            {"validation": validation_fraction},
            seed=seed,
        )
        splits["train"] = [train_rows[i] for i in parts["train"]]
        splits["validation"] = [train_rows[i] for i in parts["validation"]]
    order = [name for name in ("train", "validation", "test") if name in splits]
    result = DatasetDict({name: _to_dataset(splits[name], features) for name in order})
    logger.info(
        "UCF101 split %d from %s: %s (%d classes)",
        split, videos_dir, ", ".join(f"{k}={len(v)}" for k, v in result.items()), len(class_names),
    )
    return result
