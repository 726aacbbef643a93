"""Exact, fast clip decoding with PyAV: probe a video once, then decode only the frames a clip needs.

"Frame i" always means the i-th frame that a plain sequential decode of the file outputs. Timestamps are never
used to number frames: in AVIs with (packed) B-frames packet and frame timestamps are scrambled, so frame
numbers computed from pts are wrong by one for many frames. Instead `probe_video` decodes the file once and
records, for every keyframe packet, the number of the keyframe it outputs; `decode_frames` seeks to the
keyframe packet before the first needed frame, checks that the demuxer landed on a packet of that table, and
counts decoded frames from the keyframe's output onwards. Only the needed frames are converted to RGB,
MPEG-4 Part 2 B-frames that no clip frame needs are not decoded at all, and decoding stops after the last
needed frame.

Skipping a B-frame is only exact when the probe knows what skipping a packet removes from the decoder's output,
and that is not always the frame the packet outputs: with DivX/XviD "packed" B-frames FFmpeg keeps the second
VOP of a packet and decodes it on the next call, so a packet can output a B-frame stored earlier while holding
the next one, and skipping it loses both. The probe therefore does not predict: it decodes the file again with
the skip options applied, each to a share of the runs of B-frame packets packed alike, records which frames went
missing (identified by a checksum of their pixels), and keeps only options that removed exactly the frames of
the packets they skip, every other frame coming out identical. It checks that seeking to each keyframe lands
there and reproduces the sequential frames, as far as a decoder started at that keyframe can differ. A video
whose checks fail is decoded without that shortcut, never inexactly. The checks cost about one more decode of
the file for MPEG-4 Part 2 videos with B-frames and a few frames per keyframe for videos with several, and
nothing for the others (`python -m pipeline.benchmark data` reports the probe's cost).

Shipped with inference code (Hub remote code): imports only the standard library, numpy, av and siblings.
"""

from __future__ import annotations

import bisect
import io
import os
import zlib
from dataclasses import asdict, dataclass, field
from typing import Iterator, Optional, Sequence

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from .sampling import eval_clip_indices, train_clip_indices  # noqa: F401  (re-exported: part of this API)

__all__ = [
    "VIDEO_EXTENSIONS", "VideoDecodeError", "FrameIndexError", "VideoInfo", "DecodeStats", "probe_video", "decode_frames",
    "source_name",
    "train_clip_indices", "eval_clip_indices",
]

# File suffixes taken for videos when a folder is searched (datasets, predict, benchmarks): the one list.
VIDEO_EXTENSIONS = (
    ".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv", ".3gp", ".ogv",
)
# Scaler used when `size` asks for a resize; swscale's bilinear filter widens its support when downscaling,
# so it does not alias like a point-sampled bilinear.
RESIZE_INTERPOLATION = "BILINEAR"
# Bump when VideoInfo or the probe changes: cached probes of another version are ignored.
PROBE_FORMAT_VERSION = 4
# One thread for the decoder and for swscale: a loader runs one decoding process per core, and automatic
# threading there made clips/s drop (DESIGN fact 13). One decoder thread is also what the skip table assumes:
# with frame threading a packet's output arrives calls later, so "this packet output nothing" cannot be checked.
DECODER_THREADS = 1
SCALER_THREADS = 1


class VideoDecodeError(RuntimeError):
    """A video cannot be probed or decoded; `.path` and `.reason` say which and why."""

    def __init__(self, path, reason: str):
        self.path = source_name(path)
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
    demuxed packets. An empty keyframe table means "never seek".

    skip_groups lists runs of consecutive packets that each output one non-reference frame (MPEG-4 Part 2
    B-frames), one row per run: [first_packet, first_frame, size, skip_1, drop_1, removed_1, skip_2, ...].
    Packets first_packet .. first_packet+size-1 output frames first_frame .. first_frame+size-1 in a sequential
    decode. Each (skip, drop, removed) triple of bit masks over those positions is an option the probe
    verified: decoding the packets in `skip` with skip_frame=NONREF and not sending those in `drop` to the
    decoder at all removes exactly the frames in `removed` from the output, every other frame coming out
    identical and in the same order (checked on runs packed alike, see _plan_skips). skip_note says why
    skipping or a keyframe was given up on (empty when every check passed).
    """

    num_frames: int
    fps: float
    width: int
    height: int
    keyframes: list = field(default_factory=list)
    keyframe_pts: list = field(default_factory=list)
    keyframe_dts: list = field(default_factory=list)
    keyframe_packets: list = field(default_factory=list)
    skip_groups: list = field(default_factory=list)
    time_base: str = ""
    codec: str = ""
    duration: float = 0.0
    # why the file is damaged but still usable (e.g. truncated: fewer frames than its header declares), else ""
    damage: str = ""
    skip_note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "VideoInfo":
        names = cls.__dataclass_fields__.keys()
        return cls(**{key: value for key, value in data.items() if key in names})


@dataclass
class DecodeStats:
    """Counters filled by `decode_frames(..., stats=DecodeStats())`: how much work a call did.

    frames_decoded counts frames the decoder output, frames_converted those converted to RGB (the needed ones),
    frames_skipped those whose decode was skipped (never output) before the last needed frame.
    """

    packets: int = 0
    frames_decoded: int = 0
    frames_converted: int = 0
    frames_skipped: int = 0
    seeks: int = 0
    reopened: int = 0


def source_name(source) -> str:
    """How errors and logs name a video source: its path, the ``name`` of a file object, or its size in memory."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<video in memory, {memoryview(source).nbytes} bytes>"
    name = getattr(source, "name", None)
    return str(name) if name else repr(source)


