"""Command-line predictions with the PyAV video-classification pipeline.

    python -m pipeline.predict --model DIR_OR_REPO VIDEO_OR_FOLDER... [--top_k 5] [--json] [--timeline]
                               [--window SECONDS --stride SECONDS] [--num_clips K --num_crops C]
                               [--backend pytorch|onnx]

Folders are searched recursively for video files; http(s) URLs are downloaded (--timeout, --max_download_bytes,
--max_download_seconds bound them). A progress bar runs on stderr; results go to stdout as a table, or as JSON
with --json. A path that does not exist, a folder without videos, or a video that cannot be read is reported
(path and reason) and the others go on; the exit status is 1 when any failed, 2 for an impossible option.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional

from tqdm.auto import tqdm

import av

from .data.video_files import find_videos
from .inference import load_pipeline
from .inference.decoding import VideoDecodeError
from .inference.options import PipelineOptionError
from .user_errors import UserValueError, check_model_reference, one_line_errors, say_signals



# What makes one input fail without stopping the others.
INPUT_ERRORS = (VideoDecodeError, ValueError, OSError, TypeError, av.FFmpegError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.predict", description=__doc__.split("\n")[0])
    parser.add_argument("videos", nargs="+", help="video files and/or folders of videos")
    parser.add_argument("--model", required=True, help="model folder or Hub repo id")
    parser.add_argument("--top_k", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--timeline", action="store_true", help="sliding windows over the whole video")
    parser.add_argument("--window", type=float, default=None, help="timeline window in seconds")
    parser.add_argument("--stride", type=float, default=None, help="timeline stride in s (default: window)")
    parser.add_argument("--num_clips", type=int, default=1, help="temporal clips per video (or per window)")
    parser.add_argument("--num_crops", type=int, default=1, help="spatial crops per clip")
    parser.add_argument("--batch_size", type=int, default=8, help="views per forward pass")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1... (default: transformers' choice)")
    parser.add_argument("--revision", default=None, help="Hub revision of --model")
    parser.add_argument("--backend", choices=("pytorch", "onnx"), default="pytorch",
                        help="onnx: run --model's model.onnx with ONNX Runtime (python -m pipeline.export)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="URL inputs: seconds to connect and for each read (default 10 / 30)")
    parser.add_argument("--max_download_bytes", type=int, default=None, help="URL inputs: size cap (default 2 GiB)")
    parser.add_argument("--max_download_seconds", type=float, default=None,
                        help="URL inputs: time limit of one download (default 600)")
    return parser


def predict(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One record per input: {"video", "predictions"} (+ "timeline"; + "damage" for a damaged video) or
    {"video", "error"}."""
    check_model_reference(args.model)
    videos, records = find_videos(args.videos)
    options: dict[str, Any] = dict(top_k=args.top_k, num_clips=args.num_clips, num_crops=args.num_crops,
                                   batch_size=args.batch_size)
    for name in ("timeout", "max_download_bytes", "max_download_seconds"):
        if getattr(args, name, None) is not None:
            options[name] = getattr(args, name)
    if args.timeline:
        options.update(timeline=True, window=args.window, stride=args.stride)
    if args.batch_size < 1:
        raise UserValueError(f"--batch_size must be a positive integer, got {args.batch_size}")
    classifier = load_pipeline(args.model, backend=args.backend, device=args.device, revision=args.revision)
    try:  # an impossible option is the user's mistake for every video: one line, before any is read
        classifier._sanitize_parameters(**{k: v for k, v in options.items() if k != "batch_size"})
    except PipelineOptionError as error:
        raise UserValueError(str(error)) from None
    for video in tqdm(videos, desc="videos", unit="video", file=sys.stderr, disable=len(videos) < 2):
        try:
            output = classifier(str(video), **options)
        except INPUT_ERRORS as error:
            records.append({"video": str(video), "error": str(error)})
            continue
        if args.timeline:
            records.append({"video": str(video), **output})
        else:
            damage = next((p["damage"] for p in output if p.get("damage")), None)
            records.append({"video": str(video), "predictions": [{k: v for k, v in p.items() if k != "damage"}
                                                                 for p in output],
                            **({"damage": damage} if damage else {})})
    return records


def format_table(records: list[dict[str, Any]], top_k: int) -> str:
    """A readable table: one row per video (top-1, then the runners-up), windows indented under it."""
    width = max([len("video")] + [len(r["video"]) for r in records])
    lines = [f"{'video':<{width}}  {'top-1':<28} {'score':>6}  others"]
    for record in records:
        if "error" in record:
            lines.append(f"{record['video']:<{width}}  ERROR: {record['error']}")
            continue
        best, *others = record["predictions"]
        rest = ", ".join(f"{p['label']} {p['score']:.2f}" for p in others[: top_k - 1])
        lines.append(f"{record['video']:<{width}}  {best['label']:<28} {best['score']:>6.3f}  {rest}")
        if record.get("damage"):
            lines.append(f"{'':<{width}}    WARNING: damaged video ({record['damage']}): classified from the frames "
                         "that decode")
        for window in record.get("timeline", []):
            top = window["predictions"][0]
            if window["start"] is not None:
                span = f"{window['start']:7.2f}s-{window['end']:.2f}s"
            else:
                span = f"frames {window['start_frame']}-{window['end_frame']}"
            lines.append(f"{'':<{width}}    {span:<18} {top['label']:<28} {top['score']:.3f}")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    with one_line_errors("python -m pipeline.predict"):
        records = predict(args)
    print(json.dumps(records, indent=2) if args.json else format_table(records, args.top_k))
    return 1 if any("error" in r for r in records) else 0


if __name__ == "__main__":
    say_signals("python -m pipeline.predict")
    sys.exit(main())
