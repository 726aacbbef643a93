"""What a run folder holds: its checkpoint folders (``checkpoint-N``), their steps, and their Trainer state files."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Optional

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

SET_ASIDE_DIR = "_set_aside"
REASON_NAME = "REASON.txt"
RECIPE_NAME = "recipe.yaml"
OPTIMIZER_NAME = "optimizer.pt"
SCHEDULER_NAME = "scheduler.pt"
CHECKPOINT_RE = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def checkpoint_step(folder: Path) -> Optional[int]:
    match = CHECKPOINT_RE.match(Path(folder).name)
    return int(match.group(1)) if match else None


def read_trainer_state(path: Path) -> dict:
    """trainer_state.json as a dict; ValueError naming the file when it is empty, truncated or not JSON."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"{path} cannot be read ({error.strerror or error})") from None
    if not text.strip():
        raise ValueError(f"{path} is empty")
    try:
        state = json.loads(text)
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON (truncated?): {error}") from None
    if not isinstance(state, dict) or not isinstance(state.get("global_step"), int):
        raise ValueError(f"{path} holds no global_step: not a Trainer state")
    return state


def checkpoints_newest_first(output_dir: str | os.PathLike) -> list[Path]:
    folders = [p for p in Path(output_dir).iterdir() if p.is_dir() and checkpoint_step(p) is not None] \
        if Path(output_dir).is_dir() else []
    return sorted(folders, key=lambda p: -checkpoint_step(p))
