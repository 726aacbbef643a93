"""Runs pipeline/train.py's or pipeline.evaluation's command with one failure injected, for tests/test_failure_exit.py.

    python tests/failure_injection.py KIND RANK train.py-or-evaluation-arguments...
    accelerate launch --config_file accelerate_configs/cpu_ddp.yaml tests/failure_injection.py KIND RANK ...

KIND is where the failure happens (see INJECTIONS); RANK is the process that fails ("all" for every process). The
command then runs exactly as the user's would (``train.cli`` / the evaluation's ``run_or_exit(main)``), so the
test sees how the real entry point ends: its exit status, how long it took and what it printed.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transformers import TrainerCallback  # noqa: E402

import pipeline.evaluation.command as evaluation_command  # noqa: E402
import pipeline.train as train  # noqa: E402
import pipeline.training.setup as setup  # noqa: E402
from pipeline.inference.video_scoring import VideoClips  # noqa: E402
from pipeline.process_exit import run_or_exit  # noqa: E402
from pipeline.training.clip_transform import ClipTransform  # noqa: E402
from pipeline.training.trainer import VideoTrainer  # noqa: E402

# Training steps (or calls) that pass before the failure: the run is well under way (workers started) when it hits.
AFTER_CALLS = 3


def mark_failure() -> None:
    """Records when the failure happened ($FAILURE_MARK): the test measures the time to exit from here."""
    mark = os.environ.get("FAILURE_MARK")
    if mark and not os.path.exists(mark):
        Path(mark).write_text(repr(time.time()))


class InjectedFailure(Exception):
    """The failure a test planted; a type no code of the pipeline catches on purpose."""

    def __init__(self, message: str):
        mark_failure()
        super().__init__(message)


def _counter():
    calls = {"n": 0}

    def hit() -> bool:
        calls["n"] += 1
        return calls["n"] > AFTER_CALLS

    return hit


def _wrap_forward(model, where: str):
    forward, hit = model.forward, _counter()

    def failing_forward(*args, **kwargs):
        if hit():
            raise InjectedFailure(f"injected failure in the {where}")
        return forward(*args, **kwargs)

    model.forward = failing_forward
    return model


def inject_model():
    build = setup.build_model

    def build_failing(*args, **kwargs):
        model, processor = build(*args, **kwargs)
        return _wrap_forward(model, "model's forward"), processor

    setup.build_model = build_failing


def inject_loss():
    compute_loss, hit = VideoTrainer.compute_loss, _counter()

    def failing_loss(self, *args, **kwargs):
        if self.model.training and hit():
            raise InjectedFailure("injected failure in the loss")
        return compute_loss(self, *args, **kwargs)

    VideoTrainer.compute_loss = failing_loss


def inject_metric():
    def failing_metrics():
        def compute(eval_pred):
            raise InjectedFailure("injected failure in compute_metrics")
        return compute

    train.compute_metrics_fn = failing_metrics


class FailingCallback(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= AFTER_CALLS:
            raise InjectedFailure("injected failure in a callback")


def _wrap_transform(action):
    call, hit = ClipTransform.__call__, _counter()

    def failing_call(self, batch):
        if self.train and hit():
            action()
        return call(self, batch)

    ClipTransform.__call__ = failing_call


def inject_worker():
    def fail():
        raise InjectedFailure(f"injected failure in a loader worker (pid {os.getpid()})")
    _wrap_transform(fail)


def inject_worker_killed():
    _wrap_transform(lambda: (mark_failure(), os.kill(os.getpid(), signal.SIGKILL)))


def inject_stuck_thread():
    # a non-daemon thread that never ends: interpreter shutdown would wait for it forever (like a stuck pin-memory
    # thread or a hung worker join); the failure must end the process anyway
    threading.Thread(target=threading.Event().wait, name="never-ends", daemon=False).start()
    inject_model()


def inject_eval_model():
    load = evaluation_command.load_trained

    def load_failing(*args, **kwargs):
        model, processor = load(*args, **kwargs)
        return _wrap_forward(model, "model's forward (evaluation)"), processor

    evaluation_command.load_trained = load_failing


def inject_eval_worker():
    get, hit = VideoClips.__getitem__, _counter()

    def failing_get(self, position):
        if hit():
            raise InjectedFailure(f"injected failure in an evaluation worker (pid {os.getpid()})")
        return get(self, position)

    VideoClips.__getitem__ = failing_get


INJECTIONS = {
    "model": inject_model, "loss": inject_loss, "metric": inject_metric, "callback": None,
    "worker": inject_worker, "worker_killed": inject_worker_killed, "stuck_thread": inject_stuck_thread,
    "eval_model": inject_eval_model, "eval_worker": inject_eval_worker,
}


def main() -> None:
    kind, rank, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    here = os.environ.get("RANK", "0")
    callbacks = []
    if rank in ("all", here):
        if kind == "callback":
            callbacks.append(FailingCallback())
        else:
            INJECTIONS[kind]()
    if kind.startswith("eval_"):
        run_or_exit(evaluation_command.main, argv)
    else:
        sys.exit(train.cli(argv, callbacks=callbacks))


if __name__ == "__main__":
    main()
