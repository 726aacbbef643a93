"""Frozen backbones and probes (only the head trains), and activation checkpointing for every family."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset
from transformers import AutoModelForVideoClassification, TrainingArguments

from fine_tuning_models import TINY, clips, one_compute_thread, tiny_model  # noqa: F401 (fixture)
from pipeline.models.probe import VideoProbeForVideoClassification, attentive_probe
from pipeline.models.timesformer_sdpa import enable_timesformer_sdpa
from pipeline.training.classification_loss import ClassificationLoss
from pipeline.training.fine_tuning import FineTuning
from pipeline.training.trainer import VideoTrainer

pytestmark = pytest.mark.usefixtures("one_compute_thread")


class RandomClips(Dataset):
    def __init__(self, num_frames: int):
        self.num_frames = num_frames

    def __len__(self):
        return 16

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"pixel_values": torch.randn(self.num_frames, 3, 32, 32, generator=g), "labels": i % 3}


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("family", ["videomae", "i3d"])
@pytest.mark.parametrize("probe", ["attentive", "linear"])
def test_frozen_backbone_trains_only_the_head(family, probe, tmp_path):
    fine_tuning = FineTuning(loss=ClassificationLoss(3), probe=probe, freeze_backbone=True, layer_decay=0.75)
    model = fine_tuning.prepare_model(tiny_model(family))
    assert isinstance(model, VideoProbeForVideoClassification) == (probe == "attentive")
    backbone_name = model.base_model_prefix
    backbone_before = snapshot(getattr(model, backbone_name))  # parameters AND buffers (I3D's BatchNorm statistics)
    head_before = {k: v for k, v in snapshot(model).items() if not k.startswith(backbone_name + ".")}
    args = TrainingArguments(str(tmp_path), per_device_train_batch_size=4, learning_rate=0.05, weight_decay=0.1,
                             max_steps=4, eval_strategy="steps", eval_steps=2, save_strategy="steps", save_steps=2,
                             load_best_model_at_end=True, metric_for_best_model="loss", report_to="none",
                             use_cpu=True, disable_tqdm=True)
    dataset = RandomClips(TINY[family]["num_frames"])
    trainer = VideoTrainer(model=model, args=args, train_dataset=dataset, eval_dataset=dataset, fine_tuning=fine_tuning)
    trainer.train()  # includes the best-model reload through from_pretrained
    backbone_after = snapshot(getattr(trainer.model, backbone_name))
    assert backbone_after.keys() == backbone_before.keys()
    for key, value in backbone_before.items():
        assert torch.equal(backbone_after[key], value), f"backbone changed: {key}"
    after = snapshot(trainer.model)
    changed = [k for k, v in head_before.items() if not torch.equal(after[k], v)]
    assert changed and any("classifier" in k for k in changed)
    if probe == "attentive":
        assert "pooler.query_tokens" in changed


def test_attentive_probe_keeps_the_backbone_weights_and_round_trips(tmp_path):
    model = tiny_model("videomae")
    model.config.frame_sampling_rate = 2
    probe = attentive_probe(model).eval()
    for key, value in model.videomae.state_dict().items():
        assert torch.equal(probe.backbone.state_dict()[key], value), key
    probe.save_pretrained(tmp_path)
    reloaded, info = AutoModelForVideoClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert not (info["missing_keys"] or info["unexpected_keys"])
    assert type(reloaded) is VideoProbeForVideoClassification
    assert reloaded.config.frame_sampling_rate == 2 and reloaded.config.num_frames == 4
    x = clips("videomae")
    with torch.no_grad():
        torch.testing.assert_close(reloaded.eval()(x).logits, probe(x).logits)


def checkpointing_cases():
    yield "videomae", lambda: tiny_model("videomae")
    yield "timesformer", lambda: tiny_model("timesformer")
    yield "timesformer-sdpa", lambda: enable_timesformer_sdpa(tiny_model("timesformer"))
    yield "vivit", lambda: tiny_model("vivit")
    yield "i3d", lambda: tiny_model("i3d")
    yield "probe-videomae", lambda: attentive_probe(tiny_model("videomae"))
    yield "probe-i3d", lambda: attentive_probe(tiny_model("i3d"))


@pytest.mark.parametrize("name, build", list(checkpointing_cases()), ids=[c[0] for c in checkpointing_cases()])
def test_activation_checkpointing_works_for_every_family(name, build):
    family = name.split("-")[-1] if name.startswith("probe") else name.split("-")[0]
    reference, checkpointed = build().train(), build().train()
    checkpointed.load_state_dict(reference.state_dict())
    enable = getattr(checkpointed, "activation_checkpointing_enable", None) or checkpointed.gradient_checkpointing_enable
    enable()
    # a block of the backbone runs twice when checkpointed: forward, then its recomputation in backward
    # (transformers checkpoints a layer's forward, so the hook sits on a module inside the last layer)
    if family == "i3d":
        block = (checkpointed.backbone if name.startswith("probe") else checkpointed.i3d).mixed_5c
    else:
        from pipeline.models.drop_path import transformer_layers

        block = transformer_layers(checkpointed)[-1].layernorm_before
    calls = []
    block.register_forward_pre_hook(lambda *_: calls.append(1))
    x, labels = clips(family, batch=2), torch.tensor([0, 2])
    for model in (reference, checkpointed):
        torch.nn.functional.cross_entropy(model(pixel_values=x).logits, labels).backward()
    assert len(calls) == 2, name
    for (key, a), (_, b) in zip(reference.named_parameters(), checkpointed.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=key, rtol=1e-4, atol=1e-6)
