"""ONNX export of a trained video classifier, kept only when ONNX Runtime reproduces PyTorch on real clips.

    python -m pipeline.export --model DIR_OR_HUB_ID --output_dir OUT [--opset N] [--dynamic_batch]
                              [--videos VIDEO_OR_FOLDER ...] [--tolerance 1e-3] [--benchmark_runs N]

Every family the project trains exports the same way (VideoMAE, TimeSformer with eager or SDPA attention, I3D,
ViViT, V-JEPA 2, VideoPrism): ``torch.onnx.export`` with the dynamo exporter traces ``pixel_values -> logits``
with the clip shape of the model's contract (frames, channels, height, width fixed; the batch dynamic with
``--dynamic_batch``, else 1). Families that name their input otherwise (V-JEPA 2: ``pixel_values_videos``) are
wrapped so the graph's input is always ``pixel_values``.

Before anything is written to OUT, the graph is checked (``onnx.checker``) and run by ONNX Runtime on views of
real videos (``--videos``, default: two unseen demo clips rendered for the purpose), made by the pipeline's own
decoding and preprocessing; when the largest |logit difference| to PyTorch exceeds ``--tolerance`` the export
fails, says by how much, and leaves OUT untouched. OUT then holds ``model.onnx`` (+ ``model.onnx.data`` for
graphs over 1.5 GB), ``config.json`` (labels and the clip sampling), ``preprocessor_config.json`` and
``export.json`` (shapes, opset, versions, the parity report and, with ``--benchmark_runs``, CPU speed against
PyTorch). Serve it with ``load_pipeline(OUT, backend="onnx")`` or ``python -m pipeline.predict --backend onnx``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from .parity import DEFAULT_TOLERANCE, ParityError, ParityReport, check_parity, video_views

logger = logging.getLogger("pipeline.export")

PARTIAL_DIR = ".export-partial"
REPORT_FILE = "export.json"
# protobuf caps one file at 2 GB: larger graphs keep their weights in model.onnx.data beside it
EXTERNAL_DATA_BYTES = 1536 * 2**20
# Unseen demo clips for the parity check when the user gives no videos (two classes, one clip each).
DEFAULT_PARITY_CLASSES = ("MoveLeft", "RotateClockwise")
DEFAULT_PARITY_CLIP = 1


class LogitsOnly(torch.nn.Module):
    """``pixel_values -> logits`` of a video classifier, whatever its family calls the input."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.input_name = getattr(model, "main_input_name", "pixel_values")

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(**{self.input_name: pixel_values}).logits


@dataclass
class ExportResult:
    """Where the export went and what it measured."""

    output_dir: Path
    onnx_file: Path
    opset: int
    input_shape: list
    parity: ParityReport
    speed: Optional[dict[str, Any]]
    seconds: float


def _parity_videos(videos: Optional[Sequence[str | os.PathLike]], workdir: Path) -> list[Path]:
    if videos:
        from pipeline.data.video_files import find_videos

        found, problems = find_videos([os.fspath(v) for v in videos])
        if problems:
            raise FileNotFoundError("; ".join(f"{p['video']}: {p['error']}" for p in problems))
        if not found:
            raise FileNotFoundError(f"no video files in {', '.join(map(str, videos))}")
        return [Path(v) for v in found]
    from pipeline.data.demo_video import write_demo_clips

    return write_demo_clips(workdir, DEFAULT_PARITY_CLASSES, clip=DEFAULT_PARITY_CLIP)


def _parameter_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import transformers

    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "transformers": transformers.__version__}


def _trace(module: LogitsOnly, example: torch.Tensor, path: Path, *, opset: Optional[int],
           dynamic_batch: bool, external_data: bool) -> None:
    # torch.export specialises dimensions of size 1: a dynamic batch is traced with an example of two clips
    dynamic_shapes = {"pixel_values": {0: torch.export.Dim("batch")}} if dynamic_batch else None
    with warnings.catch_warnings():
        # the exporter warns about every deprecated transformers code path it walks through
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (example,), str(path), input_names=["pixel_values"], output_names=["logits"],
            opset_version=opset, dynamic_shapes=dynamic_shapes, dynamo=True, external_data=external_data,
            verbose=False,
        )


