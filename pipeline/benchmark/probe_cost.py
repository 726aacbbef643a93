"""The probe's cost in full decodes, part of ``python -m pipeline.benchmark data``.

Training probes every video once before its first step (``probe_video``: frame count, keyframe table, B-frame
skip table, each checked by decoding). Its cost is reported as probe CPU time divided by the CPU time of one
single-threaded full decode of the same file (every frame decoded, none converted), so that it reads the same
on any machine: "the probe costs 1.3 decodes of the file".

The corpus covers the layouts the probe treats differently: H.264 (MP4, Matroska) and MPEG-4 Part 2 (XviD AVI),
without and with B-frames, one keyframe or several, and XviD AVIs with packed B-frames at full UCF101 length
and size (one keyframe: the layout of most UCF101 files). The pictures are those of the UCF101-shaped corpus
(``pipeline.benchmark.corpus``: a textured scene panned by a shaky camera, moving objects, noise), so that the
decoder works as hard as on camera footage. Two parameter sets: ``seen`` (what the probe was tuned on) and
``unseen`` (other seeds, keyframe intervals, B-frame counts, lengths and bit rates), to show the figures hold
on videos the probe was not tuned on. Results are grouped by whether the video holds B-frames (the probe
builds and checks a skip table for MPEG-4 Part 2 B-frames) and per layout.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Optional, Sequence

import av
import numpy as np

from pipeline.benchmark import corpus as ucf101_like

_PICT_TYPE_B = 3


@dataclass(frozen=True)
class Layout:
    """How one group of probe-cost videos is encoded."""

    name: str
    codec: str        # "h264" (libx264) or "xvid" (MPEG-4 Part 2, fourcc XVID)
    container: str    # "mp4", "matroska" or "avi"
    b_frames: int
    gop: int          # keyframe interval in frames (more than the length: one keyframe)
    packed: bool = False  # XviD packed B-frames ([P+B1] [B2] ... [N-VOP])


SEEN = (
    Layout("h264 mp4, no B, 1 keyframe", "h264", "mp4", 0, 1000),
    Layout("h264 mp4, no B, keyframe/50", "h264", "mp4", 0, 50),
    Layout("h264 mkv, no B, keyframe/30", "h264", "matroska", 0, 30),
    Layout("xvid avi, no B, 1 keyframe", "xvid", "avi", 0, 1000),
    Layout("xvid avi, no B, keyframe/25", "xvid", "avi", 0, 25),
    Layout("h264 mp4, 2 B, 1 keyframe", "h264", "mp4", 2, 1000),
    Layout("h264 mkv, 2 B, keyframe/30", "h264", "matroska", 2, 30),
    Layout("xvid avi, 2 B, 1 keyframe", "xvid", "avi", 2, 1000),
    Layout("xvid avi, 2 B, keyframe/12", "xvid", "avi", 2, 12),
    Layout("xvid avi, packed 2 B, 1 keyframe", "xvid", "avi", 2, 1000, packed=True),
    Layout("xvid avi, packed 2 B, keyframe/25", "xvid", "avi", 2, 25, packed=True),
)
UNSEEN = (
    Layout("h264 mp4, no B, keyframe/90", "h264", "mp4", 0, 90),
    Layout("h264 mkv, no B, keyframe/60", "h264", "matroska", 0, 60),
    Layout("xvid avi, no B, keyframe/40", "xvid", "avi", 0, 40),
    Layout("xvid avi, no B, 1 keyframe", "xvid", "avi", 0, 1000),
    Layout("h264 mp4, 3 B, keyframe/75", "h264", "mp4", 3, 75),
    Layout("h264 mkv, 1 B, 1 keyframe", "h264", "matroska", 1, 1000),
    Layout("xvid avi, 1 B, keyframe/18", "xvid", "avi", 1, 18),
    Layout("xvid avi, 3 B, 1 keyframe", "xvid", "avi", 3, 1000),
    Layout("xvid avi, packed 1 B, 1 keyframe", "xvid", "avi", 1, 1000, packed=True),
    Layout("xvid avi, packed 2 B, 1 keyframe", "xvid", "avi", 2, 1000, packed=True),
    Layout("xvid avi, packed 3 B, keyframe/40", "xvid", "avi", 3, 40, packed=True),
)
CORPORA = {"seen": (SEEN, (150, 200), 0), "unseen": (UNSEEN, (110, 230), 7)}  # layouts, frames range, seed offset
GROUPS = ("without B-frames", "with B-frames")
REAL_LAYOUT = "real UCF101 clip (xvid avi)"


def write_probe_corpus(root: Path, corpus: str, videos_per_layout: int, seed: int,
                       frames_range: Optional[tuple] = None) -> dict[str, list[str]]:
    """Write (or reuse) the videos of one corpus under root/<corpus>; {layout name: [paths]}."""
    layouts, default_range, seed_offset = CORPORA[corpus]
    low, high = frames_range or default_range
    folder = Path(root) / f"{corpus}_s{seed}_{low}-{high}"
    folder.mkdir(parents=True, exist_ok=True)
    videos: dict[str, list[str]] = {}
    for index, layout in enumerate(layouts):
        paths = []
        for i in range(videos_per_layout):
            suffix = {"mp4": ".mp4", "matroska": ".mkv"}.get(layout.container, ".avi")
            path = folder / f"layout{index:02d}_{i:03d}{suffix}"
            if not path.exists():
                spec = ucf101_like.VideoSpec(f"{index}/{i}", class_index=index % len(ucf101_like.UCF101_CLASSES),
                                             group=1 + i % ucf101_like.GROUPS_PER_CLASS, clip=1 + i,
                                             seed=seed + seed_offset, packed=layout.packed)
                rng = np.random.default_rng([seed + seed_offset, index, i])
                partial = path.with_name("partial_" + path.name)
                _write(partial, layout, spec, int(rng.integers(low, high + 1)), rng)
                os.replace(partial, path)
            paths.append(str(path))
        videos[layout.name] = paths
    return videos


def _write(path: Path, layout: Layout, spec, num_frames: int, rng) -> None:
    frames = ucf101_like._frames(spec, num_frames, rng)
    if layout.packed:
        plain = path.with_name(path.stem + ".unpacked.avi")
        _encode(plain, layout, frames, rng)
        ucf101_like.pack_b_frames(str(plain), str(path), "pb_b_n")
        plain.unlink()
    else:
        _encode(path, layout, frames, rng)


def _encode(path: Path, layout: Layout, frames, rng) -> None:
    with av.open(str(path), "w", format=layout.container) as output:
        stream = output.add_stream("libx264" if layout.codec == "h264" else "mpeg4", rate=ucf101_like.FPS)
        stream.width, stream.height, stream.pix_fmt = ucf101_like.WIDTH, ucf101_like.HEIGHT, "yuv420p"
        context = stream.codec_context
        context.time_base = Fraction(1, ucf101_like.FPS)
        context.thread_count = 1
        context.gop_size = layout.gop
        context.max_b_frames = layout.b_frames
        if layout.codec == "h264":
            params = (f"keyint={layout.gop}:min-keyint={layout.gop}:scenecut=0:bframes={layout.b_frames}:"
                      f"threads=1")
            context.options = {"preset": "veryfast", "crf": str(int(rng.integers(20, 27))), "x264-params": params}
        else:
            stream.codec_tag = "XVID"
            context.bit_rate = int(rng.integers(*ucf101_like.BITRATE_RANGE))
            context.options = {"sc_threshold": "1000000000", "flags": "+bitexact"}
        for index, planes in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            frame.pts = index
            frame.time_base = context.time_base
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)


def full_decode_cpu_s(path: str) -> tuple[float, bool]:
    """CPU seconds of one single-threaded decode of every frame (none converted); whether any is a B-frame."""
    cpu = time.process_time()
    b_frames = False
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        for frame in container.decode(stream):
            b_frames = b_frames or frame.pict_type == _PICT_TYPE_B
    return time.process_time() - cpu, b_frames


def measure(videos: dict[str, list[str]], probes: dict[str, Callable], repeats: int = 2) -> dict:
    """Probe cost in full decodes of each video, for each probe callable (path -> anything), taking turns video
    by video; each time is the least of `repeats` runs (the machine may be shared). Per probe: per layout and
    per group ("with/without B-frames", from the decoded frames' types) the median and worst cost, and the
    probe's CPU ms per video."""
    rows = []
    for layout, paths in videos.items():
        for path in paths:
            decode_runs = [full_decode_cpu_s(path) for _ in range(repeats)]
            decode_s, b_frames = min(run[0] for run in decode_runs), decode_runs[0][1]
            probe_s = {}
            for name, probe in probes.items():
                times = []
                for _ in range(repeats):
                    cpu = time.process_time()
                    probe(path)
                    times.append(time.process_time() - cpu)
                probe_s[name] = min(times)
            rows.append({"path": path, "layout": layout, "group": GROUPS[b_frames], "decode_ms": 1000 * decode_s,
                         "probe_ms": {name: 1000 * s for name, s in probe_s.items()}})

    def summary(selected, name):
        costs = [row["probe_ms"][name] / row["decode_ms"] for row in selected]
        return {"videos": len(costs), "median": float(np.median(costs)), "worst": float(np.max(costs)),
                "probe_ms_per_video": float(np.mean([row["probe_ms"][name] for row in selected])),
                "decode_ms_per_video": float(np.mean([row["decode_ms"] for row in selected]))}

    results = {}
    for name in probes:
        results[name] = {
            "groups": {group: summary([r for r in rows if r["group"] == group], name)
                       for group in GROUPS if any(r["group"] == group for r in rows)},
            "layouts": {layout: summary([r for r in rows if r["layout"] == layout], name)
                        for layout in videos if any(r["layout"] == layout for r in rows)},
        }
    return {"probes": results, "videos": rows}


# --------------------------------------------------------------------------------- python -m pipeline.benchmark data

def add_arguments(parser) -> None:
    """The probe-cost options of ``python -m pipeline.benchmark data``."""
    parser.add_argument("--probe_cost_videos", type=int, default=3,
                        help="probe cost: videos per layout in each corpus (seen and unseen); 0: not measured")
    parser.add_argument("--probe_cost_corpora", nargs="+", default=list(CORPORA), choices=list(CORPORA),
                        help="probe cost: corpora to measure (seen: the parameters the probe was tuned on)")
    parser.add_argument("--probe_cost_frames", type=int, nargs=2, metavar=("MIN", "MAX"),
                        help="probe cost: frames per video (default: 150-200 seen, 110-230 unseen)")
    parser.add_argument("--probe_cost_repeats", type=int, default=2,
                        help="probe cost: runs per timing, the least counts")


def run(args, root: Path, own_videos: Optional[dict] = None, real: Sequence[str] = ()) -> dict:
    """Probe cost on the corpora asked for (written under root/probe_cost; the `real` UCF101 clips join the seen
    one), or on --videos when given."""
    from pipeline.inference.decoding import probe_video

    if own_videos is not None:
        corpora = {"your videos": own_videos}
    elif args.probe_cost_videos > 0:
        corpora = {name: write_probe_corpus(root / "probe_cost", name, args.probe_cost_videos, args.seed,
                                            args.probe_cost_frames) for name in args.probe_cost_corpora}
        if real and "seen" in corpora:
            corpora["seen"][REAL_LAYOUT] = list(real)
    else:
        return {}
    return {name: measure(videos, {"probe_video": probe_video}, args.probe_cost_repeats)
            for name, videos in corpora.items()}


def format_table(results: dict) -> str:
    """Markdown: per corpus, group and layout, the median and worst probe cost in full decodes."""
    if not results:
        return ""
    lines = ["", "probe cost (probe_video as training runs it: skip table and seeks checked), in single-threaded "
                 "full decodes of the same file (one core)",
             "| corpus | videos | median | worst | probe ms/video | decode ms/video |", "|---|---|---|---|---|---|"]
    for corpus, measured in results.items():
        for name, summary in measured["probes"].items():
            for part in ("groups", "layouts"):
                for label, row in summary[part].items():
                    shown = f"**{label}**" if part == "groups" else label
                    lines.append(f"| {corpus}: {shown} | {row['videos']} | {row['median']:.2f} | {row['worst']:.2f} | "
                                 f"{row['probe_ms_per_video']:.0f} | {row['decode_ms_per_video']:.0f} |")
    return "\n".join(lines)
