"""Recipe dataclasses and ``parse_args()``: a YAML recipe gives values, CLI flags override them.

Config flows one way: recipe -> CLI overrides -> these dataclasses (+ transformers' ``TrainingArguments``), and the
resolved result is written next to the checkpoint (``recipe.yaml``). An unknown key, in the recipe or on the
command line, is an error that names it.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml
from transformers import HfArgumentParser, TrainingArguments

from pipeline.compatibility import require
from pipeline.inference.clip_spec import (
    DEFAULT_NUM_CLIPS, DEFAULT_NUM_CROPS, DEFAULT_RATE, DEFAULT_SHORT, DEFAULT_STRATEGY, OLD_NAMES,
)

from pipeline.redaction import redact_recipe
from pipeline.training.checkpointing_names import accepted_names, argv_with_library_names, with_library_names


@dataclass
class ModelArguments:
    """Which model: a pretrained one (Hub id or local folder) or one built from a config (from scratch)."""

    model_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "Hub id or local folder of a pretrained checkpoint (classifier re-created)."}
    )
    model_type: Optional[str] = field(
        default=None, metadata={"help": "Build from a config instead: videomae | timesformer | vivit | vjepa2 | videoprism_vision_model | i3d."}
    )
    config_overrides: Optional[str] = field(
        default=None,
        metadata={"help": "Config fields to set (a YAML mapping in the recipe, or a JSON/YAML string on the CLI)."},
    )
    processor_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "Image processor to use (defaults to the model's own)."}
    )
    image_size: Optional[int] = field(
        default=None, metadata={"help": "Input size for models built from a config (crop size; resize = 8/7 of it)."}
    )
    attn_implementation: Optional[str] = field(
        default=None, metadata={"help": "eager | sdpa (TimeSformer gets our SDPA path; VideoMAE has it natively)."}
    )
    ignore_mismatched_backbone: bool = field(
        default=False, metadata={"help": "Load even if backbone weights are missing/unexpected (NOT recommended)."}
    )
    cache_dir: Optional[str] = field(default=None, metadata={"help": "Where Hub downloads are cached."})
    freeze_backbone: bool = field(
        default=False,
        metadata={"help": "Train only the head: backbone weights frozen and kept in eval mode (V-JEPA 2: its own "
                          "attentive pooler and classifier; else the model's classifier, or probe: attentive)."},
    )

    # --- fine-tuning: regularisation and what is trained (pipeline/models/drop_path.py, probe.py) ---
    drop_path_rate: float = field(
        default=0.0,
        metadata={"help": "Stochastic depth: rate of the deepest residual block, rising linearly from 0 at the first "
                  "(VideoMAE / TimeSformer / ViViT; weights and state_dict keys unchanged)."},
    )
    probe: str = field(
        default="linear",
        metadata={"help": "Head over the backbone's features: linear (the model's own classifier) | attentive (a "
                  "cross-attention pooler with a learned query, as in V-JEPA's frozen evaluations)."},
    )

    def overrides(self) -> dict[str, Any]:
        """``config_overrides`` as a dict (the recipe gives a mapping, the CLI a string)."""
        value = self.config_overrides
        if value is None or isinstance(value, dict):
            return dict(value or {})
        parsed = yaml.safe_load(value)
        if not isinstance(parsed, dict):
            raise ValueError(f"config_overrides must be a mapping, got {value!r}")
        return parsed


@dataclass
class DataArguments:
    """Which videos, how they are split, sampled and augmented."""

    dataset: str = field(
        default="ucf101",
        metadata={"help": "ucf101 | demo | videofolder | hf (a datasets dataset, Hub id or local) | webdataset (tar "
                          "shards of python -m pipeline.data.shards, streamed)."},
    )
    dataset_dir: Optional[str] = field(
        default=None,
        metadata={"help": "UCF101 folder, demo folder, video folder, datasets name/path, or the shards' folder / glob."},
    )
    streaming: bool = field(
        default=False,
        metadata={"help": "hf: stream the dataset (videos decoded from bytes in memory, no local copy); webdataset "
                          "always streams."},
    )
    shuffle_buffer_size: int = field(
        default=1000,
        metadata={"help": "Streams: training videos held in the shuffle buffer of each loader worker (their bytes "
                          "stay in memory; shard order is shuffled too). 0 or 1: no buffer."},
    )
    splits_dir: Optional[str] = field(default=None, metadata={"help": "UCF101 ucfTrainTestlist folder if elsewhere."})
    ucf101_split: int = field(default=1, metadata={"help": "Official UCF101 split: 1, 2 or 3."})
    validation_fraction: float = field(
        default=0.1, metadata={"help": "Share of train groups held out for validation (0: no validation)."}
    )
    test_fraction: float = field(default=0.2, metadata={"help": "Test share for datasets without official splits."})
    split_seed: int = field(default=42, metadata={"help": "Seed of the validation/test carving."})
    on_missing_video: str = field(
        default="error", metadata={"help": "error | skip: a split file naming a video that does not exist."}
    )
    video_column: str = field(default="video", metadata={"help": "Video column of a datasets dataset."})
    label_column: str = field(default="label", metadata={"help": "Label column of a datasets dataset."})
    # --- the clip contract (pipeline/inference/clip_spec.py): the same names in config.json and pipeline() ---
    num_frames: Optional[int] = field(default=None, metadata={"help": "Frames per clip (default: model config)."})
    frame_sampling_rate: int = field(default=DEFAULT_RATE, metadata={"help": "Take every r-th frame (dense sampling)."})
    frame_sampling_strategy: str = field(
        default=DEFAULT_STRATEGY, metadata={"help": "dense | uniform | random.", "aliases": ["--sampling_strategy"]})
    short_video: str = field(default=DEFAULT_SHORT, metadata={"help": "clamp | loop: videos shorter than a clip's span."})
    num_clips: int = field(
        default=DEFAULT_NUM_CLIPS,
        metadata={"help": "Evaluation views: temporal clips per video.", "aliases": ["--eval_num_clips"]})
    num_crops: int = field(
        default=DEFAULT_NUM_CROPS,
        metadata={"help": "Evaluation views: spatial crops per clip.", "aliases": ["--eval_num_crops"]})
    random_crop: bool = field(default=True, metadata={"help": "Random resized crop in training."})
    crop_scale: list[float] = field(
        default_factory=lambda: [0.25, 1.0], metadata={"help": "Area range of the random resized crop."}
    )
    horizontal_flip: bool = field(
        default=True, metadata={"help": "Random horizontal flip (turn off when left/right is the class!)."}
    )
    color_jitter: float = field(default=0.0, metadata={"help": "Brightness/contrast/saturation jitter strength."})
    rotation_range: float = field(default=0.0, metadata={"help": "Max rotation in degrees."})
    repeated_augmentation: int = field(
        default=1, metadata={"help": "Augmented clips drawn from one decode (VideoMAE uses 2)."}
    )
    augment_on: str = field(
        default="auto",
        metadata={"help": "auto | device | workers: where training clips are augmented and normalised (auto: the "
                          "training device when it is an accelerator, so loaders only decode; else the workers)."},
    )
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "Truncate train (debugging)."})
    max_eval_samples: Optional[int] = field(default=None, metadata={"help": "Truncate validation/test (debugging)."})
    probe_num_proc: Optional[int] = field(default=None, metadata={"help": "Processes probing video metadata."})

    # --- fine-tuning augmentation and sampling (pipeline/training/rand_augment.py, mixing.py, sampling_weights.py) ---
    rand_augment: Optional[str] = field(
        default=None,
        metadata={"help": "RandAugment spec like m7-n4-mstd0.5[-inc1]: N ops of magnitude M (0-10) per clip, the same "
                  "ops on every frame of a clip."},
    )
    mixup_alpha: float = field(default=0.0, metadata={"help": "Mixup: Beta(alpha, alpha) mixing weight (0: off)."})
    cutmix_alpha: float = field(
        default=0.0, metadata={"help": "CutMix: Beta(alpha, alpha) area kept (0: off); one box for all frames."}
    )
    mixup_prob: float = field(default=1.0, metadata={"help": "Probability that a batch is mixed at all."})
    mixup_switch_prob: float = field(
        default=0.5, metadata={"help": "With both alphas > 0: probability of CutMix instead of Mixup for a batch."}
    )
    balanced_sampler: bool = field(
        default=False, metadata={"help": "Draw training videos with probability 1 / (count of their class)."}
    )


@dataclass
class RunArguments:
    """What happens around training: resume, early stopping, final evaluation, publishing extras."""

    auto_resume: bool = field(
        default=True, metadata={"help": "Resume from the last checkpoint in output_dir when there is one."}
    )
    early_stopping_patience: Optional[int] = field(
        default=None, metadata={"help": "Stop after N evaluations without improvement of metric_for_best_model."}
    )
    early_stopping_threshold: float = field(default=0.0, metadata={"help": "Minimum improvement that counts."})
    run_multiview_evaluation: bool = field(
        default=False, metadata={"help": "After training, run pipeline.evaluation on test (report, figures)."}
    )

    # --- fine-tuning: optimiser, loss and weight averaging (pipeline/training/optimizer_groups.py, ema.py, ...) ---
    layer_decay: float = field(
        default=1.0,
        metadata={"help": "Layer-wise lr decay: lr x decay^(depth from the top); 1.0 = off (VideoMAE uses 0.75)."},
    )
    ema_decay: Optional[float] = field(
        default=None, metadata={"help": "Keep an exponential moving average of the weights with this decay."}
    )
    ema_warmup: bool = field(
        default=True, metadata={"help": "EMA decay min(decay, (1 + t) / (10 + t)) at update t (early weights fade)."}
    )
    ema_as_model: bool = field(
        default=False,
        metadata={"help": "Save (and select checkpoints by) the EMA weights instead of the raw ones."},
    )
    class_weighting: str = field(
        default="none", metadata={"help": "none | balanced: loss weight n / (classes x count of the class)."}
    )


ALL_ARGUMENT_CLASSES = (ModelArguments, DataArguments, RunArguments, TrainingArguments)


def _field_names() -> set[str]:
    return {f.name for cls in ALL_ARGUMENT_CLASSES for f in dataclasses.fields(cls) if f.init}


def load_recipe(path: str | Path) -> dict[str, Any]:
    """Reads a YAML recipe; every key must belong to one of the argument dataclasses."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recipe {path} does not exist")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"recipe {path} must be a YAML mapping of key: value")
    values = current_names(values, where=f"recipe {path}")
    check_keys(values, where=f"recipe {path}")
    return values


