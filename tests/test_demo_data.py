"""The embedded demo dataset: UCF101 layout and list formats, determinism, caching, and that
its classes can only be told apart by the order of the frames (measured without a network)."""

import json
import re
import time
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.data import demo
from pipeline.data.demo import CLASS_NAMES, OPPOSITE_CLASS, DemoParams, draw_clip, ensure_demo_dataset

# Small but with enough groups for per-class statistics: 6 groups x 4 clips x 8 classes.
STATS_PARAMS = dict(seed=3, clips_per_class=24, groups_per_class=6)
TINY_PARAMS = dict(seed=5, clips_per_class=3, groups_per_class=3, num_frames=12)


def decode_all(path: Path) -> np.ndarray:
    """Every frame of a video, (T, H, W, 3) uint8, by a plain sequential PyAV decode."""
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


@pytest.fixture(scope="module")
def stats_root(tmp_path_factory) -> Path:
    return ensure_demo_dataset(tmp_path_factory.mktemp("demo_stats"), **STATS_PARAMS)


def read_lists(root: Path):
    lists = root / "ucfTrainTestlist"
    class_ind = [line.split() for line in (lists / "classInd.txt").read_text().splitlines()]
    train = [line.split() for line in (lists / "trainlist01.txt").read_text().splitlines()]
    test = (lists / "testlist01.txt").read_text().splitlines()
    return class_ind, train, test


def test_layout_and_split_lists_follow_ucf101(stats_root):
    class_ind, train, test = read_lists(stats_root)
    assert class_ind == [[str(i + 1), name] for i, name in enumerate(CLASS_NAMES)]
    assert len(CLASS_NAMES) == 8 and CLASS_NAMES == sorted(CLASS_NAMES)
    name_pattern = re.compile(r"^(\w+)/v_(\w+)_g(\d\d)_c(\d\d)\.avi$")
    index_of = {name: int(i) for i, name in class_ind}
    train_groups, test_groups = set(), set()
    for fields in train:
        assert len(fields) == 2, fields
        match = name_pattern.match(fields[0])
        assert match and match[1] == match[2], fields
        assert int(fields[1]) == index_of[match[1]]
        train_groups.add((match[1], int(match[3])))
    for line in test:
        match = name_pattern.match(line)  # path only, no label
        assert match and match[1] == match[2], line
        test_groups.add((match[1], int(match[3])))
    # Split 1 style: the first third of the groups (g01-g02 of 6) are test, the rest train.
    assert {g for _, g in test_groups} == {1, 2}
    assert {g for _, g in train_groups} == {3, 4, 5, 6}
    assert len(train) == 8 * 16 and len(test) == 8 * 8
    listed = {fields[0] for fields in train} | set(test)
    on_disk = {str(p.relative_to(stats_root / "UCF-101")) for p in (stats_root / "UCF-101").rglob("*.avi")}
    assert listed == on_disk


def test_videos_are_mpeg4_avi_at_25_fps_with_keyframes(stats_root):
    path = stats_root / "UCF-101" / "MoveLeft" / "v_MoveLeft_g01_c01.avi"
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert container.format.name == "avi"
        assert stream.codec_context.name == "mpeg4"
        assert (stream.codec_context.width, stream.codec_context.height) == (64, 64)
        assert stream.average_rate == 25
        packets = [packet for packet in container.demux(stream) if packet.size]
        keyframes = [i for i, packet in enumerate(packets) if packet.is_keyframe]
    assert keyframes == [0, 12, 24]
    assert decode_all(path).shape == (32, 64, 64, 3)


def test_clips_of_a_group_share_its_look_and_groups_differ():
    params = DemoParams(**STATS_PARAMS)
    a, b = draw_clip(params, 0, 1, 1), draw_clip(params, 0, 1, 2)
    other_class = draw_clip(params, 5, 1, 1)
    other = draw_clip(params, 0, 2, 1)
    # Group g01 has the same scene (palette, texture kind) in every class, so it carries no class information...
    for spec in (b, other_class):
        assert spec.look.texture == a.look.texture
        assert np.abs(spec.look.background.mean((0, 1)) - a.look.background.mean((0, 1))).max() < 12
    assert not np.array_equal(b.look.background, a.look.background)  # each clip its own variation
    # ...while every clip brings its own object, so no object look can be memorised per group
    assert not np.allclose(a.look.object_rgb, b.look.object_rgb)
    assert not np.allclose(a.look.object_rgb, other_class.look.object_rgb)
    assert not np.allclose(a.centre, b.centre)  # but each clip has its own trajectory
    assert np.abs(other.look.background - a.look.background).mean() > 10


