"""``python -m pipeline.benchmark train --recipe R [--steps N] [--warmup W] [--synthetic] [--compile] [--json OUT]``.

Times training steps of a recipe's model on the recipe's real data pipeline (the same dataset, probing, clip
transform, collator, device-side augmentation and model that pipeline/train.py builds) and reports:

- clips/s over the measured steps (a clip is one row of ``pixel_values``; repeated augmentation gives R per video);
- each step's wall split into contiguous parts that add up to the measured wall: ``data wait`` (blocked in
  ``next(dataloader)``), ``host-to-device`` (the batch copied to the device), ``augment`` (device-side
  augmentation / normalisation of uint8 clips), ``compute`` (forward, backward, clipping, optimizer step) and
  ``other`` (everything between steps); on GPU each part ends with ``torch.cuda.synchronize()``;
- data-bound steps: those that waited for the loader longer than ``DATA_BOUND_FRACTION`` of their wall;
- host CPU-seconds per clip (main process and loader workers, separately), and host-to-device bytes per clip;
- peak memory (``torch.cuda.max_memory_allocated`` on GPU, the main process's peak RSS on CPU);
- model FLOPs per clip (analytic for VideoMAE / TimeSformer, see ``model_flops``, always checked against torch's
  FlopCounterMode with the model in eval mode; the count alone for other families) and MFU = 3 x forward FLOPs x
  clips/s / peak (989 TFLOP/s dense bf16 by default on GPU; on CPU it must be given or MFU is n/a).

``--synthetic`` measures the model alone: one batch, made once by the real pipeline and kept on the device, is fed
to every step (no loader, no copy, no augmentation). ``--compile`` wraps the model in ``torch.compile``.
Anything after the known options is a train.py override (``--per_device_train_batch_size 8 ...``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import resource
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from pipeline.benchmark.cpu_time import CpuClock
from pipeline.benchmark.model_flops import ANALYTIC, TRAINING_FACTOR, analytic_forward_flops, counted_forward_flops
from pipeline.configs import parse_args
from pipeline.training.checkpointing_names import checkpointing_enabled, checkpointing_kwargs, enable_checkpointing
from pipeline.training.collate import VideoCollator
from pipeline.training.recipe_checks import check_recipe
from pipeline.training.setup import build_run, prepare_splits
from pipeline.inference.model_inputs import model_inputs

logger = logging.getLogger("pipeline.benchmark.train")

H100_BF16_DENSE_TFLOPS = 989.0
# A step is data-bound when it waited for its batch longer than this share of its wall time.
DATA_BOUND_FRACTION = 0.05
PARTS = ("data_wait", "host_to_device", "augment", "compute", "other")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.benchmark train",
        description="Time training steps of a recipe on its real data pipeline. "
        "Unknown options are train.py overrides.",
        allow_abbrev=False,
    )
    parser.add_argument("--recipe", required=True, help="recipe YAML (as for pipeline/train.py)")
    parser.add_argument("--steps", type=int, default=20, help="measured training steps")
    parser.add_argument("--warmup", type=int, default=3, help="steps run first and not measured (start-up, caches)")
    parser.add_argument("--synthetic", action="store_true",
                        help="the model alone: one real batch kept on the device, fed to every step")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument(
        "--peak_tflops", type=float, default=None,
        help=f"peak TFLOP/s of the device for MFU (default on GPU: {H100_BF16_DENSE_TFLOPS:g}, H100 bf16 dense)",
    )
    parser.add_argument("--json", default=None, help="write the results here as JSON")
    return parser


def build_training_setup(recipe: str, overrides: list[str]):
    """The objects train.py builds, through the same setup (``pipeline.training.setup``: recipe checks, splits,
    model with its fine-tuning, transforms): (args tuple, model, train dataset with its clip transform, the
    transform, collator, device batch)."""
    model_args, data_args, run_args, training_args = parse_args([recipe, *overrides])
    check_recipe(model_args, data_args, run_args, training_args)
    train = prepare_splits(data_args, keep=["train"]).splits["train"]
    labels = train.features["label"].names
    run = build_run(model_args, data_args, run_args, training_args, labels, train["label"])
    args = (model_args, data_args, run_args, training_args)
    return args, run.model, train.with_transform(run.train_transform), run.train_transform, VideoCollator(), \
        run.device_batch


def precision_of(training_args, device: torch.device) -> tuple[str, torch.dtype | None]:
    """(label, autocast dtype) the Trainer would use: bf16 anywhere, fp16 only on GPU (DESIGN fact 7)."""
    if training_args.bf16:
        return "bf16", torch.bfloat16
    if training_args.fp16:
        return ("fp16", torch.float16) if device.type == "cuda" else ("fp32 (fp16 ignored on CPU)", None)
    return "fp32", None


def make_loader(dataset, collator, training_args, device: torch.device) -> torch.utils.data.DataLoader:
    workers = training_args.dataloader_num_workers
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=training_args.per_device_train_batch_size,
        shuffle=True,
        drop_last=True,  # every measured step has a full batch
        num_workers=workers,
        collate_fn=collator,
        pin_memory=training_args.dataloader_pin_memory and device.type == "cuda",
        persistent_workers=workers > 0,  # the loop restarts the loader when a short dataset runs out
        prefetch_factor=(training_args.dataloader_prefetch_factor or 2) if workers > 0 else None,
    )


def endless(loader):
    """Batches forever: a benchmark may want more steps than one pass over a small dataset holds."""
    while True:
        yield from loader


def attention_of(model, model_args) -> str | None:
    """The attention kernel of a transformer family (what --attn_implementation chose); None for CNNs like I3D."""
    if model.config.model_type not in ANALYTIC:
        return None
    return model_args.attn_implementation or getattr(model.config, "_attn_implementation", None)


def peak_memory(device: torch.device) -> tuple[int, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device), "cuda_max_memory_allocated"
    # Linux reports ru_maxrss in KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "cpu_peak_rss_main_process"


def batch_bytes(batch: dict) -> int:
    return sum(v.nbytes for v in batch.values() if isinstance(v, torch.Tensor))


def run_steps(model, batches, optimizer, *, steps, warmup, device, dtype, max_grad_norm, scaler, device_batch,
              forward=None, from_host=True):
    """Runs warmup + steps training steps; returns (per-step records of the measured ones, wall, CPU-s main /
    workers, last pixel_values). Every measured step is cut into contiguous PARTS, so they add up to the wall.
    ``from_host``: batches come from the host (bytes to the device are counted), not already from the device."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()
    forward = forward or model
    records, clock = [], CpuClock()
    wall_start = previous_end = None
    pixel_values = None
    for step in range(warmup + steps):
        if step == warmup:
            sync()
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            clock.start()
            wall_start = previous_end = time.perf_counter()
        t0 = time.perf_counter()
        batch = next(batches)
        t1 = time.perf_counter()
        sent = batch_bytes(batch) if from_host else 0
        batch = device_batch.move(batch, device)
        sync()
        t2 = time.perf_counter()
        inputs = device_batch.inputs(batch)
        sync()
        t3 = time.perf_counter()
        pixel_values, labels = inputs["pixel_values"], inputs["labels"]
        with autocast:
            loss = forward(**model_inputs(model, pixel_values, labels=labels)).loss
        scaler.scale(loss).backward()
        if max_grad_norm and max_grad_norm > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        sync()
        t4 = time.perf_counter()
        if step >= warmup:
            records.append({"other_s": t0 - previous_end, "data_wait_s": t1 - t0, "host_to_device_s": t2 - t1,
                            "augment_s": t3 - t2, "compute_s": t4 - t3, "clips": int(pixel_values.shape[0]),
                            "bytes_to_device": sent, "loss": float(loss.detach())})
            previous_end = t4
    wall = previous_end - wall_start
    main_cpu, worker_cpu = clock.read()
    return records, wall, (main_cpu, worker_cpu), pixel_values


