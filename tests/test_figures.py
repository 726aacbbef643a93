"""Figures and attention maps: the data behind each figure (normalisation, ordering, heat maps) and the PNGs."""

import json

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from transformers import (
    TimesformerConfig,
    TimesformerForVideoClassification,
    VideoMAEConfig,
    VideoMAEForVideoClassification,
)

from pipeline.evaluation import figures as plots
from pipeline.evaluation.attention_maps import (
    attention_rollout,
    cam_target_layer,
    explain,
    grad_cam,
    timesformer_layer_mixing,
    timesformer_relevance,
    upsample_heatmap,
    videomae_relevance,
)

TINY = dict(image_size=32, num_frames=4, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, num_labels=3)


def _softmax_rows(shape, seed):
    return torch.softmax(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 2, dim=-1)


# ---- attention rollout ---------------------------------------------------------------------------------------------

def test_rollout_of_one_layer_is_attention_plus_residual_and_rows_sum_to_one():
    layers = [_softmax_rows((2, 3, 6, 6), seed) for seed in range(3)]
    rollout = attention_rollout(layers)
    assert rollout.shape == (2, 6, 6)
    torch.testing.assert_close(rollout.sum(-1), torch.ones(2, 6))
    one = attention_rollout(layers[:1])
    torch.testing.assert_close(one, 0.5 * layers[0].mean(1) + 0.5 * torch.eye(6))
    expected = torch.eye(6).expand(2, 6, 6)
    for layer in layers:
        expected = (0.5 * layer.mean(1) + 0.5 * torch.eye(6)) @ expected
    torch.testing.assert_close(rollout, expected)


def _timesformer_layer_by_hand(values, spatial, temporal, frames):
    """The token flow of one divided space-time layer on scalar token values, written as loops."""
    batch, num_tokens = values.shape
    patches = (num_tokens - 1) // frames
    s_attn = spatial.mean(1).reshape(batch, frames, patches + 1, patches + 1)
    t_attn = temporal.mean(1).reshape(batch, patches, frames, frames)
    out = torch.zeros_like(values)
    for b in range(batch):
        grid = values[b, 1:].reshape(patches, frames)  # token 1 + s*T + t
        mixed = 0.5 * grid + 0.5 * torch.stack([t_attn[b, s] @ grid[s] for s in range(patches)])
        cls_outputs = []
        for t in range(frames):
            tokens = torch.cat([values[b, :1], mixed[:, t]])
            result = 0.5 * tokens + 0.5 * s_attn[b, t] @ tokens
            cls_outputs.append(result[0])
            for s in range(patches):
                out[b, 1 + s * frames + t] = result[1 + s]
        out[b, 0] = torch.stack(cls_outputs).mean()
    return out


def test_timesformer_layer_mixing_matches_the_layer_token_flow():
    batch, frames, patches, heads = 2, 3, 4, 2
    spatial = _softmax_rows((batch * frames, heads, patches + 1, patches + 1), 0)
    temporal = _softmax_rows((batch * patches, heads, frames, frames), 1)
    mixing = timesformer_layer_mixing(spatial, temporal, frames)
    assert mixing.shape == (batch, 1 + patches * frames, 1 + patches * frames)
    torch.testing.assert_close(mixing.sum(-1), torch.ones(batch, 1 + patches * frames, dtype=mixing.dtype))
    values = torch.randn(batch, 1 + patches * frames, dtype=torch.float64)
    expected = _timesformer_layer_by_hand(values, spatial.double(), temporal.double(), frames)
    torch.testing.assert_close((mixing @ values[..., None])[..., 0], expected)


@pytest.fixture(scope="module")
def clip():
    return torch.randn(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_videomae_rollout_on_a_tiny_model(clip):
    torch.manual_seed(0)
    model = VideoMAEForVideoClassification(VideoMAEConfig(patch_size=8, tubelet_size=2, **TINY)).eval()
    assert model.config._attn_implementation == "sdpa"  # returns no attentions: must be switched for the rollout
    relevance = videomae_relevance(model, clip)
    assert relevance.shape == (2, 2, 4, 4)  # (B, T / tubelet, H / patch, W / patch)
    torch.testing.assert_close(relevance.sum(dim=(1, 2, 3)), torch.ones(2))
    assert model.config._attn_implementation == "sdpa"  # restored
    heatmap, method = explain(model, clip)
    assert method == "attention rollout" and heatmap.shape == (2, 2, 4, 4)
    assert heatmap.amin(dim=(1, 2, 3)).tolist() == [0.0, 0.0] and heatmap.amax(dim=(1, 2, 3)).tolist() == [1.0, 1.0]
    # the rollout is the model's: a different input gives a different map
    assert not torch.allclose(relevance[0], relevance[1])


def test_timesformer_rollout_on_a_tiny_model(clip):
    torch.manual_seed(0)
    model = TimesformerForVideoClassification(TimesformerConfig(patch_size=8, **TINY)).eval()
    relevance = timesformer_relevance(model, clip)
    assert relevance.shape == (2, 4, 4, 4)  # (B, T, H / patch, W / patch)
    # patches + the CLS token's own share = 1; the CLS share is positive and below 1
    patch_share = relevance.sum(dim=(1, 2, 3))
    assert ((patch_share > 0) & (patch_share < 1)).all()
    # the temporal-attention hooks are gone and the model computes what it did before
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values=clip).logits, model(pixel_values=clip).logits)


