"""Which files of a demo folder the demo generator wrote, so that regenerating it never touches anything else.

A demo folder (``pipeline.data.demo``) may hold files a user added or edited: a clip dropped into a class folder,
an edited split list. Before the generator rewrites a folder made with other settings (or finishes one whose
generation was interrupted) it sorts every file under ``UCF-101/`` and ``ucfTrainTestlist/`` into

- its own: named in the manifest with the same size and SHA-256, or, for manifests written before
  hashes were recorded, a listed video not modified after the manifest was written and a split
  list whose text is exactly what the generator wrote; or a file an interrupted generation was writing
  (named in the in-progress marker's file set);
- anything else: the user's. One such file stops the generator (``DemoFolderConflict``): nothing is deleted
  or overwritten, and the message names the files.

Files elsewhere in the folder are never looked at.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from ..user_errors import UserInputError

VIDEO_DIR = "UCF-101"
SPLIT_DIR = "ucfTrainTestlist"
LIST_NAMES = ("classInd.txt", "trainlist01.txt", "testlist01.txt")
# A video written before its manifest: allow this much clock slack when comparing modification times.
MTIME_SLACK_S = 2.0
MAX_NAMED = 5


class DemoFolderConflict(UserInputError, FileExistsError):
    """The demo folder holds files the generator did not write (or that changed): it was left untouched."""


def file_digest(path: Path) -> dict:
    """{"size", "sha256"} of a file: what a manifest records to recognise it later."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def present_files(root: Path) -> list[str]:
    """Every file under ``root/UCF-101`` and ``root/ucfTrainTestlist``, as root-relative posix paths."""
    found = []
    for name in (VIDEO_DIR, SPLIT_DIR):
        base = root / name
        if base.is_dir():
            found += [p.relative_to(root).as_posix() for p in sorted(base.rglob("*")) if p.is_file() or p.is_symlink()]
    return found


@dataclass
class FolderSort:
    """The result of sorting a demo folder's files: the generator's own, and the others with the reason."""

    ours: list[str] = field(default_factory=list)
    foreign: list[tuple[str, str]] = field(default_factory=list)

    def describe_foreign(self) -> str:
        named = ", ".join(f"{rel} ({why})" for rel, why in self.foreign[:MAX_NAMED])
        more = f" and {len(self.foreign) - MAX_NAMED} more" if len(self.foreign) > MAX_NAMED else ""
        return f"{named}{more}"


def sort_files(
    root: Path,
    *,
    manifest: Optional[dict],
    manifest_lists: Optional[dict[str, str]] = None,
    interrupted: Optional[Iterable[str]] = None,
    demo_name: Optional[re.Pattern] = None,
) -> FolderSort:
    """Sorts the files of a demo folder into the generator's own and the others.

    manifest: the folder's demo_manifest.json (None if absent). manifest_lists: for a manifest without hashes,
    the exact text of the split lists its settings produce. interrupted: the files an interrupted generation
    was writing (root-relative), or None when none was interrupted; ``demo_name`` (a pattern of demo video
    paths) stands in when the interrupted generation's settings are unknown (a marker of an older version).
    """
    result = FolderSort()
    interrupted_set = set(interrupted or ())
    recorded = (manifest or {}).get("files")
    listed_videos = {f"{VIDEO_DIR}/{rel}" for rel in (manifest or {}).get("videos", [])}
    manifest_path = root / "demo_manifest.json"
    manifest_mtime = manifest_path.stat().st_mtime if manifest is not None and manifest_path.exists() else None
    for rel in present_files(root):
        path = root / rel
        if path.is_symlink():
            result.foreign.append((rel, "a link the generator never makes"))
            continue
        if rel in interrupted_set or (interrupted is not None and demo_name is not None and demo_name.fullmatch(rel)):
            result.ours.append(rel)
            continue
        why = _why_not_ours(path, rel, recorded, listed_videos, manifest_lists, manifest_mtime)
        if why is None:
            result.ours.append(rel)
        else:
            result.foreign.append((rel, why))
    return result


def _why_not_ours(path: Path, rel: str, recorded: Optional[dict], listed_videos: set[str],
                  manifest_lists: Optional[dict[str, str]], manifest_mtime: Optional[float]) -> Optional[str]:
    """None when the generator wrote this file and it is unchanged, else why it is not the generator's."""
    if recorded is not None:
        if rel not in recorded:
            return "not written by the generator"
        expected = recorded[rel]
        if path.stat().st_size != expected.get("size") or file_digest(path)["sha256"] != expected.get("sha256"):
            return "changed since it was generated"
        return None
    # a manifest of an older version: names, list texts and modification times
    name = rel.split("/", 1)[1] if rel.startswith(SPLIT_DIR + "/") else None
    if name in LIST_NAMES:
        if manifest_lists is None or name not in manifest_lists:
            return "cannot tell whether it was edited"
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            return "changed since it was generated"
        return None if text == manifest_lists[name] else "edited since it was generated"
    if rel not in listed_videos:
        return "not written by the generator"
    if manifest_mtime is None or path.stat().st_mtime > manifest_mtime + MTIME_SLACK_S:
        return "modified after the demo was generated"
    return None


def remove_files(root: Path, relative_paths: Iterable[str]) -> int:
    """Removes the given files (the generator's own, as sorted above) and then any folder under UCF-101/ left
    empty by that; returns how many files were removed."""
    removed = 0
    for rel in relative_paths:
        try:
            (root / rel).unlink()
            removed += 1
        except FileNotFoundError:
            pass
    video_root = root / VIDEO_DIR
    if video_root.is_dir():
        for folder in sorted((p for p in video_root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            try:
                folder.rmdir()  # only succeeds when empty
            except OSError:
                pass
    return removed


def settings_change(old: Optional[dict], new: dict, old_version, new_version) -> str:
    """``seed 5 -> 6, num_frames 12 -> 10`` (what differs between two demo settings), for messages."""
    if old is None:
        return "settings unknown"
    parts = [f"{key} {old.get(key)} -> {value}" for key, value in new.items() if old.get(key) != value]
    if old_version != new_version:
        parts.append(f"generator version {old_version} -> {new_version}")
    return ", ".join(parts) or "same settings"


def write_marker(path: Path, payload: str) -> None:
    """Writes the in-progress marker (settings of the generation under way) in one replace."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(payload)
    os.replace(tmp, path)
