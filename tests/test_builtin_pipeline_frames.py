"""Which frames transformers' built-in video-classification pipeline feeds a model, next to ours (README's comparison).

Measured on an index-coded video (every frame shows its number), so each claim in README is a number read back from
what the model received. When a transformers release changes its sampling, these tests fail and README must change
with them (DESIGN fact 3 asks for a re-check with each release).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEImageProcessor
from transformers.pipelines.video_classification import VideoClassificationPipeline

from pipeline.inference.video_pipeline import PyAVVideoClassificationPipeline
from synthetic_videos import read_frame_index, sequential_frames, write_video

FRAMES, SIZE, NUM_FRAMES = 150, 128, 8


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return str(write_video(tmp_path_factory.mktemp("builtin") / "v.avi", "xvid_gop12", FRAMES, size=(SIZE, SIZE)))


@pytest.fixture(scope="module")
def model():
    config = VideoMAEConfig(image_size=SIZE, patch_size=16, num_frames=NUM_FRAMES, tubelet_size=2, hidden_size=32,
                            num_hidden_layers=1, num_attention_heads=2, intermediate_size=37, num_labels=2)
    model = VideoMAEForVideoClassification(config).eval()
    model.seen = []
    model.register_forward_pre_hook(lambda module, args, kwargs: module.seen.append(kwargs["pixel_values"]),
                                    with_kwargs=True)
    return model


def frame_numbers(pixel_values: torch.Tensor, processor) -> list[int]:
    mean = torch.tensor(processor.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(processor.image_std).view(1, 3, 1, 1)
    pixels = ((pixel_values[0].float() * std + mean) * 255).round().clamp(0, 255).byte()
    return [read_frame_index(frame.permute(1, 2, 0).numpy()) for frame in pixels]


def test_builtin_with_an_image_processor_reads_the_first_frames_only(video, model):
    processor = VideoMAEImageProcessor(size={"height": SIZE, "width": SIZE}, do_center_crop=False)
    builtin = VideoClassificationPipeline(model=model, image_processor=processor)
    builtin(video)
    assert frame_numbers(model.seen[-1], processor) == list(range(NUM_FRAMES))  # 0.3 s of a 6 s video
    builtin(video, frame_sampling_rate=4)  # spread over the first num_frames x rate frames, not every 4th frame
    expected = np.linspace(0, 4 * NUM_FRAMES - 1, NUM_FRAMES).astype(np.int64).tolist()
    assert frame_numbers(model.seen[-1], processor) == expected == [0, 4, 8, 13, 17, 22, 26, 31]


def test_builtin_with_a_video_processor_needs_torchcodec_and_samples_uniformly_from_frame_0(video):
    from transformers import VideoMAEVideoProcessor
    from transformers.utils.import_utils import is_torchcodec_available
    from transformers.video_utils import VideoMetadata

    processor = VideoMAEVideoProcessor(size={"height": SIZE, "width": SIZE}, do_center_crop=False,
                                       do_normalize=False, do_rescale=False)
    if not is_torchcodec_available():  # the path of a file needs torchcodec (and the system's FFmpeg libraries)
        with pytest.raises(ImportError, match="torchcodec"):
            processor(video, do_sample_frames=True, num_frames=NUM_FRAMES)
    # its sampling rule, on frames we decoded: num_frames evenly spaced from frame 0 over the whole video
    decoded = sequential_frames(video)
    out = processor(videos=[decoded], video_metadata=[VideoMetadata(total_num_frames=FRAMES, fps=25.0)],
                    do_sample_frames=True, num_frames=NUM_FRAMES, return_tensors="pt")
    pixels = out["pixel_values"][0]
    numbers = [read_frame_index(frame.permute(1, 2, 0).round().clamp(0, 255).byte().numpy()) for frame in pixels]
    assert numbers == [int(i * FRAMES / NUM_FRAMES) for i in range(NUM_FRAMES)]


def test_ours_takes_the_training_clip_from_the_middle(video, model):
    model.config.frame_sampling_rate, model.config.frame_sampling_strategy = 4, "dense"
    processor = VideoMAEImageProcessor(size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE})
    ours = PyAVVideoClassificationPipeline(model=model, image_processor=processor)
    ours(video)
    span = (NUM_FRAMES - 1) * 4 + 1
    start = int(round((FRAMES - span) / 2))
    assert frame_numbers(model.seen[-1], processor) == list(np.arange(start, start + span, 4))
