"""decode_frames returns exactly the frames a full sequential decode outputs, doing little work for them."""

import json
import pickle
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.inference.decoding import (
    RESIZE_INTERPOLATION, DecodeStats, FrameIndexError, VideoDecodeError, VideoInfo, decode_frames,
    probe_video,
)
from synthetic_videos import KINDS, read_frame_index, sequential_frames, write_video

REAL_CLIP = Path(__file__).resolve().parents[2] / "shared" / "assets" / "clips" / "v_CricketShot_g04_c01.avi"
EXTENSIONS = {"h264": ".mp4", "h264_vfr_mkv": ".mkv"}
NUM_FRAMES = 100


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    paths = {kind: write_video(root / f"{kind}{EXTENSIONS.get(kind, '.avi')}", kind, NUM_FRAMES)
             for kind in KINDS}
    if REAL_CLIP.exists():
        paths["real"] = REAL_CLIP
    return paths


@pytest.fixture(scope="module")
def references(videos):
    return {kind: sequential_frames(path) for kind, path in videos.items()}


ALL_KINDS = list(KINDS) + ["real"]


def _index_sets(n):
    return {
        "middle_clip": np.arange(n // 3, n // 3 + 16 * 2, 2),
        "unsorted_repeated": np.array([n - 5, 3, 40, 3, n - 5, 17, 0, 41]),
        "near_end": np.arange(n - 16, n),
        "single_late": np.array([n - 1]),
        "every_frame": np.arange(n),
    }


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_exact_frames_against_sequential_decode(kind, videos, references):
    assert kind in videos, f"real UCF101 clip missing: {REAL_CLIP} (../shared/assets must sit beside the repo)"
    path, reference = videos[kind], references[kind]
    info = probe_video(path)
    assert info.num_frames == len(reference)
    for name, indices in _index_sets(len(reference)).items():
        for given_info in (info, None):
            frames = decode_frames(path, indices, info=given_info)
            assert frames.dtype == np.uint8 and frames.shape == (len(indices),) + reference.shape[1:]
            assert np.array_equal(frames, reference[indices]), f"{kind}/{name} info={given_info is not None}"


@pytest.mark.parametrize("kind", KINDS)
def test_synthetic_frames_show_their_own_index(kind, videos, references):
    # The reference itself is right: frame i of a sequential decode is the frame encoded as i.
    assert [read_frame_index(frame) for frame in references[kind]] == list(range(NUM_FRAMES))
    info = probe_video(videos[kind])
    frames = decode_frames(videos[kind], [77, 12, 50], info=info)
    assert [read_frame_index(frame) for frame in frames] == [77, 12, 50]


def test_every_single_frame_after_each_keyframe(videos, references):
    # Single-frame requests exercise every seek target and every offset from it (packed B-frames: fact 11-12).
    path, reference = videos["xvid_packed"], references["xvid_packed"]
    info = probe_video(path)
    for index in range(len(reference)):
        assert np.array_equal(decode_frames(path, [index], info=info)[0], reference[index]), index


def test_packed_b_frame_avi_reproduces_the_timestamp_trap(videos):
    # The synthetic packed file must have the property that breaks pts/packet arithmetic, else the tests above
    # prove nothing: keyframe packets sit at other positions than the keyframes they output, frame pts
    # unordered.
    path = videos["xvid_packed"]
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    keyframe_packet_positions = [i for i, p in enumerate(packets) if p.is_keyframe]
    assert keyframe_packet_positions[1:] != probe_video(path).keyframes[1:]
    frame_pts = [frame.pts for frame in frames]
    assert frame_pts != sorted(frame_pts)
    assert probe_video(path).keyframes[:3] == [0, 12, 24]


def test_probe_reports_counts_rate_and_keyframes(videos):
    info = probe_video(videos["xvid_gop12"])
    assert (info.num_frames, info.width, info.height) == (NUM_FRAMES, 64, 48)
    assert info.fps == pytest.approx(25.0)
    assert info.keyframes == list(range(0, NUM_FRAMES, 12))
    assert len(info.keyframe_pts) == len(info.keyframes)
    assert probe_video(videos["xvid_gop300"]).keyframes == [0]
    # Matroska has no frame count in its header: the count comes from decoding.
    with av.open(str(videos["h264_vfr_mkv"])) as container:
        assert container.streams.video[0].frames == 0
    assert probe_video(videos["h264_vfr_mkv"]).num_frames == NUM_FRAMES


def test_clip_in_the_middle_decodes_far_fewer_frames_than_from_the_start(tmp_path):
    path = write_video(tmp_path / "long.avi", "xvid_gop12", 300)
    info = probe_video(path)
    indices = np.arange(150, 150 + 16 * 4, 4)  # 150 .. 210
    stats = DecodeStats()
    frames = decode_frames(path, indices, info=info, stats=stats)
    assert [read_frame_index(frame) for frame in frames] == indices.tolist()
    from_start = DecodeStats()
    decode_frames(path, indices, info=None, stats=from_start)
    assert from_start.frames_decoded >= 211
    # Seeks to keyframe 144, decodes 144 .. 210 plus at most a couple of reordered frames.
    assert stats.seeks == 1 and stats.frames_decoded <= 211 - 144 + 3
    assert stats.frames_converted == 16 == from_start.frames_converted


@pytest.mark.parametrize("kind", ["xvid_gop12", "xvid_gop300", "xvid_packed"])
def test_unneeded_b_frames_are_skipped_without_changing_the_result(kind, videos, references):
    path = videos[kind]
    info = probe_video(path)
    assert info.skippable_frames and len(info.skippable_frames) == len(info.skippable_packets)
    indices = np.arange(30, 90, 4)
    stats = DecodeStats()
    frames = decode_frames(path, indices, info=info, stats=stats)
    assert np.array_equal(frames, references[kind][indices])
    keyframe = 0 if kind == "xvid_gop300" else 24  # the last keyframe before frame 30
    skippable = {i for i in info.skippable_frames if keyframe <= i < 86} - set(indices)
    assert stats.frames_skipped == len(skippable) > 20
    assert stats.frames_decoded + stats.frames_skipped <= 90 - keyframe + 3


def test_resize_happens_in_the_scaler(videos):
    path = videos["xvid_gop12"]
    frames = decode_frames(path, [5, 60], info=probe_video(path), size=(24, 32))
    assert frames.shape == (2, 24, 32, 3)
    with av.open(str(path)) as container:
        expected = [f.to_ndarray(format="rgb24", height=24, width=32, interpolation=RESIZE_INTERPOLATION)
                    for i, f in enumerate(container.decode(video=0)) if i in (5, 60)]
    assert np.array_equal(frames, np.stack(expected))


def test_out_of_range_indices_raise_naming_the_file(videos):
    path = videos["xvid_gop12"]
    info = probe_video(path)
    for given_info in (info, None):
        with pytest.raises(FrameIndexError) as caught:
            decode_frames(path, [3, NUM_FRAMES], info=given_info)
        assert isinstance(caught.value, IndexError) and isinstance(caught.value, VideoDecodeError)
        assert str(path) in str(caught.value) and str(NUM_FRAMES) in caught.value.reason
    with pytest.raises(FrameIndexError):
        decode_frames(path, [-1], info=info)


@pytest.mark.parametrize("kind", ["xvid_gop12", "xvid_packed", "h264_vfr_mkv"])
def test_truncated_file_decodes_what_exists(kind, tmp_path):
    path = write_video(tmp_path / f"full{EXTENSIONS.get(kind, '.avi')}", kind, 60)
    truncated = tmp_path / f"truncated{path.suffix}"
    truncated.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])
    reference = sequential_frames(truncated)
    info = probe_video(truncated)
    assert 20 < info.num_frames == len(reference) < 60
    if kind != "h264_vfr_mkv":  # AVI headers declare a frame count: the cut is reported; MKV declares none
        assert info.damage.startswith("truncated"), info.damage
    assert probe_video(path).damage == ""
    indices = [info.num_frames - 1, 0, info.num_frames // 2]
    assert np.array_equal(decode_frames(truncated, indices, info=info), reference[indices])
    with pytest.raises(VideoDecodeError, match="truncated"):
        decode_frames(truncated, [info.num_frames], info=None)


def test_truncated_mp4_without_index_is_unreadable(videos, tmp_path):
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(videos["h264"].read_bytes()[:3000])  # the mp4 index (moov) is at the end: lost
    with pytest.raises(VideoDecodeError) as caught:
        probe_video(truncated)
    assert caught.value.path == str(truncated)


@pytest.mark.parametrize("content, reason",
                         [(b"", "empty"), (b"just some text\n" * 20, "not a readable video")])
def test_bad_files_raise_with_path_and_reason(tmp_path, content, reason):
    path = tmp_path / "bad.avi"
    path.write_bytes(content)
    for call in (lambda: probe_video(path), lambda: decode_frames(path, [0])):
        with pytest.raises(VideoDecodeError) as caught:
            call()
        assert caught.value.path == str(path) and reason in caught.value.reason
        assert str(path) in str(caught.value)
    with pytest.raises(VideoDecodeError, match="cannot read file"):
        probe_video(tmp_path / "missing.avi")


def test_wrong_keyframe_table_falls_back_to_decoding_from_the_start(videos, references):
    path = videos["xvid_gop12"]
    info = probe_video(path)
    info.keyframe_pts = [pts + 100000 for pts in info.keyframe_pts]  # no packet will match
    stats = DecodeStats()
    frames = decode_frames(path, [70, 71], info=info, stats=stats)
    assert np.array_equal(frames, references["xvid_gop12"][[70, 71]])
    assert stats.reopened == 1


def test_info_round_trips_through_json_and_errors_through_pickle(videos):
    info = probe_video(videos["h264_vfr_mkv"])
    assert VideoInfo.from_dict(json.loads(json.dumps(info.to_dict()))) == info
    assert np.array_equal(decode_frames(videos["h264_vfr_mkv"], [45], info=info.to_dict()),
                          decode_frames(videos["h264_vfr_mkv"], [45], info=info))
    error = pickle.loads(pickle.dumps(FrameIndexError("/x/y.avi", "frame 9 requested")))
    assert isinstance(error, FrameIndexError)
    assert (error.path, error.reason) == ("/x/y.avi", "frame 9 requested")


def test_empty_request_returns_an_empty_array(videos):
    info = probe_video(videos["xvid_gop12"])
    assert decode_frames(videos["xvid_gop12"], [], info=info).shape == (0, 48, 64, 3)
