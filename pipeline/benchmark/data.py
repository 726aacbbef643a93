"""``python -m pipeline.benchmark data``: clips/s per core of clip decoding and of the whole training loader.

Two measurements, on the same clips in the same run:

(a) decode alone, per kind of video: our ``decode_frames`` (keyframe seek, B-frame skipping, stop after the last
    needed frame) against PyAV decoding from the start (the whole file, and stopping after the last needed frame)
    and torchcodec's exact mode when it is importable. The methods take turns clip by clip, so a change in machine
    load hits them alike. Every method's frames are compared with a full sequential decode ("frame i" = the i-th
    frame it outputs) on every kind; mismatching clips are counted and printed per kind. The work each method did
    is counted too: frames decoded, skipped and converted per clip (``DecodeStats``), and our probe's cost.
(b) the full training loader: ``ClipTransform`` (decode + training augmentation + normalisation, with repeated
    augmentation R) and ``VideoCollator`` in a real ``torch.utils.data.DataLoader``, for each loader setting asked.
(c) the probe's cost in full decodes of the same file, per layout, on two corpora of H.264 and XviD videos (one
    the probe was tuned on, one it was not; ``write_probe_corpus`` in ``pipeline.benchmark.corpus``).
(d) streaming from WebDataset shards against reading the same files (``bench_stream``): clips per CPU-second of
    each, epoch after epoch, and the resident memory of the loader over those epochs.

Speeds are clips per CPU-second (user + system time of the main process and its loader workers), i.e. clips/s
per core, which stays meaningful on a shared machine where wall time does not; wall-clock clips/s are reported
too. Run it pinned to one core for wall-clock numbers that mean "one core": ``taskset -c 0 python -m
pipeline.benchmark data``.

Videos: by default the UCF101-shaped corpus of ``pipeline.benchmark.corpus`` (written once into ``--corpus_dir``,
or a temporary folder), split into its packed and unpacked files, which the loader reads; plus, for the exactness
checks, the index-coded synthetic kinds of tests/synthetic_videos.py (every container and B-frame layout the
decoder must get right) and the real UCF101 clip of the repository's shared assets when present. ``--videos DIR``
measures your own videos instead (grouped by codec and container).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import av
import numpy as np
import torch

from pipeline.benchmark import corpus as ucf101_like
from pipeline.benchmark.cpu_time import children_cpu_s
from pipeline.data.video_files import videos_under
from pipeline.inference.clip_spec import ClipSpec
from pipeline.inference.decoding import VIDEO_EXTENSIONS, DecodeStats, VideoInfo, decode_frames, probe_video

SYNTHETIC_KINDS = ("xvid_gop12", "xvid_gop300", "xvid_packed", "xvid_packed_b2", "xvid_packed_b2_gop12",
                   "xvid_packed_b3", "xvid_packed_mixed", "xvid_packed_pbb", "h264", "h264_vfr_mkv")
REAL_KIND = "real"
CORPUS_KINDS = ("ucf101_like_packed", "ucf101_like_unpacked")
# the real UCF101 clip kept beside the repository (../shared/assets), used as the "real" kind when present
DEFAULT_REAL_CLIP = Path(__file__).resolve().parents[3] / "shared" / "assets" / "clips" / "v_CricketShot_g04_c01.avi"
BASELINE = "pyav_whole_file"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.benchmark data",
        description="Clips/s per core of clip decoding (ours vs PyAV from the start vs torchcodec) and of the "
                    "full training loader, on a UCF101-shaped corpus; frames checked on every kind. Pin to one "
                    "core with `taskset -c 0` for wall-clock figures.",
        allow_abbrev=False,
    )
    parser.add_argument("--videos", type=Path, help="folder of your own videos (searched recursively) instead of "
                                                    "the corpus and the synthetic kinds")
    parser.add_argument("--corpus_dir", type=Path, help="UCF101-shaped corpus folder, written there when missing "
                                                        "(default: WORKDIR/corpus, or a temporary folder)")
    parser.add_argument("--corpus_classes", type=int, default=4, help="classes of the corpus")
    parser.add_argument("--corpus_videos_per_class", type=int, default=4, help="videos per class of the corpus")
    parser.add_argument("--corpus_seed", type=int, default=0)
    parser.add_argument("--kinds", nargs="*", default=[*SYNTHETIC_KINDS, REAL_KIND],
                        help=f"index-coded synthetic kinds to check too (and '{REAL_KIND}' for the real clip); none: "
                             "the corpus only")
    parser.add_argument("--num_videos", type=int, default=2, help="videos per synthetic kind")
    parser.add_argument("--video_size", type=int, nargs=2, default=(240, 320), metavar=("H", "W"),
                        help="size of the synthetic videos")
    parser.add_argument("--seconds", type=float, nargs=2, default=(6.0, 8.0), metavar=("MIN", "MAX"),
                        help="duration range of the synthetic videos (25 fps)")
    parser.add_argument("--real", type=Path, nargs="*", default=None,
                        help=f"real video file(s) for the '{REAL_KIND}' kind (default: {DEFAULT_REAL_CLIP.name} "
                             "from ../shared/assets when present)")
    parser.add_argument("--workdir", type=Path, help="where to write the synthetic videos and the corpus (default: "
                                                     "a temp folder); reused by later runs")
    parser.add_argument("--clips", type=int, default=200, help="decode: clips per corpus kind (or --videos kind)")
    parser.add_argument("--check_clips", type=int, default=40, help="decode: clips per synthetic kind")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip")
    parser.add_argument("--rate", type=int, default=4, help="frame sampling rate (dense clips)")
    parser.add_argument("--size", type=int, default=224, help="crop size of the training transform")
    parser.add_argument("--no_torchcodec", action="store_true", help="skip torchcodec even when importable")
    parser.add_argument("--loader_clips", type=int, default=320, help="loader: clips (rows of pixel_values) per run")
    parser.add_argument("--loader_kinds", nargs="+", default=list(CORPUS_KINDS),
                        help="kinds the loader reads (default: the corpus); 'all' for every kind")
    parser.add_argument("--workers", type=int, nargs="+", default=[1], help="DataLoader num_workers (one run each)")
    parser.add_argument("--placements", nargs="+", default=["device", "workers"], choices=["device", "workers"],
                        help="where the training augmentation runs: the loader sends uint8 clips (device) or "
                             "augmented float clips (workers); one run each")
    parser.add_argument("--prefetch_factor", type=int, nargs="+", default=[2], help="with workers: one run each")
    parser.add_argument("--persistent_workers", type=int, nargs="+", default=[1], choices=[0, 1],
                        help="with workers: 0/1, one run each (persistent runs time a second epoch)")
    parser.add_argument("--pin_memory", type=int, default=1, choices=[0, 1],
                        help="pin memory (only takes effect with an accelerator)")
    parser.add_argument("--batch_size", type=int, default=8, help="videos per batch")
    parser.add_argument("--repeats", type=int, nargs="+", default=[1, 2],
                        help="repeated augmentation R (clips per decoded video); one run each")
    parser.add_argument("--color_jitter", type=float, default=0.0, help="training colour jitter strength")
    parser.add_argument("--stream_epochs", type=int, default=4,
                        help="streaming vs files: epochs of each (the first starts the workers and is not timed)")
    parser.add_argument("--stream_workers", type=int, default=2, help="streaming vs files: loader workers")
    parser.add_argument("--stream_buffer", type=int, default=64, help="streaming: shuffle buffer (videos)")
    parser.add_argument("--stream_shard_mb", type=float, default=512.0, help="streaming: shard size (MB)")
    parser.add_argument("--skip_stream", action="store_true", help="no streaming vs files comparison")
    parser.add_argument("--skip_decode", action="store_true", help="only the loader")
    parser.add_argument("--skip_loader", action="store_true", help="only decoding")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    add_probe_cost_arguments(parser)
    return parser


# ----------------------------------------------------------------------------------------------------- videos

def corpus_kinds(root: Path, num_classes: int, videos_per_class: int, seed: int) -> dict[str, list[str]]:
    """The UCF101-shaped corpus under `root` (written when missing), split into packed and unpacked files."""
    ucf101_like.write_corpus(root, num_classes=num_classes, videos_per_class=videos_per_class, seed=seed)
    kinds: dict[str, list[str]] = {kind: [] for kind in CORPUS_KINDS}
    for path in sorted((root / ucf101_like.VIDEOS_DIR).rglob("*.avi")):
        kinds[CORPUS_KINDS[0] if ucf101_like.is_packed(path) else CORPUS_KINDS[1]].append(str(path))
    return {kind: paths for kind, paths in kinds.items() if paths}


def write_synthetic_kinds(root: Path, kinds, num_videos: int, size, seconds, seed: int) -> dict[str, list[str]]:
    """Index-coded synthetic videos of each kind (tests/synthetic_videos.py), 25 fps, duration in ``seconds``."""
    write_video = _synthetic_writer()
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    videos: dict[str, list[str]] = {}
    for kind in kinds:
        if kind == REAL_KIND:
            continue
        if kind not in SYNTHETIC_KINDS:
            raise ValueError(f"unknown video kind {kind!r}; expected some of {SYNTHETIC_KINDS + (REAL_KIND,)}")
        suffix = {"h264": ".mp4", "h264_vfr_mkv": ".mkv"}.get(kind, ".avi")
        paths = []
        for i in range(num_videos):
            path = root / f"{kind}_{i:03d}_{size[0]}x{size[1]}{suffix}"
            frames = int(round(rng.uniform(*seconds) * 25))  # drawn even when reused: same videos either way
            if not path.exists():  # a --workdir video is reused; written under a temporary name, then renamed
                partial = path.with_name("partial_" + path.name)
                write_video(partial, kind, max(frames, 1), size=tuple(size))
                os.replace(partial, path)
            paths.append(str(path))
        videos[kind] = paths
    return videos


def _synthetic_writer() -> Callable:
    """tests/synthetic_videos.write_video: the index-coded kinds live with the tests that define them."""
    tests_dir = Path(__file__).resolve().parents[2] / "tests"
    if not (tests_dir / "synthetic_videos.py").is_file():
        raise FileNotFoundError(f"{tests_dir / 'synthetic_videos.py'} is missing: the synthetic kinds need the "
                                "repository's tests folder; pass --kinds without them, or --videos DIR")
    if str(tests_dir) not in sys.path:
        sys.path.insert(0, str(tests_dir))
    from synthetic_videos import write_video

    return write_video


def folder_corpus(folder: Path) -> dict[str, list[str]]:
    """Videos under ``folder`` grouped by codec and container (e.g. 'mpeg4 .avi')."""
    if not folder.is_dir():
        raise FileNotFoundError(f"--videos {folder}: not a folder")
    videos: dict[str, list[str]] = {}
    for path in videos_under(folder):
        try:
            codec = probe_video(path, skip_table=False, check_seeks=False).codec
        except Exception as err:  # noqa: BLE001 (a benchmark skips what it cannot read, and says so)
            print(f"skipping {path}: {err}", file=sys.stderr)
            continue
        videos.setdefault(f"{codec} {path.suffix.lower()}", []).append(str(path))
    if not videos:
        raise FileNotFoundError(f"--videos {folder}: no readable video files ({', '.join(sorted(VIDEO_EXTENSIONS))})")
    return videos


# ----------------------------------------------------------------------------------------------- decode methods
# Each method returns the frames and fills `work` (a DecodeStats) with what it decoded and converted.

def decode_ours(path: str, indices: np.ndarray, info: VideoInfo, work: DecodeStats) -> np.ndarray:
    return decode_frames(path, indices, info=info, stats=work)


def decode_pyav_whole_file(path: str, indices: np.ndarray, info: VideoInfo, work: DecodeStats) -> np.ndarray:
    """What a plain PyAV loader does: decode every frame of the file, convert the needed ones."""
    return _pyav_from_start(path, indices, work, stop_early=False)


def decode_pyav_stop_after_last(path: str, indices: np.ndarray, info: VideoInfo, work: DecodeStats) -> np.ndarray:
    """Decode from the start, convert the needed frames, stop after the last needed one."""
    return _pyav_from_start(path, indices, work, stop_early=True)


def _pyav_from_start(path, indices, work, stop_early):
    wanted = set(indices.tolist())
    last = int(indices.max())
    frames = {}
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1  # one core: compare the algorithms, not the threading
        for number, frame in enumerate(container.decode(stream)):
            work.frames_decoded += 1
            if number in wanted:
                frames[number] = frame.to_ndarray(format="rgb24")
                work.frames_converted += 1
            if stop_early and number >= last:
                break
    return np.stack([frames[i] for i in indices.tolist()])


def torchcodec_method() -> tuple[Callable | None, str]:
    """torchcodec's exact mode on one thread, or (None, why it is unavailable)."""
    try:
        from torchcodec.decoders import VideoDecoder
    except Exception as err:  # noqa: BLE001 (ImportError, or its FFmpeg libraries failing to load)
        return None, f"not importable ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"

    def decode_torchcodec(path, indices, info, work):
        decoder = VideoDecoder(path, seek_mode="exact", num_ffmpeg_threads=1, dimension_order="NHWC")
        work.frames_converted += len(indices)  # frames decoded: not reported by torchcodec
        return decoder.get_frames_at(indices.tolist()).data.numpy()

    return decode_torchcodec, ""


