"""Clip index sampling: shapes, ranges, spacing, determinism and short-video policies."""

import numpy as np
import pytest

from pipeline.inference import decoding
from pipeline.inference.sampling import eval_clip_indices, train_clip_indices


def test_reexported_from_decoding():
    assert decoding.train_clip_indices is train_clip_indices
    assert decoding.eval_clip_indices is eval_clip_indices


def test_dense_train_clip_is_strided_and_inside_the_video():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(1000):
        clip = train_clip_indices(100, 16, 4, "dense", "clamp", rng)
        assert clip.dtype == np.int64 and clip.shape == (16,)
        assert np.all(np.diff(clip) == 4) and clip[0] >= 0 and clip[-1] <= 99
        starts.add(int(clip[0]))
    assert starts == set(range(0, 100 - 61 + 1))  # every possible start is reachable: 0 .. 39


def test_train_sampling_is_reproducible_with_a_seed():
    for strategy in ("dense", "uniform", "random"):
        first, second = (train_clip_indices(300, 8, 2, strategy, "clamp", 7) for _ in range(2))
        assert np.array_equal(first, second)


def test_uniform_train_takes_one_frame_per_segment():
    rng = np.random.default_rng(1)
    for _ in range(100):
        clip = train_clip_indices(80, 8, 4, "uniform", "clamp", rng)
        assert np.array_equal(clip // 10, np.arange(8))  # segment k covers frames 10k .. 10k+9


def test_random_train_is_sorted_distinct_and_covers_the_video():
    rng = np.random.default_rng(2)
    seen = set()
    for _ in range(100):
        clip = train_clip_indices(50, 8, 4, "random", "clamp", rng)
        assert np.all(np.diff(clip) > 0) and clip.min() >= 0 and clip.max() < 50
        seen.update(clip.tolist())
    assert seen == set(range(50))
    assert np.all(np.diff(train_clip_indices(3, 8, 1, "random", "clamp", rng)) >= 0)  # fewer frames than num_frames


def test_dense_eval_centre_clip_and_evenly_spaced_views():
    (centre,) = eval_clip_indices(101, 16, 4, "dense", "clamp", 1)
    assert centre[0] == 20 and centre[-1] == 80  # span 61, start range 0..40, centre 20
    views = eval_clip_indices(101, 16, 4, "dense", "clamp", 4)
    assert [int(v[0]) for v in views] == [5, 15, 25, 35]  # centres of 4 equal parts of 0..40
    assert all(np.all(np.diff(v) == 4) for v in views)
    again = eval_clip_indices(101, 16, 4, "dense", "clamp", 4)
    assert all(np.array_equal(a, b) for a, b in zip(views, again))


def test_uniform_and_random_eval_take_segment_centres():
    (clip,) = eval_clip_indices(80, 8, 4, "uniform", "clamp", 1)
    assert clip.tolist() == [5, 15, 25, 35, 45, 55, 65, 75]
    assert eval_clip_indices(80, 8, 4, "random", "clamp", 1)[0].tolist() == clip.tolist()
    views = eval_clip_indices(80, 8, 4, "uniform", "clamp", 2)
    assert views[0].tolist() == [2, 12, 22, 32, 42, 52, 62, 72]
    assert views[1].tolist() == [7, 17, 27, 37, 47, 57, 67, 77]


@pytest.mark.parametrize("sampler", [
    lambda short: train_clip_indices(10, 8, 2, "dense", short, 0),
    lambda short: eval_clip_indices(10, 8, 2, "dense", short, 1)[0],
])
def test_short_video_clamps_or_loops(sampler):
    assert sampler("clamp").tolist() == [0, 2, 4, 6, 8, 9, 9, 9]
    assert sampler("loop").tolist() == [0, 2, 4, 6, 8, 0, 2, 4]


def test_uniform_on_a_video_shorter_than_the_clip_repeats_frames_in_order():
    clip = eval_clip_indices(3, 8, 1, "uniform", "clamp", 1)[0]
    assert clip.min() == 0 and clip.max() == 2 and np.all(np.diff(clip) >= 0)


def test_no_sampling_defaults_below_the_clip_contract():
    """Every sampling argument must be given: the only defaults are ClipSpec's (pipeline/inference/clip_spec.py)."""
    import inspect

    for function in (train_clip_indices, eval_clip_indices):
        defaults = [name for name, parameter in inspect.signature(function).parameters.items()
                    if parameter.default is not inspect.Parameter.empty]
        assert defaults == [], f"{function.__name__} has defaults: {defaults}"


def test_exact_fit_and_invalid_arguments():
    assert train_clip_indices(61, 16, 4, "dense", "clamp", 0).tolist() == list(range(0, 61, 4))
    with pytest.raises(ValueError, match="strategy"):
        train_clip_indices(10, 4, 1, "sparse", "clamp", None)
    with pytest.raises(ValueError, match="short"):
        eval_clip_indices(10, 4, 1, "dense", "pad", 1)
    with pytest.raises(ValueError, match="0 frames"):
        eval_clip_indices(0, 4, 1, "dense", "clamp", 1)
