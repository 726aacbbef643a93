"""Write failures name the path and the space: a checkpoint that cannot be written (disk full, file size limit, I/O
error; torch reports these as "unexpected pos ...") ends the run with the file, the free space and the size a
checkpoint needs; the partial folder is set aside, the last good checkpoint is untouched."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

from transformers.trainer import TRAINER_STATE_NAME

from .damage import set_aside
from .folders import checkpoint_step, checkpoints_newest_first


class CheckpointWriteError(OSError):
    """A checkpoint (or the final model) could not be written: path, cause, free and needed space."""


_WRITE_FAILURE_TEXT = ("unexpected pos", "pytorchstreamwriter", "file write failed", "i/o error", "no space",
                       "file too large", "os error", "disk quota")


def is_write_failure(error: BaseException) -> bool:
    if isinstance(error, CheckpointWriteError):
        return False
    if isinstance(error, OSError):
        return True
    if isinstance(error, RuntimeError) or type(error).__name__ == "SafetensorError":
        text = str(error).lower()
        return any(part in text for part in _WRITE_FAILURE_TEXT)
    return False


def _size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def _free_space(path: Path) -> Optional[int]:
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def _newest_file(folder: Path) -> Optional[Path]:
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
    return max(files, key=lambda p: p.stat().st_mtime_ns) if files else None


def _failed_file(folder: Path, error: BaseException) -> Path:
    """The file whose write failed: the one the OSError names (anywhere in the exception's chain); for a
    safetensors failure (its errors name no file) the weights file; else the file written last."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.filename:
            return Path(os.fsdecode(seen.filename))
        seen = seen.__cause__ or seen.__context__
    if "safetensor" in f"{type(error).__name__} {error}".lower():
        weights = sorted(folder.glob("*.safetensors"), key=lambda p: p.stat().st_mtime_ns) if folder.is_dir() else []
        # the file being written is the newest; none yet: the write failed as it began, on the first file
        return weights[-1] if weights else folder / "model.safetensors"
    return _newest_file(folder) or folder


def _estimated_need(folder: Path, model) -> tuple[Optional[int], str]:
    """Bytes a checkpoint needs: the size of the run's last whole checkpoint, else weights x 3 (Adam)."""
    run = folder.parent
    for other in checkpoints_newest_first(run):
        if other != folder and (other / TRAINER_STATE_NAME).is_file():
            return _size_of(other), f"the size of {other.name}"
    if model is not None:
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        return 3 * weights, "weights and optimizer state"
    return None, ""


@contextmanager
def checkpoint_writes(folder: str | os.PathLike, *, model=None, is_checkpoint: bool = True):
    """Turns a failed write inside the block into CheckpointWriteError naming the file, the cause, the free
    space and the space needed; a partial checkpoint folder is set aside (the last good one is untouched)."""
    try:
        yield
    except BaseException as error:
        if not is_write_failure(error):
            raise
        folder = Path(folder)
        target = _failed_file(folder, error)
        free = _free_space(folder)
        need, basis = _estimated_need(folder, model)
        cause = str(error).strip() or type(error).__name__
        if "unexpected pos" in cause:
            cause = f"the file could not be written in full (torch: {cause})"
        space = f"{_human(free)} free on its disk" if free is not None else "free space unknown"
        if need:
            space += f", a checkpoint needs about {_human(need)} ({basis})"
        aside = ""
        if is_checkpoint and folder.is_dir() and checkpoint_step(folder) is not None:
            try:
                aside = f"; the partial checkpoint was moved to {set_aside(folder, f'write failed: {cause}')}"
            except OSError:
                aside = f"; the partial checkpoint {folder} is incomplete (no {TRAINER_STATE_NAME}) and is skipped"
        last = next((p for p in checkpoints_newest_first(folder.parent) if p != folder), None) if is_checkpoint \
            else None
        resume = f"; relaunching resumes from {last.name}" if last is not None else ""
        raise CheckpointWriteError(
            f"writing {target} failed: {cause} ({space}){aside}{resume}. Free space or point output_dir "
            "elsewhere, then relaunch") from error
