"""Test helper: write small real videos whose frames encode their own index.

Every frame carries its index as a 16-bit code of black/white blocks in the top third (readable back with
`read_frame_index`, robust to lossy coding) over a texture that moves every frame, so that encoders produce
real P- and B-frames. Kinds cover the containers and GOP structures the decoder must get exactly right:

    xvid_gop12    MPEG-4 Part 2 in AVI (fourcc XVID), 2 B-frames, keyframe every 12 frames
    xvid_gop300   same, keyframe every 300 frames
    xvid_packed   MPEG-4 Part 2 in AVI with DivX/XviD-style *packed* B-frames (a P- and a B-VOP in one chunk,
                  followed by a placeholder N-VOP chunk), keyframe every 12; the layout of many UCF101 files
    h264          H.264 (libx264) in MP4, B-frames, keyframe every 250
    h264_vfr_mkv  H.264 in Matroska (no frame count in its header), variable frame rate, keyframe every 30

`write_video(path, kind, num_frames, size=(48, 64))` returns the path. Reused by other tests.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

KINDS = ("xvid_gop12", "xvid_gop300", "xvid_packed", "h264", "h264_vfr_mkv")

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
    if kind == "xvid_packed":
        plain = path.with_name(path.stem + ".unpacked.avi")
        _encode(plain, "mpeg4", num_frames, size, gop=12, b_frames=1, container="avi")
        _pack_b_frames(plain, path)
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


def _encode(path, codec, num_frames, size, *, gop, b_frames, container, variable_rate=False):
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
            pts += int(rng.integers(20, 80)) if variable_rate else 1
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)


# --- packed B-frames
# ------------------------------------------------------------------------------------------- FFmpeg's MPEG-4
# encoder writes B-frames in decode order, one VOP per packet. DivX 5 / XviD "packed bitstream" instead stores
# each B-VOP in the same AVI chunk as the reference VOP decoded just before it, then a tiny "not coded" VOP
# (N-VOP) chunk as a placeholder, so that the AVI keeps exactly one chunk per displayed frame. Decoders
# recognise the layout from a "DivX...p" user-data string in the stream headers.

_VOP_START = b"\x00\x00\x01\xb6"
_DIVX_PACKED_USER_DATA = b"\x00\x00\x01\xb2DivX503b1393p"


def _vop_type(data: bytes) -> int:
    """0=I, 1=P, 2=B, 3=S, from the first VOP header of an MPEG-4 Part 2 packet."""
    start = data.find(_VOP_START)
    return data[start + 4] >> 6


def _n_vop(time_increment_bits: int) -> bytes:
    """A P-VOP header with vop_coded=0, byte-aligned with MPEG-4 stuffing bits."""
    # vop_coding_type P, modulo_time_base, marker, vop_time_increment, marker, vop_coded = 0
    bits = "01" + "0" + "1" + "0" * time_increment_bits + "1" + "0"
    bits += "0" + "1" * ((7 - len(bits)) % 8)  # stuffing: a zero then ones up to the byte boundary
    return _VOP_START + int(bits, 2).to_bytes(len(bits) // 8, "big")


def _pack_b_frames(source: Path, destination: Path) -> None:
    with av.open(str(source)) as src:
        in_stream = src.streams.video[0]
        packets = [bytes(p) for p in src.demux(in_stream) if p.size]
        # 25 fps -> vop_time_increment_resolution 25 -> 5 bits, as the encoder wrote it.
        n_vop = _n_vop(max(1, (int(in_stream.average_rate) - 1).bit_length()))
        chunks: list[tuple[bytes, bool]] = []
        i = 0
        while i < len(packets):
            data = packets[i]
            keyframe = _vop_type(data) == 0
            if keyframe:
                at = data.find(_VOP_START)
                data = data[:at] + _DIVX_PACKED_USER_DATA + data[at:]
            if i + 1 < len(packets) and _vop_type(packets[i + 1]) == 2:
                chunks.append((data + packets[i + 1], keyframe))
                chunks.append((n_vop, False))
                i += 2
            else:
                chunks.append((data, keyframe))
                i += 1
        with av.open(str(destination), "w", format="avi") as dst:
            out_stream = dst.add_stream_from_template(in_stream)
            for index, (data, keyframe) in enumerate(chunks):
                packet = av.Packet(data)
                packet.stream = out_stream
                packet.time_base = out_stream.time_base or Fraction(1, 25)
                packet.pts = packet.dts = index
                packet.is_keyframe = keyframe
                dst.mux(packet)


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