def export_onnx(
    model: torch.nn.Module,
    processor: Any,
    output_dir: str | os.PathLike,
    *,
    videos: Optional[Sequence[str | os.PathLike]] = None,
    opset: Optional[int] = None,
    dynamic_batch: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
    num_clips: int,
    benchmark_runs: int = 0,
    benchmark_threads: Optional[int] = None,
    source: Optional[str] = None,
) -> ExportResult:
    """Exports ``model`` to ``output_dir/model.onnx`` with its config and processor; raises ``ParityError``
    (and writes nothing) when ONNX Runtime's logits differ from PyTorch's by more than ``tolerance``.

    The model is put in float32 on the CPU, in eval mode (in place)."""
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs it)
    except ImportError as error:
        raise ImportError("ONNX export needs the onnx extra: pip install 'video-pipeline[onnx]' "
                          f"(onnx, onnxruntime, onnxscript): {error}") from error

    from pipeline.evaluation.multiview import spec_facts
    from pipeline.inference.clip_spec import ClipSpec
    from pipeline.inference.onnx_runner import ONNX_FILE, OnnxVideoClassifier, make_session
    from pipeline.inference.video_pipeline import PyAVVideoClassificationPipeline

    started = time.perf_counter()
    output_dir = Path(output_dir)
    model = model.eval().float().cpu()
    module = LogitsOnly(model).eval()
    # the pipeline's own preprocessing makes the parity views: what a deployed model is fed
    classifier = PyAVVideoClassificationPipeline(model=model, image_processor=processor, device="cpu")

    with tempfile.TemporaryDirectory(prefix="export-videos-") as workdir:
        paths = _parity_videos(videos, Path(workdir))
        views = video_views(classifier, paths, num_clips=num_clips)
    names = [p.name for p in paths]

    example = views[0][:1]
    if dynamic_batch:
        example = example.expand(2, *example.shape[1:]).contiguous()
    partial = output_dir / PARTIAL_DIR
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        onnx_path = partial / ONNX_FILE
        logger.info("exporting %s to ONNX, input %s", type(model).__name__, tuple(example.shape))
        _trace(module, example, onnx_path, opset=opset, dynamic_batch=dynamic_batch,
               external_data=_parameter_bytes(model) > EXTERNAL_DATA_BYTES)
        onnx.checker.check_model(str(onnx_path))
        graph = onnx.load(str(onnx_path), load_external_data=False)
        opset_used = next(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx"))

        runtime = OnnxVideoClassifier(model.config, make_session(onnx_path, providers=["CPUExecutionProvider"]),
                                      str(onnx_path))
        report = check_parity(module, runtime.run, views, names, tolerance=tolerance, batch_all=dynamic_batch)
        logger.debug(report.summary())  # the command prints it once, with the result
        if not report.passed:
            raise ParityError(report)

        speed = None
        if benchmark_runs > 0:
            from .speed import compare_speed

            speed = compare_speed(module, onnx_path, views[0], runs=benchmark_runs, threads=benchmark_threads)

        model.config.save_pretrained(partial)
        processor.save_pretrained(partial)
        input_shape = ["batch" if dynamic_batch else 1, *example.shape[1:]]
        spec = ClipSpec.from_config(model.config, processor)
        record = {
            "format": "onnx",
            "onnx_file": ONNX_FILE,
            "source_model": source or getattr(model.config, "_name_or_path", None),
            "model_type": model.config.model_type,
            "attn_implementation": getattr(model.config, "_attn_implementation", None),
            "opset": opset_used,
            "exporter": "torch.onnx.export (dynamo)",
            "input": {"name": "pixel_values", "shape": input_shape, "dtype": "float32",
                      "layout": "batch, frames, channels, height, width"},
            "output": {"name": "logits", "shape": [input_shape[0], model.config.num_labels]},
            "dynamic_batch": dynamic_batch,
            "clip_contract": {**spec_facts(spec), "preprocessing": asdict(spec.preprocessing)},
            "parity": {**report.to_dict(), "videos": [str(p) for p in paths] if videos else
                       f"unseen demo clips {list(DEFAULT_PARITY_CLASSES)} (pipeline.data.demo_video)"},
            "speed": speed,
            "versions": _versions(),
        }
        (partial / REPORT_FILE).write_text(json.dumps(record, indent=2) + "\n")

        # only a checked export replaces what OUT held
        stale = output_dir / (ONNX_FILE + ".data")
        if stale.exists() and not (partial / stale.name).exists():
            stale.unlink()
        for item in partial.iterdir():
            os.replace(item, output_dir / item.name)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return ExportResult(output_dir=output_dir, onnx_file=output_dir / ONNX_FILE, opset=opset_used,
                        input_shape=input_shape, parity=report, speed=speed,
                        seconds=time.perf_counter() - started)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.export", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="trained model folder or Hub repo id")
    parser.add_argument("--output_dir", required=True, help="folder to write model.onnx, config and processor to")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")
    parser.add_argument("--dynamic_batch", action="store_true", help="any batch size (default: one clip)")
    parser.add_argument("--attn_implementation", choices=("eager", "sdpa"), default=None,
                        help="attention to export (TimeSformer: our SDPA path or the library's eager one)")
    parser.add_argument("--videos", nargs="+", default=None,
                        help="videos (files or folders) for the parity check (default: two unseen demo clips)")
    parser.add_argument("--num_clips", type=int, default=1,
                        help="clips per parity video (default 1: parity compares views, one clip each suffices)")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help="largest |logit difference| accepted (float32)")
    parser.add_argument("--benchmark_runs", type=int, default=0,
                        help="time PyTorch and ONNX Runtime on the CPU, this many runs each (0: skip)")
    parser.add_argument("--benchmark_threads", type=int, default=None, help="threads for both when timing")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    from pipeline.user_errors import check_model_reference

    check_model_reference(args.model)
    # our progress at INFO; the exporter's optimiser passes log every rewrite at INFO, so others stay at WARNING
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logger.setLevel(logging.INFO)
    from pipeline.models.loading import load_trained
    from pipeline.inference.decoding import VideoDecodeError

    model, processor = load_trained(args.model, attn_implementation=args.attn_implementation)
    try:
        result = export_onnx(
            model, processor, args.output_dir, videos=args.videos, opset=args.opset,
            dynamic_batch=args.dynamic_batch, tolerance=args.tolerance, num_clips=args.num_clips,
            benchmark_runs=args.benchmark_runs, benchmark_threads=args.benchmark_threads, source=args.model,
        )
    except (ParityError, VideoDecodeError, FileNotFoundError) as error:
        print(f"export failed: {error}", file=sys.stderr)
        return 1
    print(f"wrote {result.onnx_file} (opset {result.opset}, input {result.input_shape}) in {result.seconds:.1f} s")
    print(result.parity.summary())
    if result.speed:
        s = result.speed
        print(f"CPU, {s['threads']} threads, one clip {s['input_shape']}: PyTorch {s['pytorch']['median_ms']:.1f} ms, "
              f"ONNX Runtime {s['onnxruntime']['median_ms']:.1f} ms ({s['speedup']:.2f}x)")
    return 0
