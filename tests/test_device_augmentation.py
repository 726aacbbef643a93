"""Training augmentation on the device: the same parameters and pixels as the worker-side transform it replaced, a
quarter of the bytes from the loader, and the evaluation view identical to load_views / pipeline()."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Value
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2

from pipeline.inference.preprocessing import VideoPreprocessing
from pipeline.inference.views import load_views
from pipeline.training.augmentation import AugmentationSettings, ClipAugmentation, augment_batch
from pipeline.inference.clip_spec import ClipSpec
from pipeline.training.clip_transform import ClipTransform
from pipeline.training.collate import VideoCollator
from pipeline.training.device_batch import DeviceBatch
from synthetic_videos import write_video

PREP = VideoPreprocessing(40, (32, 32), (0.45, 0.4, 0.35), (0.2, 0.25, 0.3))
EVERYTHING = AugmentationSettings(random_crop=True, crop_scale=(0.2, 1.0), horizontal_flip=True, color_jitter=0.4,
                                  rotation_range=15)


def worker_side_reference(prep: VideoPreprocessing, aug: AugmentationSettings):
    """The worker-side transform this project used before augmentation moved to the device (pipeline/data/
    transforms.py: build_train_augmentation + normalisation), rebuilt here as the reference."""
    steps = []
    if aug.rotation_range:
        steps.append(v2.RandomRotation(aug.rotation_range, interpolation=InterpolationMode.BILINEAR))
    if aug.random_crop:
        steps.append(v2.RandomResizedCrop(prep.crop_size, scale=tuple(aug.crop_scale), ratio=tuple(aug.crop_ratio),
                                          interpolation=InterpolationMode.BILINEAR, antialias=True))
    else:
        steps += [v2.Resize(prep.resize_shortest, interpolation=InterpolationMode.BILINEAR, antialias=True),
                  v2.CenterCrop(prep.crop_size)]
    if aug.horizontal_flip:
        steps.append(v2.RandomHorizontalFlip(0.5))
    if aug.color_jitter:
        s = float(aug.color_jitter)
        steps.append(v2.ColorJitter(brightness=s, contrast=s, saturation=s, hue=min(0.5, s / 4)))
    compose = v2.Compose(steps)
    scale = torch.tensor([prep.rescale_factor / s for s in prep.std]).view(1, -1, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(prep.mean, prep.std)]).view(1, -1, 1, 1)
    return lambda clip: compose(tv_tensors.Video(clip)).as_subclass(torch.Tensor).float().mul_(scale).add_(shift)


def random_clips(count: int, frames: int = 5, size=(48, 60), seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(0, 256, (count, frames, *size, 3), dtype=np.uint8))


@pytest.mark.parametrize("settings", [
    EVERYTHING,
    AugmentationSettings(random_crop=False, horizontal_flip=True, color_jitter=0.2),
    AugmentationSettings(random_crop=True, horizontal_flip=False),
], ids=["all", "no_crop", "crop_only"])
def test_same_seed_gives_the_worker_side_pixels(settings):
    clips, repeats = random_clips(3), 2
    augmentation = ClipAugmentation(PREP, settings)
    torch.manual_seed(7)
    rows = torch.stack([augmentation.draw_many(repeats, 48, 60) for _ in range(len(clips))])
    sizes = torch.tensor([[48, 60]] * len(clips))
    new = augment_batch(augmentation, clips, sizes, rows)
    reference = worker_side_reference(PREP, settings)
    torch.manual_seed(7)
    old = torch.stack([reference(clip.permute(0, 3, 1, 2)) for clip in clips for _ in range(repeats)])
    assert new.shape == old.shape == (6, 5, 3, 32, 32) and new.dtype == torch.float32
    torch.testing.assert_close(new, old, rtol=0, atol=1e-5)
    assert not torch.allclose(new[0], new[1])  # two copies of one clip are augmented differently


def test_one_parameter_draw_per_clip_same_transform_on_every_frame():
    frame = random_clips(1, frames=1)[0, 0]
    clip = frame.expand(6, -1, -1, -1).contiguous()[None]  # six identical frames
    augmentation = ClipAugmentation(PREP, EVERYTHING)
    torch.manual_seed(0)
    out = augment_batch(augmentation, clip, torch.tensor([[48, 60]]), augmentation.draw_many(4, 48, 60)[None])
    for copy in out:
        for t in range(1, 6):
            torch.testing.assert_close(copy[t], copy[0])


def test_rand_augment_runs_last_on_the_uint8_copies_each_with_its_own_draw():
    from pipeline.inference.preprocessing import normalize_clips
    from pipeline.training.rand_augment import VideoRandAugment

    clips = random_clips(2)
    settings = AugmentationSettings(random_crop=True, horizontal_flip=True, rand_augment="m9-n3-mstd0.5-inc1")
    augmentation = ClipAugmentation(PREP, settings)
    plain = ClipAugmentation(PREP, AugmentationSettings(random_crop=True, horizontal_flip=True))
    torch.manual_seed(0)
    rows = torch.stack([augmentation.draw_many(3, 48, 60) for _ in range(len(clips))])
    sizes = torch.tensor([[48, 60]] * len(clips))
    torch.manual_seed(11)
    with_rand = augment_batch(augmentation, clips, sizes, rows)
    # the same pipeline by hand: the crop/flip copies as uint8, then RandAugment (same random state), then normalise
    fill = tuple(int(round(m / PREP.rescale_factor)) for m in PREP.mean)
    uint8 = torch.stack([plain.apply(clips[b].permute(0, 3, 1, 2), rows[b, r]) for b in range(2) for r in range(3)])
    torch.manual_seed(11)
    by_hand = normalize_clips(VideoRandAugment.from_spec("m9-n3-mstd0.5-inc1", fill=fill)(uint8), PREP)
    torch.testing.assert_close(with_rand, by_hand, rtol=0, atol=0)
    torch.manual_seed(11)
    without = augment_batch(plain, clips, sizes, rows)
    changed = [(with_rand[i] - without[i]).abs().amax().item() > 0 for i in range(6)]
    assert sum(changed) >= 4  # n=3 operations at p=0.5: a copy is left untouched with probability 1/8


def test_parameters_follow_torchvision_distributions():
    # the boxes, flips and factors are torchvision's own draws: same seed, same values as the v2 transforms
    augmentation = ClipAugmentation(PREP, EVERYTHING)
    torch.manual_seed(3)
    rows = augmentation.draw_many(200, 48, 60)
    torch.manual_seed(3)
    like = [tv_tensors.Video(torch.zeros(1, 3, 48, 60, dtype=torch.uint8))]
    for row in rows:
        angle = v2.RandomRotation(15).make_params(like)["angle"]
        box = v2.RandomResizedCrop((32, 32), scale=(0.2, 1.0)).make_params(like)
        flip = bool(torch.rand(1) < 0.5)
        jitter = v2.ColorJitter(0.4, 0.4, 0.4, 0.1).make_params(like)
        assert row[0].item() == pytest.approx(angle)
        assert row[1:5].tolist() == [box["top"], box["left"], box["height"], box["width"]]
        assert bool(row[5]) == flip and row[6:10].tolist() == jitter["fn_idx"].tolist()
        assert row[10:14].tolist() == pytest.approx([jitter["brightness_factor"], jitter["contrast_factor"],
                                                     jitter["saturation_factor"], jitter["hue_factor"]])
    assert 0.3 < rows[:, 5].mean() < 0.7


@pytest.fixture(scope="module")
def two_sizes(tmp_path_factory):
    root = tmp_path_factory.mktemp("sizes")
    paths = [write_video(root / "wide.avi", "xvid_gop12", 40, size=(48, 64)),
             write_video(root / "small.avi", "xvid_gop12", 30, size=(40, 56))]
    features = Features({"video": Value("string"), "label": ClassLabel(names=["a", "b"])})
    return Dataset.from_dict({"video": [str(p) for p in paths], "label": [0, 1]}, features=features), paths


def test_device_and_worker_placements_give_equal_batches(two_sizes):
    ds, _ = two_sizes
    inputs = {}
    for placement in ("device", "workers"):
        torch.manual_seed(11)
        transform = ClipTransform(ClipSpec(6, 2), PREP, train=True, augmentation=EVERYTHING, repeats=2,
                                  placement=placement)
        batch = VideoCollator()(ds.with_transform(transform).__getitems__([0, 1]))
        inputs[placement] = (batch, DeviceBatch(PREP, transform.augmentation)(batch, "cpu"))
    (raw, device), (sent_float, workers) = inputs["device"], inputs["workers"]
    torch.testing.assert_close(device["pixel_values"], workers["pixel_values"], rtol=0, atol=1e-5)
    assert device["labels"].tolist() == workers["labels"].tolist() == [0, 0, 1, 1]
    # what crosses from the loader to the device: each clip's uint8 frames once (1 byte a pixel, at the decoded
    # size), instead of R float clips (4 bytes a pixel, at the crop size)
    assert raw["frames"].nbytes == 2 * 6 * 48 * 64 * 3 and raw["frames"].dtype == torch.uint8
    assert sent_float["pixel_values"].nbytes == 2 * 2 * 6 * 3 * 32 * 32 * 4


def test_evaluation_batch_is_the_load_views_centre_view(two_sizes):
    ds, paths = two_sizes
    transform = ClipTransform(ClipSpec(6, 3), PREP, train=False)
    batch = VideoCollator()(ds.with_transform(transform).__getitems__([0, 1]))
    assert batch["frames"].dtype == torch.uint8 and batch["frame_sizes"].tolist() == [[48, 64], [40, 56]]
    views = DeviceBatch(PREP)(batch, "cpu")["pixel_values"]
    for view, path in zip(views, paths):
        torch.testing.assert_close(view, load_views(str(path), ClipSpec(6, 3, preprocessing=PREP))[0],
                                   rtol=0, atol=0)


def test_training_batch_needs_augmentation_parameters_it_knows(two_sizes):
    ds, _ = two_sizes
    transform = ClipTransform(ClipSpec(4, 2), PREP, train=True)
    batch = VideoCollator()(ds.with_transform(transform).__getitems__([0]))
    with pytest.raises(ValueError, match="evaluation-only"):
        DeviceBatch(PREP)(batch, "cpu")
