"""Where a run streamed from an ``IterableDataset`` stands in its stream, saved in every checkpoint, so that a relaunch
resumes in the epoch and at the batch where the checkpoint was written.

A stream has no length, so the Trainer counts the whole run as one "epoch" of ``max_steps`` when it resumes: it
skips ``global_step`` batches of the stream's first epoch and starts the next from its beginning. Past the first
epoch that skips everything that is left of epoch 0 and then trains again on batches the run had already trained on,
with epoch 0's shuffle seed where the run was in a later epoch (measured on the streamed demo: the losses after a
mid-epoch resume differed from the uninterrupted run's). ``StreamPosition`` counts the stream's epochs (the
Trainer starts one each time the stream runs out) and the optimizer steps trained in the current one; it is an
``ExportableState`` callback, so the Trainer writes it into each checkpoint's ``trainer_state.json``
(``stateful_callbacks``), and ``VideoTrainer`` resumes from it: the Trainer's own epoch loop then calls
``set_epoch`` with the stream's epoch and skips only the batches of that epoch (accelerate's
``skip_first_batches``), as it does for a dataset with a length.
"""

from __future__ import annotations

from typing import Optional

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState


class StreamPosition(TrainerCallback, ExportableState):
    """The stream's epoch and the optimizer steps trained in it (``steps``), as of the last step."""

    def __init__(self, epoch: int = 0, steps: int = 0):
        self.epoch = int(epoch)
        self.steps = int(steps)
        self._began = False  # the first epoch of a launch is the one it starts (or resumes) in

    def state(self) -> dict:
        return {"args": {}, "attributes": {"epoch": self.epoch, "steps": self.steps}}

    @classmethod
    def saved(cls, trainer_state) -> Optional["StreamPosition"]:
        """The position a checkpoint's ``TrainerState`` holds, or None (a checkpoint of a run that did not stream)."""
        found = (trainer_state.stateful_callbacks or {}).get(cls.__name__)
        if isinstance(found, list):  # the Trainer appends when one run holds several callbacks of a class
            found = found[-1] if found else None
        if not found:
            return None
        return cls(**found.get("attributes", {}))

    def resume_at(self, position: "StreamPosition") -> None:
        self.epoch, self.steps, self._began = position.epoch, position.steps, False

    def on_epoch_begin(self, args, state, control, **kwargs):
        if self._began:
            self.epoch, self.steps = self.epoch + 1, 0
        self._began = True

    def on_step_end(self, args, state, control, **kwargs):
        self.steps += 1
