"""``python -m pipeline.benchmark gpu --output_dir OUT``: the one GPU check, every figure against the model's own speed.

On a UCF101-shaped corpus (``pipeline.benchmark.corpus``; written to OUT/corpus unless ``--corpus`` names one), it
measures, each on the real code paths:

1. training clips/s of VideoMAE-B (eager and ``torch.compile``), TimeSformer-B (eager and SDPA attention) and I3D,
   each model alone (one batch kept on the device) and fed by the loader (workers decode uint8, the device
   augments), with the loader-fed speed as a share of the model-alone speed (``pipeline.benchmark.train``);
2. 30 Trainer steps of ``pipeline/train.py`` in bf16 and in fp16, with an evaluation, as a user runs it;
3. multi-view evaluation (``evaluate_model``, 2 clips x 3 crops) against the model's inference speed on views;
4. ``pipeline()`` on a list of videos (1 view and 5 x 3 views) against the same inference speed.

It prints one table (figure, value, share of the model-alone speed) and writes OUT/gpu_benchmark.json, updated after
every measurement, so a run cut short still reports what it measured. A measurement that fails is recorded with
its error and the others go on. Models are built from configs (no download): the speeds are those of the
published architectures. ``--tiny`` runs the same sequence with tiny models and a tiny corpus (the CPU test).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch
import yaml

from pipeline.inference.model_inputs import model_inputs

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "recipes"
RESULTS_FILE = "gpu_benchmark.json"

# Models from configs at the published sizes (None: the family's default config, which is the base model) or tiny.
FULL_MODELS = {
    "videomae": {"recipe": "videomae.yaml", "model_type": "videomae", "config_overrides": None},
    "timesformer": {"recipe": "timesformer.yaml", "model_type": "timesformer", "config_overrides": None},
    "i3d": {"recipe": "i3d.yaml", "model_type": "i3d", "config_overrides": {"dropout_prob": 0.5}},
}
TINY_MODELS = {
    "videomae": {"recipe": "videomae.yaml", "model_type": "videomae", "image_size": 32, "num_frames": 4,
                 "config_overrides": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                      "intermediate_size": 64, "patch_size": 16, "tubelet_size": 2}},
    "timesformer": {"recipe": "timesformer.yaml", "model_type": "timesformer", "image_size": 32, "num_frames": 4,
                    "config_overrides": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                         "intermediate_size": 64, "patch_size": 16}},
    "i3d": {"recipe": "i3d.yaml", "model_type": "i3d", "image_size": 32, "num_frames": 8,
            "config_overrides": {"width_multiplier": 0.125}},
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.benchmark gpu", description=__doc__.split("\n")[0],
                                     allow_abbrev=False)
    parser.add_argument("--output_dir", required=True, type=Path, help="results, recipes, runs (and the corpus)")
    parser.add_argument("--corpus", type=Path, help="an existing corpus (pipeline.benchmark corpus) to use")
    parser.add_argument("--videos_per_class", type=int, default=4, help="corpus size per class (101 classes)")
    parser.add_argument("--steps", type=int, default=25, help="measured training steps per measurement")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured steps first (loader start-up, kernels)")
    parser.add_argument("--workers", type=int, default=None, help="loader workers (default: cores - 1)")
    parser.add_argument("--tiny", action="store_true", help="tiny models and corpus: the whole sequence on a CPU")
    parser.add_argument("--no_compile", action="store_true", help="skip the torch.compile measurement")
    parser.add_argument("--only", nargs="+", help="run only these measurements (names as in the table)")
    return parser


class Results:
    """Measurements in order, written to JSON after each one."""

    def __init__(self, path: Path, facts: dict[str, Any]):
        self.path, self.facts, self.rows = path, facts, []

    def add(self, name: str, **values: Any) -> dict[str, Any]:
        row = {"name": name, **values}
        self.rows.append(row)
        self.path.write_text(json.dumps({**self.facts, "measurements": self.rows}, indent=1, default=str))
        return row

    def value(self, name: str, key: str = "clips_per_s") -> float | None:
        for row in self.rows:
            if row["name"] == name and key in row:
                return row[key]
        return None


def write_recipe(folder: Path, model: str, spec: dict[str, Any], tiny: bool) -> Path:
    """The repository's recipe for ``model`` with the model built from a config instead of downloaded."""
    recipe = yaml.safe_load((RECIPES / spec["recipe"]).read_text())
    recipe.pop("model_name_or_path", None)
    recipe["model_type"] = spec["model_type"]
    recipe["config_overrides"] = spec["config_overrides"]
    if tiny:
        recipe.update(image_size=spec["image_size"], num_frames=spec["num_frames"], bf16=False,
                      per_device_train_batch_size=2, per_device_eval_batch_size=4)
    recipe["report_to"] = "none"
    recipe.pop("early_stopping_patience", None)
    path = folder / f"{model}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def _attempt(results: Results, name: str, only, measure: Callable[[], dict[str, Any]]) -> None:
    if only and name not in only:
        return
    started = time.perf_counter()
    try:
        values = measure()
    except Exception as error:  # noqa: BLE001 - one failed measurement must not hide the others
        results.add(name, error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc()[-3000:],
                    seconds=round(time.perf_counter() - started, 1))
        print(f"[gpu benchmark] {name}: FAILED {type(error).__name__}: {error}", flush=True)
        return
    row = results.add(name, seconds=round(time.perf_counter() - started, 1), **values)
    print(f"[gpu benchmark] {name}: {_brief(row)}", flush=True)


