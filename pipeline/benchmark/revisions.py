"""``python -m pipeline.benchmark revisions --baseline REV --corpus DIR``: this tree's data path against an older one.

Host CPU-seconds per training clip (the loader: workers and main process) and evaluation views per CPU-second (a
model that costs nothing, so only the data path is measured), for the working tree and for git revision REV
(checked out into a temporary worktree), measured in alternating rounds on the same corpus in one run. Each
measurement runs in its own interpreter with the tree's package first on sys.path, so two versions of the package
never meet; the measuring code adapts to both package layouts (before and after pipeline/training/ existed).

The training loader is the VideoMAE recipe's (16 frames at rate 4, 224 crops, random resized crop 0.25-1, flip,
repeated augmentation 2). The new tree's loader sends uint8 clips (``augment_on: device``); what the device then
does on a CPU is measured too and reported beside it, so no cost disappears from the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CHILD = r'''
import importlib.util, json, os, sys, time
import torch
torch.set_num_threads(1)
sys.path.insert(0, os.getcwd())
from torch.utils.data import DataLoader
from pipeline.data.ucf101 import load_ucf101
from pipeline.data.metadata import add_video_info

corpus, videos, workers, kind, clock_file = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
spec = importlib.util.spec_from_file_location("cpu_time", clock_file)  # the measuring tree's clock, for both
cpu_time = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cpu_time)
CpuClock = cpu_time.CpuClock
NEW = os.path.isdir("pipeline/training")
if NEW:
    from pipeline.inference.preprocessing import VideoPreprocessing
    from pipeline.training.augmentation import AugmentationSettings
    from pipeline.inference.clip_spec import ClipSpec
    from pipeline.training.clip_transform import ClipTransform
    from pipeline.training.collate import VideoCollator
    from pipeline.training.device_batch import DeviceBatch
else:
    from pipeline.data.transforms import AugmentationSettings, VideoPreprocessing
    from pipeline.data.clip_transform import ClipSampling as ClipSpec, ClipTransform
    from pipeline.data.collate import VideoCollator
prep = VideoPreprocessing(256, (224, 224), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
splits = load_ucf101(corpus, validation_fraction=0)
split = splits["train" if kind == "train" else "test"]
split = split.select(range(min(videos, len(split))))
split, _ = add_video_info(split)
out = {"tree": os.getcwd(), "layout": "new" if NEW else "old", "videos": len(split)}
if kind == "train":
    aug = AugmentationSettings(random_crop=True, crop_scale=(0.25, 1.0), horizontal_flip=True)
    extra = {"placement": "device"} if NEW else {}
    transform = ClipTransform(ClipSpec(16, 4), prep, train=True, augmentation=aug, repeats=2, **extra)
    loader = DataLoader(split.with_transform(transform), batch_size=8, shuffle=True, num_workers=workers,
                        collate_fn=VideoCollator(), persistent_workers=True)
    for _ in loader: pass  # a first epoch starts the workers and fills the OS caches
    clock, clips, sent, batches = CpuClock().start(), 0, 0, []
    for batch in loader:
        clips += batch["labels"].shape[0]
        sent += sum(v.nbytes for v in batch.values() if isinstance(v, torch.Tensor))
        if NEW and len(batches) < 4: batches.append(batch)
    main_cpu, worker_cpu = clock.read()
    out.update(clips=clips, loader_cpu_s_per_clip=(main_cpu + worker_cpu) / clips,
               loader_main_cpu_s_per_clip=main_cpu / clips, bytes_per_clip=sent / clips)
    if NEW:  # what augmenting on the device costs when the device is this CPU
        device_batch = DeviceBatch(prep, transform.augmentation)
        start, done = time.process_time(), 0
        for batch in batches:
            done += device_batch(batch, "cpu")["pixel_values"].shape[0]
        out["device_augment_cpu_s_per_clip_on_cpu"] = (time.process_time() - start) / done
else:
    class Free(torch.nn.Module):  # a model that costs nothing: the data path alone is measured
        def __init__(self):
            super().__init__(); self.w = torch.nn.Parameter(torch.zeros(3, 101))
        def forward(self, pixel_values):
            return type("O", (), {"logits": pixel_values[:, 0, :, 0, 0] @ self.w})()
    model = Free()
    if NEW:
        from pipeline.evaluation.multiview import dataset_clips, score_dataset
        def run():
            clips = dataset_clips(split, range(len(split)), ClipSpec(16, 4, "dense", num_clips=2))
            return score_dataset(model, clips, prep=prep, num_crops=3, batch_size=16, num_workers=workers,
                                 show_progress=False)
    else:
        from pipeline.evaluation import FrameSampling, VideoViews, make_view_loader, score_views
        def run():
            views = VideoViews(split, range(len(split)), make_view_loader(prep, FrameSampling(16, 4, "dense"), 2, 3))
            return score_views(model, views, batch_size=16, num_workers=workers, show_progress=False)
    run()  # warm
    clock = CpuClock().start()
    scores, skipped = run()
    main_cpu, worker_cpu = clock.read()
    views = sum(len(v) for v in scores.values())
    out.update(views=views, skipped=len(skipped), views_per_cpu_s=views / (main_cpu + worker_cpu),
               eval_main_cpu_s=main_cpu, eval_worker_cpu_s=worker_cpu)
print("RESULT " + json.dumps(out))
'''


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.benchmark revisions", description=__doc__.split("\n")[0],
                                     allow_abbrev=False)
    parser.add_argument("--baseline", required=True, help="git revision to compare with (e.g. a commit of main)")
    parser.add_argument("--corpus", required=True, type=Path, help="corpus folder (python -m pipeline.benchmark corpus)")
    parser.add_argument("--videos", type=int, default=48, help="videos per measurement")
    parser.add_argument("--workers", type=int, default=1, help="loader workers")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (baseline, this tree, ...)")
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser


def measure(tree: Path, corpus: Path, videos: int, workers: int, kind: str) -> dict:
    """One measurement in a fresh interpreter whose ``pipeline`` package is ``tree``'s."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    clock = REPO / "pipeline" / "benchmark" / "cpu_time.py"
    done = subprocess.run([sys.executable, "-c", CHILD, str(corpus), str(videos), str(workers), kind, str(clock)],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=3600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"measurement in {tree} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    results: dict = {"baseline": args.baseline, "rounds": []}
    with tempfile.TemporaryDirectory(prefix="baseline_") as scratch:
        baseline = Path(scratch) / "tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(baseline), args.baseline],
                       check=True, capture_output=True)
        try:
            for _ in range(args.rounds):
                for name, tree in (("baseline", baseline), ("current", REPO)):
                    for kind in ("train", "eval"):
                        row = measure(tree, args.corpus.resolve(), args.videos, args.workers, kind)
                        results["rounds"].append({**row, "path": row["tree"], "tree": name, "kind": kind})
                        print(json.dumps(results["rounds"][-1]), flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(baseline)],
                           capture_output=True)
    summary = {}
    for kind, key in (("train", "loader_cpu_s_per_clip"), ("eval", "views_per_cpu_s")):
        for name in ("baseline", "current"):
            values = [r[key] for r in results["rounds"] if r["tree"] == name and r["kind"] == kind]
            summary[f"{name}_{key}"] = sum(values) / len(values)
    summary["loader_cpu_ratio"] = summary["current_loader_cpu_s_per_clip"] / summary["baseline_loader_cpu_s_per_clip"]
    summary["eval_views_per_cpu_s_ratio"] = summary["current_views_per_cpu_s"] / summary["baseline_views_per_cpu_s"]
    results["summary"] = summary
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return results