def _readable(source):
    """(what av.open reads, its size in bytes) for a path, bytes-like data or a seekable binary file object.

    Bytes are wrapped in a new ``io.BytesIO`` per open (a view, no copy); a file object is rewound, because the
    probe and the decoder open a source several times. Nothing is written to disk.
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        return path, os.path.getsize(path)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(source), memoryview(source).nbytes
    if not (hasattr(source, "read") and hasattr(source, "seek")):
        raise TypeError(f"a video source is a path, bytes or a seekable binary file object, not {type(source).__name__}")
    size = source.seek(0, io.SEEK_END)
    source.seek(0)
    return source, size


def _open(path, options=None):
    """Open `path` (a path, bytes, or a binary file object) to decode its first video stream; VideoDecodeError
    (naming the source) if impossible."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    try:
        readable, size = _readable(path)
    except OSError as error:
        raise VideoDecodeError(path, f"cannot read file ({error.strerror or error})") from None
    if size == 0:
        raise VideoDecodeError(path, "empty file (0 bytes)")
    try:
        container = av.open(readable, metadata_errors="ignore", options=options)
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
# in a packed-B-frame AVI, and container frame counts are absent or wrong for truncated files). The unchecked
# probe is made cheap by skipping what only affects pixel values (IDCT, loop filter), which leaves frame count,
# order, types and keyframe flags unchanged. The checks compare pixels, so a checking probe decodes fully:
# without the residual, frames that differ can look alike (measured: a skip option that corrupts the next
# B-frames by 219 grey levels passed a check done without IDCT).
_QUICK_PROBE_OPTIONS = {"skip_idct": "all", "skip_loop_filter": "all"}
_PICT_TYPE_B = 3  # AVPictureType of B-frames (PyAV 18 reports pict_type as an int)
# Decoders whose B-frames are never references and come out of the very decode call that reads them (no
# reordering delay), so the packets that output them can be found by decoding once.
_SKIPPABLE_B_CODECS = {"mpeg4"}
_VOP_START = b"\x00\x00\x01\xb6"  # MPEG-4 Part 2 VOP start code: a packet holding two is a packed B-frame pair
# Codecs whose keyframes leave nothing of the pictures before them in the decoder: every picture after one in
# display order is predicted from it and the pictures after it only (leading B-frames of an open GOP are passed
# over by decode_frames). A decoder started at such a keyframe can differ from a sequential one only by state
# that the next reference pictures overwrite (reference pictures, VOP timing, a packed B-VOP held back: what
# made packed AVIs fail), so the seek check compares the frames up to the first reference after the keyframe
# (and the B-frames before it, which come out wrong when such state is left).
# H.264 / HEVC keyframes qualify when they are IDR pictures (an open-GOP I-picture lets later pictures refer
# across it); any other keyframe is checked up to the next keyframe.
_RESETTING_KEYFRAME_CODECS = {
    "mpeg4", "msmpeg4v1", "msmpeg4v2", "msmpeg4v3", "h263", "h263p", "flv1", "mpeg1video", "mpeg2video",
    "mjpeg", "vp8", "vp9",
}
_IDR_NAL_TYPES = {"h264": {5}, "hevc": {19, 20}}
_SEEK_CHECK_REFERENCES = 1  # reference pictures after the keyframe the short seek check reaches


