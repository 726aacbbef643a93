"""Demo videos outside the demo dataset: single clips and one long video of consecutive motions.

They are rendered with the demo generator (``pipeline.data.demo``) but with clip numbers far beyond any the
dataset writes, so no model trained on the demo has seen them: export uses them for its parity check when no
videos are given, the app offers them as examples, and the long one (several classes one after another, each
segment a full demo clip) exercises timelines and ``python -m pipeline.stream``.

Command line: ``python -m pipeline.data.demo_video --output demo_video.avi [--classes MoveLeft Grow ...]``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import av
import numpy as np

from .demo import CLASS_NAMES, DemoParams, clip_spec, render_clip, write_video

# Clip numbers of these videos: the dataset writes at most clips_per_class / groups_per_class (+1) clips per group.
UNSEEN_CLIP_BASE = 1000
# The test scene of the demo (group g01 is in every demo test list, never in training).
TEST_GROUP = 1
DEFAULT_SEQUENCE = ("MoveLeft", "Grow", "MoveUp", "RotateClockwise", "MoveRight", "Shrink", "MoveDown",
                    "RotateCounterclockwise")


@dataclass(frozen=True)
class Segment:
    """One class's stretch of a long demo video, frames [start_frame, end_frame)."""

    label: str
    start_frame: int
    end_frame: int


def _frames(class_name: str, clip: int, params: DemoParams, group: int) -> np.ndarray:
    if class_name not in CLASS_NAMES:
        raise ValueError(f"unknown demo class {class_name!r}; expected one of {CLASS_NAMES}")
    spec = clip_spec(params, CLASS_NAMES.index(class_name), group, UNSEEN_CLIP_BASE + clip)
    return render_clip(spec, params)


def write_frames(path: Path, frames: np.ndarray, fps: int) -> None:
    """``.avi``: the demo dataset's MPEG-4 Part 2; ``.mp4``: H.264 in yuv420p, which browsers play."""
    if path.suffix.lower() != ".mp4":
        write_video(path, frames, fps)
        return
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.options = {"crf": "12", "preset": "medium"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def write_demo_clips(output_dir: str | Path, classes: Sequence[str] = tuple(CLASS_NAMES), *, clip: int = 0,
                     group: int = TEST_GROUP, params: DemoParams | None = None, suffix: str = ".avi") -> list[Path]:
    """One unseen clip per class as ``OUTPUT_DIR/<Class>_<clip><suffix>`` (``write_frames``); returns the paths."""
    params = params or DemoParams()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for class_name in classes:
        path = output_dir / f"{class_name}_{clip}{suffix}"
        write_frames(path, _frames(class_name, clip, params, group), params.fps)
        paths.append(path)
    return paths


def write_demo_video(path: str | Path, classes: Sequence[str] = DEFAULT_SEQUENCE, *, clip: int = 0,
                     group: int = TEST_GROUP, params: DemoParams | None = None) -> list[Segment]:
    """A long video: one unseen demo clip per entry of ``classes``, back to back (25 fps, 1.28 s each by default;
    ``.avi`` or ``.mp4`` as in ``write_frames``).

    Writes ``path`` and ``path`` with suffix ``.json`` (the segments, for checking a timeline); returns the segments.
    """
    params = params or DemoParams()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts, segments, start = [], [], 0
    for offset, class_name in enumerate(classes):
        frames = _frames(class_name, clip * len(classes) + offset, params, group)
        parts.append(frames)
        segments.append(Segment(class_name, start, start + len(frames)))
        start += len(frames)
    write_frames(path, np.concatenate(parts), params.fps)
    path.with_suffix(".json").write_text(json.dumps(
        {"fps": params.fps, "segments": [s.__dict__ for s in segments]}, indent=2))
    return segments


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m pipeline.data.demo_video``."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.data.demo_video", description=__doc__.split("\n")[0])
    parser.add_argument("--output", required=True, help="video file to write (.avi)")
    parser.add_argument("--classes", nargs="+", default=list(DEFAULT_SEQUENCE), help="demo classes in order")
    parser.add_argument("--repeat", type=int, default=1, help="repeat the sequence (new clips each time)")
    parser.add_argument("--clip", type=int, default=0, help="which unseen clips (another number, other clips)")
    return parser


def main(argv: Sequence[str] | None = None) -> Path:
    args = build_parser().parse_args(argv)
    segments = write_demo_video(args.output, list(args.classes) * args.repeat, clip=args.clip)
    print(f"wrote {args.output}: {len(segments)} segments, {segments[-1].end_frame} frames")
    return Path(args.output)


if __name__ == "__main__":
    main()
