"""Clip transforms: one set of random parameters per clip, processor geometry, crops and normalisation."""

import numpy as np
import pytest
import torch
from transformers import VideoMAEImageProcessor

from pipeline.inference.preprocessing import (
    AugmentationSettings,
    VideoPreprocessing,
    as_video,
    build_eval_transform,
    build_multicrop_transform,
    build_train_transform,
    spatial_crops,
)


def test_from_processor_reads_geometry_and_normalisation():
    proc = VideoMAEImageProcessor(size={"shortest_edge": 80}, crop_size={"height": 64, "width": 64},
                                  image_mean=[0.1, 0.2, 0.3], image_std=[0.5, 0.5, 0.25])
    prep = VideoPreprocessing.from_processor(proc)
    assert prep.resize_shortest == 80 and prep.crop_size == (64, 64)
    assert prep.mean == (0.1, 0.2, 0.3) and prep.std == (0.5, 0.5, 0.25)


def test_eval_transform_matches_manual_resize_crop_normalise():
    prep = VideoPreprocessing(32, (32, 32), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    clip = torch.full((4, 3, 48, 64), 191, dtype=torch.uint8)
    out = build_eval_transform(prep)(as_video(clip))
    assert out.shape == (4, 3, 32, 32) and out.dtype == torch.float32
    torch.testing.assert_close(out, torch.full_like(out, (191 / 255 - 0.5) / 0.25))


def test_training_augmentation_is_identical_across_frames():
    torch.manual_seed(0)
    prep = VideoPreprocessing(32, (32, 32))
    aug = AugmentationSettings(random_crop=True, crop_scale=(0.2, 0.5), horizontal_flip=True, color_jitter=0.4,
                               rotation_range=20)
    frame = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    clip = frame.expand(6, -1, -1, -1).contiguous()
    out = build_train_transform(prep, aug)(as_video(clip))
    assert out.shape == (6, 3, 32, 32)
    for t in range(1, 6):  # same crop / flip / jitter / angle on every frame
        torch.testing.assert_close(out[t], out[0])
    outs = [build_train_transform(prep, aug)(as_video(clip)) for _ in range(3)]
    assert not torch.allclose(outs[0], outs[1])  # ...but different between clips


def test_spatial_crops_cover_left_centre_right():
    video = torch.arange(40).repeat(1, 1, 20, 1)  # (1, 1, 20, 40): value = column
    crops = spatial_crops(video, (20, 20), 3)
    assert [int(c[0, 0, 0, 0]) for c in crops] == [0, 10, 20]
    tall = torch.arange(40).view(1, 1, 40, 1).expand(1, 1, 40, 20)
    assert [int(c[0, 0, 0, 0]) for c in spatial_crops(tall, (20, 20), 3)] == [0, 10, 20]


def test_one_crop_multicrop_equals_eval_transform():
    prep = VideoPreprocessing(40, (32, 32))
    clip = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 3, 60, 90), dtype=np.uint8))
    torch.testing.assert_close(build_multicrop_transform(prep, 1)(clip)[0], build_eval_transform(prep)(clip))


def test_crop_larger_than_video_is_an_error():
    with pytest.raises(ValueError, match="larger"):
        spatial_crops(torch.zeros(1, 3, 10, 10), (20, 20), 1)