def synthetic_batches(loader, device, device_batch):
    """The model alone: one batch of the real pipeline, made once and kept on the device, forever."""
    batch = device_batch(next(iter(loader)), device)
    return itertools.repeat(batch)


def benchmark(recipe: str, overrides: list[str], *, steps: int, warmup: int, peak_tflops: float | None,
              synthetic: bool = False, compile_model: bool = False) -> dict:
    if steps < 1 or warmup < 0:
        raise ValueError(f"--steps must be >= 1 and --warmup >= 0 (got {steps}, {warmup})")
    args, model, train_ds, transform, collator, device_batch = build_training_setup(recipe, overrides)
    model_args, _, _, training_args = args
    device = training_args.device
    precision, dtype = precision_of(training_args, device)
    if checkpointing_enabled(training_args):
        enable_checkpointing(model, checkpointing_kwargs(training_args))
    model.to(device).train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=training_args.learning_rate, betas=(training_args.adam_beta1, training_args.adam_beta2),
        eps=training_args.adam_epsilon, weight_decay=training_args.weight_decay,
        fused=device.type == "cuda",
    )
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    loader = make_loader(train_ds, collator, training_args, device)
    batches = synthetic_batches(loader, device, device_batch) if synthetic else endless(loader)
    forward = torch.compile(model) if compile_model else model

    records, wall, (main_cpu, worker_cpu), last_batch = run_steps(
        model, batches, optimizer, steps=steps, warmup=warmup, device=device, dtype=dtype,
        max_grad_norm=training_args.max_grad_norm, scaler=scaler, device_batch=device_batch, forward=forward,
        from_host=not synthetic,
    )
    memory, memory_kind = peak_memory(device)
    result = summarize(records, wall, main_cpu, worker_cpu)
    _, frames, _, height, width = last_batch.shape
    analytic = analytic_forward_flops(model.config, frames, height, width)
    counted = counted_forward_flops(model, last_batch[:1])
    forward_flops = analytic.forward if analytic else counted
    if peak_tflops is None and device.type == "cuda":
        peak_tflops = H100_BF16_DENSE_TFLOPS
    achieved = TRAINING_FACTOR * forward_flops * result["clips_per_s"] / 1e12
    result.update({
        "recipe": str(recipe),
        "overrides": list(overrides),
        "mode": "model alone (synthetic batch)" if synthetic else "loader-fed",
        "compiled": compile_model,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "model_type": model.config.model_type,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "attn_implementation": attention_of(model, model_args),
        "gradient_checkpointing": checkpointing_enabled(training_args),
        "precision": precision,
        "batch_size": training_args.per_device_train_batch_size,
        "clip_shape": [int(frames), 3, int(height), int(width)],
        "dataloader_num_workers": training_args.dataloader_num_workers,
        "augment_on": transform.placement,
        "steps": steps,
        "warmup_steps": warmup,
        "peak_memory_bytes": memory,
        "peak_memory_kind": memory_kind,
        "flops_per_clip_forward": forward_flops,
        "flops_per_clip_train": TRAINING_FACTOR * forward_flops,
        "flops_source": "analytic" if analytic else "FlopCounterMode (eval mode)",
        "flops_formula": (analytic.formula + f"; training = {TRAINING_FACTOR} x forward") if analytic else None,
        "flops_per_clip_forward_counted": counted,
        "achieved_tflops": achieved,
        "peak_tflops": peak_tflops,
        "mfu": achieved / peak_tflops if peak_tflops else None,
    })
    return result