def current_names(values: dict[str, Any], where: str) -> dict[str, Any]:
    """A recipe's values with the clip contract's older key names (``OLD_NAMES``: ``sampling_strategy``,
    ``eval_num_clips``, ``eval_num_crops``) read as today's; both names at once is an error."""
    out = dict(values)
    for old, name in OLD_NAMES.items():
        if old in out:
            if name in out:
                raise ValueError(f"{where} sets both {old} and {name}: they are one key now ({name})")
            out[name] = out.pop(old)
    return out


def check_keys(values: dict[str, Any], where: str) -> None:
    """Fails on the first unknown key, naming it and the closest known ones. ``gradient_checkpointing`` and
    ``activation_checkpointing`` are both known whatever the installed transformers calls the setting
    (pipeline/training/checkpointing_names.py)."""
    known = _field_names() | accepted_names()
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ValueError(f"unknown key '{key}' in {where}{hint}")


def parse_args(argv: list[str] | None = None):
    """``train.py RECIPE.yaml [--key value ...]`` -> (ModelArguments, DataArguments, RunArguments, TrainingArguments).

    The recipe's values become the parser's defaults, so any CLI flag overrides them with normal argparse typing.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    recipe: dict[str, Any] = {}
    if argv and argv[0].endswith((".yaml", ".yml")):
        path = argv.pop(0)
        recipe = with_library_names(load_recipe(path), where=f"recipe {path}")
    argv = argv_with_library_names(argv)  # --gradient_checkpointing: the name the installed transformers uses
    # no abbreviations: a truncated flag is a typo, not a request
    parser = HfArgumentParser(ALL_ARGUMENT_CLASSES, allow_abbrev=False)
    parser.set_defaults(**recipe)
    # argparse would otherwise require --output_dir on the CLI even when the recipe gives it
    require("argparse_actions")
    for action in parser._actions:
        if action.dest in recipe:
            action.required = False
    namespace, unknown = parser.parse_known_args(argv)
    if unknown:
        flags = [u for u in unknown if u.startswith("-")] or unknown
        names = [f.lstrip("-").split("=")[0] for f in flags]
        close = difflib.get_close_matches(names[0], _field_names(), n=3)
        hint = f" (did you mean {', '.join('--' + c for c in close)}?)" if close else ""
        parser.exit(2, f"train.py: error: unknown option '{flags[0]}'{hint}\n")
    outputs = []
    values = vars(namespace)
    from pipeline.training.recipe_checks import check_numeric_fields

    check_numeric_fields(ALL_ARGUMENT_CLASSES, values)  # before TrainingArguments' own __post_init__ uses them
    for cls in ALL_ARGUMENT_CLASSES:
        keys = {f.name for f in dataclasses.fields(cls) if f.init}
        outputs.append(cls(**{k: v for k, v in values.items() if k in keys}))
    return tuple(outputs)


def resolved_recipe(*arg_objects: Any) -> dict[str, Any]:
    """The effective values of every argument dataclass, ready for ``yaml.safe_dump`` (written with the model);
    secrets (``hub_token``, token-shaped values) are left out (pipeline.redaction)."""
    out: dict[str, Any] = {}
    for obj in arg_objects:
        for f in dataclasses.fields(obj):
            if not f.init or f.name.startswith("_"):
                continue
            value = getattr(obj, f.name)
            if hasattr(value, "value"):  # enums
                value = value.value
            if isinstance(value, (str, int, float, bool, type(None), list, dict)):
                out[f.name] = value
            else:
                out[f.name] = str(value)
    return redact_recipe(out)