def _brief(row: dict[str, Any]) -> str:
    keys = ("clips_per_s", "views_per_s", "videos_per_s", "train_samples_per_second", "data_wait_fraction")
    return ", ".join(f"{k} {row[k]:.4g}" for k in keys if isinstance(row.get(k), (int, float)))


def training_measurement(recipe: Path, common: list[str], *, synthetic: bool, compile_model: bool = False,
                         extra: list[str] = (), steps: int, warmup: int) -> dict[str, Any]:
    from pipeline.benchmark.train import benchmark

    result = benchmark(str(recipe), [*common, *extra], steps=steps, warmup=warmup, peak_tflops=None,
                       synthetic=synthetic, compile_model=compile_model)
    keep = ("clips_per_s", "wall_s", "data_wait_s", "host_to_device_s", "augment_s", "compute_s", "other_s",
            "parts_sum_s", "data_wait_fraction", "data_bound_steps", "host_cpu_s_per_clip", "worker_cpu_s_per_clip",
            "bytes_to_device_per_clip", "peak_memory_bytes", "mfu", "achieved_tflops", "batch_size", "clip_shape",
            "precision", "attn_implementation", "augment_on", "dataloader_num_workers", "mode", "compiled")
    return {key: result[key] for key in keep}


def inference_speed(model: torch.nn.Module, shape: tuple[int, ...], batch: int, device: torch.device,
                    repeats: int = 10) -> float:
    """The model alone in inference (eval mode, its own dtype): views per second on batches of ``batch``."""
    views = torch.randn((batch, *shape), device=device, dtype=next(model.parameters()).dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        for _ in range(3):
            model(**model_inputs(model, views))
        sync()
        started = time.perf_counter()
        for _ in range(repeats):
            model(**model_inputs(model, views))
        sync()
    return repeats * batch / (time.perf_counter() - started)


def evaluation_measurements(results: Results, recipe: Path, corpus: Path, only, *, tiny: bool, workers: int,
                            device: torch.device) -> None:
    """Multi-view evaluation and pipeline() throughput against the model's inference speed, same model, same dtype."""
    from pipeline.configs import parse_args
    from pipeline.evaluation import evaluate_model
    from pipeline.inference.preprocessing import VideoPreprocessing
    from pipeline.inference.video_pipeline import PyAVVideoClassificationPipeline
    from pipeline.training.recipe_checks import check_recipe
    from pipeline.training.setup import build_run, prepare_splits

    model_args, data_args, run_args, training_args = parse_args(
        [str(recipe), "--dataset_dir", str(corpus), "--output_dir", str(results.path.parent / "eval_run"),
         *(["--probe_num_proc", str(workers)] if workers else [])])
    check_recipe(model_args, data_args, run_args, training_args)
    test = prepare_splits(data_args, keep=["test"], limits={}).splits["test"]
    labels = test.features["label"].names
    run = build_run(model_args, data_args, run_args, training_args, labels, test["label"])
    model, processor = run.model, run.processor
    dtype = torch.float32 if tiny or device.type == "cpu" else torch.bfloat16
    model = model.to(device=device, dtype=dtype).eval()
    prep = VideoPreprocessing.from_processor(processor)
    shape = (model.config.num_frames, 3, *prep.crop_size)
    batch = 8 if tiny else 48
    speed = inference_speed(model, shape, batch, device)
    results.add("model inference alone (views/s)", clips_per_s=speed, batch=batch, dtype=str(dtype))

    def evaluation():
        metrics = evaluate_model(model, processor, test, num_clips=2, num_crops=3, batch_size=batch,
                                 num_workers=workers, sample_figures=False)
        views = metrics["num_views_scored"] / metrics["elapsed_s"]
        return {"views_per_s": views, "videos_per_s": metrics["videos_per_second"], "videos": metrics["num_videos"],
                "share_of_model": views / speed}

    _attempt(results, "multi-view evaluation 2x3", only, evaluation)
    paths = [row["video"] for row in test]
    classifier = PyAVVideoClassificationPipeline(model=model, image_processor=processor, device=device)

    for clips, crops in ((1, 1), (5, 3)):
        def pipeline_run(clips=clips, crops=crops):
            started = time.perf_counter()
            outputs = classifier(paths, num_clips=clips, num_crops=crops, batch_size=batch, num_workers=workers)
            seconds = time.perf_counter() - started
            views = len(outputs) * clips * crops / seconds
            return {"videos_per_s": len(outputs) / seconds, "views_per_s": views, "share_of_model": views / speed}

        _attempt(results, f"pipeline() list {clips}x{crops}", only, pipeline_run)


def trainer_run(recipe: Path, common: list[str], output: Path, precision: str, tiny: bool) -> dict[str, Any]:
    """``python pipeline/train.py`` for 30 steps with an evaluation, as a user runs it."""
    flags = {"bf16": ["--bf16", "true", "--fp16", "false"], "fp16": ["--bf16", "false", "--fp16", "true"]}
    command = [sys.executable, str(REPO / "pipeline" / "train.py"), str(recipe), *common, "--output_dir", str(output),
               "--max_steps", "6" if tiny else "30", "--eval_strategy", "steps", "--eval_steps", "3" if tiny else "15",
               "--save_strategy", "no", "--load_best_model_at_end", "false", "--validation_fraction", "0.5",
               "--max_eval_samples", "8" if tiny else "64", "--run_multiview_evaluation", "false",
               "--disable_tqdm", "true", "--use_cpu", "true" if tiny else "false",
               *(flags[precision] if not tiny else [])]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"train.py exited {done.returncode}: {done.stdout[-1500:]}\n{done.stderr[-2500:]}")
    metrics = json.loads((output / "all_results.json").read_text())
    return {"command_s": seconds, "train_samples_per_second": metrics.get("train_samples_per_second"),
            "train_loss": metrics.get("train_loss"), "eval_loss": metrics.get("eval_loss"),
            "test_accuracy": metrics.get("test_accuracy"), "precision": precision}


