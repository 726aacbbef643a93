"""`python -m pipeline.benchmark corpus`: UCF101-shaped videos that decode like UCF101's, in its layout."""

import json

import av
import numpy as np
import pytest

from pipeline.benchmark import corpus
from pipeline.data.ucf101 import load_ucf101
from pipeline.inference.decoding import DecodeStats, decode_frames, probe_video
from synthetic_videos import sequential_frames

CLASSES, PER_CLASS = 2, 4


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus") / "ucf101_like"
    assert corpus.main(["--output_dir", str(out), "--classes", str(CLASSES), "--videos_per_class",
                        str(PER_CLASS), "--seed", "3", "--workers", "2"]) == 0
    return out


def _videos(root):
    return sorted((root / "UCF-101").rglob("*.avi"))


def _packets(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info = (stream.codec_context.name, stream.codec_tag, stream.width, stream.height, float(stream.average_rate))
        return info, [bytes(p) for p in container.demux(stream) if p.size]


def test_layout_and_lists_read_as_ucf101(root):
    videos = _videos(root)
    assert len(videos) == CLASSES * PER_CLASS
    assert [p.parent.name for p in videos] == ["ApplyEyeMakeup"] * 4 + ["ApplyLipstick"] * 4
    assert videos[0].name == "v_ApplyEyeMakeup_g01_c01.avi"
    lists = root / "ucfTrainTestlist"
    assert (lists / "classInd.txt").read_bytes() == b"1 ApplyEyeMakeup\r\n2 ApplyLipstick\r\n"
    assert (lists / "trainlist01.txt").read_text().splitlines()[0] == "ApplyEyeMakeup/v_ApplyEyeMakeup_g13_c01.avi 1"
    assert (lists / "testlist01.txt").read_text().splitlines()[0] == "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"
    data = load_ucf101(root, split=1, validation_fraction=0.0)
    assert data["train"].num_rows == data["test"].num_rows == 4  # groups 1, 7 test; 13, 19 train
    assert data["train"].features["label"].names == ["ApplyEyeMakeup", "ApplyLipstick"]
    assert sorted(data["test"]["label"]) == [0, 0, 1, 1]
    assert json.loads((root / "corpus.json").read_text())["seed"] == 3


def test_videos_are_shaped_like_ucf101(root):
    layouts = []
    for path in _videos(root):
        (codec, tag, width, height, rate), packets = _packets(path)
        assert (codec, tag, width, height, rate) == ("mpeg4", "XVID", 320, 240, 25.0)
        with av.open(str(path)) as container:
            frames = [(frame.key_frame, int(frame.pict_type)) for frame in container.decode(video=0)]
        assert 150 <= len(frames) <= 200
        assert sum(key for key, _ in frames) == 1 and frames[0][0]  # one keyframe
        b_frames = sum(kind == 3 for _, kind in frames)
        assert abs(b_frames - 2 * len(frames) / 3) < 3  # 2 B-frames between references
        kb_per_7s = path.stat().st_size / 1000 * 175 / len(frames)
        assert 500 <= kb_per_7s <= 620, kb_per_7s
        packed = any(p.count(corpus.VOP_START) > 1 for p in packets)
        assert packed == corpus.is_packed(path)
        if packed:  # [P+B1] [B2] [N-VOP]: one chunk per displayed frame
            assert len(packets) == len(frames) and sum(len(p) < 10 for p in packets) == (b_frames + 1) // 2
        layouts.append(packed)
    assert layouts.count(True) == 6 and layouts.count(False) == 2


def test_pictures_move_like_footage(root):
    frames = sequential_frames(_videos(root)[0])
    luma = frames.mean(axis=3)
    assert luma.std() > 25  # textured, not flat
    change = np.abs(np.diff(luma[::5], axis=0)).mean(axis=(1, 2))
    assert change.min() > 3  # every 5 frames the picture moved


def test_decode_frames_is_exact_on_a_packed_corpus_video(root):
    path = next(p for p in _videos(root) if corpus.is_packed(p))
    reference = sequential_frames(path)
    info = probe_video(path)
    assert info.skip_groups and info.skip_note == ""
    stats = DecodeStats()
    for start in range(0, len(reference) - 61, 3):
        indices = np.arange(start, start + 61, 4)
        assert np.array_equal(decode_frames(path, indices, info=info, stats=stats), reference[indices]), start
    assert stats.frames_skipped > stats.frames_converted


def test_deterministic_and_resumable(root, tmp_path):
    spec = corpus.corpus_specs(CLASSES, PER_CLASS, 3)[1]
    again = corpus.write_video(tmp_path / "again.avi", spec)
    assert again.read_bytes() == (root / "UCF-101" / spec.relative_path).read_bytes()
    # a second run with the same settings completes the folder; other settings are refused
    (root / "UCF-101" / spec.relative_path).unlink()
    corpus.write_corpus(root, num_classes=CLASSES, videos_per_class=PER_CLASS, seed=3, num_workers=1)
    assert again.read_bytes() == (root / "UCF-101" / spec.relative_path).read_bytes()
    with pytest.raises(ValueError, match="other settings"):
        corpus.write_corpus(root, num_classes=CLASSES, videos_per_class=PER_CLASS, seed=4)


def test_group_spread_over_splits():
    specs = corpus.corpus_specs(1, 10, 0)
    assert [s.group for s in specs] == [1, 3, 6, 8, 11, 13, 16, 18, 21, 23]
    many = corpus.corpus_specs(1, 30, 0)
    assert {(s.group, s.clip) for s in many} >= {(1, 1), (1, 2), (25, 1)} and len(many) == 30
    assert corpus.corpus_specs(101, 1, 0)[36].relative_path == "HandstandPushups/v_HandStandPushups_g01_c01.avi"
    with pytest.raises(ValueError, match="classes"):
        corpus.corpus_specs(102, 1, 0)
