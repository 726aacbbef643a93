"""I3D as a transformers model: TensorFlow "SAME" geometry, pooling, loss, hidden states, gradient
checkpointing, Auto-class registration, save/load round trips, loading as remote code without `pipeline`,
and training in the Trainer."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForVideoClassification, Trainer, TrainingArguments

from pipeline.models.i3d import I3DConfig, I3DForVideoClassification, I3DModel
from pipeline.models.i3d.modeling_i3d import ENDPOINTS, tf_same_padding
from pipeline.models.registration import register_auto_classes

TINY = dict(width_multiplier=0.125, image_size=64, num_frames=8, num_labels=3)


def tiny_model(**overrides) -> I3DForVideoClassification:
    torch.manual_seed(0)
    return I3DForVideoClassification(I3DConfig(**{**TINY, **overrides})).eval()


@pytest.mark.parametrize(
    "size, kernel, stride, expected",
    [
        (224, 7, 2, (2, 3)),  # stem: TensorFlow puts the odd element after
        (79, 7, 2, (3, 3)),
        (112, 3, 2, (0, 1)),
        (7, 2, 2, (0, 1)),
        (8, 2, 2, (0, 0)),
        (5, 3, 1, (1, 1)),
        (1, 7, 2, (3, 3)),
    ],
)
def test_tf_same_padding(size, kernel, stride, expected):
    assert tf_same_padding(size, kernel, stride) == expected


def test_endpoint_shapes_follow_deepmind_at_224_pixels():
    """79 frames at 224 (the reference input) give 9 time steps of 1x1 pooled features, as in DeepMind's."""
    model = tiny_model(image_size=224)
    with torch.no_grad():
        out = model.i3d(torch.randn(1, 79, 3, 224, 224), output_hidden_states=True)
    sizes = {name: tuple(h.shape[2:]) for name, h in zip(ENDPOINTS, out.hidden_states)}
    assert len(out.hidden_states) == len(ENDPOINTS) == 16
    assert sizes["Conv3d_1a_7x7"] == (40, 112, 112)
    assert sizes["MaxPool3d_2a_3x3"] == (40, 56, 56)
    assert sizes["MaxPool3d_3a_3x3"] == (40, 28, 28)
    assert sizes["MaxPool3d_4a_3x3"] == (20, 14, 14)
    assert sizes["MaxPool3d_5a_2x2"] == (10, 7, 7)
    assert sizes["Mixed_5c"] == (10, 7, 7)
    assert out.last_hidden_state.shape[1] == model.config.hidden_size == 128
    # exact VALID 2x7x7 average pool with stride 1
    assert out.pooled_features.shape == (1, 128, 9, 1, 1)
    features = out.last_hidden_state
    manual = torch.stack([features[:, :, t : t + 2].mean(dim=(2, 3, 4)) for t in range(9)], dim=-1)
    torch.testing.assert_close(out.pooled_features[..., 0, 0], manual)


def test_logits_are_time_averaged_per_step_logits():
    model = tiny_model(image_size=224)
    with torch.no_grad():
        inner = model.i3d(torch.ones(1, 24, 3, 224, 224) * 0.3)
        logits = model(torch.ones(1, 24, 3, 224, 224) * 0.3).logits
    steps = model.classifier(inner.pooled_features)[:, :, :, 0, 0]  # (1, labels, time)
    assert steps.shape[-1] == 2
    torch.testing.assert_close(logits, steps.mean(dim=-1))


def test_small_inputs_pool_the_whole_map_and_give_the_loss():
    model = tiny_model()
    pixel_values = torch.randn(2, 8, 3, 64, 64)
    labels = torch.tensor([0, 2])
    with torch.no_grad():
        out = model(pixel_values, labels=labels, output_hidden_states=True)
        inner = model.i3d(pixel_values)
    assert out.logits.shape == (2, 3)
    assert inner.last_hidden_state.shape[2:] == (1, 2, 2)  # smaller than the 2x7x7 window
    torch.testing.assert_close(inner.pooler_output, inner.last_hidden_state.mean(dim=(2, 3, 4)))
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, labels))
    assert len(out.hidden_states) == 16


def test_problem_types():
    model = tiny_model(problem_type="multi_label_classification")
    targets = torch.tensor([[1.0, 0.0, 1.0]])
    with torch.no_grad():
        out = model(torch.randn(1, 8, 3, 64, 64), labels=targets)
    torch.testing.assert_close(out.loss, F.binary_cross_entropy_with_logits(out.logits, targets))


def test_the_loss_is_transformers_own_classification_loss():
    """I3D goes through PreTrainedModel.loss_function like VideoMAE: the same problem types, and the Trainer's
    num_items_in_batch (gradient accumulation) divides a summed cross-entropy."""
    model = tiny_model()
    assert model.loss_type == "ForVideoClassification"
    x, labels = torch.randn(2, 8, 3, 64, 64), torch.tensor([0, 2])
    with torch.no_grad():
        out = model(x, labels=labels, num_items_in_batch=torch.tensor(4))
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, labels, reduction="sum") / 4)
    regression = tiny_model(num_labels=1)
    with torch.no_grad():
        out = regression(x, labels=torch.tensor([0.5, -1.0]))
    assert regression.config.problem_type == "regression"
    torch.testing.assert_close(out.loss, F.mse_loss(out.logits.squeeze(), torch.tensor([0.5, -1.0])))


