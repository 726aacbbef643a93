"""Where a training batch's random draws come from, so that a resumed run trains on the clips the uninterrupted one did.

A training batch draws its clips' positions in time and their augmentation parameters (and, when the loader workers
augment, RandAugment's operations). Drawn from the loader worker's torch generator, they depended on which worker
loaded the batch and on everything that worker had drawn before: its seed is taken from the main process's
generator when the loader starts, and a run resumed mid-epoch starts its loader at another point, deals the batches
to the workers in another order and skips the batches before the checkpoint without drawing for them. With no
workers the main process draws, one batch ahead of training (accelerate prefetches), so the generator state the
Trainer saves in a checkpoint already holds the next batch's draws. Measured on the demo: a run resumed from a
mid-epoch checkpoint trained on other clips than the uninterrupted run (other losses); from an epoch boundary the
same.

``ClipRandomness`` seeds each batch's draws from what identifies it: the run's seed, the epoch and the keys of its
samples, in order (``sample_key``: the video's path, or a digest of its bytes). The same batch of the same epoch
gets the same draws in any worker, after any resume, with any number of workers; the batches are the same because
the sampler's order depends only on (seed, epoch) and the Trainer skips the batches trained before a checkpoint.
The draws run in a forked copy of torch's CPU generator, so the process's own stream (dropout, Mixup / CutMix in
the main process, restored by the Trainer from the checkpoint's ``rng_state``) is left as it was.

The seed and epoch live in a shared-memory tensor, as ``datasets.IterableDataset`` keeps its epoch, so that an
update in the main process reaches persistent loader workers; ``ClipRandomnessEpochs`` (a ``TrainerCallback``
that ``VideoTrainer`` adds when its training transform carries one) sets them at the start of training and of each
epoch. Streams (``IterableDataset``) use the same seeding with their samples' keys; their position in the stream is
state of their own.
"""

from __future__ import annotations

import hashlib
import math
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch
from transformers import TrainerCallback

SEED, EPOCH = 0, 1


def sample_key(video: Any) -> str:
    """What identifies one sample: its path, or a digest of its bytes (a ``Video(decode=False)`` value or raw bytes)."""
    if isinstance(video, str):
        return video
    if isinstance(video, dict):
        if video.get("path"):
            return str(video["path"])
        video = video.get("bytes") or b""
    if isinstance(video, (bytes, bytearray, memoryview)):
        return "sha256:" + hashlib.sha256(video).hexdigest()
    return repr(video)


class ClipRandomness:
    """The (seed, epoch) of a run's training draws, shared with its loader workers; seeds one batch at a time."""

    def __init__(self, seed: int = 0):
        self._state = torch.tensor([int(seed), 0], dtype=torch.int64).share_memory_()

    @property
    def seed(self) -> int:
        return int(self._state[SEED])

    @property
    def epoch(self) -> int:
        return int(self._state[EPOCH])

    def set_seed(self, seed: int) -> None:
        self._state[SEED] = int(seed)

    def set_epoch(self, epoch: int) -> None:
        self._state[EPOCH] = int(epoch)

    def batch_seed(self, keys: Sequence[str]) -> int:
        """A 63-bit seed that depends only on (seed, epoch, keys in order)."""
        digest = hashlib.blake2b(digest_size=8)
        digest.update(f"{self.seed}:{self.epoch}:".encode())
        for key in keys:
            digest.update(key.encode("utf-8", "surrogatepass"))
            digest.update(b"\0")
        return int.from_bytes(digest.digest(), "little") >> 1

    @contextmanager
    def drawing(self, keys: Sequence[str]) -> Iterator[None]:
        """Inside: torch's CPU generator seeded for this batch; after: the process's own stream, untouched."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.batch_seed(keys))
            yield


class ClipRandomnessEpochs(TrainerCallback):
    """Gives a training transform's ``ClipRandomness`` the run's seed (``data_seed``, else ``seed``) and the epoch.

    ``position``: a stream's ``StreamPosition``, whose epoch is the stream's (the Trainer's ``state.epoch`` counts a
    stream without a length as one epoch of ``max_steps``); it must run its ``on_epoch_begin`` before this one.
    """

    def __init__(self, randomness: ClipRandomness, position=None):
        self.randomness = randomness
        self.position = position

    @staticmethod
    def of(dataset) -> "ClipRandomnessEpochs | None":
        """The callback for ``dataset``'s ``with_transform`` transform when it carries a ``randomness``, else None."""
        transform = (getattr(dataset, "format", None) or {}).get("format_kwargs", {}).get("transform")
        randomness = getattr(transform, "randomness", None)
        return ClipRandomnessEpochs(randomness) if isinstance(randomness, ClipRandomness) else None

    def on_train_begin(self, args, state, control, **kwargs):
        self.randomness.set_seed(args.data_seed if args.data_seed is not None else args.seed)

    def on_epoch_begin(self, args, state, control, **kwargs):
        if self.position is not None:
            self.randomness.set_epoch(self.position.epoch)
            return
        # state.epoch is fractional (steps done / steps per epoch); a resumed run starts inside its epoch
        self.randomness.set_epoch(math.floor((state.epoch or 0.0) + 1e-9))