def probe_video(path, *, skip_table: bool = True, check_seeks: bool = True) -> VideoInfo:
    """Count the decodable frames of `path`; build its keyframe table and its B-frame skip table.

    `path` is a file path, the file's bytes, or a seekable binary file object (e.g. ``io.BytesIO``): a streamed
    video is probed and decoded in memory, identically to the same file on disk.

    Every table entry is checked by decoding (see the module doc): the defaults suit videos decoded many times
    (training), at the cost of about one more decode of the file, once, for MPEG-4 Part 2 videos with B-frames,
    and a few frames per keyframe for videos with several. skip_table=False builds no skip table (decode_frames
    then decodes every B-frame before the last needed frame): about one decode of the file, for videos decoded
    once or twice (inference). With check_seeks=False too the probe is one decode without IDCT, and seeking is
    exact only where the decoder keeps no state across keyframes (not so for some packed-B-frame AVIs).
    """
    container, stream = _open(path)
    try:
        codec_context = stream.codec_context
        checked = skip_table or check_seeks
        if not checked:
            codec_context.options = dict(_QUICK_PROBE_OPTIONS)
        # per frame: checksum (all frames for a skip table, the frames each keyframe's seek check compares
        # otherwise; None where not needed), and the packet that output it
        signatures: list = []
        frame_packets = []
        b_outputs = []  # (packet ordinal, frame number) of packets that output exactly one B-frame
        record_b = skip_table and codec_context.name in _SKIPPABLE_B_CODECS
        vop_counts = []  # per packet, its VOPs (MPEG-4 Part 2 with a skip table): the runs' packing
        keyframe_packets, keyframes = [], []
        resetting = []  # per keyframe packet: does the short seek check suffice (see _RESETTING_KEYFRAME_CODECS)
        seek_checked = {}  # keyframe (after frame 0) -> frame number after the last frame its seek check compares
        checking = False  # recording the frames a keyframe's seek check compares
        signing_b = False  # recording every frame from the first B-frame on, for the skip table's checks
        first_b = -1  # frame number of the first B-frame
        run_start, family_runs = 0, {}  # b_outputs index where the current run starts; runs per family
        references_left = 0  # references after the keyframe still to record (-1: up to the next keyframe)
        idr_types = _IDR_NAL_TYPES.get(codec_context.name)
        nal_length = _nal_length_size(codec_context) if idr_types and check_seeks else None
        num_frames = width = height = 0
        damage = ""
        try:
            for ordinal, packet in enumerate(container.demux(stream)):
                if packet.is_keyframe and packet.size:
                    keyframe_packets.append((packet.pts, packet.dts, ordinal))
                    if check_seeks:
                        resetting.append(codec_context.name in _RESETTING_KEYFRAME_CODECS or bool(
                            idr_types and _holds_nal(bytes(packet), nal_length, idr_types, codec_context.name)))
                if record_b:
                    vop_counts.append(bytes(packet).count(_VOP_START) if packet.size else 0)
                frames = _packet_frames(codec_context, packet)
                for frame in frames:
                    if frame.key_frame:
                        keyframes.append(num_frames)
                        checking = check_seeks and num_frames > 0
                        if checking:
                            j = len(keyframes) - 1
                            references_left = _SEEK_CHECK_REFERENCES if j < len(resetting) and resetting[j] else -1
                            seek_checked[num_frames] = num_frames
                    elif checking and references_left > 0 and frame.pict_type != _PICT_TYPE_B:
                        references_left -= 1
                    if not num_frames:
                        width, height = frame.width, frame.height
                    # a skip table compares every frame from the first B-frame on (the first run's region)
                    if record_b and first_b < 0 and frame.pict_type == _PICT_TYPE_B:
                        signing_b, first_b = True, num_frames
                    if signing_b or checking:
                        signatures.append(_signature(frame))
                    else:
                        signatures.append(None)
                    if checking:
                        seek_checked[keyframes[-1]] = num_frames + 1
                        checking = references_left != 0
                    frame_packets.append(ordinal)
                    num_frames += 1
                if record_b and len(frames) == 1 and frames[0].pict_type == _PICT_TYPE_B:
                    if signing_b and b_outputs and (ordinal, num_frames - 1) != (b_outputs[-1][0] + 1,
                                                                                 b_outputs[-1][1] + 1):
                        # a run ended: stop the checksums once every family has runs enough to check
                        signing_b = not _sampled_enough(b_outputs, run_start, vop_counts, family_runs)
                        run_start = len(b_outputs)
                    b_outputs.append((ordinal, num_frames - 1))
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
        info = VideoInfo(
            num_frames=num_frames, fps=fps, width=width, height=height, keyframes=keyframes,
            keyframe_pts=kf_pts if usable else [], keyframe_dts=[dts for _, dts, _ in keyframe_packets],
            keyframe_packets=[ordinal for _, _, ordinal in keyframe_packets],
            time_base=f"{time_base.numerator}/{time_base.denominator}" if time_base else "",
            codec=codec_context.name, duration=duration, damage=damage,
        )
    finally:
        container.close()
    if b_outputs:
        _plan_skips(path, info, [None] * first_b + signatures[first_b:], frame_packets, b_outputs, vop_counts)
    if check_seeks and any(k > 0 for k in info.keyframes):
        _check_seeks(path, info, signatures, seek_checked)
    return info


def _nal_length_size(codec_context) -> Optional[int]:
    """Bytes of the NAL unit length prefix of H.264 / HEVC packets stored as in MP4 / Matroska (from the
    avcC / hvcC extradata); None for start-code (Annex B) streams."""
    extradata = codec_context.extradata or b""
    if codec_context.name == "h264" and len(extradata) > 4 and extradata[0] == 1:
        return (extradata[4] & 3) + 1
    if codec_context.name == "hevc" and len(extradata) > 21 and extradata[0] == 1:
        return (extradata[21] & 3) + 1
    return None


