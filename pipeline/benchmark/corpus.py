"""``python -m pipeline.benchmark corpus``: a UCF101-shaped corpus of synthetic videos that decode like UCF101's.

What the benchmarks measure depends on what the videos look like to the decoder, so the corpus copies the
properties of real UCF101 files that matter there: 320x240 MPEG-4 Part 2 (fourcc XVID) in AVI, 25 fps, 150-200
frames, ONE keyframe per file, 2 B-frames between references, 3 files in 4 in the DivX/XviD "packed bitstream"
layout (a reference VOP and the first B-VOP in one AVI chunk, the second B-VOP in the next, then a placeholder
N-VOP chunk), the others unpacked, and about 500-600 kB per 7 s. The pictures move like camera footage so that the
encoder spends its bits the same way: a textured scene panned by a shaky camera, textured objects moving and
swinging over it, sensor noise and a slight flicker. Clips of one group share their scene (in UCF101 they are cut
from one long video); each class has its own object colours and motion, so a model can learn the labels.

Layout and lists as in the real dataset, so that ``--dataset ucf101 --dataset_dir DIR`` reads it::

    DIR/UCF-101/<Class>/v_<Class>_gGG_cCC.avi
    DIR/ucfTrainTestlist/classInd.txt, trainlist0K.txt, testlist0K.txt   (K = 1, 2, 3; split K tests groups 7K-6..7K)

Deterministic: the same settings write the same bytes. Videos are written by one process per core, ~0.5-1 s
each on one core; a folder already holding a corpus of the same settings is completed, not rewritten.

``write_probe_corpus`` writes videos of other codecs and layouts with the same pictures (H.264 in MP4 and
Matroska, XviD with and without B-frames, packed or not, one keyframe or several), on which ``python -m
pipeline.benchmark data`` reports the probe's cost.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional

import av
import numpy as np

# classInd.txt order of the real dataset
UCF101_CLASSES = (
    "ApplyEyeMakeup", "ApplyLipstick", "Archery", "BabyCrawling", "BalanceBeam", "BandMarching", "BaseballPitch",
    "Basketball", "BasketballDunk", "BenchPress", "Biking", "Billiards", "BlowDryHair", "BlowingCandles",
    "BodyWeightSquats", "Bowling", "BoxingPunchingBag", "BoxingSpeedBag", "BreastStroke", "BrushingTeeth",
    "CleanAndJerk", "CliffDiving", "CricketBowling", "CricketShot", "CuttingInKitchen", "Diving", "Drumming",
    "Fencing", "FieldHockeyPenalty", "FloorGymnastics", "FrisbeeCatch", "FrontCrawl", "GolfSwing", "Haircut",
    "Hammering", "HammerThrow", "HandstandPushups", "HandstandWalking", "HeadMassage", "HighJump", "HorseRace",
    "HorseRiding", "HulaHoop", "IceDancing", "JavelinThrow", "JugglingBalls", "JumpingJack", "JumpRope",
    "Kayaking", "Knitting", "LongJump", "Lunges", "MilitaryParade", "Mixing", "MoppingFloor", "Nunchucks",
    "ParallelBars", "PizzaTossing", "PlayingCello", "PlayingDaf", "PlayingDhol", "PlayingFlute", "PlayingGuitar",
    "PlayingPiano", "PlayingSitar", "PlayingTabla", "PlayingViolin", "PoleVault", "PommelHorse", "PullUps",
    "Punch", "PushUps", "Rafting", "RockClimbingIndoor", "RopeClimbing", "Rowing", "SalsaSpin", "ShavingBeard",
    "Shotput", "SkateBoarding", "Skiing", "Skijet", "SkyDiving", "SoccerJuggling", "SoccerPenalty", "StillRings",
    "SumoWrestling", "Surfing", "Swing", "TableTennisShot", "TaiChi", "TennisSwing", "ThrowDiscus",
    "TrampolineJumping", "Typing", "UnevenBars", "VolleyballSpiking", "WalkingWithDog", "WallPushups",
    "WritingOnBoard", "YoYo",
)
# The real dataset names this class's files v_HandStandPushups_* (folder and lists: HandstandPushups).
FILE_CLASS_NAMES = {"HandstandPushups": "HandStandPushups"}

VIDEOS_DIR, LISTS_DIR, MANIFEST = "UCF-101", "ucfTrainTestlist", "corpus.json"
GROUPS_PER_CLASS = 25
WIDTH, HEIGHT, FPS = 320, 240, 25
FRAMES_RANGE = (150, 200)
B_FRAMES = 2
UNPACKED_EVERY = 4  # one video in 4 unpacked, the others in the packed-B-frame layout
# Encoder target: 590-670 kbit/s is 516-586 kB per 7 s.
BITRATE_RANGE = (590_000, 670_000)
FORMAT_VERSION = 1  # bump when the same settings would write different videos


@dataclass(frozen=True)
class VideoSpec:
    """One video of the corpus: where it goes and the seeds that make it."""

    relative_path: str
    class_index: int
    group: int
    clip: int
    seed: int
    packed: bool


def corpus_specs(num_classes: int, videos_per_class: int, seed: int) -> list[VideoSpec]:
    """The videos of a corpus: per class, `videos_per_class` clips spread over the 25 groups (so that every
    split's train and test lists hold some of each class once there are enough videos)."""
    if not 1 <= num_classes <= len(UCF101_CLASSES):
        raise ValueError(f"--classes must be 1..{len(UCF101_CLASSES)}, got {num_classes}")
    if videos_per_class < 1:
        raise ValueError(f"--videos_per_class must be at least 1, got {videos_per_class}")
    specs = []
    for class_index, name in enumerate(UCF101_CLASSES[:num_classes]):
        file_class = FILE_CLASS_NAMES.get(name, name)
        clips_in: dict[int, int] = {}
        for i in range(videos_per_class):
            if videos_per_class <= GROUPS_PER_CLASS:
                group = 1 + i * GROUPS_PER_CLASS // videos_per_class
            else:
                group = 1 + i % GROUPS_PER_CLASS
            clips_in[group] = clip = clips_in.get(group, 0) + 1
            packed = (class_index * videos_per_class + i) % UNPACKED_EVERY != UNPACKED_EVERY - 1
            specs.append(VideoSpec(f"{name}/v_{file_class}_g{group:02d}_c{clip:02d}.avi", class_index, group, clip,
                                   seed, packed))
    return specs


def write_corpus(output_dir, *, num_classes: int = 101, videos_per_class: int = 8, seed: int = 0,
                 num_workers: Optional[int] = None) -> Path:
    """Write the corpus (see module doc) under `output_dir`; returns `output_dir`, the folder to give as
    ``--dataset_dir``. num_workers: processes (default: one per available core)."""
    root = Path(output_dir)
    settings = {"format": FORMAT_VERSION, "classes": num_classes, "videos_per_class": videos_per_class,
                "seed": seed}
    manifest = root / MANIFEST
    if manifest.is_file():
        existing = json.loads(manifest.read_text())
        if existing != settings:
            raise ValueError(f"{root} holds a corpus written with other settings ({existing}); "
                             f"asked for {settings}: use another --output_dir")
    specs = corpus_specs(num_classes, videos_per_class, seed)
    videos = root / VIDEOS_DIR
    for name in UCF101_CLASSES[:num_classes]:
        (videos / name).mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps(settings))
    todo = [spec for spec in specs if not (videos / spec.relative_path).is_file()]
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = max(1, min(num_workers or available, len(todo) or 1))
    if workers == 1:
        for spec in todo:
            write_video(videos / spec.relative_path, spec)
    else:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(write_video, [videos / spec.relative_path for spec in todo], todo, chunksize=1))
    _write_lists(root / LISTS_DIR, specs, num_classes)
    return root


