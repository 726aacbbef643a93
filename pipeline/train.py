"""Train and evaluate a video classifier with the HF Trainer: ``accelerate launch pipeline/train.py RECIPE.yaml``.

recipe + CLI -> dataclasses -> DatasetDict (probed once) -> on-the-fly PyAV clips -> Trainer -> checkpoints,
metrics (``all_results.json`` with ``test_accuracy`` / ``test_top5_accuracy``), model + processor + resolved
recipe in ``output_dir``, TensorBoard logs; optionally multi-view evaluation, report and Hub push.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

if __package__ in (None, ""):
    # run as a script (accelerate launch pipeline/train.py): make the package importable; pipeline/ itself is
    # first on sys.path, which is why no module there is named after a library
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml
from transformers import EarlyStoppingCallback

from pipeline.configs import parse_args, resolved_recipe
from pipeline.training.collate import VideoCollator
from pipeline.data.streaming import StreamCollator, manifest_class_counts, prepare_for_trainer, split_length, stream_labels
from pipeline.evaluation.metric_modules import load_metric
from pipeline.process_exit import run_or_exit
from pipeline.publish.model_card import write_run_card
from pipeline.training.checkpoints import plan_relaunch
from pipeline.training.run_lock import hold_output_dir
from pipeline.training.recipe_checks import check_recipe
from pipeline.training.setup import build_run, prepare_splits, resolve_num_frames, set_cpu_threads
from pipeline.training.trainer import VideoTrainer
from pipeline.redaction import install_log_redaction, take_hub_token
from pipeline.user_errors import one_line_errors

logger = logging.getLogger("pipeline.train")


def setup_logging(training_args) -> None:
    """One format for every process; transformers' own verbosity follows the Trainer's log level."""
    import datasets
    import transformers

    logging.basicConfig(
        format="%(asctime)s %(levelname)s [rank %(rank)s] %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        level=logging.INFO,
        handlers=[logging.StreamHandler(sys.stdout)],
        force=True,
    )
    rank = training_args.process_index
    old_factory = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = old_factory(*args, **kwargs)
        record.rank = rank
        return record

    logging.setLogRecordFactory(factory)
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
    datasets.utils.logging.set_verbosity(logging.WARNING)


def log_process(training_args) -> None:
    """The one start-up line every process prints: who am I, where, in which precision."""
    precision = "bf16" if training_args.bf16 else "fp16" if training_args.fp16 else "fp32"
    if training_args.fp16 and training_args.device.type == "cpu":
        precision += " (ignored on CPU: no fp16 autocast there, DESIGN fact 7)"
    logger.info(
        "process rank=%d local_rank=%d world_size=%d device=%s precision=%s",
        training_args.process_index,
        training_args.local_process_index,
        training_args.world_size,
        training_args.device,
        precision,
    )


def compute_metrics_fn():
    """Top-1 / top-5 through the evaluate module shipped in the repo (offline, DESIGN fact 5)."""
    metric = load_metric("topk_accuracy")

    def compute(eval_pred) -> dict[str, float]:
        logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
        # k is clipped to the class count inside the module; the key stays top5_accuracy
        scores = metric.compute(predictions=logits, references=eval_pred.label_ids, k=5)
        return {**scores, "videos": len(eval_pred.label_ids)}  # the videos scored (pipeline.training.video_counts)

    return compute


def prepare_training_args(training_args, model_args, run_args) -> None:
    """Settings this pipeline needs regardless of the recipe."""
    # the video column must reach with_transform (DESIGN fact 4)
    training_args.remove_unused_columns = False
    training_args.label_names = ["labels"]
    if training_args.metric_for_best_model is None:
        training_args.metric_for_best_model = "accuracy"
        training_args.greater_is_better = True
    if run_args.early_stopping_patience and not training_args.load_best_model_at_end:
        raise ValueError("early_stopping_patience needs load_best_model_at_end: true (and an eval strategy)")


def check_world_size(training_args) -> None:
    """Fails when the launcher started several processes but each one trains alone (e.g. DDP on a machine without
    GPUs whose recipe lacks ``use_cpu: true``): they would all train on the whole data and write one output_dir."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and training_args.world_size != launched:
        raise RuntimeError(
            f"the launcher started {launched} processes (WORLD_SIZE={launched}) but the Trainer sees a world of "
            f"{training_args.world_size} on {training_args.device}: on a machine without GPUs set use_cpu: true "
            "(recipe or --use_cpu true) or ACCELERATE_USE_CPU=true"
        )


