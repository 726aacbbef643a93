"""Checkpoints a run can trust, and relaunches that do what they say, one job per module:

- ``damage``: resume only from a checkpoint that is whole; a damaged one is set aside with its reason;
- ``relaunch``: what a launch into an existing output_dir does (resume, continue, stop naming the differences,
  or return the finished run's results), from the recipe each checkpoint records;
- ``trainer_state``: trainer_state.json with a best checkpoint relative to the run folder, written atomically;
- ``write_failures``: a checkpoint that cannot be written names the file, the cause and the space;
- ``folders``: what a run folder holds (checkpoint folders, their steps, their state files).
"""

from .damage import CheckpointError, checkpoint_problem, last_good_checkpoint, resume_checkpoint, set_aside
from .folders import (
    CHECKPOINT_RE, OPTIMIZER_NAME, REASON_NAME, RECIPE_NAME, SCHEDULER_NAME, SET_ASIDE_DIR, checkpoint_step,
    checkpoints_newest_first, read_trainer_state,
)
from .relaunch import (
    BOOKKEEPING_KEYS, BOOKKEEPING_PREFIXES, LENGTH_KEYS, CheckpointRecipe, Relaunch, RelaunchConflict, is_bookkeeping,
    current_recipe, plan_relaunch, recipe_differences,
)
from .trainer_state import RunFolderState, run_folder_of, write_trainer_state
from .write_failures import CheckpointWriteError, checkpoint_writes, is_write_failure

__all__ = [
    "BOOKKEEPING_KEYS", "BOOKKEEPING_PREFIXES", "CHECKPOINT_RE", "LENGTH_KEYS", "OPTIMIZER_NAME", "REASON_NAME",
    "RECIPE_NAME", "SCHEDULER_NAME", "SET_ASIDE_DIR", "CheckpointError", "CheckpointRecipe", "CheckpointWriteError",
    "Relaunch", "RelaunchConflict", "RunFolderState", "checkpoint_problem", "checkpoint_step", "checkpoint_writes",
    "checkpoints_newest_first", "current_recipe", "is_bookkeeping", "is_write_failure", "last_good_checkpoint", "plan_relaunch",
    "read_trainer_state", "recipe_differences", "resume_checkpoint", "run_folder_of", "set_aside",
    "write_trainer_state",
]
