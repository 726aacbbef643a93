"""``python -m pipeline.evaluation [RECIPE.yaml] --model RUN_DIR_OR_HUB_ID --output_dir OUT [--num_clips K ...]``

Evaluates a trained model like the papers (``evaluate_model``: K clips x C crops per video, softmax averaged) and
writes metrics.json, CSVs, figures and report.md to ``--output_dir``. The data flags are train.py's own
(``DataArguments``, parsed by ``HfArgumentParser``), and their values are the training run's: dataset kind, folder,
official split, fractions, split seed and columns come from ``RUN_DIR/recipe.yaml`` (the resolved recipe
``pipeline/train.py`` writes next to the model), so ``--split test`` is exactly the run's test split; a flag given on
the command line wins. The clip contract is the model's (config.json) unless its fields are given as flags.
``--zero_shot`` scores a video-text model (X-CLIP, VideoPrism) by class names instead.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
import yaml

from pipeline.evaluation.multiview import evaluate_model, process_state
from pipeline.inference.clip_spec import FIELDS, ClipSpec
from pipeline.models.loading import load_trained

logger = logging.getLogger("pipeline.evaluation")


@dataclass
class EvaluationArguments:
    """What to evaluate and how; the data are ``DataArguments`` (pipeline.configs), parsed with these."""

    model: str = field(metadata={"help": "trained model folder or Hub id"})
    output_dir: str = field(metadata={"help": "where metrics, figures and report.md go"})
    split: str = field(default="test", metadata={"help": "split to evaluate"})
    batch_size: int = field(default=8, metadata={"help": "views per forward pass"})
    num_workers: Optional[int] = field(default=None, metadata={"help": "decoding workers (default: from CPU count)"})
    attn_implementation: Optional[str] = field(
        default=None, metadata={"help": "attention kernel (default: the model's)", "choices": ["eager", "sdpa"]})
    dtype: str = field(default="float32", metadata={"choices": ["float32", "bfloat16", "float16"]})
    max_videos: Optional[int] = field(default=None, metadata={"help": "evaluate only the first N videos (debugging)"})
    trainer_state: Optional[str] = field(
        default=None, metadata={"help": "trainer_state.json for the training curves (default: the model folder's)"})
    no_attention_maps: bool = field(default=False, metadata={"help": "skip the attention / Grad-CAM figure"})
    zero_shot: bool = field(
        default=False,
        metadata={"help": "--model is a video-text model (X-CLIP, e.g. microsoft/xclip-base-patch32; VideoPrism, "
                          "e.g. google/videoprism-lvt-base-f16r288) that scores the classes by name, no training"})
    prompt_template: Optional[str] = field(
        default=None, metadata={"help": "zero-shot: text for each class, '{}' = the class name (default: the "
                                        "model's own: X-CLIP '{}', the name alone; VideoPrism 'a video of {}.')"})
    raw_class_names: bool = field(
        default=False,
        metadata={"help": "zero-shot: use class names as written (default: ApplyEyeMakeup -> 'apply eye makeup')"})


def run_recipe_data(model: str) -> dict[str, Any]:
    """The DataArguments values of the training run's resolved recipe (``MODEL/recipe.yaml``), clip contract left
    out (config.json holds it); {} when the model folder has none (a Hub id, a model trained elsewhere)."""
    from pipeline.configs import DataArguments, current_names

    recipe_path = Path(model) / "recipe.yaml"
    if not recipe_path.is_file():
        return {}
    recipe = current_names(yaml.safe_load(recipe_path.read_text()) or {}, where=str(recipe_path))
    names = {f.name for f in dataclasses.fields(DataArguments)} - set(FIELDS)
    values = {name: recipe[name] for name in names if recipe.get(name) is not None}
    logger.info("data of the training run (%s): %s", recipe_path,
                ", ".join(f"{k}={values[k]}" for k in sorted(values)))
    return values


def parse_args(argv: Sequence[str] | None = None):
    """``[RECIPE.yaml] --model M --output_dir OUT [--key value ...]`` -> (EvaluationArguments, DataArguments,
    whether the run's recipe gave the data).

    DataArguments come from its defaults, then RECIPE.yaml (optional), then the run's own ``MODEL/recipe.yaml``
    (which videos make which split), then the flags. The clip contract's fields (``num_frames``,
    ``frame_sampling_rate``, ``frame_sampling_strategy``, ``short_video``, ``num_clips``, ``num_crops``) are the
    model's (config.json) unless given as flags.
    """
    from transformers import HfArgumentParser

    from pipeline.configs import DataArguments, load_recipe

    argv = list(sys.argv[1:] if argv is None else argv)
    recipe: dict[str, Any] = {}
    if argv and argv[0].endswith((".yaml", ".yml")):
        recipe = load_recipe(argv.pop(0))
    parser = HfArgumentParser((EvaluationArguments, DataArguments), prog="python -m pipeline.evaluation",
                              description=__doc__.split("\n")[0], allow_abbrev=False)
    data_names = {f.name for f in dataclasses.fields(DataArguments)}
    parser.set_defaults(**{k: v for k, v in recipe.items() if k in data_names and k not in FIELDS})
    # only the flags may override the model's own contract
    parser.set_defaults(**{name: None for name in FIELDS})
    known, _ = parser.parse_known_args(argv)  # --model, to find the run's recipe
    from_run = run_recipe_data(known.model) if getattr(known, "model", None) else {}
    parser.set_defaults(**from_run)
    args, data_args = parser.parse_args_into_dataclasses(argv)
    return args, data_args, bool(from_run)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The command line: load the model and the split, evaluate, write everything to --output_dir."""
    from pipeline.training.setup import prepare_splits

    from pipeline.user_errors import check_model_reference

    args, data_args, recipe_used = parse_args(argv)
    check_model_reference(args.model)  # before any data is read
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    state = process_state()
    prepared = prepare_splits(data_args, keep=[args.split], limits={args.split: args.max_videos}, shuffle=False,
                              one_process_first=state.main_process_first)
    dataset, skipped = prepared.splits[args.split], prepared.skipped
    extra: dict[str, Any] = {}
    if args.zero_shot:
        from pipeline.evaluation.zero_shot import load_zero_shot_classifier

        model, processor = load_zero_shot_classifier(
            args.model, dataset.features["label"].names, template=args.prompt_template,
            as_words=not args.raw_class_names)
        extra = {"zero_shot": True, "prompt_template": model.template, "prompts": model.prompts}
    else:
        model, processor = load_trained(args.model, args.attn_implementation)
    model.to(dtype=getattr(torch, args.dtype))
    spec = ClipSpec.from_config(model.config, processor, **{name: getattr(data_args, name) for name in FIELDS})
    trainer_state = args.trainer_state or (Path(args.model) / "trainer_state.json")
    return evaluate_model(
        model, processor, dataset,
        output_dir=args.output_dir, batch_size=args.batch_size,
        num_workers=args.num_workers, spec=spec, trainer_state=trainer_state, dataset_splits=prepared.built,
        skipped=skipped, attention_maps=not (args.no_attention_maps or args.zero_shot),
        description={"model": args.model, "dataset": data_args.dataset, "dataset_dir": data_args.dataset_dir,
                     "split": args.split, "dtype": args.dtype, "data_from_recipe": recipe_used, **extra},
    )
