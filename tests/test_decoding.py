"""decode_frames returns exactly the frames a full sequential decode outputs, doing little work for them."""

import json
import pickle

import av
import numpy as np
import pytest

from pipeline.inference.decoding import (
    RESIZE_INTERPOLATION, DecodeStats, FrameIndexError, VideoDecodeError, VideoInfo, decode_frames,
    probe_video,
)
from conftest import CRICKET_CLIP, asset
from pipeline.benchmark.corpus import VOP_START, pack_b_frames
from pipeline.inference import decoding
from synthetic_videos import KINDS, LOSSY_KINDS, _encode, make_frame, read_frame_index, sequential_frames, write_video

REAL_CLIP = CRICKET_CLIP
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
    if kind == "real":
        asset(REAL_CLIP)  # skips (fails under CI) naming the clip when it is missing
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
    codes = [read_frame_index(frame) for frame in references[kind]]
    if kind in LOSSY_KINDS:
        # FFmpeg decodes only the first of the B-VOPs packed into one chunk: every second B-frame is lost
        # (and the placeholder VOPs it then parses shift the next B-frames' motion: their pixels differ from
        # what was encoded). "Frame i" is still the i-th frame it outputs.
        assert len(codes) == 67 and codes[:8] == [0, 1, 3, 4, 6, 7, 9, 10]
        return
    assert codes == list(range(NUM_FRAMES))
    info = probe_video(videos[kind])
    frames = decode_frames(videos[kind], [77, 12, 50], info=info)
    assert [read_frame_index(frame) for frame in frames] == [77, 12, 50]


# --- every clip position and every single frame, at full length (UCF101 videos have 150-200 frames)

FULL_LENGTH = 170
# MPEG-4 kinds with B-frames: the probe must find B-frames to skip, else the exactness checks prove little
SKIPPING_KINDS = {kind for kind in KINDS if kind.startswith("xvid")}


@pytest.fixture(scope="module")
def full_length(tmp_path_factory):
    root = tmp_path_factory.mktemp("full_length")
    return {kind: write_video(root / f"{kind}{EXTENSIONS.get(kind, '.avi')}", kind, FULL_LENGTH) for kind in KINDS}


def _check_every_clip_and_frame(path, reference, info):
    """16 frames at rate 4 from every start, then every single frame: each equal to the sequential decode."""
    stats = DecodeStats()
    span = 15 * 4 + 1
    for start in range(len(reference) - span + 1):
        indices = np.arange(start, start + span, 4)
        frames = decode_frames(path, indices, info=info, stats=stats)
        assert np.array_equal(frames, reference[indices]), f"clip from frame {start}"
    for index in range(len(reference)):
        assert np.array_equal(decode_frames(path, [index], info=info, stats=stats)[0], reference[index]), index
    assert stats.reopened == 0  # the skip table never had to be abandoned mid-decode
    return stats


@pytest.mark.parametrize("kind", KINDS)
def test_every_clip_position_and_every_frame_at_full_length(kind, full_length):
    # Small pictures: the packed-B-frame trap does not depend on their size (320x240 below).
    path = full_length[kind]
    reference = sequential_frames(path)
    info = probe_video(path)
    assert info.num_frames == len(reference)
    stats = _check_every_clip_and_frame(path, reference, info)
    if kind in SKIPPING_KINDS:
        assert info.skip_groups and stats.frames_skipped > len(reference)  # B-frames skipped, and exactly


def test_packed_two_b_frames_at_full_size(tmp_path, monkeypatch):
    # The layout of real UCF101 files, at their size and length: [I] [P+B1] [B2] [N-VOP] [P+B1] [B2] ...
    path = write_video(tmp_path / "packed.avi", "xvid_packed_b2", FULL_LENGTH, size=(240, 320))
    reference = sequential_frames(path)
    stops = []
    real_pass = decoding._decode_with_actions
    monkeypatch.setattr(decoding, "_decode_with_actions", lambda *args: stops.append(args[4]) or real_pass(*args))
    info = probe_video(path)
    assert info.keyframes == [0] and info.skip_note == ""
    # one checking decode, stopped once each option was tried on its share of runs: the runs after that
    # point are skipped with the options their family showed, and every frame below is still exact
    (stop,) = stops
    last_run = info.skip_groups[-1]
    assert stop is not None and stop < last_run[0] and last_run[3:] == info.skip_groups[0][3:]
    stats = _check_every_clip_and_frame(path, reference, info)
    assert stats.frames_skipped > len(reference)


