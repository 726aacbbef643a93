"""Exact, fast clip decoding with PyAV: probe a video once, then decode only the frames a clip needs.

"Frame i" always means the i-th frame that a plain sequential decode of the file outputs. Timestamps are never
used to number frames: in AVIs with (packed) B-frames packet and frame timestamps are scrambled, so frame
numbers computed from pts are wrong by one for many frames. Instead `probe_video` decodes the file once and
records, for every keyframe packet, the number of the keyframe it outputs; `decode_frames` seeks to the
keyframe packet before the first needed frame, checks that the demuxer landed on a packet of that table, and
counts decoded frames from the keyframe's output onwards. Only the needed frames are converted to RGB,
MPEG-4 Part 2 B-frames that no clip frame needs are not decoded at all (the probe records where they are, so
the count stays right), and decoding stops after the last needed frame.

Shipped with inference code (Hub remote code): imports only the standard library, numpy, av and siblings.
"""

from __future__ import annotations

import bisect
import os
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from .sampling import eval_clip_indices, train_clip_indices  # noqa: F401  (re-exported: part of this API)

__all__ = [
    "VideoDecodeError", "FrameIndexError", "VideoInfo", "DecodeStats", "probe_video", "decode_frames",
    "train_clip_indices", "eval_clip_indices",
]

# Scaler used when `size` asks for a resize; swscale's bilinear filter widens its support when downscaling,
# so it does not alias like a point-sampled bilinear.
RESIZE_INTERPOLATION = "BILINEAR"
# One thread for the decoder and for swscale: a loader runs one decoding process per core, and automatic
# threading there made clips/s drop (DESIGN fact 13).
# Bump when VideoInfo or the probe changes: cached probes of another version are ignored.
PROBE_FORMAT_VERSION = 2
DECODER_THREADS = 1
SCALER_THREADS = 1


