"""Test helper: write small real videos whose frames encode their own index.

Every frame carries its index as a 16-bit code of black/white blocks in the top third (readable back with
`read_frame_index`, robust to lossy coding) over a texture that moves every frame, so that encoders produce
real P- and B-frames. Kinds cover the containers and GOP structures the decoder must get exactly right:

    xvid_gop12          MPEG-4 Part 2 in AVI (fourcc XVID), 2 B-frames, keyframe every 12 frames
    xvid_gop300         same, keyframe every 300 frames (one keyframe in shorter videos)
    xvid_packed         MPEG-4 Part 2 in AVI with DivX/XviD-style *packed* B-frames, 1 B-frame: chunks
                        [P+B] [N-VOP], keyframe every 12
    xvid_packed_b2      packed, 2 B-frames, one keyframe: [I] [P+B1] [B2] [N-VOP] [P+B1] [B2] [N-VOP] ... (the
                        layout of many real UCF101 files: the packet [B2] outputs B1, kept from the packet before)
    xvid_packed_b2_gop12  the same with a keyframe every 12 frames
    xvid_packed_b3      packed, 3 B-frames, one keyframe: [P+B1] [B2] [B3] [N-VOP]
    xvid_packed_mixed   packed, runs of 1 to 3 B-frames (the encoder made to code a fifth of the frames as P),
                        one keyframe
    xvid_packed_pbb     packed, 2 B-frames, one keyframe, both B-VOPs in the reference's chunk: [P+B1+B2]
                        [N-VOP] [N-VOP]. FFmpeg decodes only the first B-VOP of such a chunk: the sequential
                        decode drops every second B-frame (LOSSY_KINDS), and "frame i" is still what it outputs
    h264                H.264 (libx264) in MP4, B-frames, keyframe every 250
    h264_vfr_mkv        H.264 in Matroska (no frame count in its header), variable frame rate, keyframe every 30

The packed layouts are written by pipeline.benchmark.corpus.pack_b_frames (the corpus uses it too).
`write_video(path, kind, num_frames, size=(48, 64))` returns the path. Reused by other tests.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from pipeline.benchmark.corpus import pack_b_frames

KINDS = ("xvid_gop12", "xvid_gop300", "xvid_packed", "xvid_packed_b2", "xvid_packed_b2_gop12", "xvid_packed_b3",
         "xvid_packed_mixed", "xvid_packed_pbb", "h264", "h264_vfr_mkv")
# kinds whose sequential decode (by FFmpeg) does not output every encoded frame
LOSSY_KINDS = ("xvid_packed_pbb",)
# packed kinds: (B-frames, keyframe interval, layout)
_PACKED = {
    "xvid_packed": (1, 12, "pb_b_n"),
    "xvid_packed_b2": (2, 300, "pb_b_n"),
    "xvid_packed_b2_gop12": (2, 12, "pb_b_n"),
    "xvid_packed_b3": (3, 300, "pb_b_n"),
    "xvid_packed_mixed": (3, 300, "pb_b_n"),
    "xvid_packed_pbb": (2, 300, "pbb_nn"),
}

_CODE_ROWS, _CODE_COLS = 2, 8  # 16 bits: indices up to 65535
_BLACK, _WHITE = 16, 235


def make_frame(index: int, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    """RGB uint8 frame (H, W, 3) showing `index` as a block code over a moving texture."""
    height, width = size
    yy, xx = np.mgrid[0:height, 0:width]
    # A diagonal pattern that slides by 2 px per frame: gives motion vectors, not scene cuts.
    texture = (((xx + 2 * index) // 4 + yy // 4) % 2) * 60 + 80
    frame = np.repeat(texture[..., None], 3, axis=2).astype(np.uint8)
    frame[..., 0] = (frame[..., 0].astype(np.int32) + 3 * index) % 256  # slow colour drift
    block_h, block_w = _block_shape(size)
    for bit in range(_CODE_ROWS * _CODE_COLS):
        row, col = divmod(bit, _CODE_COLS)
        value = _WHITE if (index >> bit) & 1 else _BLACK
        frame[row * block_h:(row + 1) * block_h, col * block_w:(col + 1) * block_w] = value
    return frame


def read_frame_index(frame: np.ndarray) -> int:
    """Index encoded in a decoded (possibly resized) RGB frame made by `make_frame`."""
    block_h, block_w = _block_shape(frame.shape[:2])
    index = 0
    for bit in range(_CODE_ROWS * _CODE_COLS):
        row, col = divmod(bit, _CODE_COLS)
        # Centre of the block only: edges bleed under chroma subsampling and resizing.
        cell = frame[row * block_h + block_h // 4:(row + 1) * block_h - block_h // 4,
                     col * block_w + block_w // 4:(col + 1) * block_w - block_w // 4]
        if cell.mean() > 128:
            index |= 1 << bit
    return index


def _block_shape(size) -> tuple[int, int]:
    height, width = size
    return height // (3 * _CODE_ROWS), width // _CODE_COLS


def write_video(path, kind: str, num_frames: int, size: tuple[int, int] = (48, 64)) -> Path:
    """Encode `num_frames` index-coded frames of `size` (H, W) as video `kind` (see module doc) at `path`."""
    path = Path(path)
    if kind not in KINDS:
        raise ValueError(f"unknown synthetic video kind {kind!r}; expected one of {KINDS}")
    if kind in _PACKED:
        b_frames, gop, layout = _PACKED[kind]
        plain = path.with_name(path.stem + ".unpacked.avi")
        _encode(plain, "mpeg4", num_frames, size, gop=gop, b_frames=b_frames, container="avi",
                forced_p=0.2 if kind == "xvid_packed_mixed" else 0.0)
        pack_b_frames(plain, path, layout)
        plain.unlink()
    elif kind.startswith("xvid"):
        gop = 12 if kind == "xvid_gop12" else 300
        _encode(path, "mpeg4", num_frames, size, gop=gop, b_frames=2, container="avi")
    elif kind == "h264":
        _encode(path, "libx264", num_frames, size, gop=250, b_frames=2, container="mp4")
    else:
        _encode(path, "libx264", num_frames, size, gop=30, b_frames=2, container="matroska",
                variable_rate=True)
    return path


def _encode(path, codec, num_frames, size, *, gop, b_frames, container, variable_rate=False, forced_p=0.0):
    height, width = size
    with av.open(str(path), "w", format=container) as output:
        stream = output.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.max_b_frames = b_frames
        if codec == "mpeg4":
            stream.codec_tag = "XVID"
            stream.codec_context.bit_rate = 40 * width * height  # high quality: the block code must survive
            stream.codec_context.options = {"flags": "+bitexact"}  # no "Lavc" user data next to ours
        else:
            # Fixed GOP length and no scene cuts, so keyframe spacing is what the kind promises.
            params = f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={b_frames}"
            stream.codec_context.options = {"preset": "veryfast", "crf": "18", "x264-params": params}
        stream.codec_context.time_base = Fraction(1, 1000) if variable_rate else Fraction(1, 25)
        rng = np.random.default_rng(0)
        pts = 0
        for index in range(num_frames):
            frame = av.VideoFrame.from_ndarray(make_frame(index, size), format="rgb24")
            frame.pts = pts
            frame.time_base = stream.codec_context.time_base
            if forced_p and rng.random() < forced_p:  # ends the run of B-frames early
                frame.pict_type = av.video.frame.PictureType.P
            pts += int(rng.integers(20, 80)) if variable_rate else 1
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)


def sequential_frames(path, size=None) -> np.ndarray:
    """Reference: every frame a plain full decode outputs, in order, as RGB (N, H, W, 3)."""
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if size is None:
                frames.append(frame.to_ndarray(format="rgb24"))
            else:
                frames.append(frame.to_ndarray(format="rgb24", height=size[0], width=size[1]))
    return np.stack(frames)