def summarize(records: list[dict], wall: float, main_cpu: float, worker_cpu: float) -> dict:
    """Throughput, the parts of the wall, CPU and bytes per clip, and data-bound steps of measured step records."""
    clips = sum(r["clips"] for r in records)
    parts = {part: sum(r[f"{part}_s"] for r in records) for part in PARTS}
    step_times = [sum(r[f"{part}_s"] for part in PARTS) for r in records]
    data_bound = sum(r["data_wait_s"] > DATA_BOUND_FRACTION * t for r, t in zip(records, step_times))
    return {
        "clips": clips,
        "wall_s": wall,
        "clips_per_s": clips / wall,
        "step_s_median": statistics.median(step_times),
        **{f"{part}_s": seconds for part, seconds in parts.items()},
        "parts_sum_s": sum(parts.values()),
        "data_wait_fraction": parts["data_wait"] / wall,
        "data_bound_steps": int(data_bound),
        "host_cpu_s_per_clip": (main_cpu + worker_cpu) / clips,
        "main_cpu_s_per_clip": main_cpu / clips,
        "worker_cpu_s_per_clip": worker_cpu / clips,
        "bytes_to_device_per_clip": sum(r["bytes_to_device"] for r in records) / clips,
        "per_step": records,
    }


def _human(value, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}{unit}"
    return f"{value}{unit}"