def _holds_nal(data: bytes, length_size: Optional[int], types: set, codec: str) -> bool:
    """Whether packet `data` holds a NAL unit of one of `types` (length-prefixed, or Annex B start codes)."""
    shift, mask = (1, 0x3F) if codec == "hevc" else (0, 0x1F)
    if length_size:
        at = 0
        while at + length_size < len(data):
            size = int.from_bytes(data[at:at + length_size], "big")
            if (data[at + length_size] >> shift) & mask in types:
                return True
            at += length_size + size
        return False
    at = data.find(b"\x00\x00\x01")
    while 0 <= at < len(data) - 3:
        if (data[at + 3] >> shift) & mask in types:
            return True
        at = data.find(b"\x00\x00\x01", at + 3)
    return False


def _signature(frame) -> int:
    """Checksum of a frame's type and visible pixels (row padding excluded: its bytes are not defined).

    A linear hash over 8-byte words with random odd 64-bit weights (5x faster than crc32 here): two planes
    that differ in any block of pixels hash alike with probability below 2**-56 (a differing word whose
    lowest byte differs is a unit times an odd weight). Rows whose width is not a multiple of 8 bytes use crc32.
    """
    value = int(frame.pict_type)
    for plane, (height, row_bytes, weights) in zip(frame.planes, _plane_layout(frame)):
        rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:height, :row_bytes]
        if weights is not None:
            value = (value * 1000003 + int(np.einsum("ij,ij->", rows.view(np.uint64), weights))) & _MASK64
        else:
            value = zlib.crc32(np.ascontiguousarray(rows), value & 0xFFFFFFFF) ^ (value << 32) & _MASK64
    return value


_MASK64 = (1 << 64) - 1


_LAYOUTS: dict = {}  # (pixel format, width, height, line sizes) -> layout; a few per dataset


