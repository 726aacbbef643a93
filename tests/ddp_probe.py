"""Runs pipeline/train.py's ``main`` with a callback that records, in every rank, what tests/test_ddp.py checks.

Launched exactly like train.py::

    accelerate launch --config_file accelerate_configs/cpu_ddp.yaml tests/ddp_probe.py recipes/demo.yaml [--key value]

After training, each rank writes ``OUTPUT_DIR/ddp_probe/rank<R>.json`` holding:

- ``rank``, ``world_size`` as the Trainer sees them;
- ``train_labels``: the label of every training row (dataset order);
- ``epochs``: per epoch, the dataset indices of this rank's shard, read from the Trainer's own sharded batch sampler,
  and the labels of the batches the model actually received (a cross-check that the shard is what was trained on);
- ``weights``: per optimizer step, a SHA-256 of every parameter after the step (equal in all ranks iff in sync);
- ``evaluations``: per evaluation, the metric prefix, the dataset indices this rank was asked to predict (the
  sampler pads the last batches with repeats), and the labels / arg-max predictions that ``compute_metrics``
  received after the cross-rank gather, next to the dataset's labels and the reported accuracy.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

import pipeline.train as train_module  # noqa: E402
from pipeline.configs import parse_args  # noqa: E402


def parameters_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter's bytes, in name order: equal digests mean bit-identical weights."""
    digest = hashlib.sha256()
    for name, param in sorted(model.named_parameters()):
        digest.update(name.encode())
        digest.update(param.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def dataset_labels(dataloader) -> list[int]:
    """Labels of the dataloader's dataset in row order, without running its video transform."""
    return [int(x) for x in dataloader.dataset.with_format(None)["label"]]


def shard_indices(dataloader) -> list[int]:
    """The dataset rows this rank's (accelerate-prepared) dataloader yields, in order, without loading them."""
    return [int(i) for batch in dataloader.batch_sampler for i in batch]


class DDPProbe(TrainerCallback):
    """Records shards, weight digests and evaluation inputs of one rank (see the module docstring)."""

    def __init__(self) -> None:
        self.epochs: list[dict] = []
        self.weights: list[dict] = []
        self.evaluations: list[dict] = []
        self.metric_inputs: list[dict] = []  # filled by the compute_metrics wrapper, consumed by on_evaluate
        self.train_labels: list[int] = []
        self.sampler: str = ""

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        self.train_labels = dataset_labels(train_dataloader)
        self.sampler = type(train_dataloader.batch_sampler).__name__

    def record_batch(self, labels) -> None:
        """The labels of a training batch as it reaches the loss (before any mixing)."""
        if self.epochs:
            self.epochs[-1]["trained_labels"].extend(labels.tolist())

    def wrap_compute_loss(self, trainer_class) -> None:
        """Records each training batch's labels where the loss is computed: the model itself no longer sees them
        (the Trainer hands them to the run's loss function instead)."""
        plain = trainer_class.compute_loss
        probe = self

        def compute_loss(trainer, model, inputs, *args, **kwargs):
            if model.training:
                probe.record_batch(inputs["labels"])
            return plain(trainer, model, inputs, *args, **kwargs)

        trainer_class.compute_loss = compute_loss

    def on_epoch_begin(self, args, state, control, train_dataloader=None, **kwargs):
        epoch = len(self.epochs)
        # the Trainer's seedable sampler draws the same order for the same epoch: replaying it shows the shard
        train_dataloader.set_epoch(epoch)
        indices = shard_indices(train_dataloader)
        train_dataloader.set_epoch(epoch)
        self.epochs.append({"epoch": epoch, "shard": indices, "trained_labels": []})

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.weights.append({"step": state.global_step, "sha256": parameters_digest(model)})

    def on_evaluate(self, args, state, control, metrics=None, eval_dataloader=None, **kwargs):
        prefix = next(k for k in metrics if k.endswith("_loss")).removesuffix("_loss")
        seen = self.metric_inputs.pop() if self.metric_inputs else None
        self.evaluations.append({
            "prefix": prefix,
            "dataset_labels": dataset_labels(eval_dataloader),
            "shard": shard_indices(eval_dataloader),
            "metric_labels": seen["labels"] if seen else None,
            "metric_predictions": seen["predictions"] if seen else None,
            "accuracy": metrics.get(f"{prefix}_accuracy"),
        })

    def wrap_compute_metrics(self, make_compute):
        """compute_metrics is the one place the gathered predictions are visible: record what it receives."""

        def make():
            compute = make_compute()

            def recording(eval_pred):
                logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
                self.metric_inputs.append({
                    "labels": [int(x) for x in eval_pred.label_ids],
                    "predictions": [int(x) for x in logits.argmax(-1)],
                })
                return compute(eval_pred)

            return recording

        return make

    def to_dict(self, training_args) -> dict:
        return {
            "rank": training_args.process_index,
            "world_size": training_args.world_size,
            "batch_sampler": self.sampler,
            "train_labels": self.train_labels,
            "epochs": self.epochs,
            "weights": self.weights,
            "evaluations": self.evaluations,
        }


def probe_main(argv: list[str] | None = None) -> Path:
    model_args, data_args, run_args, training_args = parse_args(argv)
    probe = DDPProbe()
    # main() builds the Trainer itself; its compute_metrics factory is looked up on the module at call time
    train_module.compute_metrics_fn = probe.wrap_compute_metrics(train_module.compute_metrics_fn)
    probe.wrap_compute_loss(train_module.VideoTrainer)
    train_module.main(model_args, data_args, run_args, training_args, callbacks=[probe])
    out = Path(training_args.output_dir) / "ddp_probe" / f"rank{training_args.process_index}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(probe.to_dict(training_args)))
    return out


if __name__ == "__main__":
    probe_main()
