"""The dataset transform + collator + device batch: right frames, same view as load_views, bad files dropped and
logged, both placements of the augmentation (device / workers) alike."""

import logging

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Value

from pipeline.inference.decoding import probe_video
from pipeline.inference.preprocessing import VideoPreprocessing
from pipeline.inference.views import load_views
from pipeline.training.augmentation import AugmentationSettings
from pipeline.inference.clip_spec import ClipSpec
from pipeline.training.clip_transform import ClipTransform
from pipeline.training.collate import VideoCollator
from pipeline.training.device_batch import DeviceBatch
from synthetic_videos import read_frame_index, write_video

IDENTITY = VideoPreprocessing(48, (48, 64), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


def frame_numbers(clip: torch.Tensor) -> list[int]:
    frames = (clip * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [read_frame_index(f) for f in frames]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    good = write_video(root / "good.avi", "xvid_gop12", 60)
    empty = root / "empty.avi"
    empty.write_bytes(b"")
    text = root / "notes.avi"
    text.write_text("this is not a video\n")
    return good, empty, text


def model_inputs(transform, ds, rows, collator=None):
    """What the model gets for dataset rows ``rows``: the transform in a worker, the collator, the device batch."""
    batch = (collator or VideoCollator())(ds.__getitems__(list(rows)))
    return DeviceBatch(transform.prep, transform.augmentation)(batch, "cpu")


def dataset(paths):
    features = Features({"video": Value("string"), "label": ClassLabel(names=["a", "b"])})
    return Dataset.from_dict({"video": [str(p) for p in paths], "label": [i % 2 for i in range(len(paths))]},
                             features=features)


def test_eval_clip_is_the_centre_dense_clip_and_equals_load_views(videos):
    good = videos[0]
    transform = ClipTransform(ClipSpec(8, 4), IDENTITY, train=False)
    sample = {"pixel_values": model_inputs(transform, dataset([good]).with_transform(transform), [0])["pixel_values"][0]}
    numbers = frame_numbers(sample["pixel_values"])
    span = 7 * 4 + 1
    start = (60 - span) // 2
    assert numbers == list(range(start, start + span, 4)) or numbers == list(range(start + 1, start + 1 + span, 4))
    view = load_views(str(good), ClipSpec(8, 4, preprocessing=IDENTITY))
    torch.testing.assert_close(sample["pixel_values"], view[0])


def test_train_clips_are_dense_at_random_positions(videos):
    transform = ClipTransform(ClipSpec(6, 3), IDENTITY, train=True,
                              augmentation=AugmentationSettings(random_crop=False, horizontal_flip=False))
    ds = dataset([videos[0]]).with_transform(transform)
    starts = set()
    for epoch in range(12):  # the clip of a video is drawn anew each epoch (pipeline/training/clip_randomness.py)
        transform.randomness.set_epoch(epoch)
        numbers = frame_numbers(model_inputs(transform, ds, [0])["pixel_values"][0])
        assert np.all(np.diff(numbers) == 3), numbers
        starts.add(numbers[0])
    assert len(starts) > 3 and max(starts) <= 60 - 16


def test_train_draws_depend_on_seed_epoch_and_videos_only(videos):
    """The same batch of the same epoch gives the same clips, whatever the process's torch generator holds; another
    epoch, seed or batch gives others; the caller's generator is left as it was."""
    transform = ClipTransform(ClipSpec(6, 3), IDENTITY, train=True,
                              augmentation=AugmentationSettings(random_crop=True, horizontal_flip=True))
    ds = dataset(videos[:2]).with_transform(transform)

    def pixels(rows):
        return model_inputs(transform, ds, rows)["pixel_values"]

    torch.manual_seed(1)
    first = pixels([0, 1])
    torch.manual_seed(2)
    before = torch.get_rng_state()
    again = pixels([0, 1])
    assert torch.equal(torch.get_rng_state(), before)  # the process's own stream is untouched
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    transform.randomness.set_epoch(1)
    assert not torch.equal(first, pixels([0, 1]))
    transform.randomness.set_epoch(0)
    transform.randomness.set_seed(5)
    assert not torch.equal(first, pixels([0, 1]))
    transform.randomness.set_seed(0)
    torch.testing.assert_close(first, pixels([0, 1]), rtol=0, atol=0)
    assert not torch.equal(first[:1], pixels([0])[:1])  # another batch: other draws


def test_repeated_augmentation_gives_r_clips_per_video(videos):
    transform = ClipTransform(ClipSpec(4, 2), VideoPreprocessing(32, (32, 32)), train=True, repeats=3)
    ds = dataset([videos[0], videos[0]]).with_transform(transform)
    raw = VideoCollator()(ds.__getitems__([0, 1]))
    assert raw["frames"].shape[0] == 2 and raw["augment"].shape[:2] == (2, 3)  # ONE decode per video
    batch = model_inputs(transform, ds, [0, 1])
    assert batch["pixel_values"].shape == (6, 4, 3, 32, 32)
    assert batch["labels"].tolist() == [0, 0, 0, 1, 1, 1]
    assert not torch.allclose(batch["pixel_values"][0], batch["pixel_values"][1])  # differently augmented


def test_bad_files_are_dropped_and_named(videos, caplog):
    good, empty, text = videos
    transform = ClipTransform(ClipSpec(4, 2), VideoPreprocessing(32, (32, 32)), train=False)
    ds = dataset([good, empty, text]).with_transform(transform)
    collator = VideoCollator()
    with caplog.at_level(logging.WARNING):
        batch = model_inputs(transform, ds, [0, 1, 2], collator)
    assert batch["pixel_values"].shape[0] == 1 and batch["labels"].tolist() == [0]
    assert collator.dropped == 2
    assert str(empty) in caplog.text and str(text) in caplog.text
    # an all-bad batch reuses the last good batch instead of stopping the run
    batch = model_inputs(transform, ds, [1, 2], collator)
    assert batch["pixel_values"].shape[0] == 1


def test_stored_video_info_skips_the_probe(videos, monkeypatch):
    good = videos[0]
    info = probe_video(good).to_dict()
    import pipeline.training.clip_transform as module

    monkeypatch.setattr(module, "probe_video", lambda path: pytest.fail("probed again"))
    transform = ClipTransform(ClipSpec(4, 2), VideoPreprocessing(32, (32, 32)), train=True)
    batch = transform({"video": [str(good)], "label": [1], "video_info": [info]})
    assert batch["row"] == [0] and batch["clips"][0].frames.shape == (1, 4, 48, 64, 3)


@pytest.mark.parametrize("placement", ["device", "workers"])
def test_bad_files_among_good_ones_in_both_placements(videos, placement):
    good, empty, text = videos
    transform = ClipTransform(ClipSpec(4, 2), VideoPreprocessing(32, (32, 32)), train=True, repeats=2,
                              placement=placement)
    ds = dataset([empty, good, text, good]).with_transform(transform)
    batch = model_inputs(transform, ds, [0, 1, 2, 3])
    assert batch["pixel_values"].shape == (4, 4, 3, 32, 32) and batch["labels"].tolist() == [1, 1, 1, 1]
    assert torch.isfinite(batch["pixel_values"]).all()
