"""``python -m pipeline.evaluation --model RUN_DIR_OR_HUB_ID --output_dir OUT [--num_clips K --num_crops C] ...``

Evaluates a trained model like the papers (``evaluate_model``: K clips x C crops per video, softmax averaged) and
writes metrics.json, CSVs, figures and report.md to ``--output_dir``. The data is the training run's own: dataset
kind, folder, official split, fractions, split seed and columns come from ``RUN_DIR/recipe.yaml`` (the resolved recipe
``pipeline/train.py`` writes next to the model), so ``--split test`` is exactly the run's test split; any of them
given on the command line wins. ``--zero_shot`` scores a video-text model (X-CLIP) by class names instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Any, Sequence

import torch
import yaml

from pipeline.evaluation.multiview import evaluate_model, process_state
from pipeline.inference.clip_spec import ClipSpec
from pipeline.models.loading import load_trained

logger = logging.getLogger("pipeline.evaluation")

# DataArguments fields that say which videos make which split: taken from the run's recipe unless given here.
DATA_FIELDS = ("dataset", "dataset_dir", "splits_dir", "ucf101_split", "validation_fraction", "test_fraction",
               "split_seed", "video_column", "label_column", "on_missing_video", "streaming")


def run_data_arguments(args: argparse.Namespace):
    """(DataArguments, whether the run's recipe.yaml supplied them): the recipe's data fields, then the flags."""
    from pipeline.configs import DataArguments

    recipe_path = Path(args.model) / "recipe.yaml"
    values: dict[str, Any] = {}
    if recipe_path.is_file():
        recipe = yaml.safe_load(recipe_path.read_text()) or {}
        values = {name: recipe[name] for name in DATA_FIELDS if recipe.get(name) is not None}
        logger.info("data of the training run (%s): %s", recipe_path, ", ".join(f"{k}={v}" for k, v in values.items()))
    given = {name: getattr(args, name) for name in DATA_FIELDS if getattr(args, name, None) is not None}
    if given:
        logger.info("given on the command line: %s", ", ".join(f"{k}={v}" for k, v in given.items()))
    fields = {f.name for f in dataclasses.fields(DataArguments)}
    return DataArguments(**{k: v for k, v in {**values, **given}.items() if k in fields}), bool(values)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.evaluation", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="trained model folder or Hub id")
    data = parser.add_argument_group(
        "data (default: the training run's own, from MODEL/recipe.yaml; else ucf101 and the defaults of train.py)")
    data.add_argument("--dataset", choices=["ucf101", "demo", "videofolder", "hf", "webdataset"])
    data.add_argument("--dataset_dir", help="UCF101 / demo / video folder, datasets name or path, or the shards' "
                                            "folder or glob (webdataset)")
    data.add_argument("--streaming", type=lambda v: v.lower() in ("1", "true", "yes"), default=None,
                      help="hf: stream the dataset, videos decoded from bytes in memory (true/false)")
    data.add_argument("--split", default="test", help="split to evaluate (default: test)")
    data.add_argument("--ucf101_split", type=int, help="official UCF101 split 1, 2 or 3")
    data.add_argument("--splits_dir", help="UCF101 ucfTrainTestlist folder, if elsewhere")
    data.add_argument("--validation_fraction", type=float, help="share of train groups held out for validation")
    data.add_argument("--test_fraction", type=float, help="test share for datasets without official splits")
    data.add_argument("--split_seed", type=int, help="seed of the validation/test carving")
    data.add_argument("--video_column", help="video column of a datasets dataset")
    data.add_argument("--label_column", help="label column of a datasets dataset")
    data.add_argument("--on_missing_video", choices=["error", "skip"],
                      help="a listed video that is not on disk: stop (error) or count it as skipped (skip)")
    parser.add_argument("--num_clips", type=int, default=None,
                        help="temporal clips per video (K; default: the views saved with the model, else 1)")
    parser.add_argument("--num_crops", type=int, default=None,
                        help="spatial crops per clip (C: 1 or 3; default: the views saved with the model, else 1)")
    parser.add_argument("--batch_size", type=int, default=8, help="views per forward pass")
    parser.add_argument("--num_workers", type=int, default=None, help="decoding workers (default: from CPU count)")
    parser.add_argument("--num_frames", type=int, help="override config.num_frames")
    parser.add_argument("--frame_sampling_rate", type=int, help="override config.frame_sampling_rate")
    parser.add_argument("--frame_sampling_strategy", choices=["dense", "uniform", "random"])
    parser.add_argument("--attn_implementation", choices=["eager", "sdpa"],
                        help="attention kernel (default: the model's)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--max_videos", type=int, help="evaluate only the first N videos (debugging)")
    parser.add_argument("--trainer_state",
                        help="trainer_state.json for the training curves (default: the model folder's)")
    parser.add_argument("--no_attention_maps", action="store_true", help="skip the attention / Grad-CAM figure")
    parser.add_argument("--output_dir", required=True, help="where metrics, figures and report.md go")
    zero_shot = parser.add_argument_group("zero-shot (a video-text model scores the classes by name, no training)")
    zero_shot.add_argument("--zero_shot", action="store_true",
                           help="--model is a video-text model (X-CLIP, e.g. microsoft/xclip-base-patch32)")
    zero_shot.add_argument("--prompt_template", default=None,
                           help="text for each class, '{}' = the class name (default: '{}', the name alone, as X-CLIP "
                                "was trained)")
    zero_shot.add_argument("--raw_class_names", action="store_true",
                           help="use class names as written (default: ApplyEyeMakeup -> 'apply eye makeup')")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The command line: load the model and the split, evaluate, write everything to --output_dir."""
    from pipeline.data.metadata import add_video_info
    from pipeline.data.sources import build_dataset
    from pipeline.data.streaming import is_stream

    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    state = process_state()
    data_args, recipe_used = run_data_arguments(args)
    with state.main_process_first():
        splits = build_dataset(data_args)
        if args.split not in splits:
            from pipeline.user_errors import UserValueError

            raise UserValueError(f"--split {args.split!r} is not in the dataset (it has: {', '.join(splits)})")
        dataset = splits[args.split]
        if is_stream(splits):  # shards carry their probes; a Hub stream is probed from memory while decoding
            skipped = []
            if args.max_videos is not None:
                dataset = dataset.take(args.max_videos)
        else:
            if args.max_videos is not None and args.max_videos < len(dataset):
                dataset = dataset.select(range(args.max_videos))
            dataset, skipped = add_video_info(dataset)
    extra: dict[str, Any] = {}
    if args.zero_shot:
        from pipeline.evaluation.zero_shot import DEFAULT_TEMPLATE, load_zero_shot_classifier

        model, processor = load_zero_shot_classifier(
            args.model, dataset.features["label"].names, template=args.prompt_template or DEFAULT_TEMPLATE,
            as_words=not args.raw_class_names)
        extra = {"zero_shot": True, "prompt_template": model.template, "prompts": model.prompts}
    else:
        model, processor = load_trained(args.model, args.attn_implementation)
    model.to(dtype=getattr(torch, args.dtype))
    spec = ClipSpec.from_config(model.config, processor, num_frames=args.num_frames, rate=args.frame_sampling_rate,
                                strategy=args.frame_sampling_strategy)
    trainer_state = args.trainer_state or (Path(args.model) / "trainer_state.json")
    return evaluate_model(
        model, processor, dataset,
        num_clips=args.num_clips, num_crops=args.num_crops, output_dir=args.output_dir, batch_size=args.batch_size,
        num_workers=args.num_workers, spec=spec, trainer_state=trainer_state, dataset_splits=splits,
        skipped=skipped, attention_maps=not (args.no_attention_maps or args.zero_shot),
        description={"model": args.model, "dataset": data_args.dataset, "dataset_dir": data_args.dataset_dir,
                     "split": args.split, "dtype": args.dtype, "data_from_recipe": recipe_used, **extra},
    )