def sequential_decode(path: str) -> np.ndarray:
    """Reference frames: everything a plain sequential decode outputs, RGB (N, H, W, 3)."""
    with av.open(path) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


@dataclass
class MethodTally:
    """Time, work and correctness of one decode method over the clips of one kind."""

    cpu_s: float = 0.0
    wall_s: float = 0.0
    clips: int = 0
    mismatched_clips: int = 0
    errors: list = field(default_factory=list)
    work: DecodeStats = field(default_factory=DecodeStats)

    def as_dict(self) -> dict:
        per_clip = (lambda value: value / self.clips) if self.clips else (lambda value: None)
        return {
            "clips": self.clips,
            "clips_per_cpu_s": self.clips / self.cpu_s if self.cpu_s else None,
            "clips_per_wall_s": self.clips / self.wall_s if self.wall_s else None,
            "cpu_ms_per_clip": 1000 * self.cpu_s / self.clips if self.clips else None,
            "identical_frames": self.clips > 0 and self.mismatched_clips == 0 and not self.errors,
            "mismatched_clips": self.mismatched_clips,
            "errors": self.errors[:5],
            "frames_decoded_per_clip": per_clip(self.work.frames_decoded),
            "frames_skipped_per_clip": per_clip(self.work.frames_skipped),
            "frames_converted_per_clip": per_clip(self.work.frames_converted),
            "seeks_per_clip": per_clip(self.work.seeks),
            "reopened": self.work.reopened,
        }