class _TinyConvNet(torch.nn.Module):
    """A 3D CNN whose features follow image brightness: Grad-CAM must light up where the video is bright."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Conv3d(3, 4, kernel_size=1)
        self.head = torch.nn.Linear(4, 2)
        with torch.no_grad():
            self.features.weight.fill_(1.0)
            self.features.bias.zero_()
            self.head.weight.copy_(torch.tensor([[1.0, 1.0, 1.0, 1.0], [-1.0, -1.0, -1.0, -1.0]]))
            self.head.bias.zero_()

    def forward(self, pixel_values):
        features = torch.relu(self.features(pixel_values.permute(0, 2, 1, 3, 4)))
        return type("Output", (), {"logits": self.head(features.mean(dim=(2, 3, 4)))})()


def test_grad_cam_finds_the_region_that_drives_the_class():
    video = torch.zeros(1, 4, 3, 8, 8)
    video[0, 2, :, 5, 1] = 1.0  # one bright pixel at frame 2, row 5, column 1
    model = _TinyConvNet()
    cam = grad_cam(model, video, target_class=0)
    assert cam.shape == (1, 4, 8, 8) and (cam >= 0).all()
    assert np.unravel_index(int(cam.argmax()), cam.shape[1:]) == (2, 5, 1)
    assert cam.flatten().topk(2).values[1] == 0  # nothing else
    # class 1 is driven by darkness: its map has no positive evidence at the bright pixel
    assert grad_cam(model, video, target_class=1).max() == 0
    assert all(p.grad is None for p in model.parameters())  # no gradients left behind


def test_grad_cam_on_tiny_i3d_targets_mixed_5c():
    from pipeline.models.i3d.configuration_i3d import I3DConfig
    from transformers import AutoModelForVideoClassification

    torch.manual_seed(0)
    model = AutoModelForVideoClassification.from_config(
        I3DConfig(width_multiplier=0.125, image_size=64, num_frames=8, num_labels=3)).eval()
    assert cam_target_layer(model) is model.i3d.mixed_5c
    heatmap, method = explain(model, torch.randn(1, 8, 3, 64, 64))
    assert method == "Grad-CAM" and heatmap.shape == (1, 1, 2, 2)  # Mixed_5c: T/8, H/32, W/32
    assert 0 <= float(heatmap.min()) and float(heatmap.max()) <= 1


def test_upsample_heatmap_to_frames():
    heatmap = torch.tensor([[[0.0, 1.0], [0.5, 0.25]], [[1.0, 0.0], [0.0, 0.0]]])
    resized = upsample_heatmap(heatmap, 4, 8, 8)
    assert resized.shape == (4, 8, 8)
    assert float(resized.min()) >= 0 and float(resized.max()) <= 1
    assert float(resized[0, 0, 7]) > float(resized[0, 0, 0])  # the top-right corner stays hot in early frames


# ---- figure data and PNGs ------------------------------------------------------------------------------------------

LOG_HISTORY = [
    {"loss": 2.0, "learning_rate": 1e-4, "epoch": 0.5, "step": 10},
    {"loss": 1.5, "learning_rate": 2e-4, "epoch": 1.0, "step": 20},
    {"eval_loss": 1.4, "eval_accuracy": 0.5, "eval_top5_accuracy": 0.9, "epoch": 1.0, "step": 20},
    {"loss": 1.0, "learning_rate": 1e-4, "epoch": 1.5, "step": 30},
    {"eval_loss": 1.1, "eval_accuracy": 0.7, "eval_top5_accuracy": 0.95, "epoch": 2.0, "step": 40},
    {"train_runtime": 12.0, "train_loss": 1.4, "epoch": 2.0, "step": 40},
]


def test_training_curves_from_log_history(tmp_path):
    curves = plots.training_curves(LOG_HISTORY)
    assert sorted(curves) == ["eval_accuracy", "eval_loss", "eval_top5_accuracy", "learning_rate", "loss"]
    steps, values = curves["loss"]
    assert steps.tolist() == [10, 20, 30] and values.tolist() == [2.0, 1.5, 1.0]
    assert curves["eval_accuracy"][1].tolist() == [0.5, 0.7]
    state = tmp_path / "trainer_state.json"
    state.write_text(json.dumps({"log_history": LOG_HISTORY}))
    image = imread(plots.plot_training_curves(plots.load_log_history(state), tmp_path / "curves.png"))
    assert image.shape[1] > 2.5 * image.shape[0]  # three panels side by side
    assert plots.plot_training_curves([{"epoch": 1}], tmp_path / "none.png") is None


def test_normalized_confusion_rows():
    confusion = np.array([[3, 1, 0], [0, 0, 0], [2, 2, 4]])
    normalized = plots.normalize_confusion(confusion)
    np.testing.assert_allclose(normalized.sum(axis=1), [1, 0, 1])
    np.testing.assert_allclose(normalized[2], [0.25, 0.25, 0.5])


def test_confusion_matrix_figure_grows_with_the_number_of_classes(tmp_path):
    rng = np.random.default_rng(0)
    small = plots.plot_confusion_matrix(rng.integers(0, 5, (5, 5)), [f"c{i}" for i in range(5)], tmp_path / "s.png")
    names = [f"ClassName{i:03d}" for i in range(101)]
    confusion = rng.integers(0, 3, (101, 101)) + np.diag(np.full(101, 20))
    top = [{"true": names[1], "predicted": names[2], "count": 3, "fraction": 0.1}]
    big = plots.plot_confusion_matrix(confusion, names, tmp_path / "b.png", top)
    small_px, big_px = imread(small).shape, imread(big).shape
    # at 101 classes each row still gets >= 14 pixels (labels of ~6 pt stay legible)
    assert big_px[0] > 101 * 14 and big_px[0] > 2.5 * small_px[0]
    assert big_px[1] > big_px[0]  # the top-confusions panel sits beside the matrix


def test_order_samples_puts_confident_errors_first():
    samples = [
        {"label": "a", "prediction": "a", "score": 0.9},
        {"label": "a", "prediction": "b", "score": 0.6},
        {"label": "b", "prediction": "b", "score": 0.7},
        {"label": "b", "prediction": "a", "score": 0.8},
    ]
    ordered = plots.order_samples(samples)
    assert [(s["label"], s["prediction"]) for s in ordered] == [("b", "a"), ("a", "b"), ("a", "a"), ("b", "b")]


def test_overlay_heatmap_blends_jet_colours():
    frames = np.full((2, 4, 4, 3), 100, dtype=np.uint8)
    heat = np.zeros((2, 4, 4))
    heat[1, 2, 3] = 1.0
    blended = plots.overlay_heatmap(frames, heat, alpha=0.5)
    assert blended.dtype == np.uint8 and blended.shape == frames.shape
    # jet(1) is dark red (0.5, 0, 0), jet(0) dark blue (0, 0, 0.5): half of 100 plus half of 0 or 127.5
    assert blended[1, 2, 3].tolist() == [114, 50, 50]
    assert blended[0, 0, 0].tolist() == [50, 50, 114]
    with pytest.raises(ValueError, match="does not match"):
        plots.overlay_heatmap(frames, heat[:, :2])


def test_bar_figures_and_contact_sheets(tmp_path):
    per_class = [{"class": f"c{i}", "support": 3, "accuracy": i / 10} for i in range(10)]
    per_class.append({"class": "absent", "support": 0, "accuracy": float("nan")})
    bars = imread(plots.plot_per_class_accuracy(per_class, tmp_path / "acc.png"))
    dist = imread(plots.plot_class_distribution({"train": [5] * 3, "test": [1, 2, 3]}, ["a", "b", "c"],
                                                tmp_path / "dist.png"))
    assert bars.shape[0] > dist.shape[0]  # ten bars need more height than three
    with pytest.raises(ValueError, match="counts for 3 classes"):
        plots.plot_class_distribution({"train": [1, 2]}, ["a", "b", "c"], tmp_path / "bad.png")
    frames = np.zeros((4, 24, 32, 3), dtype=np.uint8)
    samples = [{"frames": frames, "label": "a", "prediction": p, "score": 0.5, "video": f"v{p}"} for p in "ab"]
    sheet = imread(plots.plot_sample_predictions(samples, tmp_path / "sheet.png"))
    assert sheet.shape[1] > sheet.shape[0]  # two rows of four frames
    overlay = imread(plots.plot_attention_overlay(
        [{"frames": frames, "heatmap": np.zeros((4, 24, 32)), "title": "v"}], tmp_path / "attn.png", "Grad-CAM"))
    assert overlay.shape[1] > overlay.shape[0]  # one pair of rows of four frames


@pytest.mark.parametrize("num_classes", [3, 8, 101])
def test_confusion_matrix_titles_do_not_overlap(num_classes):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    from pipeline.evaluation.metrics import top_confusions

    rng = np.random.default_rng(0)
    confusion = rng.integers(0, 3, (num_classes, num_classes)) + np.diag(np.full(num_classes, 20))
    names = [f"SomeLongClassName{i}" for i in range(num_classes)]
    top = top_confusions(confusion, names)
    figure = plots.confusion_matrix_figure(confusion, names, top)
    renderer = FigureCanvasAgg(figure).get_renderer()
    matrix_ax, _colorbar, panel_ax = figure.axes
    matrix_title = matrix_ax.title.get_window_extent(renderer)
    (panel_text,) = [t for t in panel_ax.get_children() if isinstance(t, Text) and t.get_text().startswith("Top conf")]
    panel_title = panel_text.get_window_extent(renderer)
    assert matrix_title.x1 < panel_title.x0, (matrix_title, panel_title)  # "count" is not clipped to "ount"