def _write_lists(lists_dir: Path, specs: list[VideoSpec], num_classes: int) -> None:
    """classInd.txt and the three official splits' train/test lists, with the real files' CRLF endings."""
    lists_dir.mkdir(parents=True, exist_ok=True)

    def write(name, lines):
        (lists_dir / name).write_bytes("".join(line + "\r\n" for line in lines).encode())

    write("classInd.txt", [f"{i + 1} {name}" for i, name in enumerate(UCF101_CLASSES[:num_classes])])
    for split in (1, 2, 3):
        tested = range(7 * split - 6, 7 * split + 1)
        write(f"trainlist{split:02d}.txt",
              [f"{s.relative_path} {s.class_index + 1}" for s in specs if s.group not in tested])
        write(f"testlist{split:02d}.txt", [s.relative_path for s in specs if s.group in tested])


# --------------------------------------------------------------------------------------------------- one video

def write_video(path: Path, spec: VideoSpec) -> Path:
    """Render, encode and (most often) pack one video; written under a temporary name, then renamed."""
    path = Path(path)
    rng = np.random.default_rng([spec.seed, spec.class_index, spec.group, spec.clip])
    num_frames = int(rng.integers(FRAMES_RANGE[0], FRAMES_RANGE[1] + 1))
    bit_rate = int(rng.integers(*BITRATE_RANGE))
    encoded = io.BytesIO()
    _encode(encoded, _frames(spec, num_frames, rng), bit_rate)
    encoded.seek(0)
    partial = path.with_name(f".partial.{path.name}")
    if spec.packed:
        pack_b_frames(encoded, partial, "pb_b_n")
    else:
        partial.write_bytes(encoded.getvalue())
    os.replace(partial, path)
    return path


