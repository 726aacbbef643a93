"""A relaunch does what it says (``plan_relaunch``).

Each checkpoint carries the resolved recipe that made it (``checkpoint-N/recipe.yaml``, written by
``CheckpointRecipe``). Relaunching into a folder that holds a run made with other training arguments stops with the
differences and the ways on; a complete run relaunched as it was returns its saved results without training; raising
``max_steps`` / ``num_train_epochs`` continues a run. A recipe written by an earlier version is read as today's
(``current_recipe``: the clip contract's older key names; a frame count left to the model, filled in).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml
from transformers import TrainerCallback
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, WEIGHTS_NAME

from pipeline.inference.clip_spec import OLD_NAMES
from pipeline.user_errors import UserInputError

from .damage import resume_checkpoint
from .folders import RECIPE_NAME, read_trainer_state

logger = logging.getLogger("pipeline.checkpoints")

# Recipe keys that may differ between a run and its relaunch without changing what the weights are trained
# with: where and how results are written, logged, published and evaluated, and how data is loaded.
BOOKKEEPING_KEYS = {
    "output_dir", "logging_dir", "run_name", "report_to", "disable_tqdm", "push_to_hub", "resume_from_checkpoint",
    "auto_resume", "run_multiview_evaluation", "per_device_eval_batch_size", "max_eval_samples", "probe_num_proc",
    "cache_dir", "use_cpu", "skip_memory_metrics", "local_rank", "debug", "gradient_checkpointing",
    "gradient_checkpointing_kwargs", "activation_checkpointing", "activation_checkpointing_kwargs", "torch_compile", "torch_compile_backend", "torch_compile_mode", "tf32",
    "bf16", "fp16", "bf16_full_eval", "fp16_full_eval", "half_precision_backend", "project",
    "restore_callback_states_from_checkpoint", "ignore_data_skip", "load_best_model_at_end",
    "early_stopping_patience", "early_stopping_threshold", "metric_for_best_model", "greater_is_better",
    "augment_on",  # where the same augmentation runs (device or loader workers)
}
BOOKKEEPING_PREFIXES = ("logging_", "log_", "hub_", "dataloader_", "ddp_", "eval_", "save_", "include_", "trackio",
                        "prediction_", "batch_eval", "average_tokens")
# Keys that say how long to train: raising them continues a finished run.
LENGTH_KEYS = ("max_steps", "num_train_epochs")
MAX_LISTED_DIFFERENCES = 8


class RelaunchConflict(UserInputError, FileExistsError):
    """output_dir holds a run made with other training arguments: nothing was trained."""


def is_bookkeeping(key: str) -> bool:
    return key in BOOKKEEPING_KEYS or key.startswith(BOOKKEEPING_PREFIXES)


def recipe_differences(old: dict, new: dict, *, ignore: tuple[str, ...] = ()) -> list[tuple[str, Any, Any]]:
    """(key, old, new) of the training arguments that differ (bookkeeping keys and ``ignore`` left out)."""
    differences = []
    for key in sorted(set(old) | set(new)):
        if is_bookkeeping(key) or key in ignore:
            continue
        before, after = old.get(key), new.get(key)
        if _normal(before) != _normal(after):
            differences.append((key, before, after))
    return differences


def current_recipe(saved: dict, model_num_frames: Optional[int] = None) -> dict:
    """A recipe an earlier version wrote, read as today's: the clip contract's older key names (``OLD_NAMES``) under
    today's, and a frame count left to the model (``num_frames: null`` in the checkpoints of a run launched before the
    frame count was resolved up front) filled in with ``model_num_frames``, the model config's own."""
    out = dict(saved)
    for old, name in OLD_NAMES.items():
        if old in out:
            out.setdefault(name, out.pop(old))
    if out.get("num_frames") is None and model_num_frames is not None:
        out["num_frames"] = model_num_frames
    return out


