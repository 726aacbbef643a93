"""Classify a live stream window by window, one JSON line per window on stdout.

    python -m pipeline.stream --model DIR_OR_HUB_ID --source FILE|/dev/videoN|rtsp://...|- [--realtime]
                              [--backend pytorch|onnx] [--top_k 5] [--window S | --window_frames N]
                              [--stride S | --stride_frames N] [--fps F] [--max_frames N]

Each line: {"window", "start", "end", "start_frame", "end_frame", "predictions": [{"label", "score"}...],
"latency_ms", "inference_ms", "skipped"}. At the end a summary (frames, windows classified and skipped, latency
median / p95 / max, whether it kept up, how far the reader fell behind the source's clock) goes to stderr as
one JSON line; a file whose header declares more frames than decode (truncated) gets "damage" there and a
WARNING line. Cameras, network streams and stdin are
live: the classifier takes the latest complete window and skips the ones it had no time for. A file is read
offline (every window) unless --realtime paces it at its frame rate, as a camera would deliver it.
Exit status: 0, or 1 when the source cannot be opened or decoding fails.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from typing import Optional, Sequence

from pipeline.inference.decoding import VideoDecodeError

from .frame_source import FrameReader, open_source
from .ring_buffer import FrameRing
from .windows import StreamStats, WindowPlan, classify_windows


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.stream", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model folder (or ONNX export folder) or Hub repo id")
    parser.add_argument("--source", required=True, help="video file, /dev/videoN, rtsp://... URL, or - (stdin)")
    parser.add_argument("--realtime", action="store_true", help="pace a file at its frame rate (live)")
    parser.add_argument("--backend", choices=("pytorch", "onnx"), default="pytorch")
    parser.add_argument("--top_k", type=int, default=5)
    parser.add_argument("--window", type=float, default=None, help="window in seconds (default: the clip span)")
    parser.add_argument("--window_frames", type=int, default=None, help="window in frames")
    parser.add_argument("--stride", type=float, default=None, help="stride in seconds (default: half the window)")
    parser.add_argument("--stride_frames", type=int, default=None, help="stride in frames")
    parser.add_argument("--fps", type=float, default=None,
                        help="frame rate of the source when it does not say (stdin) or to request (camera)")
    parser.add_argument("--max_frames", type=int, default=None, help="stop after this many frames")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: transformers' choice)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU compute threads (default: all cores but one, which the reader decodes on)")
    return parser.parse_args(argv)


def set_compute_threads(threads: Optional[int]) -> int:
    """Leaves a core to the reader thread: with every core computing, decoding and the model fight for them
    (measured on the shared 2-core machine: a tiny model's window took 20x longer with 2 threads than with 1).
    An explicit OMP_NUM_THREADS wins over the default; ``--threads`` over both. ONNX Runtime follows torch's
    setting (``onnx_runner.make_session``)."""
    import torch

    if threads is None:
        if "OMP_NUM_THREADS" in os.environ:
            return torch.get_num_threads()
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        threads = max(1, cores - 1)
    torch.set_num_threads(threads)
    return threads


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    from pipeline.inference import load_pipeline
    from pipeline.user_errors import check_model_reference

    check_model_reference(args.model)

    try:
        source = open_source(args.source, fps=args.fps, realtime=args.realtime)
    except VideoDecodeError as error:
        print(f"stream: {error}", file=sys.stderr)
        return 1
    set_compute_threads(args.threads)
    classifier = load_pipeline(args.model, backend=args.backend, device=args.device)
    plan = WindowPlan.for_model(classifier.model.config, source.fps, window=args.window, stride=args.stride,
                                window_frames=args.window_frames, stride_frames=args.stride_frames)
    ring = FrameRing(plan.ring_capacity(source.fps))
    paced = args.realtime and source.live and args.source != "-" and not args.source.startswith("/dev/")
    reader = FrameReader(source, ring, paced=paced, max_frames=args.max_frames)
    stats = StreamStats()
    def interrupt(*_):
        # the first Ctrl-C ends a camera stream cleanly (the summary is still printed), a second one at once
        if reader.stopping:
            raise KeyboardInterrupt
        reader.stop()
        ring.close()

    signal.signal(signal.SIGINT, interrupt)
    reader.start()
    status = 0
    try:
        for record in classify_windows(classifier, ring, plan, fps=source.fps, live=source.live,
                                       top_k=args.top_k, stats=stats):
            print(json.dumps(record), flush=True)
    except VideoDecodeError as error:
        print(f"stream: {error}", file=sys.stderr)
        status = 1
    finally:
        reader.stop()
        reader.join(timeout=5)
    summary = stats.summary(source.fps, plan, source.live)
    summary["frames"] = reader.frames_read
    damage = source.damage(reader.frames_read) if args.max_frames is None else ""
    if damage:  # the windows above were classified from a damaged file: say it, in the summary and as a warning
        summary["damage"] = damage
        logging.getLogger("pipeline.stream").warning("%s: damaged video (%s)", args.source, damage)
    summary["reader_lag_ms"] = round(1000.0 * reader.max_lag, 1) if source.live else None
    print(json.dumps(summary), file=sys.stderr, flush=True)
    return status


if __name__ == "__main__":
    from pipeline.user_errors import one_line_errors, say_signals

    say_signals("python -m pipeline.stream")
    with one_line_errors("python -m pipeline.stream"):
        sys.exit(main())
