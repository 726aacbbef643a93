"""Inflating torchvision's GoogLeNet (random weights) into I3D: on a "boring" video, one frame repeated, the
3D network's pooled features equal the 2D network's features of that frame.

Where equality must hold, and why the test looks there only:
- Time: I3D pads time with zeros, so a time step whose receptive field (about 100 frames for the final
  features) reaches past either end of the clip sees only some taps of the inflated kernels. The test walks
  the temporal layers of the network (kernel, stride, TensorFlow "SAME" padding) and compares the pooled time
  steps that never read padding. With 112 frames there is one; the borders are checked to differ, which
  shows the walk is needed. Max pools pad with -inf, which never changes a maximum of identical values.
- Space: at 63 x 63 pixels (16 k - 1) TensorFlow "SAME" padding and torchvision's symmetric padding and
  ceil-mode pools place every window at the same pixels, so no spatial slack is needed. The 2x2 Mixed_5c map
  is smaller than the 7x7 window, so both networks average the whole map.
- BatchNorm statistics and affine parameters are randomised so that a wrong mapping cannot hide behind
  identity-like BatchNorms.
"""

import pytest
import torch
import torchvision
from transformers import AutoImageProcessor, AutoModelForVideoClassification

from pipeline.models.i3d import I3DConfig
from pipeline.models.i3d.inflate import googlenet_module_map, inflate_from_googlenet, inflate_state_dict, main
from pipeline.models.i3d.modeling_i3d import tf_same_padding
from pipeline.models.registration import register_auto_classes

FRAMES, SIDE = 112, 63

# The temporal path of I3D from input to Mixed_5c: (kind, time kernel, time stride). A Mixed block counts as
# its widest temporal window (the 3x3x3 convolutions and the 3x3x3 max pool of branch 3).
TEMPORAL_LAYERS = (
    [("conv", 7, 2), ("pool", 1, 1), ("conv", 1, 1), ("conv", 3, 1), ("pool", 1, 1)]
    + [("conv", 3, 1)] * 2
    + [("pool", 3, 2)]
    + [("conv", 3, 1)] * 5
    + [("pool", 2, 2)]
    + [("conv", 3, 1)] * 2
)


