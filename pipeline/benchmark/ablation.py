"""``python -m pipeline.benchmark ablation [--seeds 42 43 44] [--data small full] [--variants ...] [--table]``.

Trains ``recipes/demo.yaml`` with each fine-tuning trick switched on alone (and all together) against the plain
recipe, over several training seeds, on two data regimes, and reports test top-1:

- ``small``: the demo data with the training split cut to 192 clips (``--max_train_samples 192``, 24 per class on
  average, the same 192 for every run: the cut uses ``split_seed``), 600 steps (50 epochs), validation every 50;
- ``full``: the whole demo (8 classes, 1,176 training clips) for 1,000 steps (14 epochs), a shorter budget than the
  recipe's;
- ``demo``: the demo recipe exactly as it is (2,500 steps).

Runs are sequential ``python pipeline/train.py`` processes (one at a time: the machine is shared), the small-data
regime first (all seeds), then the full one. Each finished
run appends one JSON line to ``--results``; a run already there is skipped, so an interrupted sweep resumes by
running the same command. Checkpoints are deleted after each run (the metrics, recipe and trainer state stay).
``--table`` prints the Markdown table of what ``--results`` holds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

DATA = {
    "small": ["--max_train_samples", "192", "--max_steps", "600", "--eval_steps", "50", "--save_steps", "50"],
    "full": ["--max_steps", "1000"],
    "demo": [],
}
DATA_LABELS = {"small": "192 clips, 600 steps", "full": "1,176 clips, 1,000 steps", "demo": "demo recipe, 2,500 steps"}
# each trick alone on top of the plain demo recipe; "all" combines them as the VideoMAE recipe does
VARIANTS = {
    "baseline": [],
    "layer_decay": ["--layer_decay", "0.75"],
    "drop_path": ["--drop_path_rate", "0.1"],
    "mixup_cutmix": ["--mixup_alpha", "0.8", "--cutmix_alpha", "1.0"],
    "rand_augment": ["--rand_augment", "m7-n4-mstd0.5-inc1"],
    "ema": ["--ema_decay", "0.999", "--ema_as_model", "true"],
    "class_balance": ["--class_weighting", "balanced", "--balanced_sampler", "true"],
    "all": ["--layer_decay", "0.75", "--drop_path_rate", "0.1", "--mixup_alpha", "0.8", "--cutmix_alpha", "1.0",
            "--rand_augment", "m7-n4-mstd0.5-inc1", "--ema_decay", "0.999", "--ema_as_model", "true"],
    "all_but_rand_augment": ["--layer_decay", "0.75", "--drop_path_rate", "0.1", "--mixup_alpha", "0.8",
                             "--cutmix_alpha", "1.0", "--ema_decay", "0.999", "--ema_as_model", "true"],
}
LABELS = {
    "baseline": "plain demo recipe",
    "layer_decay": "layer_decay 0.75",
    "drop_path": "drop_path_rate 0.1",
    "mixup_cutmix": "mixup 0.8 / cutmix 1.0",
    "rand_augment": "rand_augment m7-n4-mstd0.5-inc1",
    "ema": "ema_decay 0.999, ema_as_model",
    "class_balance": "class_weighting balanced + balanced_sampler",
    "all": "all of the above but class balance",
    "all_but_rand_augment": "all but class balance and RandAugment",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.benchmark ablation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--data", nargs="+", choices=list(DATA), default=list(DATA))
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--dataset_dir", default="data/demo")
    parser.add_argument("--work_dir", default="outputs/ablation")
    parser.add_argument("--results", default=None, help="JSON lines (default: WORK_DIR/results.jsonl)")
    parser.add_argument("--table", action="store_true", help="only print the table of the results so far")
    return parser


def run_one(data: str, variant: str, seed: int, args) -> dict:
    out = Path(args.work_dir) / data / variant / f"seed{seed}"
    if out.exists():
        shutil.rmtree(out)  # an interrupted run starts over (its results were never recorded)
    flags = ["--dataset_dir", args.dataset_dir, "--output_dir", str(out), "--seed", str(seed), "--report_to", "none",
             "--disable_tqdm", "true", *DATA[data], *VARIANTS[variant]]
    start = time.time()
    process = subprocess.run([sys.executable, str(REPO / "pipeline" / "train.py"), "recipes/demo.yaml", *flags],
                             cwd=REPO, capture_output=True, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    wall = time.time() - start
    out.mkdir(parents=True, exist_ok=True)
    (out / "train.log").write_text(process.stdout + process.stderr)
    if process.returncode != 0:
        raise RuntimeError(f"{data}/{variant}/seed {seed} failed ({process.returncode}); log: {out / 'train.log'}")
    metrics = json.loads((out / "all_results.json").read_text())
    for checkpoint in out.glob("checkpoint-*"):
        shutil.rmtree(checkpoint)
    return {
        "data": data, "variant": variant, "seed": seed, "wall_s": round(wall, 1),
        "command": " ".join(["python pipeline/train.py recipes/demo.yaml", *flags]),
        "test_accuracy": metrics["test_accuracy"], "test_top5_accuracy": metrics.get("test_top5_accuracy"),
        "eval_accuracy": metrics.get("eval_accuracy"), "train_samples": metrics.get("train_samples"),
    }


def read_results(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def table(results: list[dict], data_order=tuple(DATA)) -> str:
    """Markdown: one row per variant, one column per data regime: mean test top-1 (each seed's in brackets)."""
    datas = [d for d in data_order if any(r["data"] == d for r in results)]
    seeds = {d: sorted({r["seed"] for r in results if r["data"] == d}) for d in datas}
    lines = ["| trick | " + " | ".join(f"{DATA_LABELS[d]}: mean (seeds {', '.join(map(str, seeds[d]))})"
                                       for d in datas) + " |", "|" + "---|" * (1 + len(datas))]
    for variant in VARIANTS:
        cells = []
        for data in datas:
            runs = {r["seed"]: r["test_accuracy"] for r in results if r["data"] == data and r["variant"] == variant}
            if not runs:
                exact = data != "small" and variant == "class_balance"
                cells.append("n/a: classes exactly balanced" if exact else "not run")
                continue
            each = " / ".join(f"{runs[s]:.3f}" if s in runs else "-" for s in seeds[data])
            cells.append(f"**{statistics.fmean(runs.values()):.3f}** ({each})")
        if any(c.startswith("**") for c in cells):
            lines.append(f"| {LABELS[variant]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    results_path = Path(args.results or Path(args.work_dir) / "results.jsonl")
    if args.table:
        print(table(read_results(results_path), data_order=args.data))
        return 0
    results_path.parent.mkdir(parents=True, exist_ok=True)
    for data in args.data:
        for seed in args.seeds:
            for variant in args.variants:
                if data != "small" and variant == "class_balance":
                    continue  # the whole demo's training split is exactly balanced (147 clips per class): a no-op
                done = {(r["data"], r["variant"], r["seed"]) for r in read_results(results_path)}
                if (data, variant, seed) in done:
                    continue
                print(f"[ablation] {data} / {variant} / seed {seed} ...", flush=True)
                record = run_one(data, variant, seed, args)
                with results_path.open("a") as handle:
                    handle.write(json.dumps(record) + "\n")
                print(f"[ablation] {data} / {variant} / seed {seed}: test top-1 {record['test_accuracy']:.4f} "
                      f"({record['wall_s']:.0f} s)", flush=True)
    print(table(read_results(results_path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