class VideoDecodeError(RuntimeError):
    """A video cannot be probed or decoded; `.path` and `.reason` say which and why."""

    def __init__(self, path, reason: str):
        self.path = os.fspath(path) if isinstance(path, (str, os.PathLike)) else repr(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # keep path and reason through DataLoader worker pickling
        return type(self), (self.path, self.reason)


class FrameIndexError(VideoDecodeError, IndexError):
    """A requested frame index lies outside the decodable frames of the video."""


@dataclass
class VideoInfo:
    """What decoding a video needs to know, probed once (see `probe_video`); JSON/Arrow friendly (to_dict()).

    keyframes[j] is the frame index output by keyframe packet j; keyframe_pts[j] / keyframe_dts[j] identify
    that packet (dts may be None) and are used to seek to it, keyframe_packets[j] is its ordinal among the
    demuxed packets. An empty keyframe table means "never seek". skippable_packets[k] is the ordinal of a
    packet whose decode outputs the non-reference frame skippable_frames[k]: when that frame is not needed,
    decode_frames tells the decoder to skip it (MPEG-4 Part 2 B-frames, which nothing references).
    """

    num_frames: int
    fps: float
    width: int
    height: int
    keyframes: list = field(default_factory=list)
    keyframe_pts: list = field(default_factory=list)
    keyframe_dts: list = field(default_factory=list)
    keyframe_packets: list = field(default_factory=list)
    skippable_packets: list = field(default_factory=list)
    skippable_frames: list = field(default_factory=list)
    time_base: str = ""
    codec: str = ""
    duration: float = 0.0
    # why the file is damaged but still usable (e.g. truncated: fewer frames than its header declares), else ""
    damage: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "VideoInfo":
        names = cls.__dataclass_fields__.keys()
        return cls(**{key: value for key, value in data.items() if key in names})


@dataclass
class DecodeStats:
    """Counters filled by `decode_frames(..., stats=DecodeStats())`: how much work a call did."""

    packets: int = 0
    frames_decoded: int = 0
    frames_converted: int = 0
    frames_skipped: int = 0
    seeks: int = 0
    reopened: int = 0


def _open(path, options=None):
    """Open `path` to decode its first video stream; VideoDecodeError (naming the file) if impossible."""
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except OSError as error:
        raise VideoDecodeError(path, f"cannot read file ({error.strerror or error})") from None
    if size == 0:
        raise VideoDecodeError(path, "empty file (0 bytes)")
    try:
        container = av.open(path, metadata_errors="ignore", options=options)
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as error:
        if options:  # the quick open reads too little for some formats: try once more the normal way
            return _open(path)
        raise VideoDecodeError(path, f"not a readable video container ({error})") from None
    if not container.streams.video:
        container.close()
        if options:  # the quick open may miss streams that only probing reveals (e.g. MPEG-TS)
            return _open(path)
        raise VideoDecodeError(path, "no video stream")
    stream = container.streams.video[0]
    stream.codec_context.thread_count = DECODER_THREADS
    return container, stream


def _packet_frames(codec_context, packet):
    """Frames output by decoding one packet; packets the decoder rejects yield nothing (a corrupt/truncated
    packet must not end the video, and the probe and decode_frames must agree on what is skipped)."""
    try:
        return codec_context.decode(packet)
    except av.error.InvalidDataError:
        return ()


# Probing decodes every frame, because a frame's number can only be known by counting decoder output (fact 12:
# demux-only keyframe positions are off by the B-frames reordered around them, e.g. packet 11 outputs frame 12
# in a packed-B-frame AVI, and container frame counts are absent or wrong for truncated files). It is made
# cheap by skipping what only affects pixel values (IDCT, loop filter), which leaves frame count, order, types
# and keyframe flags unchanged; measured ~25% faster than a plain decode, ~10x the cost of demuxing alone,
# done once per video.
_PROBE_OPTIONS = {"skip_idct": "all", "skip_loop_filter": "all"}
_PICT_TYPE_B = 3  # AVPictureType of B-frames (PyAV 18 reports pict_type as an int)
# Decoders whose B-frames are never references and come out of the very decode call that reads them, so a
# B-frame that no clip frame needs can be skipped and its number still accounted for.
_SKIPPABLE_B_CODECS = {"mpeg4"}


def probe_video(path) -> VideoInfo:
    """Count the decodable frames of `path`; build its keyframe and skippable-frame tables (one decode)."""
    container, stream = _open(path)
    try:
        codec_context = stream.codec_context
        codec_context.options = dict(_PROBE_OPTIONS)
        record_b = codec_context.name in _SKIPPABLE_B_CODECS
        keyframe_packets, keyframes, skippable = [], [], []
        num_frames = width = height = 0
        damage = ""
        try:
            for ordinal, packet in enumerate(container.demux(stream)):
                if packet.is_keyframe and packet.size:
                    keyframe_packets.append((packet.pts, packet.dts, ordinal))
                frames = _packet_frames(codec_context, packet)
                for frame in frames:
                    if frame.key_frame:
                        keyframes.append(num_frames)
                    if not num_frames:
                        width, height = frame.width, frame.height
                    if record_b and len(frames) == 1 and frame.pict_type == _PICT_TYPE_B:
                        skippable.append((ordinal, num_frames))
                    num_frames += 1
        except av.FFmpegError as error:
            if not num_frames:
                raise VideoDecodeError(path, f"cannot decode video ({error})") from None
            # Damaged tail (e.g. a truncated file): keep the frames decoded so far.
            damage = f"decoding stopped after {num_frames} frames ({error})"
        if num_frames == 0:
            raise VideoDecodeError(path, "no decodable video frames")
        # A container that declares more frames than decode (AVI headers do) was cut short. Packed-B-frame AVIs
        # declare one placeholder chunk per packed pair, so allow that slack before calling a file truncated.
        declared = stream.frames or 0
        if not damage and declared > num_frames + max(2, declared // 10):
            damage = f"truncated: the header declares {declared} frames, {num_frames} decode"
        time_base = stream.time_base
        rate = stream.average_rate or stream.guessed_rate
        duration = float(stream.duration * time_base) if stream.duration and time_base else 0.0
        if not duration and container.duration:
            duration = container.duration / av.time_base
        fps = float(rate) if rate else (num_frames / duration if duration else 0.0)
        if not duration and fps:
            duration = num_frames / fps
        kf_pts = [pts for pts, _, _ in keyframe_packets]
        usable = (len(keyframe_packets) == len(keyframes) and all(pts is not None for pts in kf_pts)
                  and len(set(kf_pts)) == len(kf_pts))
        if not usable:
            # Keyframe packets and keyframe outputs do not pair up one to one: seeking could miscount frames.
            keyframe_packets, keyframes = [], []
        return VideoInfo(
            num_frames=num_frames, fps=fps, width=width, height=height, keyframes=keyframes,
            keyframe_pts=kf_pts if usable else [], keyframe_dts=[dts for _, dts, _ in keyframe_packets],
            keyframe_packets=[ordinal for _, _, ordinal in keyframe_packets],
            skippable_packets=[ordinal for ordinal, _ in skippable],
            skippable_frames=[index for _, index in skippable],
            time_base=f"{time_base.numerator}/{time_base.denominator}" if time_base else "",
            codec=codec_context.name, duration=duration, damage=damage,
        )
    finally:
        container.close()


def decode_frames(path, indices: Sequence[int], *, info: Optional[VideoInfo] = None, size=None,
                  stats: Optional[DecodeStats] = None) -> np.ndarray:
    """Decode frames `indices` of `path` as RGB uint8 (len(indices), H, W, 3), in the order given.

    Indices may be unsorted and repeated. With `info` (from probe_video, or its to_dict()) it seeks to the
    keyframe before the first needed frame, skips unneeded B-frames, and rejects out-of-range indices up
    front; without it, it decodes from the start. size=(H, W) resizes in FFmpeg's scaler while converting.
    `stats` receives work counters. Raises FrameIndexError (a VideoDecodeError and an IndexError) for an index
    outside the video, VideoDecodeError for an unreadable file.
    """
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if isinstance(info, dict):
        info = VideoInfo.from_dict(info)
    if indices.size and indices.min() < 0:
        raise FrameIndexError(path, f"negative frame index {int(indices.min())}")
    if info is not None and indices.size and indices.max() >= info.num_frames:
        raise FrameIndexError(
            path, f"frame {int(indices.max())} requested but the video has {info.num_frames} frames")
    stats = stats if stats is not None else DecodeStats()
    out_h, out_w = (int(size[0]), int(size[1])) if size is not None else (None, None)
    if not indices.size:
        height = out_h or (info.height if info else 0)
        width = out_w or (info.width if info else 0)
        return np.empty((0, height, width, 3), np.uint8)

    wanted, positions = np.unique(indices, return_inverse=True)
    frames = _decode_sorted(path, wanted, info, out_h, out_w, stats, allow_seek=True)
    if len(wanted) == len(indices) and bool(np.all(indices[1:] > indices[:-1])):
        return frames  # already in the requested order: no gather copy
    return frames[positions]


# A probed file needs no stream analysis when reopened: a small probe size saves ~1 ms of a ~20-30 ms clip.
_FAST_OPEN_OPTIONS = {"probesize": "32", "analyzeduration": "0"}


def _decode_sorted(path, wanted, info, out_h, out_w, stats, allow_seek):
    """Decode the sorted unique frame numbers `wanted` into a new (len(wanted), H, W, 3) array."""
    first, last = int(wanted[0]), int(wanted[-1])
    start = _keyframe_before(info, first) if allow_seek else None
    out = None
    base = frame_number = 0
    landed = counting = start is None  # after a seek, frames count only from the keyframe's output on
    container, stream = _open(path, _FAST_OPEN_OPTIONS if info is not None else None)
    try:
        if start is not None:
            seek_ts = info.keyframe_dts[start]
            if seek_ts is None:
                seek_ts = info.keyframe_pts[start]
            container.seek(seek_ts, stream=stream, backward=True, any_frame=False)
            stats.seeks += 1
        codec_context = stream.codec_context
        reformatter = VideoReformatter()
        wanted_list = wanted.tolist()
        wanted_set = set(wanted_list)
        skip_at = dict(zip(info.skippable_packets, info.skippable_frames)) if info is not None else {}
        skipped: deque = deque()  # numbers of the frames skipped and not yet reached by the count, ascending
        skipping = False
        next_slot = 0
        ordinal = -1
        for packet in container.demux(stream):
            stats.packets += 1
            if not landed:
                # Verify where the seek put us: counting is only right from a keyframe packet of the table.
                j = _keyframe_of_packet(info, packet)
                if j is None or info.keyframes[j] > first:
                    break
                base = frame_number = info.keyframes[j]
                ordinal = info.keyframe_packets[j] - 1 if info.keyframe_packets else -1
                landed = True
            ordinal += 1
            target = skip_at.get(ordinal)
            skip = target is not None and base <= target < last and target not in wanted_set
            if skip != skipping:
                codec_context.skip_frame = "NONREF" if skip else "DEFAULT"
                skipping = skip
            frames = _packet_frames(codec_context, packet)
            if skip:
                if frames:  # the decoder did not skip after all: count the frame normally
                    skip = False
                else:
                    skipped.append(target)
                    stats.frames_skipped += 1
            for frame in frames:
                stats.frames_decoded += 1
                if not counting:
                    if not frame.key_frame:
                        continue  # leading frames of an open GOP, before the keyframe in display order
                    counting = True
                while skipped and skipped[0] <= frame_number:
                    if skipped.popleft() == frame_number:
                        frame_number += 1
                if frame_number == wanted_list[next_slot]:
                    if out is None:
                        shape = (len(wanted), out_h or frame.height, out_w or frame.width, 3)
                        out = np.empty(shape, np.uint8)
                    _convert_into(reformatter, frame, out[next_slot], out_h, out_w)
                    stats.frames_converted += 1
                    next_slot += 1
                    if next_slot == len(wanted):
                        return out
                frame_number += 1
    except av.FFmpegError as error:
        if landed and out is None and frame_number == base:
            raise VideoDecodeError(path, f"cannot decode video ({error})") from None
    finally:
        container.close()
    if not landed:  # the seek failed or did not reach a packet of the keyframe table
        stats.reopened += 1
        return _decode_sorted(path, wanted, info, out_h, out_w, stats, allow_seek=False)
    raise FrameIndexError(path, f"frame {last} requested but only {frame_number} frames could be decoded "
                                "(shorter than expected, or truncated)")


def _keyframe_before(info, first):
    """Index in the keyframe table of the last keyframe at or before frame `first` (None: from the start)."""
    if info is None or not info.keyframes:
        return None
    j = bisect.bisect_right(info.keyframes, first) - 1
    if j < 0 or info.keyframes[j] == 0:
        return None  # nothing to skip: decoding from the start needs no seek
    return j


def _keyframe_of_packet(info, packet):
    """Index in the keyframe table of this packet; None when it is not one of the table's keyframe packets."""
    if not packet.is_keyframe or packet.pts is None:
        return None
    try:
        return info.keyframe_pts.index(packet.pts)
    except ValueError:
        return None


def _convert_into(reformatter, frame, target, out_h, out_w):
    """Convert (and resize) `frame` to RGB straight into `target` (H, W, 3): one copy out of FFmpeg."""
    rgb = reformatter.reformat(frame, width=out_w, height=out_h, format="rgb24",
                               interpolation=RESIZE_INTERPOLATION if out_h else None, threads=SCALER_THREADS)
    plane = rgb.planes[0]
    height, width = target.shape[:2]
    rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
    target[...] = rows[:height, :width * 3].reshape(height, width, 3)