def run(args) -> Results:
    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = args.workers if args.workers is not None else max(1, cores - 1)
    facts = {"command": " ".join(["python -m pipeline.benchmark gpu", *sys.argv[2:]]), "device": str(device),
             "device_name": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "cores": cores,
             "loader_workers": workers, "torch": torch.__version__, "tiny": args.tiny}
    results = Results(out / RESULTS_FILE, facts)
    started = time.perf_counter()
    corpus = args.corpus
    if corpus is None:
        from pipeline.benchmark.corpus import write_corpus

        corpus = write_corpus(out / "corpus", num_classes=4 if args.tiny else 101,
                              videos_per_class=4 if args.tiny else args.videos_per_class, seed=0)
        results.add("corpus written", seconds=round(time.perf_counter() - started, 1), path=str(corpus))
    recipes = out / "recipes"
    recipes.mkdir(exist_ok=True)
    models = TINY_MODELS if args.tiny else FULL_MODELS
    paths = {name: write_recipe(recipes, name, spec, args.tiny) for name, spec in models.items()}
    common = ["--dataset_dir", str(corpus), "--output_dir", str(out / "runs"), "--validation_fraction", "0",
              "--dataloader_num_workers", str(workers), "--probe_num_proc", str(workers)]
    if args.tiny:
        common += ["--use_cpu", "true"]
    steps = {"steps": 2 if args.tiny else args.steps, "warmup": 1 if args.tiny else args.warmup}

    def pair(label: str, recipe: Path, extra: list[str] = (), compile_model: bool = False) -> None:
        _attempt(results, f"{label} model alone", args.only, lambda: training_measurement(
            recipe, common, synthetic=True, compile_model=compile_model, extra=extra, **steps))
        alone = results.value(f"{label} model alone")

        def fed():
            values = training_measurement(recipe, [*common, "--augment_on", "device"], synthetic=False,
                                          compile_model=compile_model, extra=extra, **steps)
            values["share_of_model"] = values["clips_per_s"] / alone if alone else None
            return values

        _attempt(results, f"{label} loader-fed", args.only, fed)

    pair("VideoMAE-B eager", paths["videomae"])
    if not args.no_compile and not args.tiny:
        pair("VideoMAE-B compiled", paths["videomae"], compile_model=True)
    pair("TimeSformer-B eager", paths["timesformer"], ["--attn_implementation", "eager"])
    pair("TimeSformer-B sdpa", paths["timesformer"], ["--attn_implementation", "sdpa"])
    pair("I3D", paths["i3d"])
    for precision in ("bf16", "fp16"):
        _attempt(results, f"Trainer 30 steps {precision} + evaluation", args.only,
                 lambda precision=precision: trainer_run(paths["videomae"], common[:2] + common[4:],
                                                         out / f"trainer_{precision}", precision, args.tiny))
    try:
        evaluation_measurements(results, paths["videomae"], corpus, args.only, tiny=args.tiny, workers=workers,
                                device=device)
    except Exception as error:  # noqa: BLE001
        results.add("evaluation set-up", error=f"{type(error).__name__}: {error}",
                    traceback=traceback.format_exc()[-3000:])
    results.facts["total_s"] = round(time.perf_counter() - started, 1)
    results.path.write_text(json.dumps({**results.facts, "measurements": results.rows}, indent=1, default=str))
    return results


