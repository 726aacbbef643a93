"""Layer-wise lr decay and weight-decay groups, as the Trainer's optimizer sees them."""

from __future__ import annotations

import re

import pytest
import torch
from transformers import TrainingArguments

from fine_tuning_models import one_compute_thread, tiny_model  # noqa: F401 (fixture)
from pipeline.models.backbone_freezing import freeze_backbone
from pipeline.models.probe import attentive_probe
from pipeline.training.classification_loss import ClassificationLoss
from pipeline.training.fine_tuning import FineTuning
from pipeline.training.trainer import VideoTrainer

pytestmark = pytest.mark.usefixtures("one_compute_thread")

BASE_LR, DECAY, WEIGHT_DECAY = 1e-3, 0.75, 0.05


def expected_depth(family: str, name: str) -> tuple[int, int]:
    """(depth, head depth) written out by hand for the tiny models: 3 blocks, or I3D's 9 Inception blocks."""
    if family == "i3d":
        mixed = ["3b", "3c", "4b", "4c", "4d", "4e", "4f", "5b", "5c"]
        match = re.match(r"i3d\.mixed_(\w\w)\.", name)
        if match:
            return mixed.index(match.group(1)) + 1, 10
        return (0, 10) if name.startswith("i3d.conv3d_") else (10, 10)
    match = re.search(r"\.(?:encoder\.layer|layers)\.(\d)\.", name)
    if match:
        return int(match.group(1)) + 1, 4
    return (0, 4) if ".embeddings." in name else (4, 4)


def build_optimizer(model, tmp_path, layer_decay=DECAY):
    args = TrainingArguments(str(tmp_path), learning_rate=BASE_LR, weight_decay=WEIGHT_DECAY, use_cpu=True,
                             report_to="none", lr_scheduler_type="cosine", warmup_steps=0)
    fine_tuning = FineTuning(loss=ClassificationLoss(3), layer_decay=layer_decay)
    trainer = VideoTrainer(model=model, args=args, fine_tuning=fine_tuning)
    return trainer, trainer.create_optimizer()


def group_of(optimizer) -> dict[int, dict]:
    return {id(p): group for group in optimizer.param_groups for p in group["params"]}


@pytest.mark.parametrize("family", ["videomae", "timesformer", "vivit", "i3d"])
def test_lr_of_every_parameter_is_base_times_decay_to_the_depth_from_the_top(family, tmp_path):
    model = tiny_model(family)
    _, optimizer = build_optimizer(model, tmp_path)
    groups = group_of(optimizer)
    names = dict(model.named_parameters())
    assert set(groups) == {id(p) for p in names.values()}  # every parameter, once
    for name, parameter in names.items():
        depth, top = expected_depth(family, name)
        assert groups[id(parameter)]["lr"] == pytest.approx(BASE_LR * DECAY ** (top - depth)), name
    # the Trainer logs the first group's rate: it is the head's, the base rate
    assert optimizer.param_groups[0]["lr"] == pytest.approx(BASE_LR)


@pytest.mark.parametrize("family", ["videomae", "timesformer", "i3d"])
def test_no_weight_decay_on_biases_norms_and_learned_tokens(family, tmp_path):
    model = tiny_model(family, **({"batch_norm_scale": True} if family == "i3d" else {}))
    _, optimizer = build_optimizer(model, tmp_path)
    groups = group_of(optimizer)
    tokens = ("cls_token", "position_embeddings", "time_embeddings")
    for name, parameter in model.named_parameters():
        exempt = name.endswith("bias") or parameter.ndim == 1 or name.split(".")[-1] in tokens
        assert groups[id(parameter)]["weight_decay"] == (0.0 if exempt else WEIGHT_DECAY), name
    if family == "timesformer":
        assert groups[id(model.timesformer.embeddings.cls_token)]["weight_decay"] == 0.0
        assert groups[id(model.timesformer.embeddings.position_embeddings)]["weight_decay"] == 0.0
    if family == "i3d":  # BatchNorm scales (gamma) are not decayed either: not caught by transformers' name rules
        assert groups[id(model.i3d.conv3d_1a_7x7.bn.weight)]["weight_decay"] == 0.0


def test_schedule_keeps_the_layer_ratios(tmp_path):
    model = tiny_model("videomae")
    trainer, optimizer = build_optimizer(model, tmp_path)
    scheduler = trainer.create_scheduler(num_training_steps=10, optimizer=optimizer)
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    head = optimizer.param_groups[0]["lr"]
    assert 0 < head < BASE_LR  # the cosine has moved on
    for group in optimizer.param_groups:
        assert group["lr"] == pytest.approx(head * group["lr_scale"])


def test_layer_decay_one_leaves_the_trainers_two_groups(tmp_path):
    model = tiny_model("videomae")
    _, optimizer = build_optimizer(model, tmp_path, layer_decay=1.0)
    assert len(optimizer.param_groups) == 2
    assert all(group["lr"] == BASE_LR for group in optimizer.param_groups)


def test_attentive_probe_over_a_frozen_backbone_optimises_only_the_probe(tmp_path):
    model = attentive_probe(tiny_model("videomae"))
    freeze_backbone(model)
    _, optimizer = build_optimizer(model, tmp_path)
    trained = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert trained == {id(p) for name, p in model.named_parameters() if not name.startswith("backbone.")}
    # the probe is the top of the network: base rate; its query tokens get no weight decay
    groups = group_of(optimizer)
    assert groups[id(model.pooler.query_tokens)]["lr"] == pytest.approx(BASE_LR)
    assert groups[id(model.pooler.query_tokens)]["weight_decay"] == 0.0