def _packet_outputs(path, skipped=()):
    """Per demuxed packet, the frame indices (read from the pixels) it outputs; `skipped` packets are decoded
    with skip_frame=NONREF."""
    outputs = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for ordinal, packet in enumerate(container.demux(stream)):
            stream.codec_context.skip_frame = "NONREF" if ordinal in skipped else "DEFAULT"
            outputs.append([read_frame_index(frame.to_ndarray(format="rgb24"))
                            for frame in stream.codec_context.decode(packet)])
    return outputs


def test_packed_two_b_frame_layout_reproduces_the_skipping_trap(full_length):
    # What made the old skip table wrong, checked on our synthetic file so that it keeps proving something: the
    # packet [B2] outputs B1, kept from the packet before; skipping it loses B2 too (the N-VOP packet after it
    # then outputs nothing).
    path = full_length["xvid_packed_b2"]
    with av.open(str(path)) as container:
        sizes = [p.size for p in container.demux(video=0)]
    assert sizes[3] < 10 < sizes[2]  # packet 3 is the N-VOP placeholder, packet 2 holds B2
    # [I] -> nothing, [P+B1] -> I (0), [B2] -> B1 (1), [N-VOP] -> B2 (2), [P+B1] -> P (3)
    assert _packet_outputs(path)[:5] == [[], [0], [1], [2], [3]]
    assert _packet_outputs(path, skipped={2})[:5] == [[], [0], [], [], [3]]  # frames 1 and 2 both lost


def test_skip_options_found_per_layout(full_length):
    # (skip, drop, removed) bit masks over a run of B-frame packets, as the probe's checks found them
    def options(kind):
        info = probe_video(full_length[kind])
        found = {tuple(tuple(row[k:k + 3]) for k in range(3, len(row), 3)) for row in info.skip_groups}
        assert len(found) == 1, found  # every run of the video alike
        return found.pop()

    # unpacked: B1 alone, both, B2 alone
    assert options("xvid_gop300") == ((1, 0, 1), (1, 2, 3), (2, 0, 2))
    # packed [B2] [N-VOP]: skipping [B2] alone would make FFmpeg parse the N-VOP, whose timestamp disturbs the
    # next run's B-frames: rejected. Skipping [B2] and not sending the N-VOP removes B1 and B2; skipping the
    # N-VOP packet (which outputs B2, kept from [B2]) removes B2.
    assert options("xvid_packed_b2") == ((1, 2, 3), (2, 0, 2))
    assert options("xvid_packed_b3") == ((1, 6, 7), (2, 4, 6), (4, 0, 4))
    assert options("xvid_packed") == ((1, 0, 1),)
    # runs of 1 to 3 B-frames in one video: each size gets its own options, none lost to another's rejection
    info = probe_video(full_length["xvid_packed_mixed"])
    by_size = {}
    for row in info.skip_groups:
        by_size.setdefault(row[2], set()).add(tuple(tuple(row[k:k + 3]) for k in range(3, len(row), 3)))
    assert by_size == {1: {((1, 0, 1),)}, 2: {((1, 2, 3), (2, 0, 2))}, 3: {((1, 6, 7), (2, 4, 6), (4, 0, 4))}}


def _options_by_packing(path, info):
    """{VOPs in the packet before the run (2: packed [P+B1], 1: unpacked): the options of those runs}."""
    with av.open(str(path)) as container:
        vops = [bytes(packet).count(VOP_START) for packet in container.demux(video=0)]
    found = {}
    for row in info.skip_groups:
        found.setdefault(vops[row[0] - 1], set()).add(tuple(tuple(row[k:k + 3]) for k in range(3, len(row), 3)))
    return found


