"""Frame geometry and normalisation from the processor, the evaluation views (clips x crops), on any device."""

import numpy as np
import pytest
import torch
from transformers import VideoMAEImageProcessor

from pipeline.inference.preprocessing import (
    VideoPreprocessing,
    clip_views,
    normalize_clips,
    resize_and_center_crop,
    spatial_crops,
)


def test_from_processor_reads_geometry_and_normalisation():
    proc = VideoMAEImageProcessor(size={"shortest_edge": 80}, crop_size={"height": 64, "width": 64},
                                  image_mean=[0.1, 0.2, 0.3], image_std=[0.5, 0.5, 0.25])
    prep = VideoPreprocessing.from_processor(proc)
    assert prep.resize_shortest == 80 and prep.crop_size == (64, 64)
    assert prep.mean == (0.1, 0.2, 0.3) and prep.std == (0.5, 0.5, 0.25)


def test_centre_view_matches_manual_resize_crop_normalise():
    prep = VideoPreprocessing(32, (32, 32), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    clip = torch.full((4, 3, 48, 64), 191, dtype=torch.uint8)
    out = normalize_clips(resize_and_center_crop(clip, prep), prep)
    assert out.shape == (4, 3, 32, 32) and out.dtype == torch.float32
    torch.testing.assert_close(out, torch.full_like(out, (191 / 255 - 0.5) / 0.25))


def test_spatial_crops_cover_left_centre_right():
    video = torch.arange(40).repeat(1, 1, 20, 1)  # (1, 1, 20, 40): value = column
    crops = spatial_crops(video, (20, 20), 3)
    assert [int(c[0, 0, 0, 0]) for c in crops] == [0, 10, 20]
    tall = torch.arange(40).view(1, 1, 40, 1).expand(1, 1, 40, 20)
    assert [int(c[0, 0, 0, 0]) for c in spatial_crops(tall, (20, 20), 3)] == [0, 10, 20]


def test_clip_views_are_clip_major_and_one_crop_is_the_centre_view():
    prep = VideoPreprocessing(40, (32, 32))
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (7, 60, 90, 3), dtype=np.uint8))
    positions = torch.tensor([[0, 2, 4], [3, 5, 6]])
    views = clip_views(frames, positions, prep, num_crops=3)
    assert views.shape == (6, 3, 3, 32, 32)
    centre = normalize_clips(resize_and_center_crop(frames[[3, 5, 6]].permute(0, 3, 1, 2), prep), prep)
    torch.testing.assert_close(views[4], centre)  # clip 1, middle crop
    torch.testing.assert_close(clip_views(frames, positions[1:], prep, num_crops=1)[0], centre)


def test_crop_larger_than_video_and_zero_crops_are_errors():
    with pytest.raises(ValueError, match="larger"):
        spatial_crops(torch.zeros(1, 3, 10, 10), (20, 20), 1)
    with pytest.raises(ValueError, match="num_crops"):
        spatial_crops(torch.zeros(1, 3, 30, 30), (20, 20), 0)