def _normal(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    return value


def _describe(differences: list[tuple[str, Any, Any]]) -> str:
    shown = ", ".join(f"{key} {old!r} -> {new!r}" for key, old, new in differences[:MAX_LISTED_DIFFERENCES])
    more = f" and {len(differences) - MAX_LISTED_DIFFERENCES} more" if len(differences) > MAX_LISTED_DIFFERENCES else ""
    return shown + more


def _read_recipe(path: Path, model_num_frames: Optional[int]) -> Optional[dict]:
    """A saved recipe.yaml read as today's (``current_recipe``), or None when it is missing or unreadable."""
    saved = _read_yaml(path)
    return current_recipe(saved, model_num_frames) if saved is not None else None


def _read_yaml(path: Path) -> Optional[dict]:
    try:
        value = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return value if isinstance(value, dict) else None


def _finished(state: dict, recipe: dict) -> bool:
    """Whether a checkpoint with Trainer ``state`` has trained as long as ``recipe`` asks."""
    max_steps = recipe.get("max_steps") or -1
    if isinstance(max_steps, (int, float)) and max_steps > 0:
        return state["global_step"] >= max_steps
    epochs = recipe.get("num_train_epochs")
    if epochs is not None and state.get("epoch") is not None:
        return float(state["epoch"]) >= float(epochs) - 1e-6
    return state["global_step"] >= (state.get("max_steps") or 0) > 0


@dataclass
class Relaunch:
    """What a launch into ``output_dir`` does: resume from ``checkpoint`` (None: start), or nothing at all
    (``results``: the complete run's saved results)."""

    checkpoint: Optional[str] = None
    results: Optional[dict] = None
    callbacks: list = field(default_factory=list)


def plan_relaunch(recipe: dict, training_args, run_args, model_num_frames: Optional[int] = None) -> Relaunch:
    """Decides what this launch does with what output_dir already holds (see the module docstring).

    ``recipe``: this launch's resolved recipe (``configs.resolved_recipe``, ``num_frames`` resolved);
    ``model_num_frames``: the model config's own frame count (what an older recipe's ``num_frames: null`` meant).
    Under several processes call it in every process inside ``main_process_first``: the main process sets damaged
    checkpoints aside first."""
    output_dir = Path(training_args.output_dir)
    plan = Relaunch(callbacks=[CheckpointRecipe(recipe)])
    explicit = training_args.resume_from_checkpoint
    checkpoint = resume_checkpoint(training_args, run_args)
    if checkpoint is None:
        _refuse_finished_run_without_checkpoints(output_dir, recipe, run_args, model_num_frames)
        return plan
    folder = Path(checkpoint)
    state = read_trainer_state(folder / TRAINER_STATE_NAME)
    saved = _read_recipe(folder / RECIPE_NAME, model_num_frames)
    if saved is None and (output_dir / RECIPE_NAME).is_file() and _same_step(output_dir, state):
        # a checkpoint of an older version: the run's final recipe
        saved = _read_recipe(output_dir / RECIPE_NAME, model_num_frames)
    if saved is None:
        logger.warning("checkpoint %s does not record the arguments it was trained with (older version): "
                       "resuming without comparing them", folder)
        plan.checkpoint = checkpoint
        return plan
    differences = recipe_differences(saved, recipe, ignore=LENGTH_KEYS)
    if differences and explicit:
        logger.warning("resuming %s with other training arguments than it was trained with, as asked: %s",
                       folder, _describe(differences))
    elif differences:
        done = "a complete run" if _finished(state, saved) else f"a run stopped at step {state['global_step']}"
        raise RelaunchConflict(
            f"{output_dir} holds {done} trained with other arguments than this launch: {_describe(differences)}. "
            f"Nothing was trained. To train anew with these arguments, choose another --output_dir (or move "
            f"{output_dir} away); to resume that run with them anyway, pass --resume_from_checkpoint {folder}")
    complete = _finished(state, recipe) and (output_dir / "all_results.json").is_file() \
        and (output_dir / RECIPE_NAME).is_file()
    if complete and not explicit:
        plan.results = _read_results(output_dir)
        logger.warning(
            "%s already holds this run, complete (%d steps; its results are in %s): nothing to train. To train "
            "longer, raise --max_steps (it continues from %s); to train anew, choose another --output_dir; to "
            "evaluate or publish it: python -m pipeline.evaluation --model %s ..., python -m pipeline.publish push "
            "--model_dir %s --repo_id ...", output_dir, state["global_step"], output_dir / "all_results.json",
            folder.name, output_dir, output_dir)
        return plan
    if _finished(state, saved) and not _finished(state, recipe):
        logger.info("continuing the run in %s from step %d (%s) to the new length", output_dir,
                    state["global_step"], folder.name)
    plan.checkpoint = checkpoint
    return plan


def _same_step(output_dir: Path, state: dict) -> bool:
    try:
        return read_trainer_state(output_dir / TRAINER_STATE_NAME)["global_step"] == state["global_step"]
    except ValueError:
        return False


def _read_results(output_dir: Path) -> dict:
    try:
        results = json.loads((output_dir / "all_results.json").read_text())
    except (OSError, ValueError):
        return {}
    return results if isinstance(results, dict) else {}


def _refuse_finished_run_without_checkpoints(output_dir: Path, recipe: dict, run_args,
                                             model_num_frames: Optional[int]) -> None:
    """A finished run that kept no checkpoint (save_strategy: no) would be overwritten by a new one made with
    other arguments: stop instead, naming the differences."""
    if not getattr(run_args, "auto_resume", True):
        return
    saved = _read_recipe(output_dir / RECIPE_NAME, model_num_frames) if (output_dir / RECIPE_NAME).is_file() \
        else None
    has_weights = any((output_dir / name).is_file() for name in (SAFE_WEIGHTS_NAME, WEIGHTS_NAME,
                                                                    SAFE_WEIGHTS_INDEX_NAME))
    if saved is None or not has_weights:
        return
    differences = recipe_differences(saved, recipe)
    if differences:
        raise RelaunchConflict(
            f"{output_dir} holds a finished run (no checkpoints kept) trained with other arguments than this "
            f"launch: {_describe(differences)}. Nothing was trained. Choose another --output_dir for the new run "
            f"(or move {output_dir} away)")
    logger.warning("%s holds a finished run made with these arguments but no checkpoint to resume from: "
                   "training again from the start replaces its model", output_dir)


class CheckpointRecipe(TrainerCallback):
    """Writes the launch's resolved recipe into each checkpoint: the checkpoint says what trained it."""

    def __init__(self, recipe: dict):
        self.text = yaml.safe_dump(recipe, sort_keys=False)

    def on_save(self, args, state, control, **kwargs):
        if not args.should_save:
            return
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if folder.is_dir():
            tmp = folder / f"{RECIPE_NAME}.tmp"
            tmp.write_text(self.text)
            os.replace(tmp, folder / RECIPE_NAME)