def main(model_args, data_args, run_args, training_args, callbacks=None) -> dict[str, float]:
    """Trains, evaluates and saves; ``callbacks``: extra ``TrainerCallback`` objects (tests use them to watch ranks)."""
    setup_logging(training_args)
    # the token goes to this process's HF_TOKEN: nothing written (training_args.bin, recipe, logs) holds it
    install_log_redaction(secrets=[take_hub_token(training_args)])
    log_process(training_args)
    check_world_size(training_args)
    set_cpu_threads(training_args)
    prepare_training_args(training_args, model_args, run_args)
    check_recipe(model_args, data_args, run_args, training_args)  # impossible values stop here, in one line
    hold_output_dir(training_args)  # one run per output_dir: a second one stops here, naming the first
    # the frame count is known before anything is written: recipe.yaml (and each checkpoint's) states it
    model_num_frames = resolve_num_frames(model_args, data_args)
    # what output_dir holds decides what this launch does: resume, continue, stop with a reason, or nothing
    with training_args.main_process_first(desc="checkpoint check", local=training_args.save_on_each_node):
        relaunch = plan_relaunch(resolved_recipe(model_args, data_args, run_args, training_args), training_args,
                                 run_args, model_num_frames)
    if relaunch.results is not None:
        return relaunch.results

    prepared = prepare_splits(
        data_args, counts_dir=training_args.output_dir, is_main_process=training_args.should_save,
        evaluation_on=training_args.eval_strategy != "no",
        one_process_first=lambda: training_args.main_process_first(desc="dataset preparation"))
    splits, skipped, counts, streamed = prepared.splits, prepared.skipped, prepared.counts, prepared.streamed
    labels = splits["train"].features["label"].names
    logger.info("data: %s; %d classes", {k: split_length(v) for k, v in splits.items()}, len(labels))

    if streamed:  # a stream's labels are not read ahead: class weights take the shards' per-class counts
        train_labels = (stream_labels(splits["train"], manifest_class_counts(data_args))
                        if run_args.class_weighting != "none" else [])
    else:
        train_labels = splits["train"]["label"]
    # a stream is not read ahead, so its short videos are not counted before training
    run = build_run(model_args, data_args, run_args, training_args, labels, train_labels,
                    None if streamed else splits)
    model, processor, fine_tuning = run.model, run.processor, run.fine_tuning
    train_transform, eval_transform = run.train_transform, run.eval_transform
    logger.info("training clips are augmented and normalised on the %s", train_transform.placement)
    if streamed:
        loader_sets = prepare_for_trainer(splits, data_args, training_args, train_transform)
        collator = StreamCollator(VideoCollator(), counts.wrap(eval_transform))
    else:
        collator = VideoCollator()
        loader_sets = {name: split.with_transform(train_transform if name == "train" else counts.wrap(eval_transform))
                       for name, split in splits.items()}
    train_ds = loader_sets["train"]
    eval_ds = loader_sets.get("validation")
    if eval_ds is None and training_args.eval_strategy != "no":
        logger.warning("no validation split (validation_fraction=0): evaluation during training is off")
        training_args.eval_strategy = "no"
        training_args.load_best_model_at_end = False

    callbacks = list(callbacks or []) + relaunch.callbacks
    if run_args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(run_args.early_stopping_patience, run_args.early_stopping_threshold))
    trainer = VideoTrainer(
        model=model,
        args=training_args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        data_collator=collator,
        compute_metrics=compute_metrics_fn(),
        processing_class=processor,
        callbacks=callbacks,
        device_batch=run.device_batch,
        clip_randomness=train_transform.randomness if streamed else None,
        fine_tuning=fine_tuning,
    )

    train_result = trainer.train(resume_from_checkpoint=relaunch.checkpoint)
    trainer.save_model()  # also saves the processor (processing_class)
    train_metrics = dict(train_result.metrics)
    train_metrics["train_samples"] = split_length(splits["train"])
    train_metrics["skipped_videos"] = len(skipped)
    trainer.log_metrics("train", train_metrics)
    trainer.save_metrics("train", train_metrics)
    trainer.save_state()

    results = dict(train_metrics)
    # Final evaluations go through named eval datasets: with persistent workers the Trainer caches ONE unnamed
    # eval dataloader, and evaluate(test_ds) would silently score the validation set again.
    final_sets = {"validation": eval_ds} if eval_ds is not None else {}
    if "test" in splits:
        final_sets["test"] = loader_sets["test"]
    trainer.eval_dataset = final_sets
    for name, prefix in (("validation", "eval"), ("test", "test")):
        if name not in final_sets:
            continue
        mark = counts.mark()
        metrics = trainer.evaluate(eval_dataset=name, metric_key_prefix=prefix)
        counts.evaluated(name, prefix, metrics, mark)  # {prefix}_samples: scored; {prefix}_skipped_videos
        metrics.update(fine_tuning.evaluate_ema(name, prefix))  # the EMA too, unless it is the model
        trainer.log_metrics(prefix, metrics)
        trainer.save_metrics(prefix, metrics)
        results.update(metrics)
    if trainer.is_world_process_zero():
        counts.write()  # skipped_videos.json: split, path and reason of every video not scored

    if trainer.is_world_process_zero():
        recipe = resolved_recipe(model_args, data_args, run_args, training_args)
        Path(training_args.output_dir, "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))

    if run_args.run_multiview_evaluation and "test" in splits:
        from pipeline.evaluation import evaluate_model

        evaluate_model(
            trainer.model,
            processor,
            splits["test"],
            num_clips=data_args.num_clips,
            num_crops=data_args.num_crops,
            output_dir=Path(training_args.output_dir) / "evaluation",
            batch_size=training_args.per_device_eval_batch_size,
            trainer_state=Path(training_args.output_dir) / "trainer_state.json",
            dataset_splits=splits,
            skipped=counts.probe_skipped("test"),
            description={"split": "test", "dataset": data_args.dataset},
        )

    if training_args.push_to_hub:
        # the Trainer's push rewrites README.md with its own card: push first (it also waits for checkpoint
        # uploads), then publish our card, figures and remote code over it in one commit
        from pipeline.publish.hub import prepare_model_dir_for_hub, push_model_dir, regular_files

        regular_files(training_args.output_dir)  # a symbolic link stops the push before anything is sent
        trainer.push_to_hub(commit_message="Training finished")
        if trainer.is_world_process_zero():
            prepare_model_dir_for_hub(training_args.output_dir, repo_id=trainer.hub_model_id)
            push_model_dir(training_args.output_dir, trainer.hub_model_id, token=training_args.hub_token,
                           private=training_args.hub_private_repo)
    if trainer.is_world_process_zero():
        write_run_card(training_args.output_dir)  # README.md + remote code: the card's snippet runs on the folder
    return results


def run(argv: list[str] | None = None, callbacks=None) -> dict[str, float]:
    """Parses ``argv`` (recipe path first) and trains."""
    return main(*parse_args(argv), callbacks=callbacks)


def cli(argv: list[str] | None = None, callbacks=None) -> int:
    """The command: trains, or ends the process promptly with the traceback and a non-zero status on any failure
    (in the model, loss, metrics, a callback or a loader worker), so no crashed run keeps its GPUs."""
    # a user's mistake (an impossible recipe value, a relaunch into another run's folder): one line, status 2
    run_or_exit(one_line_errors("train.py")(run), argv, callbacks=callbacks)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