def format_table(result: dict) -> str:
    """Two columns, one quantity a row: what a reader compares between runs."""
    gib = 2**30
    wall = result["wall_s"]
    split = " / ".join(f"{part.replace('_', ' ')} {result[f'{part}_s']:.3f} s ({100 * result[f'{part}_s'] / wall:.1f}%)"
                       for part in PARTS)
    rows = [
        ("model", f"{result['model_type']} ({result['num_parameters'] / 1e6:.2f} M parameters, "
                  f"attention {result['attn_implementation'] or 'n/a'}, gradient checkpointing "
                  f"{'on' if result['gradient_checkpointing'] else 'off'}"
                  f"{', torch.compile' if result.get('compiled') else ''})"),
        ("mode", result.get("mode", "loader-fed")),
        ("device / precision", f"{result['device_name']} / {result['precision']}"),
        ("batch x clip (T, C, H, W)", f"{result['batch_size']} x {tuple(result['clip_shape'])}"),
        ("loader workers / augment on", f"{result['dataloader_num_workers']} / {result.get('augment_on') or 'n/a'}"),
        ("steps measured (warmup)", f"{result['steps']} ({result['warmup_steps']})"),
        ("throughput", _human(result["clips_per_s"], " clips/s")),
        ("median step", _human(result["step_s_median"], " s")),
        ("wall, in parts", f"{wall:.3f} s = {split}"),
        ("data-bound steps", f"{result['data_bound_steps']} of {result['steps']} (waited > "
                             f"{100 * DATA_BOUND_FRACTION:.0f}% of the step)"),
        ("host CPU per clip", f"{1000 * result['host_cpu_s_per_clip']:.1f} ms (main {1000 * result['main_cpu_s_per_clip']:.1f}"
                              f" + workers {1000 * result['worker_cpu_s_per_clip']:.1f})"),
        ("host-to-device per clip", f"{result['bytes_to_device_per_clip'] / 1e6:.2f} MB"),
        ("peak memory", f"{result['peak_memory_bytes'] / gib:.2f} GiB ({result['peak_memory_kind']})"),
        ("model FLOPs / clip (train)", f"{result['flops_per_clip_train'] / 1e9:.3f} GFLOP ({result['flops_source']})"),
        ("achieved", _human(result["achieved_tflops"], " TFLOP/s")),
        ("MFU", "n/a (give --peak_tflops)" if result["mfu"] is None
         else f"{100 * result['mfu']:.2f}% of {result['peak_tflops']:g} TFLOP/s"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, overrides = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    result = benchmark(args.recipe, overrides, steps=args.steps, warmup=args.warmup, peak_tflops=args.peak_tflops,
                       synthetic=args.synthetic, compile_model=args.compile)
    print(format_table(result))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1, default=float))
        print(f"\nwrote {path}")
    return 0