def format_table(results: Results) -> str:
    lines = [f"GPU check on {results.facts['device_name']} ({results.facts['cores']} cores, "
             f"{results.facts['loader_workers']} loader workers, torch {results.facts['torch']})", "",
             "| measurement | speed | share of the model alone | notes |", "|---|---|---|---|"]
    for row in results.rows:
        if "error" in row:
            lines.append(f"| {row['name']} | FAILED | | {row['error'][:120]} |")
            continue
        if "clips_per_s" in row:
            speed = f"{row['clips_per_s']:.1f} clips/s"
        elif "views_per_s" in row:
            speed = f"{row['views_per_s']:.1f} views/s ({row['videos_per_s']:.1f} videos/s)"
        elif "train_samples_per_second" in row:
            speed = f"{row['train_samples_per_second']:.1f} samples/s"
        else:
            speed = f"{row.get('seconds', 0):.1f} s"
        share = row.get("share_of_model")
        notes = []
        if "data_wait_fraction" in row:
            notes.append(f"data wait {100 * row['data_wait_fraction']:.1f}%, data-bound steps "
                         f"{row['data_bound_steps']}, host CPU {1000 * row['host_cpu_s_per_clip']:.1f} ms/clip, "
                         f"{row['bytes_to_device_per_clip'] / 1e6:.2f} MB/clip to device, parts "
                         f"{row['parts_sum_s']:.3f}/{row['wall_s']:.3f} s")
        if row.get("mfu"):
            notes.append(f"MFU {100 * row['mfu']:.1f}%")
        if "eval_loss" in row:
            notes.append(f"eval loss {row['eval_loss']}, command {row['command_s']:.0f} s")
        lines.append(f"| {row['name']} | {speed} | {'' if share is None else f'{100 * share:.0f}%'} | "
                     f"{'; '.join(notes)} |")
    lines.append(f"\ntotal {results.facts.get('total_s', 0):.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    results = run(args)
    print(format_table(results))
    print(f"\nwrote {results.path}")
    return 1 if any("error" in row for row in results.rows) else 0
