"""Resume only from a checkpoint that is whole; set the damaged ones aside.

``checkpoint_problem`` checks a checkpoint folder before any of it is loaded: trainer_state.json parses and names the
folder's step, the weights open (safetensors header and extent; zip directory and CRCs of torch files), and the
optimizer, scheduler and RNG files are there and intact. Auto-resume walks the checkpoints newest first; a damaged
one is moved into ``output_dir/_set_aside/`` with a ``REASON.txt`` and a logged reason (never deleted; the ``_``
keeps it out of Hub uploads and the Trainer's rotation), and the previous good one is used. An explicit
``--resume_from_checkpoint`` that is damaged is an error naming the file (a folder the user named is never moved).
"""

from __future__ import annotations

import json
import logging
import os
import time
import zipfile
from pathlib import Path
from typing import Optional

from transformers.trainer import TRAINER_STATE_NAME
from transformers.utils import (
    ADAPTER_SAFE_WEIGHTS_NAME,
    ADAPTER_WEIGHTS_NAME,
    SAFE_WEIGHTS_INDEX_NAME,
    SAFE_WEIGHTS_NAME,
    WEIGHTS_INDEX_NAME,
    WEIGHTS_NAME,
)

from pipeline.user_errors import UserInputError

from .folders import (
    OPTIMIZER_NAME, REASON_NAME, SCHEDULER_NAME, SET_ASIDE_DIR, checkpoint_step, checkpoints_newest_first,
    read_trainer_state,
)

logger = logging.getLogger("pipeline.checkpoints")


class CheckpointError(UserInputError, ValueError):
    """A checkpoint named with --resume_from_checkpoint cannot be resumed; the message says which file."""


def _safetensors_problem(path: Path) -> Optional[str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except Exception as error:  # safetensors raises its own SafetensorError for every malformed file
        return f"{path.name} is damaged ({type(error).__name__}: {error})"
    return None


def _torch_file_problem(path: Path) -> Optional[str]:
    """A torch.save file (a zip): its directory must parse and every member's CRC must match."""
    if path.stat().st_size == 0:
        return f"{path.name} is empty"
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        return f"{path.name} is damaged ({error})"
    return f"{path.name} is damaged (member {bad} fails its checksum)" if bad else None


def _weights_problem(folder: Path) -> Optional[str]:
    for index_name in (SAFE_WEIGHTS_INDEX_NAME, WEIGHTS_INDEX_NAME):
        index = folder / index_name
        if index.is_file():
            try:
                shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (ValueError, KeyError, TypeError) as error:
                return f"{index_name} is damaged ({error})"
            for shard in shards:
                if not (folder / shard).is_file():
                    return f"{shard} (named in {index_name}) is missing"
                check = _safetensors_problem if shard.endswith(".safetensors") else _torch_file_problem
                problem = check(folder / shard)
                if problem:
                    return problem
            return None
    for name, check in ((SAFE_WEIGHTS_NAME, _safetensors_problem), (WEIGHTS_NAME, _torch_file_problem),
                        (ADAPTER_SAFE_WEIGHTS_NAME, _safetensors_problem), (ADAPTER_WEIGHTS_NAME, _torch_file_problem)):
        if (folder / name).is_file():
            return check(folder / name)
    # FSDP / DeepSpeed write their own layouts; their loaders check them
    if any(p.name.startswith(("pytorch_model_fsdp", "global_step")) for p in folder.iterdir()):
        return None
    return f"no model weights ({SAFE_WEIGHTS_NAME} or {WEIGHTS_NAME})"


def checkpoint_problem(folder: str | os.PathLike, *, need_optimizer: bool = True) -> Optional[str]:
    """Why ``folder`` cannot be resumed from (one line), or None when it is whole.

    need_optimizer: a full resume needs the optimizer and scheduler files (runs with save_only_model do not)."""
    folder = Path(folder)
    if not folder.is_dir():
        return f"{folder} is not a folder"
    state_path = folder / TRAINER_STATE_NAME
    if not state_path.is_file():
        return f"no {TRAINER_STATE_NAME} (the run was stopped while saving it)"
    try:
        state = read_trainer_state(state_path)
    except ValueError as error:
        return str(error).replace(str(state_path), TRAINER_STATE_NAME)
    step = checkpoint_step(folder)
    if step is not None and state["global_step"] != step:
        return f"{TRAINER_STATE_NAME} says step {state['global_step']}, the folder name {step}"
    problem = _weights_problem(folder)
    if problem:
        return problem
    deepspeed = any(p.name.startswith("global_step") for p in folder.iterdir())
    if need_optimizer and not deepspeed:
        for name in (OPTIMIZER_NAME, SCHEDULER_NAME):
            if not (folder / name).is_file():
                return f"{name} is missing"
    for path in sorted(folder.iterdir()):
        if path.name in (OPTIMIZER_NAME, SCHEDULER_NAME, "scaler.pt") or path.name.startswith("rng_state"):
            problem = _torch_file_problem(path)
            if problem:
                return problem
    return None


def set_aside(folder: Path, reason: str) -> Path:
    """Moves a checkpoint folder into ``<run>/_set_aside/`` with a REASON.txt; returns where it went."""
    folder = Path(folder)
    target_dir = folder.parent / SET_ASIDE_DIR
    target_dir.mkdir(exist_ok=True)
    target = target_dir / f"{folder.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    suffix = 1
    while target.exists():
        suffix += 1
        target = target_dir / f"{folder.name}-{time.strftime('%Y%m%d-%H%M%S')}-{suffix}"
    os.replace(folder, target)
    try:
        (target / REASON_NAME).write_text(f"{reason}\n")
    except OSError:
        pass  # the disk may be full: the log line below still says why
    logger.warning("checkpoint %s cannot be resumed from (%s): moved to %s", folder, reason, target)
    return target


def last_good_checkpoint(output_dir: str | os.PathLike, *, need_optimizer: bool = True) -> Optional[Path]:
    """The newest whole checkpoint of ``output_dir``; the damaged ones newer than it are set aside."""
    for folder in checkpoints_newest_first(output_dir):
        problem = checkpoint_problem(folder, need_optimizer=need_optimizer)
        if problem is None:
            return folder
        set_aside(folder, problem)
    return None


def resume_checkpoint(training_args, run_args) -> Optional[str]:
    """Explicit --resume_from_checkpoint (checked: CheckpointError when it is damaged) wins; else, with
    auto_resume, the last whole checkpoint in output_dir (damaged newer ones are set aside)."""
    need_optimizer = not getattr(training_args, "save_only_model", False)
    explicit = training_args.resume_from_checkpoint
    if explicit:
        problem = checkpoint_problem(explicit, need_optimizer=need_optimizer)
        if problem:
            raise CheckpointError(f"--resume_from_checkpoint {explicit} cannot be resumed from: {problem}")
        return explicit
    if not (run_args.auto_resume and os.path.isdir(training_args.output_dir)):
        return None
    last = last_good_checkpoint(training_args.output_dir, need_optimizer=need_optimizer)
    if last:
        logger.info("resuming from the last checkpoint in output_dir: %s", last)
    return str(last) if last else None
