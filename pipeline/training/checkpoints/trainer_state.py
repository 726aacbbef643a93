"""Run folders are self-contained: trainer_state.json stores ``best_model_checkpoint`` relative to the run folder
("checkpoint-200"), and is written atomically; on resume the best checkpoint is looked up in the run's own folder (by
its step), so a moved or copied run never loads another run's weights."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .folders import checkpoint_step

logger = logging.getLogger("pipeline.checkpoints")


def run_folder_of(json_path: str | os.PathLike) -> Path:
    """The run folder a trainer_state.json belongs to (its folder, or the parent of a checkpoint folder)."""
    folder = Path(json_path).resolve().parent
    return folder.parent if checkpoint_step(folder) is not None else folder


def write_trainer_state(state, json_path: str) -> None:
    """TrainerState.save_to_json, with best_model_checkpoint relative to the run folder and written atomically
    (a kill mid-write leaves the previous file, never a truncated one)."""
    data = dataclasses.asdict(state)
    best = data.get("best_model_checkpoint")
    if best:
        run = run_folder_of(json_path)
        best_path = Path(best)
        if best_path.resolve().parent == run:
            data["best_model_checkpoint"] = best_path.name
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    tmp = f"{json_path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, json_path)


class _HideRelativeBestWarning(logging.Filter):
    """The Trainer warns that a relative best_model_checkpoint "does not exist anymore" (it checks it against
    the working directory) and drops it; RunFolderState restores it from the run folder and says what it
    found, so that warning would only mislead."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("recorded in the resumed state does not exist anymore" in message
                    and message.startswith("The best checkpoint"))


class RunFolderState(TrainerCallback):
    """Keeps trainer_state.json self-contained: relative, atomically written best paths; on resume, the best
    checkpoint is this run folder's own (found by its step), whatever path the state file recorded."""

    def __init__(self):
        trainer_logger = logging.getLogger("transformers.trainer")
        if not any(isinstance(f, _HideRelativeBestWarning) for f in trainer_logger.filters):
            trainer_logger.addFilter(_HideRelativeBestWarning())

    def on_train_begin(self, args, state, control, **kwargs):
        state.save_to_json = functools.partial(write_trainer_state, state)
        step = state.best_global_step
        recorded = state.best_model_checkpoint
        if not step and not recorded:
            return
        name = f"{PREFIX_CHECKPOINT_DIR}-{step}" if step else Path(recorded).name
        candidate = os.path.join(args.output_dir, name)
        if os.path.isdir(candidate):
            state.best_model_checkpoint = candidate
        elif args.load_best_model_at_end:
            logger.warning("the best checkpoint of this run (%s) is no longer in %s: the best model at the end is "
                           "chosen among the checkpoints saved from now on", name, args.output_dir)
            state.best_model_checkpoint = None
            state.best_metric = None
            state.best_global_step = None