def test_runs_packed_differently_get_their_own_verified_options(tmp_path, monkeypatch):
    # The probe verifies each skip option on a share of the runs packed alike, in one decode, and applies it
    # to all of them. A file whose first half is packed and second half is not: the option "skip B1 alone",
    # right for unpacked runs, loses two frames in packed ones; had it been carried over by run size alone,
    # frame numbers after every packed run would be off.
    plain = tmp_path / "plain.avi"
    _encode(plain, "mpeg4", FULL_LENGTH, (48, 64), gop=300, b_frames=2, container="avi")
    path = tmp_path / "half_packed.avi"
    pack_b_frames(plain, path, "pb_b_n", packed_until=FULL_LENGTH // 2)
    passes = []
    real_pass = decoding._decode_with_actions
    monkeypatch.setattr(decoding, "_decode_with_actions", lambda *args: passes.append(1) or real_pass(*args))
    info = probe_video(path)
    assert len(passes) == 1  # every option of both families checked in one more decode
    assert _options_by_packing(path, info) == {2: {((1, 2, 3), (2, 0, 2))}, 1: {((1, 0, 1), (1, 2, 3), (2, 0, 2))}}
    reference = sequential_frames(path)
    assert [read_frame_index(frame) for frame in reference] == list(range(FULL_LENGTH))
    stats = _check_every_clip_and_frame(path, reference, info)
    assert stats.frames_skipped > len(reference)


def _h264_matroska(path, open_gop: bool):
    with av.open(str(path), "w", format="matroska") as output:
        stream = output.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        params = f"keyint=30:min-keyint=30:scenecut=0:bframes=2:open-gop={int(open_gop)}"
        stream.codec_context.options = {"preset": "veryfast", "crf": "18", "x264-params": params}
        for index in range(FULL_LENGTH):
            frame = av.VideoFrame.from_ndarray(make_frame(index), format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return path


@pytest.mark.parametrize("open_gop", [False, True], ids=["idr", "open_gop"])
def test_seek_check_reaches_the_next_keyframe_unless_the_keyframe_resets_the_decoder(open_gop, tmp_path,
                                                                                     monkeypatch):
    # After an IDR keyframe nothing before it is referenced: the seek check compares the frames up to the first
    # reference picture after it. An open-GOP I-picture (x264 open-gop) lets later pictures refer across it:
    # its seek check compares every frame up to the next keyframe.
    path = _h264_matroska(tmp_path / "video.mkv", open_gop)
    compared = {}
    real_check = decoding._check_seeks

    def spy(path, info, signatures, ends):
        compared.update(ends)
        return real_check(path, info, signatures, ends)

    monkeypatch.setattr(decoding, "_check_seeks", spy)
    info = probe_video(path)
    assert info.keyframes == [0, 30, 60, 90, 120, 150]
    if open_gop:
        assert compared == {30: 60, 60: 90, 90: 120, 120: 150, 150: FULL_LENGTH}
    else:
        assert set(compared) == {30, 60, 90, 120, 150} and all(2 <= end - k <= 5 for k, end in compared.items())
    reference = sequential_frames(path)
    assert [read_frame_index(frame) for frame in reference] == list(range(FULL_LENGTH))
    _check_every_clip_and_frame(path, reference, info)


def test_seeking_to_a_keyframe_that_does_not_reproduce_the_frames_is_dropped(full_length):
    # Packed 2-B-frame AVIs with several keyframes: after a seek FFmpeg outputs the B-frames right after the
    # keyframe with other pixels than a sequential decode does. The probe checks each keyframe and keeps only
    # those whose seek reproduces the frames; without the check, seeking returns wrong pixels.
    path = full_length["xvid_packed_b2_gop12"]
    reference = sequential_frames(path)
    unchecked = probe_video(path, skip_table=False, check_seeks=False)
    checked = probe_video(path)
    assert unchecked.keyframes == list(range(0, FULL_LENGTH, 12))
    assert set(checked.keyframes) < set(unchecked.keyframes) and "seeking to keyframe" in checked.skip_note
    after_keyframes = [13, 14, 25, 26]
    wrong = [i for i in after_keyframes
             if not np.array_equal(decode_frames(path, [i], info=unchecked)[0], reference[i])]
    assert wrong, "FFmpeg now reproduces the frames after a seek in packed AVIs: the check may be relaxed"
    for i in after_keyframes:
        assert np.array_equal(decode_frames(path, [i], info=checked)[0], reference[i])


def test_matroska_keyframes_are_sought_by_pts(full_length):
    # Matroska seeks by pts: seeking to a keyframe's dts landed on the keyframe before it.
    path = full_length["h264_vfr_mkv"]
    info = probe_video(path)
    assert info.keyframes == [0, 30, 60, 90, 120, 150] and info.keyframe_dts == [None] * 6
    stats = DecodeStats()
    frames = decode_frames(path, [95, 100], info=info, stats=stats)
    assert [read_frame_index(frame) for frame in frames] == [95, 100]
    assert stats.seeks == 1 and stats.frames_decoded <= 100 - 90 + 1 + 4


def test_probe_levels(full_length):
    path = full_length["xvid_packed_b2"]
    full = probe_video(path)
    without_skips = probe_video(path, skip_table=False)
    quick = probe_video(path, skip_table=False, check_seeks=False)
    assert full.skip_groups and not without_skips.skip_groups and not quick.skip_groups
    for info in (full, without_skips, quick):
        assert (info.num_frames, info.keyframes) == (FULL_LENGTH, [0])
    reference = sequential_frames(path)
    indices = np.arange(40, 101, 4)
    for info in (without_skips, quick):
        stats = DecodeStats()
        assert np.array_equal(decode_frames(path, indices, info=info, stats=stats), reference[indices])
        assert stats.frames_skipped == 0 and stats.frames_decoded >= 101


def test_a_skip_table_that_does_not_hold_is_abandoned(full_length):
    # A packet listed as skippable that outputs a frame anyway (here one that decodes a P-frame) makes
    # decode_frames start again without skipping, and still return the right frames.
    path = full_length["xvid_gop300"]
    info = probe_video(path)
    reference = sequential_frames(path)
    first_packet, first_frame = info.skip_groups[3][:2]
    info.skip_groups.insert(3, [first_packet - 1, first_frame - 1, 1, 1, 0, 1])  # the reference before run 3
    stats = DecodeStats()
    indices = [first_frame + 5, first_frame + 9]
    assert np.array_equal(decode_frames(path, indices, info=info, stats=stats), reference[indices])
    assert stats.reopened == 1


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


def _pict_types(path) -> list:
    with av.open(str(path)) as container:
        return [int(frame.pict_type) for frame in container.decode(video=0)]


@pytest.mark.parametrize("kind", ["xvid_gop12", "xvid_gop300", "xvid_packed", "xvid_packed_b2"])
def test_unneeded_b_frames_are_skipped_without_changing_the_result(kind, videos, references):
    path = videos[kind]
    info = probe_video(path)
    indices = np.arange(30, 90, 4)  # 30 .. 86
    stats = DecodeStats()
    frames = decode_frames(path, indices, info=info, stats=stats)
    assert np.array_equal(frames, references[kind][indices])
    keyframe = 24 if kind in ("xvid_gop12", "xvid_packed") else 0  # the last keyframe before frame 30
    assert stats.seeks == (keyframe > 0)
    # every frame from the keyframe to the last needed one was either decoded or skipped, none twice
    assert stats.frames_decoded + stats.frames_skipped == 86 - keyframe + 1
    wanted = set(indices.tolist())
    b_frames = [i for i, kind_ in enumerate(_pict_types(path)) if kind_ == 3 and keyframe < i < 86]
    if kind == "xvid_packed_b2":
        # packed [B2] [N-VOP]: B1 can only be skipped together with B2, B2 alone
        pairs = [(i, i + 1) for i in b_frames if i + 1 in b_frames]
        expected = sum(2 if not {b1, b2} & wanted else 1 if b1 in wanted and b2 not in wanted else 0
                       for b1, b2 in pairs)
    else:  # each B-frame in a packet of its own: every unneeded one
        expected = len(set(b_frames) - wanted)
    assert stats.frames_skipped == expected > 15


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


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_bytes_in_memory_probe_and_decode_like_the_file(kind, videos, references):
    # streamed shards hand the decoder the video's bytes: same probe, same frames, no file written
    import io
    from pathlib import Path

    if kind not in videos:
        pytest.skip("real clip asset missing")
    path = videos[kind]
    data = Path(path).read_bytes()
    on_disk = probe_video(path)
    indices = _index_sets(on_disk.num_frames)["unsorted_repeated"]
    named = io.BytesIO(data)
    named.name = "shard-000000.tar/clip.avi"
    for source in (data, memoryview(data), named):
        info = probe_video(source)
        assert info.to_dict() == on_disk.to_dict()
        assert np.array_equal(decode_frames(source, indices, info=info), references[kind][indices])
        assert np.array_equal(decode_frames(source, indices[:3]), references[kind][indices[:3]])


def test_bad_bytes_raise_naming_the_source():
    import io

    with pytest.raises(VideoDecodeError, match="in memory, 0 bytes.*empty"):
        probe_video(b"")
    named = io.BytesIO(b"just some text\n" * 20)
    named.name = "shard-000003.tar/v_x.avi"
    with pytest.raises(VideoDecodeError) as caught:
        decode_frames(named, [0])
    assert caught.value.path == "shard-000003.tar/v_x.avi" and "not a readable video" in caught.value.reason