def test_rejects_channels_first_input():
    with pytest.raises(ValueError, match="modeling_i3d.py: pixel_values must be"):
        tiny_model()(torch.randn(1, 3, 8, 64, 64))


def test_batch_norm_scale_is_optional():
    no_scale = tiny_model().state_dict()
    with_scale = tiny_model(batch_norm_scale=True).state_dict()
    assert not any(k.endswith("bn.weight") for k in no_scale)  # DeepMind's BatchNorm has no gamma
    assert sum(k.endswith("bn.weight") for k in with_scale) == 57


def test_gradient_checkpointing_recomputes_and_keeps_gradients():
    reference = tiny_model(dropout_prob=0.0).train()
    checkpointed = tiny_model(dropout_prob=0.0).train()
    # transformers 5 renamed gradient_checkpointing_enable (kept as a deprecated alias)
    enable = getattr(checkpointed, "activation_checkpointing_enable", None)
    enable = enable or checkpointed.gradient_checkpointing_enable
    enable()
    assert checkpointed.i3d.gradient_checkpointing
    calls = []
    # a pre-hook: the recomputation stops early, once the tensors backward needs exist, before a forward hook
    checkpointed.i3d.mixed_5c.register_forward_pre_hook(lambda *_: calls.append(1))
    pixel_values, labels = torch.randn(2, 8, 3, 64, 64), torch.tensor([1, 2])
    reference(pixel_values, labels=labels).loss.backward()
    checkpointed(pixel_values, labels=labels).loss.backward()
    assert len(calls) == 2  # forward, then the recomputation in backward
    for (name, a), (_, b) in zip(reference.named_parameters(), checkpointed.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_registration_is_idempotent():
    register_auto_classes()
    register_auto_classes()
    config = AutoConfig.for_model("i3d", **TINY)
    assert isinstance(config, I3DConfig)
    assert type(AutoModelForVideoClassification.from_config(config)) is I3DForVideoClassification


def test_save_and_auto_load_give_identical_logits(tmp_path):
    register_auto_classes()
    model = tiny_model()
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["auto_map"] == {
        "AutoConfig": "configuration_i3d.I3DConfig",
        "AutoModelForVideoClassification": "modeling_i3d.I3DForVideoClassification",
    }
    assert (tmp_path / "modeling_i3d.py").exists() and (tmp_path / "configuration_i3d.py").exists()
    loaded, info = AutoModelForVideoClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert type(loaded) is I3DForVideoClassification
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    pixel_values = torch.randn(1, 8, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(pixel_values).logits, loaded.eval()(pixel_values).logits)


def test_backbone_saves_for_auto_model(tmp_path):
    I3DModel(I3DConfig(**TINY)).save_pretrained(tmp_path)
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModel"] == "modeling_i3d.I3DModel"


@pytest.mark.slow
def test_remote_code_loads_in_a_fresh_interpreter_without_pipeline(tmp_path):
    model = tiny_model()
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    pixel_values = torch.randn(1, 8, 3, 64, 64)
    torch.save(pixel_values, tmp_path / "input.pt")
    script = textwrap.dedent(
        """
        import json, sys, torch
        from transformers import AutoModelForVideoClassification
        model = AutoModelForVideoClassification.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
        with torch.no_grad():
            logits = model(torch.load(sys.argv[2])).logits
        torch.save(logits, sys.argv[3])
        ours = [m for m in sys.modules if m == "pipeline" or m.startswith("pipeline.")]
        print(json.dumps({"module": type(model).__module__, "pipeline_imported": bool(ours)}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HUB_OFFLINE="1")
    files = [str(model_dir), str(tmp_path / "input.pt"), str(tmp_path / "logits.pt")]
    result = subprocess.run(
        [sys.executable, "-c", script, *files],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["module"].startswith("transformers_modules.")
    assert report["pipeline_imported"] is False
    with torch.no_grad():
        expected = model(pixel_values).logits
    # same weights, same code, another interpreter: equal up to float reduction order (oneDNN picks kernels per
    # process; 1e-9 differences were seen under load)
    torch.testing.assert_close(torch.load(tmp_path / "logits.pt"), expected, rtol=1e-5, atol=1e-7)


class _BrightnessClips(torch.utils.data.Dataset):
    """Clips whose class is their brightness: learnable in a few steps."""

    def __init__(self, n=8):
        generator = torch.Generator().manual_seed(0)
        self.labels = torch.arange(n) % 2
        noise = torch.randn(n, 8, 3, 64, 64, generator=generator) * 0.1
        self.clips = noise + (self.labels.float() * 1.0 - 0.5).view(n, 1, 1, 1, 1)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"pixel_values": self.clips[i], "labels": self.labels[i]}


@pytest.mark.slow
def test_tiny_i3d_learns_in_the_trainer(tmp_path):
    model = tiny_model(num_labels=2, dropout_prob=0.0).train()
    data = _BrightnessClips()
    args = TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=4, learning_rate=3e-3, max_steps=10,
        logging_steps=1, report_to=[], use_cpu=True, save_strategy="no", seed=0, disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=data)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 10
    assert sum(losses[-3:]) / 3 < 0.5 * sum(losses[:3]) / 3
