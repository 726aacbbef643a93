"""Demo videos outside the demo dataset: single clips and one long video of consecutive motions.

They are rendered with the demo generator (``pipeline.data.demo``) but with clip numbers far beyond any the
dataset writes, so no model trained on the demo has seen them: export uses them for its parity check when no
videos are given, the app offers them as examples, and the long one (several classes one after another)
exercises timelines and ``python -m pipeline.stream``.

Each segment of the long video is one continuous motion of ``segment_frames`` frames (64 by default: 2.56 s,
more than two spans of the demo model's clip of 8 frames every 4, 29 frames), at about the speed of the
dataset's clips: a move crosses the whole frame (the object enters at one edge and leaves at the other), a
turn keeps turning, a size change runs from a third to twice the object's size. A segment holds no cut, as the
demo model reads a cut or a jump inside a window as a turn: only the windows across the cut between two
segments see one, and a timeline shows them as short blips between the segments' motions.

Command line: ``python -m pipeline.data.demo_video --output demo_video.avi [--classes MoveLeft Grow ...]``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import av
import numpy as np

from .demo import CLASS_MOTIONS, CLASS_NAMES, DemoClip, DemoParams, draw_clip, render_clip, write_video

# Clip numbers of these videos: the dataset writes at most clips_per_class / groups_per_class (+1) clips per group.
UNSEEN_CLIP_BASE = 1000
# The test scene of the demo (group g01 is in every demo test list, never in training).
TEST_GROUP = 1
DEFAULT_SEQUENCE = ("MoveLeft", "Grow", "MoveUp", "RotateClockwise", "MoveRight", "Shrink", "MoveDown",
                    "RotateCounterclockwise")
# Frames per segment of the long video: two dataset clips, more than two spans of the demo model's clip (29).
SEGMENT_FRAMES = 64


@dataclass(frozen=True)
class Segment:
    """One class's stretch of a long demo video, frames [start_frame, end_frame)."""

    label: str
    start_frame: int
    end_frame: int


def _check_class(class_name: str) -> int:
    if class_name not in CLASS_NAMES:
        raise ValueError(f"unknown demo class {class_name!r}; expected one of {CLASS_NAMES}")
    return CLASS_NAMES.index(class_name)


def _frames(class_name: str, clip: int, params: DemoParams, group: int) -> np.ndarray:
    spec = draw_clip(params, _check_class(class_name), group, UNSEEN_CLIP_BASE + clip)
    return render_clip(spec, params)


def segment_spec(class_name: str, clip: int, params: DemoParams, group: int, num_frames: int) -> DemoClip:
    """One continuous motion of ``num_frames`` frames (a long-video segment): a dataset clip's object, scene
    and speed, with its path stretched so that the motion lasts, without a cut, as long as the segment."""
    if num_frames < params.num_frames:
        raise ValueError(f"a demo video segment needs at least {params.num_frames} frames, got {num_frames}")
    long_params = replace(params, num_frames=num_frames)
    spec = draw_clip(long_params, _check_class(class_name), group, UNSEEN_CLIP_BASE + clip)
    kind, sign = CLASS_MOTIONS[class_name]
    t = np.linspace(0.0, 1.0, num_frames)
    size = params.size
    if kind in ("horizontal", "vertical"):
        # a dataset clip crosses about half the frame in 32 frames: over a segment the object crosses all of
        # it, from half out at one edge to half out at the other (the object's extent is about its radius)
        half_out = 0.2 * spec.radius[0]
        along = half_out + (size - 2 * half_out) * (t if sign > 0 else 1 - t)
        centre = spec.centre.copy()
        centre[:, 0 if kind == "horizontal" else 1] = along
        return replace(spec, centre=centre)
    if kind == "scale":
        # the dataset's clips go from about 0.4 to 1.5 times the object's radius; a longer segment goes further
        small, large = spec.radius.min() * 0.75, spec.radius.max() * 4 / 3
        radius = small + (large - small) * (t if sign > 0 else 1 - t)
        return replace(spec, radius=radius, centre=np.full((num_frames, 2), size / 2))
    # a turn: the dataset clip's angular speed (its whole turn over params.num_frames frames), kept up
    speed = (spec.angle[-1] - spec.angle[0]) / (params.num_frames - 1)
    return replace(spec, angle=spec.angle[0] + speed * np.arange(num_frames))


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
                     group: int = TEST_GROUP, params: DemoParams | None = None,
                     segment_frames: int = SEGMENT_FRAMES) -> list[Segment]:
    """A long video: one unseen continuous motion (``segment_spec``) of ``segment_frames`` frames per entry of
    ``classes``, back to back (25 fps: 2.56 s each by default; ``.avi`` or ``.mp4`` as in ``write_frames``).

    Writes ``path`` and ``path`` with suffix ``.json`` (the segments, for checking a timeline); returns the segments.
    """
    params = params or DemoParams()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts, segments, start = [], [], 0
    for offset, class_name in enumerate(classes):
        spec = segment_spec(class_name, clip * len(classes) + offset, params, group, segment_frames)
        frames = render_clip(spec, replace(params, num_frames=segment_frames))
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
    parser.add_argument("--segment_frames", type=int, default=SEGMENT_FRAMES, help="frames per class segment")
    return parser


def main(argv: Sequence[str] | None = None) -> Path:
    args = build_parser().parse_args(argv)
    segments = write_demo_video(args.output, list(args.classes) * args.repeat, clip=args.clip,
                                segment_frames=args.segment_frames)
    print(f"wrote {args.output}: {len(segments)} segments, {segments[-1].end_frame} frames")
    return Path(args.output)


if __name__ == "__main__":
    main()
