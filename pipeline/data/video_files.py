"""Video files named on a command line: ``find_videos`` expands folders to the video files under them.

Shared by the commands (``predict``, ``app``, ``export``) and the data benchmark, so a folder means the same files
everywhere: every file under it, at any depth, whose suffix is one of ``VIDEO_EXTENSIONS``, in sorted order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from pipeline.inference.decoding import VIDEO_EXTENSIONS


def videos_under(folder: str | Path) -> list[Path]:
    """The video files under ``folder`` (any depth, suffix in ``VIDEO_EXTENSIONS``), sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)


def find_videos(paths: Iterable[str]) -> tuple[list[str], list[dict[str, str]]]:
    """(inputs to classify, error records): files and URLs as given, folders expanded to the video files under
    them (sorted); a path that does not exist or a folder without videos becomes an error record."""
    found: list[str] = []
    errors: list[dict[str, str]] = []
    for name in paths:
        if name.lower().startswith(("http://", "https://")):
            found.append(name)
            continue
        path = Path(name)
        if path.is_dir():
            videos = videos_under(path)
            if not videos:
                errors.append({"video": str(path), "error": f"no video files ({', '.join(sorted(VIDEO_EXTENSIONS))}) "
                                                              "in this folder"})
            found += [str(p) for p in videos]
        elif path.is_file():
            found.append(str(path))
        else:
            errors.append({"video": str(path), "error": "no such video file or folder"})
    return found, errors