def padding_free_pooled_steps(frames: int) -> list:
    """Indices of the pooled time steps (after the VALID 2-frame average) that never read temporal padding."""
    size, good = frames, range(frames)
    for kind, kernel, stride in TEMPORAL_LAYERS:
        before, _ = tf_same_padding(size, kernel, stride)
        out = -(-size // stride)
        kept = []
        for j in range(out):
            first, last = j * stride - before, j * stride - before + kernel - 1
            if kind == "pool":  # -inf padding never wins: only the real frames of the window matter
                first, last = max(first, 0), min(last, size - 1)
            if good and good[0] <= first and last <= good[-1]:
                kept.append(j)
        size, good = out, range(kept[0], kept[-1] + 1) if kept else range(0)
    window = min(2, size)
    return [j for j in range(size - window + 1) if good and good[0] <= j and j + window - 1 <= good[-1]]


@pytest.fixture(scope="module")
def googlenet():
    torch.manual_seed(0)
    net = torchvision.models.googlenet(weights=None, init_weights=True, aux_logits=False)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.2)
                module.running_mean.normal_(0.0, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return net.eval()


@pytest.fixture(scope="module")
def inflated(googlenet):
    return inflate_from_googlenet(googlenet, I3DConfig(batch_norm_scale=True, num_labels=7)).eval()


def test_padding_free_steps_walk():
    assert padding_free_pooled_steps(64) == []  # a 64-frame clip has no step free of border effects
    assert padding_free_pooled_steps(FRAMES) == [6]
    assert padding_free_pooled_steps(128) == [6, 7, 8]


def test_boring_video_gives_the_2d_features(googlenet, inflated):
    torch.manual_seed(1)
    frame = torch.randn(1, 3, SIDE, SIDE)
    video = frame.unsqueeze(1).expand(1, FRAMES, 3, SIDE, SIDE)
    features_2d = torch.nn.Sequential(*list(googlenet.children())[:-2])  # up to the global average pool
    with torch.no_grad():
        expected = features_2d(frame).flatten(1)  # (1, 1024)
        pooled = inflated.i3d(video).pooled_features  # (1, 1024, time, 1, 1)
    assert pooled.shape == (1, 1024, 13, 1, 1)
    steps = padding_free_pooled_steps(FRAMES)
    assert steps
    for t in steps:
        torch.testing.assert_close(pooled[:, :, t, 0, 0], expected, rtol=1e-5, atol=1e-5)
    # the first and last steps read zero padding in time and must differ: equality is not vacuous
    for t in (0, pooled.shape[2] - 1):
        assert (pooled[:, :, t, 0, 0] - expected).abs().max() > 1e-3


def test_features_2d_is_googlenet_without_its_head(googlenet):
    frame = torch.randn(2, 3, SIDE, SIDE)
    head_free = torch.nn.Sequential(*list(googlenet.children())[:-2])
    fc = googlenet.fc
    with torch.no_grad():
        torch.testing.assert_close(fc(head_free(frame).flatten(1)), googlenet(frame))


def test_kernels_are_repeated_over_time_and_divided(googlenet, inflated):
    kernel_2d = googlenet.inception4c.branch2[1].conv.weight
    kernel_3d = inflated.i3d.mixed_4d.branch_1.conv3d_0b_3x3.conv.weight
    assert kernel_3d.shape == kernel_2d.shape[:2] + (3,) + kernel_2d.shape[2:]
    for t in range(3):
        torch.testing.assert_close(kernel_3d[:, :, t] * 3, kernel_2d)
    stem = inflated.i3d.conv3d_1a_7x7.conv.weight
    torch.testing.assert_close(stem.sum(dim=2), googlenet.conv1.conv.weight)
    assert len(googlenet_module_map()) == 57


def test_command_line_writes_a_loadable_folder(tmp_path, googlenet, inflated):
    torch.save(googlenet.state_dict(), tmp_path / "googlenet.pt")
    main(["--googlenet", str(tmp_path / "googlenet.pt"), "--output_dir", str(tmp_path / "model")])
    register_auto_classes()
    model = AutoModelForVideoClassification.from_pretrained(tmp_path / "model")
    assert model.config.batch_norm_scale is True
    backbone = {k: v for k, v in inflated.state_dict().items() if not k.startswith("classifier.")}
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in backbone.items())
    processor = AutoImageProcessor.from_pretrained(tmp_path / "model")
    assert list(processor.image_mean) == [0.5, 0.5, 0.5] and list(processor.image_std) == [0.5, 0.5, 0.5]


def test_classifier_can_come_from_fc(googlenet):
    config = I3DConfig(batch_norm_scale=True, num_labels=1000)
    model = inflate_from_googlenet(googlenet.state_dict(), config, include_classifier=True)
    torch.testing.assert_close(model.classifier.weight[:, :, 0, 0, 0], googlenet.fc.weight)
    torch.testing.assert_close(model.classifier.bias, googlenet.fc.bias)
    unit_3d, unit_2d = model.i3d.mixed_5c.branch_3.conv3d_0b_1x1, googlenet.inception5b.branch4[1]
    torch.testing.assert_close(unit_3d.bn.running_var, unit_2d.bn.running_var)


def test_inflation_refuses_what_does_not_fit(googlenet, inflated):
    with pytest.raises(ValueError, match="batch_norm_scale=True"):
        inflate_from_googlenet(googlenet, I3DConfig())
    with pytest.raises(ValueError, match="width_multiplier=1"):
        inflate_from_googlenet(googlenet, I3DConfig(batch_norm_scale=True, width_multiplier=0.5))
    extra = {**googlenet.state_dict(), "inception6a.branch1.conv.weight": torch.zeros(1)}
    with pytest.raises(ValueError, match="2D tensor inception6a.branch1.conv.weight maps to nothing"):
        inflate_state_dict(extra, inflated)
    partial = {k: v for k, v in googlenet.state_dict().items() if not k.startswith("inception3b.branch3.1.")}
    with pytest.raises(ValueError, match="the 2D state dict lacks inception3b.branch3.1.conv.weight"):
        inflate_state_dict(partial, inflated)