def test_same_seed_gives_identical_files_and_other_seed_does_not(tmp_path):
    # rendered by two processes, then by one: the bytes must not depend on the split of the work
    first = ensure_demo_dataset(tmp_path / "a", **TINY_PARAMS, workers=2)
    second = ensure_demo_dataset(tmp_path / "b", **TINY_PARAMS, workers=1)
    other = ensure_demo_dataset(tmp_path / "c", **{**TINY_PARAMS, "seed": 6})
    videos = sorted(p.relative_to(first) for p in first.rglob("*.avi"))
    assert len(videos) == 8 * 3
    for rel in videos:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
    sample = videos[5]
    np.testing.assert_array_equal(decode_all(first / sample), decode_all(second / sample))
    assert np.abs(decode_all(first / sample).astype(int) - decode_all(other / sample)).mean() > 10
    for name in ("classInd.txt", "trainlist01.txt", "testlist01.txt"):
        lists_a, lists_b = first / "ucfTrainTestlist", second / "ucfTrainTestlist"
        assert (lists_a / name).read_text() == (lists_b / name).read_text()


def test_cached_dataset_is_not_rewritten(tmp_path):
    root = ensure_demo_dataset(tmp_path, **TINY_PARAMS)
    manifest = json.loads((root / demo.MANIFEST_NAME).read_text())
    assert manifest["complete"] and manifest["params"]["seed"] == TINY_PARAMS["seed"]
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    start = time.perf_counter()
    assert ensure_demo_dataset(tmp_path, **TINY_PARAMS) == root
    assert time.perf_counter() - start < 0.5
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == mtimes
    # Other parameters are another dataset: regenerated in place.
    ensure_demo_dataset(tmp_path, **{**TINY_PARAMS, "num_frames": 10})
    assert decode_all(next((root / "UCF-101").rglob("*.avi"))).shape[0] == 10


def test_interrupted_generation_is_redone(tmp_path, monkeypatch):
    real_write = demo.write_video
    calls = []

    def write_then_die(path, frames, fps):
        calls.append(path)
        if len(calls) == 7:
            raise KeyboardInterrupt("simulated kill")
        real_write(path, frames, fps)

    monkeypatch.setattr(demo, "write_video", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        ensure_demo_dataset(tmp_path, **TINY_PARAMS, workers=1)  # one process: the kill lands after 6 videos
    assert not (tmp_path / demo.MANIFEST_NAME).exists()
    assert len(list(tmp_path.rglob("*.avi"))) == 6
    monkeypatch.setattr(demo, "write_video", real_write)
    root = ensure_demo_dataset(tmp_path, **TINY_PARAMS)
    assert len(list(root.rglob("*.avi"))) == 8 * 3
    assert not (root / demo.IN_PROGRESS_NAME).exists()
    # A video deleted after completion also invalidates the cache.
    victim = next(root.rglob("*.avi"))
    victim.unlink()
    ensure_demo_dataset(tmp_path, **TINY_PARAMS)
    assert victim.is_file()


def test_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "UCF-101" / "Basketball").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="UCF-101"):
        ensure_demo_dataset(tmp_path, **TINY_PARAMS)
    assert (tmp_path / "UCF-101" / "Basketball").is_dir()


# --- The temporal property, measured on the decoded videos without a network ---------------


def object_masks(frames: np.ndarray, spec) -> np.ndarray:
    """Pixels closer to the object's colour than to the clip's known background: (T, H, W) bool."""
    size = frames.shape[1]
    oy, ox = spec.background_offset
    background = spec.look.background[oy : oy + size, ox : ox + size]
    colour = np.clip(spec.look.object_rgb + spec.colour_jitter, 0, 255)
    pixels = frames.astype(np.float32)
    return np.linalg.norm(pixels - colour, axis=-1) < np.linalg.norm(pixels - background, axis=-1)


def rotation_between(mask_a: np.ndarray, mask_b: np.ndarray) -> float:
    """Rotation about the centroid (degrees, clockwise on screen > 0) that best maps mask_a onto mask_b, once the
    centroids are aligned (a revolving object also moves)."""
    ys, xs = np.nonzero(mask_a)
    cx, cy = xs.mean(), ys.mean()
    ys_b, xs_b = np.nonzero(mask_b)
    shift_x, shift_y = xs_b.mean() - cx, ys_b.mean() - cy
    best, best_overlap = 0.0, -1
    for degrees in range(-45, 46, 3):
        a = np.radians(degrees)
        # With y pointing down, this matrix turns points clockwise on screen for a > 0.
        x = np.rint(cx + shift_x + np.cos(a) * (xs - cx) - np.sin(a) * (ys - cy)).astype(int)
        y = np.rint(cy + shift_y + np.sin(a) * (xs - cx) + np.cos(a) * (ys - cy)).astype(int)
        keep = (x >= 0) & (x < mask_b.shape[1]) & (y >= 0) & (y < mask_b.shape[0])
        overlap = mask_b[y[keep], x[keep]].sum()
        if overlap > best_overlap:
            best, best_overlap = float(degrees), overlap
    return best


def frame_features(masks: np.ndarray) -> np.ndarray:
    """Per frame: object centroid x, y and log area: what a single frame says about the object."""
    ys, xs = np.mgrid[0 : masks.shape[1], 0 : masks.shape[2]]
    area = masks.sum((1, 2)).astype(float)
    cx = (masks * xs).sum((1, 2)) / area
    cy = (masks * ys).sum((1, 2)) / area
    return np.stack([cx, cy, np.log(area)], 1)


