"""Checkpoints a run can trust, and relaunches that do what they say.

- **Resume only from a checkpoint that is whole**: ``checkpoint_problem`` checks a checkpoint folder before any
  of it is loaded: trainer_state.json parses and names the folder's step, the weights open (safetensors header
  and extent; zip directory and CRCs of torch files), and the optimizer, scheduler and RNG files are there and
  intact. Auto-resume walks the checkpoints newest first; a damaged one is moved into ``output_dir/_set_aside/``
  with a ``REASON.txt`` and a logged reason (never deleted; the ``_`` keeps it out of Hub uploads and the
  Trainer's rotation), and the previous good one is used. An explicit ``--resume_from_checkpoint`` that is
  damaged is an error naming the file (a folder the user named is never moved).
- **Write failures name the path and the space**: a checkpoint that cannot be written (disk full, file size
  limit, I/O error; torch reports these as "unexpected pos ...") ends the run with the file, the free space
  and the size a checkpoint needs; the partial folder is set aside, the last good checkpoint is untouched.
- **Run folders are self-contained**: trainer_state.json stores ``best_model_checkpoint`` relative to the run
  folder ("checkpoint-200"), and is written atomically; on resume the best checkpoint is looked up in the
  run's own folder (by its step), so a moved or copied run never loads another run's weights.
- **A relaunch does what it says** (``plan_relaunch``): each checkpoint carries the resolved recipe that made
  it (``checkpoint-N/recipe.yaml``). Relaunching into a folder that holds a run made with other training
  arguments stops with the differences and the ways on; a complete run relaunched as it was returns its saved
  results without training; raising ``max_steps`` / ``num_train_epochs`` continues a run.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import re
import shutil
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml
from transformers import TrainerCallback
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import (
    ADAPTER_SAFE_WEIGHTS_NAME,
    ADAPTER_WEIGHTS_NAME,
    SAFE_WEIGHTS_INDEX_NAME,
    SAFE_WEIGHTS_NAME,
    WEIGHTS_INDEX_NAME,
    WEIGHTS_NAME,
)

from pipeline.inference.clip_spec import OLD_NAMES
from pipeline.user_errors import UserInputError

logger = logging.getLogger("pipeline.checkpoints")

SET_ASIDE_DIR = "_set_aside"
REASON_NAME = "REASON.txt"
RECIPE_NAME = "recipe.yaml"
OPTIMIZER_NAME = "optimizer.pt"
SCHEDULER_NAME = "scheduler.pt"
CHECKPOINT_RE = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")
# Recipe keys that may differ between a run and its relaunch without changing what the weights are trained
# with: where and how results are written, logged, published and evaluated, and how data is loaded.
BOOKKEEPING_KEYS = {
    "output_dir", "logging_dir", "run_name", "report_to", "disable_tqdm", "push_to_hub", "resume_from_checkpoint",
    "auto_resume", "run_multiview_evaluation", "per_device_eval_batch_size", "max_eval_samples", "probe_num_proc",
    "cache_dir", "use_cpu", "skip_memory_metrics", "local_rank", "debug", "gradient_checkpointing",
    "gradient_checkpointing_kwargs", "torch_compile", "torch_compile_backend", "torch_compile_mode", "tf32",
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


class CheckpointError(UserInputError, ValueError):
    """A checkpoint named with --resume_from_checkpoint cannot be resumed; the message says which file."""


class RelaunchConflict(UserInputError, FileExistsError):
    """output_dir holds a run made with other training arguments: nothing was trained."""


class CheckpointWriteError(OSError):
    """A checkpoint (or the final model) could not be written: path, cause, free and needed space."""


# ---- what makes a checkpoint whole -----------------------------------------------------------------------------

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


def checkpoints_newest_first(output_dir: str | os.PathLike) -> list[Path]:
    folders = [p for p in Path(output_dir).iterdir() if p.is_dir() and checkpoint_step(p) is not None] \
        if Path(output_dir).is_dir() else []
    return sorted(folders, key=lambda p: -checkpoint_step(p))


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


# ---- relaunching --------------------------------------------------------------------------------------------------

def is_bookkeeping(key: str) -> bool:
    return key in BOOKKEEPING_KEYS or key.startswith(BOOKKEEPING_PREFIXES)


def recipe_differences(old: dict, new: dict, *, ignore: tuple[str, ...] = ()) -> list[tuple[str, Any, Any]]:
    """(key, old, new) of the training arguments that differ (bookkeeping keys and ``ignore`` left out)."""
    old, new = _current_names(old), _current_names(new)
    differences = []
    for key in sorted(set(old) | set(new)):
        if is_bookkeeping(key) or key in ignore:
            continue
        before, after = old.get(key), new.get(key)
        if key == "num_frames" and (before is None or after is None):
            continue  # None means "the model's own", which the final recipe spells out
        if _normal(before) != _normal(after):
            differences.append((key, before, after))
    return differences


def _current_names(recipe: dict) -> dict:
    """A recipe with the clip contract's older key names (a run folder written before the rename) read as today's."""
    out = dict(recipe)
    for old, name in OLD_NAMES.items():
        if old in out:
            out.setdefault(name, out.pop(old))
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


def plan_relaunch(recipe: dict, training_args, run_args) -> Relaunch:
    """Decides what this launch does with what output_dir already holds (see the module docstring).

    ``recipe``: this launch's resolved recipe (``configs.resolved_recipe``). Under several processes call it in
    every process inside ``main_process_first``: the main process sets damaged checkpoints aside first."""
    output_dir = Path(training_args.output_dir)
    plan = Relaunch(callbacks=[CheckpointRecipe(recipe)])
    explicit = training_args.resume_from_checkpoint
    checkpoint = resume_checkpoint(training_args, run_args)
    if checkpoint is None:
        _refuse_finished_run_without_checkpoints(output_dir, recipe, run_args)
        return plan
    folder = Path(checkpoint)
    state = read_trainer_state(folder / TRAINER_STATE_NAME)
    saved = _read_yaml(folder / RECIPE_NAME)
    if saved is None and (output_dir / RECIPE_NAME).is_file() and _same_step(output_dir, state):
        saved = _read_yaml(output_dir / RECIPE_NAME)  # a checkpoint of an older version: the run's final recipe
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


def _refuse_finished_run_without_checkpoints(output_dir: Path, recipe: dict, run_args) -> None:
    """A finished run that kept no checkpoint (save_strategy: no) would be overwritten by a new one made with
    other arguments: stop instead, naming the differences."""
    if not getattr(run_args, "auto_resume", True):
        return
    saved = _read_yaml(output_dir / RECIPE_NAME) if (output_dir / RECIPE_NAME).is_file() else None
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


# ---- the run folder's state file: relative best path, atomic writes ---------------------------------------------

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


# ---- write failures -------------------------------------------------------------------------------------------

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
        target = _newest_file(folder) or folder
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