def _encode(destination, frames, bit_rate: int) -> None:
    """MPEG-4 Part 2 in AVI as XviD writes it: one keyframe, 2 B-frames, fourcc XVID, bit-exact output."""
    with av.open(destination, "w", format="avi", container_options={"fflags": "+bitexact"}) as output:
        stream = output.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_tag = "XVID"
        context = stream.codec_context
        context.time_base = Fraction(1, FPS)
        context.bit_rate = bit_rate
        context.gop_size = 100_000  # one keyframe
        context.max_b_frames = B_FRAMES
        context.thread_count = 1  # deterministic, and one process per core already
        # no keyframes at scene changes; no encoder-version user data
        context.options = {"sc_threshold": "1000000000", "flags": "+bitexact"}
        for index, planes in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            frame.pts = index
            frame.time_base = context.time_base
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)


# ------------------------------------------------------------------------------------------------- rendering

_TEXTURE = 512  # tileable scene texture (luma pixels); chroma at half resolution


def _frames(spec: VideoSpec, num_frames: int, rng: np.random.Generator):
    """Yield (H * 3 // 2, W) uint8 yuv420p frames: panned scene + moving objects + noise + flicker."""
    scene_rng = np.random.default_rng([spec.seed, spec.class_index, spec.group, 0])  # shared by the group
    class_rng = np.random.default_rng([spec.seed, spec.class_index, 1_000_003])      # shared by the class
    luma = np.tile(_scene_luma(scene_rng), (2, 2))
    chroma = [np.tile(plane, (2, 2)) for plane in _scene_chroma(scene_rng)]
    objects = _objects(class_rng, rng)
    camera = _camera_path(rng, num_frames)
    noise_sigma = rng.uniform(1.5, 3.0)
    noise = rng.normal(0.0, noise_sigma, (8, HEIGHT + 16, WIDTH + 16)).astype(np.int16)
    flicker = rng.uniform(0.5, 2.5) * np.sin(np.arange(num_frames) * rng.uniform(0.05, 0.3))
    out = np.empty((HEIGHT * 3 // 2, WIDTH), np.uint8)
    for t in range(num_frames):
        x, y = camera[t]
        ox, oy = int(x) % _TEXTURE, int(y) % _TEXTURE
        y_plane = luma[oy:oy + HEIGHT, ox:ox + WIDTH].astype(np.int16)
        u_plane = chroma[0][oy // 2:oy // 2 + HEIGHT // 2, ox // 2:ox // 2 + WIDTH // 2].copy()
        v_plane = chroma[1][oy // 2:oy // 2 + HEIGHT // 2, ox // 2:ox // 2 + WIDTH // 2].copy()
        for obj in objects:
            obj.draw(t, y_plane, u_plane, v_plane)
        k, nx, ny = rng.integers(0, 8), rng.integers(0, 16), rng.integers(0, 16)
        y_plane += noise[k, ny:ny + HEIGHT, nx:nx + WIDTH]
        y_plane += int(round(flicker[t]))
        np.clip(y_plane, 16, 235, out=y_plane)
        out[:HEIGHT] = y_plane
        out[HEIGHT:HEIGHT * 5 // 4] = u_plane.reshape(HEIGHT // 4, WIDTH)
        out[HEIGHT * 5 // 4:] = v_plane.reshape(HEIGHT // 4, WIDTH)
        yield out


def _smooth_noise(rng, size: int, exponent: float) -> np.ndarray:
    """Tileable noise with a 1/f**exponent amplitude spectrum (natural images: about 1), unit std."""
    freqs = np.fft.fftfreq(size)
    radius = np.sqrt(freqs[:, None] ** 2 + freqs[None, :] ** 2)
    radius[0, 0] = 1.0
    spectrum = np.fft.fft2(rng.standard_normal((size, size))) / radius ** exponent
    spectrum[0, 0] = 0.0
    field_ = np.real(np.fft.ifft2(spectrum))
    return field_ / field_.std()


def _scene_luma(rng) -> np.ndarray:
    """The scene: textured ground (1/f noise and fine grain) with lit walls, windows and poles (edges)."""
    size = _TEXTURE
    scene = 110 + 28 * _smooth_noise(rng, size, 1.1) + 6 * rng.standard_normal((size, size))
    rows, cols = np.arange(size), np.arange(size)
    for _ in range(int(rng.integers(14, 26))):  # rectangles, wrapping around the tile
        h, w = rng.integers(12, 140, size=2)
        top, left = rng.integers(0, size, size=2)
        shade = rng.uniform(-55, 55)
        grain = rng.uniform(0, 14)
        r, c = (top + rows[:h]) % size, (left + cols[:w]) % size
        patch = shade + grain * np.sin(np.arange(w) * rng.uniform(0.3, 1.5))[None, :]
        scene[np.ix_(r, c)] = scene[np.ix_(r, c)] * 0.4 + (110 + patch) * 0.6
    return np.clip(scene, 20, 230).astype(np.int16)


def _scene_chroma(rng) -> tuple[np.ndarray, np.ndarray]:
    """Smooth colour fields for the scene (U, V) at half resolution, around a tint of the group's own."""
    size = _TEXTURE // 2
    tint = rng.uniform(-18, 18, size=2)
    return tuple(np.clip(128 + tint[i] + 10 * _smooth_noise(rng, size, 1.6), 40, 216).astype(np.uint8)
                 for i in range(2))


@dataclass
class _Object:
    """A textured ellipse moving over the scene, optionally swinging (an arm, a racket, a pendulum)."""

    centre: np.ndarray      # (x, y) at t = 0
    velocity: np.ndarray    # px per frame
    wobble: np.ndarray      # amplitude (x, y) of a periodic motion
    omega: float            # its angular frequency (rad per frame)
    axes: tuple             # semi-axes (a, b) in px
    angle0: float
    swing: float            # rotation amplitude (rad)
    luma: float
    contrast: float
    stripes: float          # stripe frequency of the texture (rad per px)
    u: int
    v: int

    def draw(self, t: int, y_plane, u_plane, v_plane) -> None:
        x, y = self.centre + self.velocity * t + self.wobble * np.sin(self.omega * t)
        x, y = _bounce(x, WIDTH), _bounce(y, HEIGHT)
        angle = self.angle0 + self.swing * np.sin(self.omega * t + 0.7)
        a, b = self.axes
        reach = int(max(a, b)) + 2
        x0, x1 = max(0, int(x) - reach), min(WIDTH, int(x) + reach + 1)
        y0, y1 = max(0, int(y) - reach), min(HEIGHT, int(y) + reach + 1)
        if x0 >= x1 or y0 >= y1:
            return
        dx = np.arange(x0, x1)[None, :] - x
        dy = np.arange(y0, y1)[:, None] - y
        cos, sin = np.cos(angle), np.sin(angle)
        along, across = dx * cos + dy * sin, -dx * sin + dy * cos
        inside = (along / a) ** 2 + (across / b) ** 2 <= 1.0
        texture = self.luma + self.contrast * np.sign(np.sin(along * self.stripes + across * 0.35))
        region = y_plane[y0:y1, x0:x1]
        region[inside] = texture[inside].astype(np.int16)
        inside_c = inside[(y0 & 1)::2, (x0 & 1)::2]
        cy0, cx0 = (y0 + 1) // 2, (x0 + 1) // 2
        cy1, cx1 = cy0 + inside_c.shape[0], cx0 + inside_c.shape[1]
        inside_c = inside_c[:HEIGHT // 2 - cy0, :WIDTH // 2 - cx0]
        u_plane[cy0:cy1, cx0:cx1][inside_c] = self.u
        v_plane[cy0:cy1, cx0:cx1][inside_c] = self.v


def _bounce(value: float, limit: int) -> float:
    """Reflect a coordinate into [0, limit): objects bounce off the frame's edges instead of leaving."""
    period = 2 * limit
    value = value % period
    return value if value < limit else period - value - 1


def _objects(class_rng, rng) -> list:
    """2-4 objects: colours, sizes and motion style from the class, positions and phases from the clip."""
    palette = class_rng.integers(50, 206, size=(4, 2))
    speed = class_rng.uniform(0.4, 3.0)
    omega = class_rng.uniform(0.08, 0.5)
    swing = class_rng.uniform(0.0, 1.2)
    objects = []
    for k in range(int(rng.integers(2, 5))):
        a = float(class_rng.uniform(14, 48)) * rng.uniform(0.85, 1.15)
        objects.append(_Object(
            centre=np.array([rng.uniform(0, WIDTH), rng.uniform(0, HEIGHT)]),
            velocity=rng.normal(0, speed, size=2), wobble=rng.uniform(5, 40, size=2),
            omega=omega * rng.uniform(0.8, 1.25), axes=(a, a * float(class_rng.uniform(0.3, 0.9))),
            angle0=rng.uniform(0, np.pi), swing=swing, luma=rng.uniform(60, 190), contrast=rng.uniform(20, 55),
            stripes=class_rng.uniform(0.2, 0.9), u=int(palette[k % 4, 0]), v=int(palette[k % 4, 1]),
        ))
    return objects


def _camera_path(rng, num_frames: int) -> np.ndarray:
    """(x, y) of the camera per frame: a pan at a steady speed, a slow sway and hand shake."""
    t = np.arange(num_frames)
    speed = rng.uniform(0.0, 2.5) * np.array([np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a)])
    sway = rng.uniform(0, 12, size=2)[None, :] * np.sin(t[:, None] * rng.uniform(0.02, 0.08) + rng.uniform(0, 6))
    shake = np.cumsum(rng.normal(0, 0.6, size=(num_frames, 2)), axis=0)
    shake -= np.linspace(0, 1, num_frames)[:, None] * shake[-1]  # a random walk that returns: no drift
    start = rng.uniform(0, _TEXTURE, size=2)
    return start + speed[None, :] * t[:, None] + sway + shake


# ------------------------------------------------------------------------------------------ packed B-frames
# FFmpeg's MPEG-4 encoder writes one VOP per packet, in decode order. DivX 5 / XviD "packed bitstream" instead
# keeps one AVI chunk per displayed frame: the first B-VOP after a reference goes into the reference's chunk,
# each further B-VOP into a chunk of its own, and a tiny "not coded" VOP (N-VOP) chunk fills the slot left.
# Decoders recognise the layout by a "DivX...p" user-data string in the stream.

VOP_START = b"\x00\x00\x01\xb6"
DIVX_PACKED_USER_DATA = b"\x00\x00\x01\xb2DivX503b1393p"
LAYOUTS = ("pb_b_n", "pbb_nn")


def vop_type(data: bytes) -> int:
    """0=I, 1=P, 2=B, 3=S, from the first VOP header of an MPEG-4 Part 2 packet."""
    start = data.find(VOP_START)
    return data[start + 4] >> 6


def n_vop(time_increment_bits: int) -> bytes:
    """A P-VOP header with vop_coded=0, byte-aligned with MPEG-4 stuffing bits."""
    # vop_coding_type P, modulo_time_base, marker, vop_time_increment, marker, vop_coded = 0
    bits = "01" + "0" + "1" + "0" * time_increment_bits + "1" + "0"
    bits += "0" + "1" * ((7 - len(bits)) % 8)  # stuffing: a zero then ones up to the byte boundary
    return VOP_START + int(bits, 2).to_bytes(len(bits) // 8, "big")


def is_packed(path) -> bool:
    """Whether an MPEG-4 Part 2 file holds packed B-frames (a packet with more than one VOP); demuxing only."""
    with av.open(str(path)) as container:
        return any(bytes(packet).count(VOP_START) > 1 for packet in container.demux(video=0) if packet.size)


def pack_b_frames(source, destination, layout: str = "pb_b_n", packed_until: Optional[int] = None) -> None:
    """Rewrite an unpacked MPEG-4 Part 2 AVI (path or file object) in a packed-B-frame layout:

    pb_b_n  [ref + B1] [B2] ... [Bk] [N-VOP]: what DivX/XviD write (with k = 1: [ref + B] [N-VOP])
    pbb_nn  [ref + B1 + ... + Bk] [N-VOP] x k: all B-VOPs in the reference's chunk (FFmpeg decodes only
            the first of them: its sequential decode has fewer frames than were encoded)

    packed_until: pack only the B-frames of the first that many source packets, leave the rest unpacked (a file
    mixing both layouts, as written by some DivX versions after an edit).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown packed layout {layout!r}; expected one of {LAYOUTS}")
    with av.open(source) as src:
        in_stream = src.streams.video[0]
        packets = [bytes(p) for p in src.demux(in_stream) if p.size]
        # vop_time_increment_resolution is the frame rate (25 -> 5 bits), as FFmpeg's encoder writes it
        placeholder = n_vop(max(1, (int(in_stream.average_rate) - 1).bit_length()))
        chunks: list[tuple[bytes, bool]] = []
        i = 0
        while i < len(packets):
            data = packets[i]
            keyframe = vop_type(data) == 0
            if keyframe:
                at = data.find(VOP_START)
                data = data[:at] + DIVX_PACKED_USER_DATA + data[at:]
            j = i + 1
            while j < len(packets) and vop_type(packets[j]) == 2:
                j += 1
            b_vops = packets[i + 1:j]
            if not b_vops or (packed_until is not None and i >= packed_until):
                chunks.append((data, keyframe))
                chunks += [(b, False) for b in b_vops]
            elif layout == "pb_b_n":
                chunks.append((data + b_vops[0], keyframe))
                chunks += [(b, False) for b in b_vops[1:]]
                chunks.append((placeholder, False))
            else:
                chunks.append((data + b"".join(b_vops), keyframe))
                chunks += [(placeholder, False)] * len(b_vops)
            i = j
        with av.open(destination, "w", format="avi", container_options={"fflags": "+bitexact"}) as dst:
            out_stream = dst.add_stream_from_template(in_stream)
            out_stream.codec_tag = in_stream.codec_tag  # the template leaves the AVI muxer's default (FMP4)
            for index, (data, keyframe) in enumerate(chunks):
                packet = av.Packet(data)
                packet.stream = out_stream
                packet.time_base = out_stream.time_base or Fraction(1, FPS)
                packet.pts = packet.dts = index
                packet.is_keyframe = keyframe
                dst.mux(packet)


# ---------------------------------------------------------------------------------------- probe-cost corpus
# Videos of other codecs and layouts than UCF101's, for the probe's cost in python -m pipeline.benchmark data.

@dataclass(frozen=True)
class Layout:
    """How one group of the probe-cost corpus is encoded (see write_probe_corpus)."""

    name: str
    codec: str        # "h264" (libx264) or "xvid" (MPEG-4 Part 2, fourcc XVID)
    container: str    # "mp4", "matroska" or "avi"
    b_frames: int
    gop: int          # keyframe interval in frames (more than the length: one keyframe)
    packed: bool = False  # XviD packed B-frames ([P+B1] [B2] ... [N-VOP])


PROBE_LAYOUTS_SEEN = (
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
PROBE_LAYOUTS_UNSEEN = (
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
# name -> (layouts, frames per video, seed offset)
PROBE_CORPORA = {"seen": (PROBE_LAYOUTS_SEEN, (150, 200), 0), "unseen": (PROBE_LAYOUTS_UNSEEN, (110, 230), 7)}


def write_probe_corpus(root: Path, corpus: str, videos_per_layout: int, seed: int,
                       frames_range: Optional[tuple] = None) -> dict[str, list[str]]:
    """Write (or reuse) the videos of one probe-cost corpus under root/<corpus>...; {layout name: [paths]}.

    The layouts the probe treats differently: H.264 (MP4, Matroska) and MPEG-4 Part 2 (XviD AVI), without and
    with B-frames, one keyframe or several, and XviD AVIs with packed B-frames at full UCF101 length and size,
    with this corpus's pictures (the decoder works as hard as on camera footage). "seen": the parameters the
    probe was tuned on; "unseen": other seeds, keyframe intervals, B-frame counts, lengths and bit rates.
    """
    layouts, default_range, seed_offset = PROBE_CORPORA[corpus]
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
                spec = VideoSpec(f"{index}/{i}", class_index=index % len(UCF101_CLASSES),
                                             group=1 + i % GROUPS_PER_CLASS, clip=1 + i,
                                             seed=seed + seed_offset, packed=layout.packed)
                rng = np.random.default_rng([seed + seed_offset, index, i])
                partial = path.with_name("partial_" + path.name)
                _write_layout(partial, layout, spec, int(rng.integers(low, high + 1)), rng)
                os.replace(partial, path)
            paths.append(str(path))
        videos[layout.name] = paths
    return videos


def _write_layout(path: Path, layout: Layout, spec, num_frames: int, rng) -> None:
    frames = _frames(spec, num_frames, rng)
    if layout.packed:
        plain = path.with_name(path.stem + ".unpacked.avi")
        _encode_layout(plain, layout, frames, rng)
        pack_b_frames(str(plain), str(path), "pb_b_n")
        plain.unlink()
    else:
        _encode_layout(path, layout, frames, rng)


def _encode_layout(path: Path, layout: Layout, frames, rng) -> None:
    with av.open(str(path), "w", format=layout.container) as output:
        stream = output.add_stream("libx264" if layout.codec == "h264" else "mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        context = stream.codec_context
        context.time_base = Fraction(1, FPS)
        context.thread_count = 1
        context.gop_size = layout.gop
        context.max_b_frames = layout.b_frames
        if layout.codec == "h264":
            params = (f"keyint={layout.gop}:min-keyint={layout.gop}:scenecut=0:bframes={layout.b_frames}:"
                      f"threads=1")
            context.options = {"preset": "veryfast", "crf": str(int(rng.integers(20, 27))), "x264-params": params}
        else:
            stream.codec_tag = "XVID"
            context.bit_rate = int(rng.integers(*BITRATE_RANGE))
            context.options = {"sc_threshold": "1000000000", "flags": "+bitexact"}
        for index, planes in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            frame.pts = index
            frame.time_base = context.time_base
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)



# ------------------------------------------------------------------------------------------------------ CLI

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.benchmark corpus",
        description="Write a UCF101-shaped corpus (UCF101 layout and split lists; 320x240 MPEG-4 Part 2 AVI, "
                    "25 fps, 150-200 frames, one keyframe, 2 B-frames, mostly packed, ~550 kB per 7 s).",
        allow_abbrev=False,
    )
    parser.add_argument("--output_dir", type=Path, required=True,
                        help="folder to write UCF-101/ and ucfTrainTestlist/ into (use it as --dataset_dir)")
    parser.add_argument("--classes", type=int, default=101, help="number of classes (the first N of UCF101's)")
    parser.add_argument("--videos_per_class", type=int, default=8, help="videos per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    cpu = _cpu_s()
    try:
        root = write_corpus(args.output_dir, num_classes=args.classes, videos_per_class=args.videos_per_class,
                            seed=args.seed, num_workers=args.workers)
    except ValueError as error:
        print(f"pipeline.benchmark corpus: {error}", file=sys.stderr)
        return 2
    videos = sorted((root / VIDEOS_DIR).rglob("*.avi"))
    size = sum(p.stat().st_size for p in videos)
    wall, cpu = time.perf_counter() - started, _cpu_s() - cpu
    print(f"{len(videos)} videos ({size / 1e6:.1f} MB) in {root}: {args.classes} classes, UCF101 layout and lists; "
          f"written in {wall:.1f} s, {cpu:.1f} CPU-s (this process and its workers)")
    return 0


def _cpu_s() -> float:
    """User + system CPU seconds of this process and its finished children (the writer processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    sys.exit(main())