def _plane_layout(frame) -> tuple:
    """(rows, visible bytes per row, hash weights or None) of each plane of `frame`, cached per pixel format,
    size and line sizes (the weights are the same in every pass and process)."""
    planes = frame.planes
    key = (frame.format.name, frame.width, frame.height, tuple(plane.line_size for plane in planes))
    layout = _LAYOUTS.get(key)
    if layout is None:
        components = frame.format.components
        layout = []
        for index, plane in enumerate(planes):
            pixel_bytes = sum((c.bits + 7) // 8 for c in components if c.plane == index) or 1
            row_bytes = min(plane.line_size, plane.width * pixel_bytes)
            weights = None
            if row_bytes % 8 == 0 and plane.line_size % 8 == 0:
                rng = np.random.default_rng([0x5EED, plane.height, row_bytes])
                shape = (plane.height, row_bytes // 8)
                weights = rng.integers(0, 2**64, size=shape, dtype=np.uint64, endpoint=False) | np.uint64(1)
            layout.append((plane.height, row_bytes, weights))
        if len(_LAYOUTS) >= 16:  # bounded: a dataset of many sizes must not keep every size's weights
            _LAYOUTS.clear()
        layout = _LAYOUTS[key] = tuple(layout)
    return layout


# ------------------------------------------------------------------------------------- the B-frame skip table

def _plan_skips(path, info: VideoInfo, signatures: list, frame_packets: list, b_outputs: list,
                vop_counts: list) -> None:
    """Fill info.skip_groups with the skip options whose effect real decodes showed (see VideoInfo).

    Options per run of B-frame packets: see `_actions`. Runs alike in how their packets are packed (same
    size, same VOPs per packet, same VOPs in the packet before: a "family", see `_family`) behave alike in the
    decoder, so each option is tried on _CHECKS_PER_OPTION runs of its family rather than on every run: one
    decode applies an option to every other run, the options of a family taking turns, and decodes the runs
    between normally, so that an option which disturbs what comes after it (the next run's B-frames, the next
    reference frame) shows up there; it stops after the last option-applying run and the run after it. The
    output is cut at the first packet of each option-applying run into regions, and each region is matched
    against the sequential frames its packets output, by checksum.

    An option is kept for a family when, on every run it was tried on, it removed exactly the frames that the
    packets it skips or drops output in the sequential decode, every other frame coming out identical and in
    order, and it was seen doing so at least once. Removing anything else rejects the option for the family,
    whatever the pictures (measured: skipping a packed [B2] alone also loses B2, which the N-VOP packet after
    it outputs, because FFmpeg then parses the placeholder as a picture, whose timestamp shifts the
    direct-mode motion of the next run's B-frames in some runs of a video and not in others). A disturbed
    region rejects the option before it and, unless that one was rejected already, the one before that (a
    disturbance may skip a region). Options not seen on any run of the first checking decode get a second
    one, on the other runs, where their families hold a tenth of the B-frames or more (_SECOND_PASS_SHARE).
    """
    groups = _runs(b_outputs)  # [first_packet, first_frame, size]
    families = [_family(group, vop_counts) for group in groups]
    # frames before the first B-frame carry no signature (None): the passes leave them alike
    sign_from = next((i for i, value in enumerate(signatures) if value is not None), len(signatures))
    signed_until = next((i for i in range(sign_from, len(signatures)) if signatures[i] is None), len(signatures))
    # a run can be tried when the frames up to the second run after it carry checksums
    ends = [bisect.bisect_left(frame_packets, groups[g + 2][0]) if g + 2 < len(groups) else len(signatures)
            for g in range(len(groups))]
    seen: dict = {}  # (family, option) -> runs where the option removed what it predicts
    tried: dict = {}  # (family, option) -> runs it was applied to
    rejected: set = set()
    for parity in (0, 1):
        untried = {family: [option for option in _actions(family[0])
                            if (family, option) not in rejected and not seen.get((family, option))]
                   for family in set(families)}
        choice, turns = {}, {}
        for g in range(parity, len(groups), 2):
            if ends[g] > signed_until:
                break
            options = [option for option in untried[families[g]]
                       if tried.get((families[g], option), 0) < _CHECKS_PER_OPTION]
            if options:
                turn = turns[families[g]] = turns.get(families[g], -1) + 1
                choice[g] = options[turn % len(options)]
                tried[families[g], choice[g]] = tried.get((families[g], choice[g]), 0) + 1
        if not choice:
            break
        if parity:  # another decode of the whole file: only worth it for a share of the B-frames
            waiting = sum(groups[g][2] for g in range(len(groups)) if untried[families[g]])
            if waiting < _SECOND_PASS_SHARE * sum(group[2] for group in groups):
                break
        chosen = sorted(choice)
        skip, drop = _applied(groups, choice)
        # the decode stops where the last option-applying run's region ends (the run after it decoded)
        stop = groups[chosen[-1] + 2][0] if chosen[-1] + 2 < len(groups) else None
        try:
            output, output_packets, skipped_output = _decode_with_actions(path, skip, drop, sign_from, stop)
        except (VideoDecodeError, av.FFmpegError) as error:
            info.skip_note = f"skip check failed to decode ({error})"
            return
        # region k: packets from the first packet of run chosen[k] to that of the next chosen run
        bounds = [groups[g][0] for g in chosen]
        expected_cut = [bisect.bisect_left(frame_packets, b) for b in bounds] + [ends[chosen[-1]]]
        actual_cut = [bisect.bisect_left(output_packets, b) for b in bounds] + [len(output)]
        if output[:actual_cut[0]] != signatures[:expected_cut[0]]:
            info.skip_note = "skip check: the frames before the first skipped packet differ between decodes"
            return
        broken = {skip[ordinal] for ordinal in skipped_output}  # a skipped packet output a frame
        wrong, disturbed = set(), []
        for k, g in enumerate(chosen):
            first, size = groups[g][1], groups[g][2]
            effect = _region_effect(signatures[expected_cut[k]:expected_cut[k + 1]],
                                    output[actual_cut[k]:actual_cut[k + 1]], first - expected_cut[k], size)
            key = (families[g], choice[g])
            predicted = choice[g][0] | choice[g][1]
            if effect is False:
                disturbed.append(k)
            elif g in broken or (effect is not None and effect != predicted):
                wrong.add(key)
            elif effect is not None:
                seen[key] = seen.get(key, 0) + 1
        rejected |= wrong
        for k in disturbed:
            key = (families[chosen[k]], choice[chosen[k]])
            if k and key not in wrong:
                rejected.add((families[chosen[k - 1]], choice[chosen[k - 1]]))
            rejected.add(key)
    rows = []
    for (packet, first, size), family in zip(groups, families):
        triples = [value for skip_mask, drop_mask in sorted(_actions(size))
                   if seen.get((family, (skip_mask, drop_mask))) and (family, (skip_mask, drop_mask)) not in rejected
                   for value in (skip_mask, drop_mask, skip_mask | drop_mask)]
        if triples:
            rows.append([packet, first, size, *triples])
    info.skip_groups = rows
    if len(rows) < len(groups):
        info.skip_note = f"{len(groups) - len(rows)} of {len(groups)} B-frame runs not skippable (unverified)"


# Runs each option is tried on (in a family with that many): the checking decode stops after the last of them,
# and the first decode stops computing checksums once every family met so far has runs enough for all its
# options (a family met after that is not skipped).
_CHECKS_PER_OPTION = 5


def _sampled_enough(b_outputs: list, run_start: int, vop_counts: list, family_runs: dict) -> bool:
    """Count the run that ends at b_outputs[-1] (from b_outputs[run_start]) in family_runs; whether every
    family has runs enough to try each of its options _CHECKS_PER_OPTION times on every other run, with some
    to spare (a run is tried with the run after it)."""
    packet, frame = b_outputs[run_start]
    family = _family([packet, frame, len(b_outputs) - run_start], vop_counts)
    family_runs[family] = family_runs.get(family, 0) + 1
    return all(count >= 2 * len(_actions(key[0])) * _CHECKS_PER_OPTION + 4 for key, count in family_runs.items())


# A second decode for the options that the first did not see is made when their families hold at least this
# share of the B-frames (else, e.g. for the one short run at the end of a video, those runs are not skipped).
_SECOND_PASS_SHARE = 0.1


def _family(group: list, vop_counts: list) -> tuple:
    """What makes runs of B-frame packets behave alike: (size, VOPs in the packet before the run, VOPs in each
    of the run's packets): a packed run ([P+B1] [B2] [N-VOP]) and an unpacked one ([P] [B1] [B2]) differ."""
    packet, _, size = group
    return (size, vop_counts[packet - 1] if packet else 0, tuple(vop_counts[packet:packet + size]))


def _region_effect(expected: list, actual: list, offset: int, size: int):
    """Bit mask of the run's frames (positions offset .. offset+size-1 of `expected`) missing from `actual`;
    False when `actual` is not `expected` minus some of the run's frames; None when the frames missing cannot
    be told apart from identical neighbours."""
    matched = _embed(expected, actual)
    if matched is None:
        return False
    kept, ambiguous = matched
    if any(not offset <= i < offset + size for i in ambiguous):
        return False
    mask = 0
    for i in range(len(expected)):
        if i in kept or i in ambiguous:
            continue
        if not offset <= i < offset + size:
            return False
        mask |= 1 << (i - offset)
    return None if ambiguous else mask


def _runs(b_outputs: list) -> list:
    """[first_packet, first_frame, size] for each run of consecutive packets outputting consecutive B-frames."""
    groups: list = []
    for ordinal, number in b_outputs:
        if groups and ordinal == groups[-1][0] + groups[-1][2] and number == groups[-1][1] + groups[-1][2]:
            groups[-1][2] += 1
        else:
            groups.append([ordinal, number, 1])
    return groups


def _actions(size: int) -> list:
    """(skip mask, drop mask) options tried for a run of `size` packets: skip packet j alone, and skip packet j
    and drop the packets after it in the run. Skipping alone suits B-frames each in their own packet. With
    packed B-frames a packet can hold the next B-VOP while it outputs the one stored before; skipping it loses
    both, and the placeholder packet after it, then decoded for itself, would change the decoder's timing
    state (and the B-frames after it): that placeholder must not reach the decoder."""
    options = []
    for j in range(size):
        options.append((1 << j, 0))
        if j < size - 1:
            options.append((1 << j, ((1 << size) - 1) & ~((1 << (j + 1)) - 1)))
    return options


def _applied(groups: list, choice: dict) -> tuple[dict, set]:
    """Packets to skip (ordinal -> run index) and packets to drop, for the (skip, drop) option of each run in
    `choice` (run index -> option)."""
    skip, drop = {}, set()
    for g, (skip_mask, drop_mask) in choice.items():
        packet, _, size = groups[g]
        for i in range(size):
            if skip_mask >> i & 1:
                skip[packet + i] = g
            if drop_mask >> i & 1:
                drop.add(packet + i)
    return skip, drop


def _decode_with_actions(path, skip: dict, drop: set, sign_from: int = 0,
                         stop: Optional[int] = None) -> tuple[list, list, list]:
    """Decode the file up to packet `stop` (None: the whole file), skipping (NONREF) the packets in `skip` and
    not sending those in `drop`: the output frames' signatures (None for the first `sign_from`), the ordinal
    of the packet that output each, and the ordinals of skipped packets that output a frame anyway."""
    container, stream = _open(path)
    try:
        codec_context = stream.codec_context
        output, output_packets, skipped_output = [], [], []
        skipping = False
        try:
            for ordinal, packet in enumerate(container.demux(stream)):
                if ordinal == stop:
                    break
                if ordinal in drop:
                    continue
                flag = ordinal in skip
                if flag != skipping:
                    codec_context.skip_frame = "NONREF" if flag else "DEFAULT"
                    skipping = flag
                frames = _packet_frames(codec_context, packet)
                if flag and frames:
                    skipped_output.append(ordinal)
                for frame in frames:
                    output.append(_signature(frame) if len(output) >= sign_from else None)
                    output_packets.append(ordinal)
        except av.FFmpegError:
            pass  # a damaged tail stops this pass where it stopped the first one; the match checks that
        return output, output_packets, skipped_output
    finally:
        container.close()


def _embed(expected: list, actual: list):
    """Match `actual` as a subsequence of `expected`: (frames matched for certain, frames that might or might
    not be matched), or None when `actual` is not a subsequence. The earliest and the latest embedding bound
    every embedding, so a frame both place alike is certain, and frames between differing bounds are not."""
    n = len(expected)
    earliest, i = [], 0
    for value in actual:
        while i < n and expected[i] != value:
            i += 1
        if i == n:
            return None
        earliest.append(i)
        i += 1
    latest, i = [0] * len(actual), n - 1
    for k in range(len(actual) - 1, -1, -1):
        while expected[i] != actual[k]:  # cannot run off: the earliest embedding exists
            i -= 1
        latest[k] = i
        i -= 1
    kept, ambiguous = set(), set()
    for low, high in zip(earliest, latest):
        if low == high:
            kept.add(low)
        else:
            ambiguous.update(range(low, high + 1))
    return kept, ambiguous - kept


def _check_seeks(path, info: VideoInfo, signatures: list, checked_ends: dict) -> None:
    """Keep the keyframes that a seek lands on and after which the decoder outputs the sequential frames.

    Seeking by the keyframe packet's dts suits most demuxers; some (Matroska) seek by pts and land a keyframe
    early when given the dts: then the pts is kept (keyframe_dts[j] = None). A keyframe no seek reaches is
    dropped (decode_frames seeks to an earlier one), and so is one after which the decoder outputs other
    pixels than in a sequential decode (a decoder state the keyframe does not reset: measured on packed
    B-frame AVIs, whose first B-frames after a seek come out wrong). The frames compared after keyframe j are
    those before checked_ends[keyframe]: up to the first reference picture after it where the codec's keyframes
    reset the decoder (see _RESETTING_KEYFRAME_CODECS), else up to the next keyframe.
    """
    keep, dropped = [], []
    for j, keyframe in enumerate(info.keyframes):
        if keyframe == 0:
            keep.append(j)
            continue
        end = checked_ends[keyframe]
        candidates = [ts for ts in (info.keyframe_dts[j], info.keyframe_pts[j]) if ts is not None]
        outcome, seek_ts = "differs", None
        for seek_ts in dict.fromkeys(candidates):
            outcome = _seek_reproduces(path, info, j, seek_ts, end, signatures)
            if outcome != "landed early":
                break
        if outcome == "ok":
            keep.append(j)
            if seek_ts != info.keyframe_dts[j]:
                info.keyframe_dts[j] = None
        else:
            dropped.append(keyframe)
    if dropped:
        note = f"seeking to keyframe(s) {dropped} does not reproduce the sequential frames"
        info.skip_note = f"{info.skip_note}; {note}" if info.skip_note else note
        for name in ("keyframes", "keyframe_pts", "keyframe_dts", "keyframe_packets"):
            values = getattr(info, name)
            setattr(info, name, [values[j] for j in keep])


def _seek_reproduces(path, info, j, seek_ts, end, signatures) -> str:
    """"ok" when seeking to `seek_ts` lands on keyframe packet j and the frames from there to `end` are the
    sequential ones; "landed early", or "differs". Decoded as decode_frames does, without skipping (the skip
    options were checked from the start; a seek that reproduces the output leaves the decoder as they saw it)."""
    container, stream = _open(path, _FAST_OPEN_OPTIONS)
    try:
        expected = info.keyframes[j]
        frames = _numbered_frames(container, stream, info, j, expected, end - 1, frozenset(), DecodeStats(),
                                  skip=False, seek_ts=seek_ts)
        for number, frame in frames:
            if number < info.keyframes[j]:
                return "landed early"
            if number != expected or _signature(frame) != signatures[number]:
                return "differs"
            expected += 1
            if expected == end:
                return "ok"
    except (_Restart, av.FFmpegError):
        pass
    finally:
        container.close()
    return "differs"


# ----------------------------------------------------------------------------------------------- decoding

def decode_frames(path, indices: Sequence[int], *, info: Optional[VideoInfo] = None, size=None,
                  stats: Optional[DecodeStats] = None) -> np.ndarray:
    """Decode frames `indices` of `path` (a path, bytes, or a seekable binary file object) as RGB uint8
    (len(indices), H, W, 3), in the order given.

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
    frames = _decode_sorted(path, wanted, info, out_h, out_w, stats, allow_seek=True, allow_skip=True)
    if len(wanted) == len(indices) and bool(np.all(indices[1:] > indices[:-1])):
        return frames  # already in the requested order: no gather copy
    return frames[positions]


# A probed file needs no stream analysis when reopened: a small probe size saves ~1 ms of a ~20-30 ms clip.
_FAST_OPEN_OPTIONS = {"probesize": "32", "analyzeduration": "0"}


class _Restart(Exception):
    """The shortcut decode cannot continue exactly (the seek missed the keyframe table, or a packet the skip
    table said would output nothing output a frame): decode again without that shortcut."""


def _decode_sorted(path, wanted, info, out_h, out_w, stats, allow_seek, allow_skip):
    """Decode the sorted unique frame numbers `wanted` into a new (len(wanted), H, W, 3) array."""
    first, last = int(wanted[0]), int(wanted[-1])
    start = _keyframe_before(info, first) if allow_seek else None
    wanted_list = wanted.tolist()
    out = None
    next_slot = 0
    number = None
    container, stream = _open(path, _FAST_OPEN_OPTIONS if info is not None else None)
    try:
        reformatter = VideoReformatter()
        frames = _numbered_frames(container, stream, info, start, first, last, set(wanted_list), stats,
                                  skip=allow_skip)
        for number, frame in frames:
            if number == wanted_list[next_slot]:
                if out is None:
                    shape = (len(wanted), out_h or frame.height, out_w or frame.width, 3)
                    out = np.empty(shape, np.uint8)
                _convert_into(reformatter, frame, out[next_slot], out_h, out_w)
                stats.frames_converted += 1
                next_slot += 1
                if next_slot == len(wanted):
                    return out
    except _Restart as restart:
        stats.reopened += 1
        seek_missed = restart.args[0] == "seek"
        # a missed seek keeps the skip table (it is about packets, not seeking); a broken skip plan drops both
        return _decode_sorted(path, wanted, info, out_h, out_w, stats, allow_seek=False,
                              allow_skip=allow_skip and seek_missed)
    except av.FFmpegError as error:
        if number is None:
            raise VideoDecodeError(path, f"cannot decode video ({error})") from None
    finally:
        container.close()
    decoded = 0 if number is None else number + 1
    raise FrameIndexError(path, f"frame {last} requested but only {decoded} frames could be decoded "
                                "(shorter than expected, or truncated)")


def _numbered_frames(container, stream, info, start, first, last, wanted, stats, skip, seek_ts=None) -> Iterator:
    """Yield (number, frame) for the frames the decoder outputs, numbered as in a sequential decode.

    start: index in the keyframe table to seek to (None: decode from the file's start); the first packet after
    the seek must be a keyframe packet of the table at or before frame `first`, else _Restart("seek"). With
    skip, the packets of the skip table's options that remove only frames outside `wanted` (up to `last`) are
    decoded with skip_frame=NONREF and the numbers of the frames they remove are passed over.
    """
    codec_context = stream.codec_context
    if start is not None:
        if seek_ts is None:
            seek_ts = info.keyframe_dts[start]
        if seek_ts is None:
            seek_ts = info.keyframe_pts[start]
        container.seek(seek_ts, stream=stream, backward=True, any_frame=False)
        stats.seeks += 1
    landed = counting = start is None  # after a seek, frames count only from the keyframe's output on
    number = 0
    ordinal = -1
    skips, drops, removed = _skip_plan(info, -1, 0, wanted, last) if skip and landed else _NO_PLAN
    skipping = False
    for packet in container.demux(stream):
        stats.packets += 1
        if not landed:
            # Verify where the seek put us: counting is only right from a keyframe packet of the table.
            j = _keyframe_of_packet(info, packet)
            if j is None or info.keyframes[j] > first:
                raise _Restart("seek")
            number = info.keyframes[j]
            ordinal = info.keyframe_packets[j] - 1 if info.keyframe_packets else None
            if skip and ordinal is not None:
                skips, drops, removed = _skip_plan(info, ordinal + 1, number, wanted, last)
            landed = True
        ordinal = ordinal + 1 if ordinal is not None else None
        if ordinal in drops:
            continue
        flag = ordinal in skips
        if flag != skipping:
            codec_context.skip_frame = "NONREF" if flag else "DEFAULT"
            skipping = flag
        frames = _packet_frames(codec_context, packet)
        if flag and frames:
            raise _Restart("plan")
        for frame in frames:
            stats.frames_decoded += 1
            if not counting:
                if not frame.key_frame:
                    continue  # leading frames of an open GOP, before the keyframe in display order
                counting = True
            while number in removed:
                number += 1
                stats.frames_skipped += 1
            yield number, frame
            number += 1


_NO_PLAN = (frozenset(), frozenset(), frozenset())


def _skip_plan(info, after_packet, base, wanted, last):
    """(packets to decode with NONREF, packets not to decode, frame numbers that removes): for each run of
    B-frame packets after packet `after_packet` with frames from `base` on, the verified option removing the
    most frames of which none is wanted. At most one option per run is applied, as verified."""
    if info is None or not info.skip_groups:
        return _NO_PLAN
    skips, drops, removed = set(), set(), set()
    for row in info.skip_groups:
        first_packet, first_frame, size = row[0], row[1], row[2]
        if first_frame > last:
            break
        if first_packet <= after_packet or first_frame < base:
            continue
        wanted_mask = 0
        for i in range(size):
            if first_frame + i in wanted:
                wanted_mask |= 1 << i
        best, best_count = 0, 0
        for k in range(3, len(row) - 2, 3):
            if not row[k + 2] & wanted_mask:
                count = bin(row[k + 2]).count("1")
                if count > best_count:
                    best, best_count = k, count
        if best:
            for i in range(size):
                bit = 1 << i
                if row[best] & bit:
                    skips.add(first_packet + i)
                if row[best + 1] & bit:
                    drops.add(first_packet + i)
                if row[best + 2] & bit:
                    removed.add(first_frame + i)
    return skips, drops, removed


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