def motion_features(masks: np.ndarray) -> np.ndarray:
    """Per clip: centroid displacement x, y (first to last frame), log area ratio, rotation (degrees)."""
    per_frame = frame_features(masks)
    step = 4
    rotation = sum(rotation_between(masks[t], masks[t + step]) for t in range(0, len(masks) - step, step))
    return np.array([*(per_frame[-1] - per_frame[0]), rotation])


@pytest.fixture(scope="module")
def measured(stats_root):
    """Per class: masks of every clip, decoded from the files."""
    params = DemoParams(**STATS_PARAMS)
    out = {name: [] for name in CLASS_NAMES}
    for class_index, name in enumerate(CLASS_NAMES):
        for group in range(1, params.groups_per_class + 1):
            for clip in range(1, params.clips_in_group(group) + 1):
                frames = decode_all(stats_root / "UCF-101" / demo.clip_relpath(name, group, clip))
                out[name].append(object_masks(frames, draw_clip(params, class_index, group, clip)))
    return out


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs."""
    grid = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.abs(cdf_a - cdf_b).max())


PAIRS = [(a, OPPOSITE_CLASS[a]) for a in CLASS_NAMES if a < OPPOSITE_CLASS[a]]


def test_classes_come_in_four_opposite_pairs():
    assert len(PAIRS) == 4
    assert all(OPPOSITE_CLASS[OPPOSITE_CLASS[name]] == name for name in CLASS_NAMES)


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]}-{p[1]}")
def test_single_frames_do_not_tell_a_pair_apart_but_the_motion_does(measured, pair):
    a, b = pair
    kind = re.match(r"[A-Z][a-z]+", a)[0]  # Grow, Move or Rotate
    motion_a = np.stack([motion_features(m) for m in measured[a]])
    motion_b = np.stack([motion_features(m) for m in measured[b]])
    # The feature the motion changes: x or y for a move (the axis with the larger displacement),
    # area for a scale change, orientation for a rotation.
    k = {"Grow": 2, "Rotate": 3}.get(kind, int(np.argmax(np.abs(motion_a[:, :2]).mean(0))))
    frames_a = np.concatenate([frame_features(m) for m in measured[a]])
    frames_b = np.concatenate([frame_features(m) for m in measured[b]])
    pooled_ks = [ks_statistic(frames_a[:, j], frames_b[:, j]) for j in range(3)]
    first_a = np.stack([frame_features(m[:1])[0] for m in measured[a]])
    first_b = np.stack([frame_features(m[:1])[0] for m in measured[b]])
    first_ks = [ks_statistic(first_a[:, j], first_b[:, j]) for j in range(3)]
    if kind != "Rotate":  # a revolving object keeps its area; orientation and place on the orbit are uniform
        # Frames pooled over time: the changing feature has the same distribution in both classes...
        assert pooled_ks[k] < 0.15, pooled_ks
        # ...while with the time known (first frames only) the two classes do not even overlap.
        assert first_ks[k] > 0.9, first_ks
    # Features that stay fixed within a clip: 24 clips per class, so gaps up to ~0.5 occur by chance
    # (KS critical value for 24 vs 24 at p=0.001 is about 0.54).
    assert max(pooled_ks) < 0.55, pooled_ks
    # One motion feature separates every clip of the pair, with a large margin.
    sign_a = np.sign(motion_a[:, k])
    sign_b = np.sign(motion_b[:, k])
    assert len(set(sign_a)) == 1 and set(sign_b) == {-sign_a[0]}, (motion_a[:, k], motion_b[:, k])
    margin = {0: 0.35 * 64, 1: 0.35 * 64, 2: np.log(4.0), 3: 60.0}[k]  # 22 px, area x4, 60 degrees
    assert np.abs(motion_a[:, k]).min() > margin and np.abs(motion_b[:, k]).min() > margin


def test_reversed_clip_looks_like_its_opposite_class(measured):
    """Nearest class mean on motion features: forward clips get their class, reversed ones the opposite."""
    features = {name: np.stack([motion_features(m) for m in measured[name]]) for name in CLASS_NAMES}
    # each feature in units of its spread within a class (a revolving object's chord varies, a rotation does not)
    scale = np.sqrt(np.mean([f.var(0) for f in features.values()], axis=0)) + 1e-6
    means = np.stack([features[name].mean(0) / scale for name in CLASS_NAMES])

    def predict(f):
        return CLASS_NAMES[int(np.argmin(np.linalg.norm(means - f / scale, axis=1)))]

    for name in CLASS_NAMES:
        for masks in measured[name][::3]:
            assert predict(motion_features(masks)) == name
            assert predict(motion_features(masks[::-1])) == OPPOSITE_CLASS[name]


def test_command_line_writes_the_dataset(tmp_path, capsys):
    root = demo.main(["--output_dir", str(tmp_path), "--seed", "1", "--clips_per_class", "3",
                      "--groups_per_class", "3", "--num_frames", "8", "--size", "48"])
    assert root == tmp_path and str(tmp_path) in capsys.readouterr().out
    frames = decode_all(tmp_path / "UCF-101" / "Shrink" / "v_Shrink_g03_c01.avi")
    assert frames.shape == (8, 48, 48, 3)