def probe_all(videos: dict[str, list[str]]) -> tuple[dict[str, VideoInfo], dict[str, dict]]:
    """Probe every video once, as training does (skip table and seeks checked); per kind: the probe's CPU ms per
    video and what it found."""
    infos, probes = {}, {}
    for kind, paths in videos.items():
        cpu = time.process_time()
        for path in paths:
            infos[path] = probe_video(path)
        probes[kind] = {
            "probe_cpu_ms_per_video": 1000 * (time.process_time() - cpu) / len(paths),
            "videos_skipping_b_frames": sum(bool(infos[p].skip_groups) for p in paths),
            "keyframes_per_video": float(np.mean([len(infos[p].keyframes) for p in paths])),
            "notes": sorted({infos[p].skip_note for p in paths if infos[p].skip_note})[:3],
        }
    return infos, probes


def bench_decode(videos: dict[str, list[str]], infos: dict[str, VideoInfo], args, clips_per_kind=None) -> dict:
    """Per kind: every method on the same clips, methods interleaved clip by clip; frames checked."""
    methods: dict[str, Callable] = {
        "ours": decode_ours,
        BASELINE: decode_pyav_whole_file,
        "pyav_stop_after_last": decode_pyav_stop_after_last,
    }
    unavailable = {}
    if args.no_torchcodec:
        unavailable["torchcodec_exact"] = "skipped (--no_torchcodec)"
    else:
        method, why = torchcodec_method()
        if method is None:
            unavailable["torchcodec_exact"] = why
        else:
            methods["torchcodec_exact"] = method
    rng = np.random.default_rng(args.seed)
    spec = ClipSpec(args.frames, args.rate)  # a training clip of the contract's default strategy
    results = {}
    for kind, paths in videos.items():
        clips = (clips_per_kind or {}).get(kind, args.clips)
        tallies = {name: MethodTally() for name in methods}
        # clips spread round-robin over the kind's videos; each video's reference decoded once, then dropped
        per_video = [clips // len(paths) + (i < clips % len(paths)) for i in range(len(paths))]
        for path, count in zip(paths, per_video):
            if not count:
                continue
            info = infos[path]
            reference = sequential_decode(path)
            for _ in range(count):
                indices = spec.train_clip(info.num_frames, rng)
                expected = reference[indices]
                for name, method in methods.items():
                    _time_one(tallies[name], method, path, indices, info, expected)
        kind_result = {name: tally.as_dict() for name, tally in tallies.items()}
        kind_result.update({name: {"unavailable": why} for name, why in unavailable.items()})
        base = kind_result[BASELINE]["clips_per_cpu_s"]
        ratios = {name: (r["clips_per_cpu_s"] / base if base and r.get("clips_per_cpu_s") else None)
                  for name, r in kind_result.items() if "unavailable" not in r}
        results[kind] = {
            "videos": len(paths),
            "frames_per_video": [infos[p].num_frames for p in paths],
            "methods": kind_result,
            "ratio_vs_whole_file": ratios,
            "ratio": ratios["ours"],
        }
    return results


def _time_one(tally: MethodTally, method, path, indices, info, expected):
    work = DecodeStats()
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        frames = method(path, indices, info, work)
    except Exception as err:  # noqa: BLE001 (an alternative decoder failing is a result to report)
        tally.errors.append(f"{Path(path).name}: {type(err).__name__}: {err}")
        tally.mismatched_clips += 1
        return
    tally.cpu_s += time.process_time() - cpu
    tally.wall_s += time.perf_counter() - wall
    tally.clips += 1
    for name in ("frames_decoded", "frames_skipped", "frames_converted", "seeks", "reopened"):
        setattr(tally.work, name, getattr(tally.work, name) + getattr(work, name))
    if frames.shape != expected.shape or not np.array_equal(frames, expected):
        tally.mismatched_clips += 1


# ------------------------------------------------------------------------------------------------------ loader

def bench_loader(paths: list[str], infos: dict[str, VideoInfo], args) -> list[dict]:
    """One DataLoader run per (repeats, workers, prefetch, persistent) setting; clips/s per core and wall."""
    from datasets import Dataset
    from torch.utils.data import DataLoader

    from pipeline.inference.preprocessing import VideoPreprocessing
    from pipeline.training.augmentation import AugmentationSettings
    from pipeline.training.clip_transform import ClipTransform
    from pipeline.training.collate import VideoCollator

    prep = VideoPreprocessing(args.size, (args.size, args.size), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    # the recipes' training augmentation (recipes/videomae.yaml): random resized crop 0.25-1, flip
    augmentation = AugmentationSettings(random_crop=True, crop_scale=(0.25, 1.0), horizontal_flip=True,
                                        color_jitter=args.color_jitter)
    pin = bool(args.pin_memory) and torch.cuda.is_available()
    runs = []
    for repeats in args.repeats:
        videos = max(1, args.loader_clips // repeats)
        order = np.random.default_rng(args.seed).integers(0, len(paths), videos)
        dataset = Dataset.from_dict({
            "video": [paths[i] for i in order],
            "label": [int(i) % 7 for i in order],
            "video_info": [infos[paths[i]].to_dict() for i in order],
        })
        for placement in args.placements:
            transform = ClipTransform(ClipSpec(args.frames, args.rate), prep, train=True,
                                      augmentation=augmentation, repeats=repeats, placement=placement)
            placed = dataset.with_transform(transform)
            for workers in args.workers:
                for prefetch in (args.prefetch_factor if workers else [None]):
                    for persistent in (args.persistent_workers if workers else [0]):
                        torch.manual_seed(args.seed)
                        loader = DataLoader(placed, batch_size=args.batch_size, shuffle=True, num_workers=workers,
                                            collate_fn=VideoCollator(), prefetch_factor=prefetch,
                                            persistent_workers=bool(persistent), pin_memory=pin)
                        if persistent:
                            _epoch(loader)  # start-up epoch: a persistent loader pays worker start-up only once
                        measured = _epoch(loader)
                        runs.append({
                            "placement": placement, "repeats": repeats, "workers": workers,
                            "prefetch_factor": prefetch, "persistent_workers": bool(persistent), "pin_memory": pin,
                            "batch_size": args.batch_size, **measured,
                        })
                        del loader
    return runs


def bench_stream(paths: list[str], infos: dict[str, VideoInfo], args, root: Path) -> dict:
    """Streaming from WebDataset shards against reading the same files, epoch by epoch, alternating.

    The videos are written once into shards (``pipeline.data.shards``, in memory of nothing else); then each epoch
    reads every video once either from the files (a map-style ``Dataset``, shuffled by the sampler) or from the
    shards (``pipeline.data.streaming``: the webdataset loader of ``datasets``, shard order + a shuffle buffer),
    through the same ``ClipTransform`` (placement "workers", R=1) and ``VideoCollator`` in a ``DataLoader`` with the
    same workers. Reported: clips per CPU-second of each, and the resident memory (main process + loader workers)
    sampled at every batch, per epoch: a stream that held on to what it read would grow epoch after epoch."""
    from datasets import Dataset
    from torch.utils.data import DataLoader

    from pipeline.data.shards import write_split
    from pipeline.data.streaming import load_webdataset, training_stream
    from pipeline.inference.clip_spec import ClipSpec
    from pipeline.inference.preprocessing import VideoPreprocessing
    from pipeline.training.augmentation import AugmentationSettings
    from pipeline.training.clip_transform import ClipTransform
    from pipeline.training.collate import VideoCollator

    rows = [{"video": path, "label": i % 7, "group": f"g{i}", "video_info": infos[path].to_dict()}
            for i, path in enumerate(paths)]
    shards_dir = root / "shards"
    shards_dir.mkdir(parents=True, exist_ok=True)
    entry = write_split("train", rows, [f"class{i}" for i in range(7)], shards_dir, seed=args.seed,
                        shard_size_mb=args.stream_shard_mb, min_shards=max(1, args.stream_workers))
    manifest = {"format": "video-classification-shards", "version": 1, "class_names": [f"class{i}" for i in range(7)],
                "splits": {"train": entry}}
    (shards_dir / "manifest.json").write_text(json.dumps(manifest))
    prep = VideoPreprocessing(args.size, (args.size, args.size), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    augmentation = AugmentationSettings(random_crop=True, crop_scale=(0.25, 1.0), horizontal_flip=True)
    transform = ClipTransform(ClipSpec(args.frames, args.rate), prep, train=True, augmentation=augmentation,
                              placement="workers")
    files = Dataset.from_dict({key: [row[key] for row in rows] for key in ("video", "label", "video_info")})
    stream = training_stream(load_webdataset(str(shards_dir), cache_dir=str(root / "hf_cache"))["train"], transform,
                             batch_size=args.batch_size, seed=args.seed, shuffle_buffer_size=args.stream_buffer)
    workers = args.stream_workers
    common = {"batch_size": args.batch_size, "num_workers": workers, "collate_fn": VideoCollator(),
              "persistent_workers": bool(workers), "prefetch_factor": 2 if workers else None}
    torch.manual_seed(args.seed)
    loaders = {"files": DataLoader(files.with_transform(transform), shuffle=True, **common),
               "stream": DataLoader(stream, **common)}
    epochs: dict[str, list[dict]] = {name: [] for name in loaders}
    for epoch in range(args.stream_epochs):
        for name, loader in loaders.items():
            if name == "stream":
                stream.set_epoch(epoch)
            epochs[name].append(_epoch(loader, memory=True))
    out = {"videos": len(paths), "shards": len(entry["shards"]), "shard_bytes": entry["bytes"],
           "workers": workers, "shuffle_buffer": args.stream_buffer, "epochs": epochs}
    for name in loaders:  # the first epoch starts the workers: the later ones measure steady reading
        steady = epochs[name][1:] or epochs[name]
        clips = sum(e["clips"] for e in steady)
        cpu = sum(e["clips"] / e["clips_per_cpu_s"] for e in steady if e["clips_per_cpu_s"])
        out[f"{name}_clips_per_cpu_s"] = clips / cpu if cpu else None
        out[f"{name}_rss_mb_per_epoch"] = [e["rss_max_mb"] for e in epochs[name]]
    out["stream_vs_files"] = (out["stream_clips_per_cpu_s"] / out["files_clips_per_cpu_s"]
                              if out["files_clips_per_cpu_s"] else None)
    return out


def _rss_mb() -> float:
    """Resident memory of this process and its children (the loader workers), MB: the proportional set size, which
    counts pages the processes share (libraries, forked memory) once rather than once per process; 0 where /proc
    is missing."""
    total = 0
    pids = [os.getpid()]
    try:
        for task in Path("/proc/self/task").iterdir():
            pids += [int(p) for p in (task / "children").read_text().split()]
        for pid in pids:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
    except (OSError, ValueError):
        return 0.0
    return total / 1024


def _epoch(loader, memory: bool = False) -> dict:
    """One pass over the loader: clips, CPU time of main process and workers, wall time."""
    clips = 0
    main_cpu, child_cpu, wall = time.process_time(), children_cpu_s(), time.perf_counter()
    rss = []
    for batch in loader:
        if memory:
            rss.append(_rss_mb())
        clips += batch["labels"].shape[0]  # clips the model will see (R per decoded video)
        if clips == batch["labels"].shape[0]:
            sent = batch["frames"] if "frames" in batch else batch["pixel_values"]
            shape = list(sent.shape)
            bytes_per_clip = sum(v.nbytes for v in batch.values()) / batch["labels"].shape[0]
    wall = time.perf_counter() - wall
    main_cpu = time.process_time() - main_cpu
    child_cpu = children_cpu_s() - child_cpu
    total = main_cpu + child_cpu
    return {
        "clips": clips, "batch_shape": shape, "bytes_per_clip": bytes_per_clip, "wall_s": wall,
        "clips_per_wall_s": clips / wall, "clips_per_cpu_s": clips / total if total else None,
        "main_cpu_ms_per_clip": 1000 * main_cpu / clips, "worker_cpu_ms_per_clip": 1000 * child_cpu / clips,
        **({"rss_max_mb": max(rss), "rss_last_mb": rss[-1]} if rss else {}),
    }


# ------------------------------------------------------------------------------------------------------ report

def machine() -> dict:
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(), "affinity": affinity,
        "load_average": os.getloadavg(), "python": platform.python_version(), "torch": torch.__version__,
        "av": av.__version__, "ffmpeg": ".".join(map(str, av.library_versions.get("libavcodec", ()))),
    }


def format_tables(results: dict) -> str:
    lines = []
    decode = results.get("decode") or {}
    if decode:
        names = list(next(iter(decode.values()))["methods"])
        lines.append(f"decode {results['settings']['frames']} frames at rate {results['settings']['rate']}, RGB "
                     "uint8: clips per CPU-second (x = ratio to decoding the whole file; * = frames differ)")
        lines.append("| kind | videos | " + " | ".join(names) + " |")
        lines.append("|---|---|" + "---|" * len(names))
        for kind, r in decode.items():
            cells = []
            for name in names:
                m = r["methods"][name]
                if "unavailable" in m:
                    cells.append("n/a")
                    continue
                ratio = r["ratio_vs_whole_file"].get(name)
                flag = "" if m["identical_frames"] else f" *{m['mismatched_clips']}/{m['clips'] + len(m['errors'])}"
                cells.append(f"{m['clips_per_cpu_s']:.0f} ({ratio:.2f}x){flag}" if m["clips_per_cpu_s"] else f"-{flag}")
            lines.append(f"| {kind} | {r['videos']} | " + " | ".join(cells) + " |")
        missing = {n: m["unavailable"] for r in decode.values() for n, m in r["methods"].items() if "unavailable" in m}
        lines += [f"{name}: {why}" for name, why in missing.items()]

        probes = results.get("probe") or {}
        lines.append("")
        lines.append("work per clip: frames decoded by each method (ours: + skipped, converted), CPU ms per clip, "
                     "our probe (once per video, checked)")
        lines.append("| kind | frames/video | ours decoded | ours skipped | ours converted | whole file decoded | "
                     "stop-after-last decoded | ours ms/clip | whole file ms/clip | probe ms/video | ours mismatched |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for kind, r in decode.items():
            ours, whole, stop = (r["methods"][n] for n in ("ours", BASELINE, "pyav_stop_after_last"))
            probe = probes.get(kind, {})

            def num(value, digits=1):
                return "-" if value is None else f"{value:.{digits}f}"

            lines.append(
                f"| {kind} | {np.mean(r['frames_per_video']):.0f} | {num(ours['frames_decoded_per_clip'])} | "
                f"{num(ours['frames_skipped_per_clip'])} | {num(ours['frames_converted_per_clip'])} | "
                f"{num(whole['frames_decoded_per_clip'])} | {num(stop['frames_decoded_per_clip'])} | "
                f"{num(ours['cpu_ms_per_clip'])} | {num(whole['cpu_ms_per_clip'])} | "
                f"{num(probe.get('probe_cpu_ms_per_video'), 0)} | "
                f"{ours['mismatched_clips']}/{ours['clips'] + len(ours['errors'])} |")
        bad = {kind: {name: m["mismatched_clips"] for name, m in r["methods"].items()
                      if "unavailable" not in m and m["mismatched_clips"]} for kind, r in decode.items()}
        bad = {kind: methods for kind, methods in bad.items() if methods}
        if any("ours" in methods for methods in bad.values()):
            lines.append("FRAMES DIFFER (ours): " + ", ".join(f"{k}: {m['ours']} clips" for k, m in bad.items()
                                                           if "ours" in m))
        else:
            lines.append(f"ours: frames identical to a sequential decode on every kind ({len(decode)} kinds)")
        others = [f"{k}: " + ", ".join(f"{n} {c}" for n, c in m.items() if n != "ours") for k, m in bad.items()
                  if set(m) - {"ours"}]
        if others:
            lines.append("other methods whose frames differ (clips): " + "; ".join(others))
    loader = results.get("loader") or []
    if loader:
        s = results["settings"]
        lines.append("")
        lines.append(f"loader: {s['frames']} x {s['size']}x{s['size']} clips, training augmentation, ClipTransform + "
                     f"VideoCollator in a DataLoader (batch {s['batch_size']} videos) on {results['loader_videos']}")
        lines.append("| augment on | R | workers | prefetch | persistent | clips | clips/s per core | wall clips/s | "
                     "main ms/clip | worker ms/clip | bytes/clip sent |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for run in loader:
            lines.append(
                f"| {run['placement']} | {run['repeats']} | {run['workers']} | {run['prefetch_factor'] or '-'} | "
                f"{'yes' if run['persistent_workers'] else 'no'} | {run['clips']} | {run['clips_per_cpu_s']:.1f} | "
                f"{run['clips_per_wall_s']:.1f} | {run['main_cpu_ms_per_clip']:.1f} | {run['worker_cpu_ms_per_clip']:.1f} | "
                f"{run['bytes_per_clip'] / 1e6:.2f} MB |"
            )
    stream = results.get("stream")
    if stream:
        lines.append("")
        lines.append(f"streaming from shards vs reading files: the same {stream['videos']} videos each epoch, "
                     f"{stream['workers']} loader workers, {stream['shards']} shard(s), shuffle buffer "
                     f"{stream['shuffle_buffer']}; ClipTransform (workers) + VideoCollator")
        lines.append("| source | clips/s per core | resident MB per epoch (PSS of main + workers, max) |")
        lines.append("|---|---|---|")
        for name in ("files", "stream"):
            per_epoch = ", ".join(f"{m:.0f}" for m in stream[f"{name}_rss_mb_per_epoch"])
            lines.append(f"| {name} | {stream[f'{name}_clips_per_cpu_s']:.1f} | {per_epoch} |")
        lines.append(f"stream / files: {stream['stream_vs_files']:.3f} (clips per CPU-second; epochs after the first)")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- probe cost
# Training probes every video once before its first step (probe_video: frame count, keyframe table, B-frame skip
# table, each checked by decoding). Its cost is reported as probe CPU time over the CPU time of one single-threaded
# full decode of the same file (every frame decoded, none converted), so that it reads the same on any machine, on
# the probe-cost corpora of pipeline.benchmark.corpus (write_probe_corpus), grouped by whether the video holds
# B-frames (from the decoded frames' types) and per layout.

PROBE_GROUPS = ("without B-frames", "with B-frames")
PROBE_REAL_LAYOUT = "real UCF101 clip (xvid avi)"
PICT_TYPE_B = 3


def full_decode_cpu_s(path: str) -> tuple[float, bool]:
    """CPU seconds of one single-threaded decode of every frame (none converted); whether any is a B-frame."""
    cpu = time.process_time()
    b_frames = False
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        for frame in container.decode(stream):
            b_frames = b_frames or frame.pict_type == PICT_TYPE_B
    return time.process_time() - cpu, b_frames


def measure_probe_cost(videos: dict[str, list[str]], probes: dict[str, Callable], repeats: int = 2) -> dict:
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
            rows.append({"path": path, "layout": layout, "group": PROBE_GROUPS[b_frames], "decode_ms": 1000 * decode_s,
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
                       for group in PROBE_GROUPS if any(r["group"] == group for r in rows)},
            "layouts": {layout: summary([r for r in rows if r["layout"] == layout], name)
                        for layout in videos if any(r["layout"] == layout for r in rows)},
        }
    return {"probes": results, "videos": rows}


def add_probe_cost_arguments(parser) -> None:
    """The probe-cost options of ``python -m pipeline.benchmark data``."""
    parser.add_argument("--probe_cost_videos", type=int, default=3,
                        help="probe cost: videos per layout in each corpus (seen and unseen); 0: not measured")
    corpora = list(ucf101_like.PROBE_CORPORA)
    parser.add_argument("--probe_cost_corpora", nargs="+", default=corpora, choices=corpora,
                        help="probe cost: corpora to measure (seen: the parameters the probe was tuned on)")
    parser.add_argument("--probe_cost_frames", type=int, nargs=2, metavar=("MIN", "MAX"),
                        help="probe cost: frames per video (default: 150-200 seen, 110-230 unseen)")
    parser.add_argument("--probe_cost_repeats", type=int, default=2,
                        help="probe cost: runs per timing, the least counts")


def probe_cost_report(args, root: Path, own_videos: Optional[dict] = None, real: Sequence[str] = ()) -> dict:
    """Probe cost on the corpora asked for (written under root/probe_cost; the `real` UCF101 clips join the seen
    one), or on --videos when given."""
    if own_videos is not None:
        corpora = {"your videos": own_videos}
    elif args.probe_cost_videos > 0:
        corpora = {name: ucf101_like.write_probe_corpus(root / "probe_cost", name, args.probe_cost_videos,
                                                        args.seed, args.probe_cost_frames)
                   for name in args.probe_cost_corpora}
        if real and "seen" in corpora:
            corpora["seen"][PROBE_REAL_LAYOUT] = list(real)
    else:
        return {}
    return {name: measure_probe_cost(videos, {"probe_video": probe_video}, args.probe_cost_repeats)
            for name, videos in corpora.items()}


def format_probe_cost(results: dict) -> str:
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


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(1)  # one core: a loader worker runs single-threaded too
    with tempfile.TemporaryDirectory(prefix="benchmark_data_") as scratch:
        root = args.workdir or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        clips_per_kind = {}
        if args.videos is not None:
            videos = folder_corpus(args.videos)
        else:
            videos = corpus_kinds(args.corpus_dir or root / "corpus", args.corpus_classes,
                                  args.corpus_videos_per_class, args.corpus_seed)
            synthetic = write_synthetic_kinds(root / "synthetic", args.kinds, args.num_videos, args.video_size,
                                              args.seconds, args.seed)
            real = args.real if args.real is not None else ([DEFAULT_REAL_CLIP] if DEFAULT_REAL_CLIP.is_file() else [])
            if REAL_KIND in args.kinds and real:
                synthetic[REAL_KIND] = [str(p) for p in real]
            clips_per_kind = {kind: args.check_clips for kind in synthetic}
            videos.update(synthetic)
        infos, probes = probe_all(videos)  # probed once, as in training
        results: dict = {"command": " ".join(["python -m pipeline.benchmark data", *(argv or sys.argv[1:])]),
                         "machine": machine(), "settings": {k: str(v) if isinstance(v, Path) else v
                                                            for k, v in vars(args).items()},
                         "probe": probes}
        if not args.skip_decode:
            results["decode"] = bench_decode(videos, infos, args, clips_per_kind)
        real_clips = args.real if args.real is not None else [DEFAULT_REAL_CLIP]
        results["probe_cost"] = probe_cost_report(args, root, videos if args.videos is not None else None,
                                                   real=[str(p) for p in real_clips if Path(p).is_file()])
        if not args.skip_loader:
            kinds = list(videos) if "all" in args.loader_kinds else [k for k in args.loader_kinds if k in videos]
            if not kinds:
                kinds = list(videos)
            paths = [p for k in kinds for p in videos[k]]
            results["loader_videos"] = ", ".join(f"{k} ({len(videos[k])})" for k in kinds)
            results["loader"] = bench_loader(paths, infos, args)
        if not args.skip_stream:
            kinds = [k for k in args.loader_kinds if k in videos] or list(videos)
            results["stream"] = bench_stream([p for k in kinds for p in videos[k]], infos, args, root / "stream")
    print(format_tables(results))
    print(format_probe_cost(results.get("probe_cost")))
    print("(clips per CPU-second = clips/s per core; the machine may be shared: compare ratios within one run)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}")
    return results


if __name__ == "__main__":
    main()
