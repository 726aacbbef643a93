"""CPU speed of a model in PyTorch and in ONNX Runtime, measured on the same input with the same thread count.

Both backends run one clip (batch 1) ``runs`` times after ``warmup`` runs; the median and the fastest run are
reported in milliseconds per clip, with wall time and process CPU time. On a shared machine compare the ratio
of one run, not absolute times across runs.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any, Callable, Optional

import numpy as np
import torch


def _timed(call: Callable[[], Any], runs: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        call()
    wall, cpu = [], []
    for _ in range(runs):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return {"median_ms": 1000 * statistics.median(wall), "min_ms": 1000 * min(wall),
            "cpu_ms": 1000 * statistics.median(cpu)}


def compare_speed(
    torch_module: torch.nn.Module,
    onnx_file: str | os.PathLike,
    pixel_values: torch.Tensor,
    *,
    runs: int = 5,
    warmup: int = 1,
    threads: Optional[int] = None,
) -> dict[str, Any]:
    """Milliseconds per clip of ``torch_module(pixel_values)`` and of the ONNX graph, on the CPU.

    ``threads``: intra-op threads for both (default: torch's current setting, which ONNX Runtime then gets too).
    """
    from pipeline.inference.onnx_runner import INPUT_NAME, OUTPUT_NAME, make_session

    threads = int(threads or torch.get_num_threads())
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        clip = pixel_values[:1].float().cpu()
        session = make_session(onnx_file, providers=["CPUExecutionProvider"], num_threads=threads)
        array = np.ascontiguousarray(clip.numpy())

        def run_torch():
            with torch.inference_mode():
                return torch_module(clip)

        def run_onnx():
            return session.run([OUTPUT_NAME], {INPUT_NAME: array})

        # interleaved order would mix cache effects; each backend runs its own block
        pytorch = _timed(run_torch, runs, warmup)
        onnxruntime = _timed(run_onnx, runs, warmup)
    finally:
        torch.set_num_threads(before)
    return {
        "threads": threads,
        "runs": runs,
        "input_shape": list(clip.shape),
        "pytorch": pytorch,
        "onnxruntime": onnxruntime,
        "speedup": pytorch["median_ms"] / onnxruntime["median_ms"],
    }
