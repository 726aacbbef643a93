"""RandAugment on video: one draw per clip, the same pixel mapping on every frame, timm-style magnitudes."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from fine_tuning_models import one_compute_thread  # noqa: F401 (fixture)
from pipeline.training.rand_augment import OPS, RandAugmentSpec, VideoRandAugment

pytestmark = pytest.mark.usefixtures("one_compute_thread")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def frames(n: int, seed: int, size=(3, 20, 24), low: int = 0, high: int = 256) -> torch.Tensor:
    return torch.randint(low, high, (n, *size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def forced(op: str, magnitude: float = 9.0, increasing: bool = True) -> VideoRandAugment:
    """Always exactly ``op``, at a fixed magnitude."""
    return VideoRandAugment(RandAugmentSpec(magnitude=magnitude, num_ops=1, prob=1.0, increasing=increasing), ops=(op,))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", OPS)
def test_every_frame_of_a_clip_gets_the_same_mapping(op, device):
    a, b, c = frames(3, seed=1, low=30, high=220)  # not the full range: AutoContrast has something to do
    clip = torch.stack([a, b, a, c, a])  # frames 0, 2 and 4 are the same picture
    batch = torch.stack([clip, clip.flip(0)]).to(device)
    generator = torch.Generator().manual_seed(0)
    out = forced(op)(batch, generator=generator)
    assert out.dtype == torch.uint8 and out.shape == batch.shape and out.device == batch.device
    for clip_out in (out[0], out[1]):
        assert torch.equal(clip_out[0], clip_out[2]) and torch.equal(clip_out[0], clip_out[4]), op
    assert not torch.equal(out, batch), f"{op} at magnitude 9 changed nothing"


def test_statistics_are_taken_over_the_whole_clip_not_per_frame():
    dark = torch.randint(50, 101, (3, 16, 16), dtype=torch.uint8)
    bright = torch.randint(100, 201, (3, 16, 16), dtype=torch.uint8)
    clip = torch.stack([dark, bright])[None]
    out = forced("AutoContrast")(clip)[0]
    # one stretch for the clip (50..200 -> 0..255): the dark frame stays dark; per frame it would reach 255
    assert int(out[0].max()) <= 90 and int(out[1].max()) == 255 and int(out[0].min()) == 0
    equalised = forced("Equalize")(clip)[0]
    assert equalised[0].float().mean() < equalised[1].float().mean() - 60


def test_clips_of_a_batch_draw_their_own_ops():
    clip = frames(4, seed=2)
    batch = clip[None].expand(16, -1, -1, -1, -1).contiguous()
    out = VideoRandAugment.from_spec("m7-n4-mstd0.5-inc1")(batch, generator=torch.Generator().manual_seed(0))
    distinct = {out[i].numpy().tobytes() for i in range(16)}
    assert len(distinct) >= 12
    assert torch.equal(batch, clip[None].expand(16, -1, -1, -1, -1))  # input untouched


@pytest.mark.parametrize("op, reference", [
    ("Equalize", TF.equalize),
    ("AutoContrast", TF.autocontrast),
    ("Invert", TF.invert),
])
def test_single_frame_matches_torchvision(op, reference):
    image = frames(1, seed=3)
    image[:, :, :3] = 0  # a true black as well
    out = forced(op)(image[None])[0]
    torch.testing.assert_close(out, reference(image), rtol=0, atol=0)


@pytest.mark.parametrize("magnitude, increasing, bits, threshold", [(7.0, True, 2, 256 - 0.7 * 256), (5.0, False, 2, 128)])
def test_posterize_and_solarize_levels(magnitude, increasing, bits, threshold):
    image = frames(1, seed=4)
    posterized = forced("Posterize", magnitude, increasing)(image[None])[0]
    torch.testing.assert_close(posterized, TF.posterize(image, bits), rtol=0, atol=0)
    solarized = forced("Solarize", magnitude, increasing)(image[None])[0]
    expected = torch.where(image.float() >= threshold, 255 - image, image)
    torch.testing.assert_close(solarized, expected, rtol=0, atol=0)


@pytest.mark.parametrize("op, reference", [
    ("Brightness", TF.adjust_brightness),
    ("Color", TF.adjust_saturation),
    ("Contrast", TF.adjust_contrast),
    ("Sharpness", TF.adjust_sharpness),
])
def test_enhancements_match_torchvision_within_rounding(op, reference):
    image = frames(1, seed=5)
    augment = forced(op, magnitude=6.0, increasing=False)  # factor 0.1 + 1.8 x 0.6 = 1.18
    out = augment(image[None])[0]
    expected = reference(image, 1.18)
    assert (out.int() - expected.int()).abs().max() <= 1


@pytest.mark.parametrize("device", DEVICES)
def test_translate_moves_every_frame_by_the_same_whole_pixels_and_fills(device):
    clip = frames(3, seed=6, size=(3, 12, 20)).to(device)
    augment = VideoRandAugment(RandAugmentSpec(magnitude=10, num_ops=1, prob=1.0), ops=("TranslateX",))
    draws = {"op": torch.zeros(1, 1, dtype=torch.long), "apply": torch.ones(1, 1, dtype=torch.bool),
             "magnitude": torch.full((1, 1), 10.0), "sign": torch.ones(1, 1)}
    out = augment(clip[None], draws=draws)[0]
    shift = 9  # 0.45 x 20 pixels
    assert torch.equal(out[..., shift:], clip[..., :-shift])
    fill = torch.tensor(augment.fill, dtype=torch.uint8, device=device).view(1, 3, 1, 1)
    assert bool((out[..., :shift] == fill).all())


def test_spec_parsing():
    spec = RandAugmentSpec.parse("rand-m7-n4-mstd0.5-inc1")
    assert spec == RandAugmentSpec(magnitude=7.0, num_ops=4, magnitude_std=0.5, increasing=True, prob=0.5)
    assert RandAugmentSpec.parse("m9-n2") == RandAugmentSpec(magnitude=9.0, num_ops=2)
    with pytest.raises(ValueError, match="cannot read 'x3'"):
        RandAugmentSpec.parse("m7-x3")
    with pytest.raises(ValueError, match="out of range"):
        RandAugmentSpec.parse("m12-n2")


def test_magnitudes_are_drawn_around_m_and_clipped():
    augment = VideoRandAugment.from_spec("m9-n4-mstd3")
    draws = augment.draw(4000, generator=torch.Generator().manual_seed(0))
    magnitude = draws["magnitude"]
    assert float(magnitude.max()) == 10.0 and float(magnitude.min()) >= 0.0
    assert abs(float(draws["apply"].float().mean()) - 0.5) < 0.02
    # E[X | X < 10] for X ~ N(9, 3): 9 - 3 phi(1/3) / Phi(1/3)
    a = 1 / 3
    expected = 9 - 3 * math.exp(-a * a / 2) / math.sqrt(2 * math.pi) / (0.5 * (1 + math.erf(a / math.sqrt(2))))
    assert abs(float(magnitude[magnitude < 10].mean()) - expected) < 0.1
