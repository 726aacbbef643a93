"""CUDA-only failure modes, checked on CPU against the patterns themselves.

A CPU run hides some failures that a GPU run meets at once (measured on an H200): cuDNN's batch norm rejects a
bias without a weight in the backward pass, where the CPU kernel accepts it; FlopCounterMode over a training-mode
model with BatchNorm fails on CUDA; fused attention kernels need query, key and value of one dtype under autocast.
These tests run every model family, forward and backward, under bf16 autocast on CPU while a TorchFunctionMode
checks each call against the CUDA kernels' rules, and check the inputs the data path hands a model.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from transformers import TimesformerConfig, TimesformerForVideoClassification, VideoMAEConfig, VideoMAEForVideoClassification

from pipeline.benchmark.model_flops import counted_forward_flops
from pipeline.inference.preprocessing import VideoPreprocessing, clip_views
from pipeline.models.i3d import I3DConfig, I3DForVideoClassification
from pipeline.training.augmentation import AugmentationSettings, ClipAugmentation, augment_batch
from pipeline.training.device_batch import centre_views


class CudaRules(TorchFunctionMode):
    """Fails on calls that the CPU kernels accept and the CUDA ones do not."""

    def __init__(self):
        super().__init__()
        self.batch_norms = self.attentions = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.batch_norm:
            weight = kwargs.get("weight", args[3] if len(args) > 3 else None)
            bias = kwargs.get("bias", args[4] if len(args) > 4 else None)
            self.batch_norms += 1
            if (weight is None) != (bias is None):
                raise AssertionError("batch_norm with only one of weight / bias: cuDNN's backward rejects it")
        if func is F.scaled_dot_product_attention:
            self.attentions += 1
            query, key, value = args[:3]
            if not query.dtype == key.dtype == value.dtype:
                raise AssertionError(f"attention on {query.dtype}/{key.dtype}/{value.dtype}: fused CUDA kernels "
                                     "need one dtype")
        return func(*args, **kwargs)


def tiny_models():
    videomae = VideoMAEConfig(image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=32,
                              num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, num_labels=3)
    timesformer = TimesformerConfig(image_size=32, patch_size=16, num_frames=4, hidden_size=32, num_hidden_layers=1,
                                    num_attention_heads=2, intermediate_size=64, num_labels=3)
    return {
        "videomae": VideoMAEForVideoClassification._from_config(videomae, attn_implementation="sdpa"),
        "timesformer": TimesformerForVideoClassification(timesformer),
        "i3d": I3DForVideoClassification(I3DConfig(width_multiplier=0.125, num_labels=3)),
        "i3d_with_scale": I3DForVideoClassification(I3DConfig(width_multiplier=0.125, num_labels=3,
                                                              batch_norm_scale=True)),
    }


@pytest.mark.parametrize("name", ["videomae", "timesformer", "i3d", "i3d_with_scale"])
def test_training_step_follows_cuda_rules_under_autocast(name):
    model = tiny_models()[name].train()
    frames = 8 if name.startswith("i3d") else 4
    pixel_values = torch.randn(2, frames, 3, 32, 32)
    rules = CudaRules()
    with rules, torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(pixel_values=pixel_values, labels=torch.tensor([0, 2])).loss
    loss.backward()
    assert torch.isfinite(loss)
    if name.startswith("i3d"):
        assert rules.batch_norms > 50
        # the scale-free form keeps checkpoints scale-free: no weight in the state dict, a buffer at run time
        keys = model.state_dict().keys()
        assert any(k.endswith("bn.weight") for k in keys) == (name == "i3d_with_scale")


@pytest.mark.parametrize("name", ["videomae", "i3d"])
def test_flops_are_counted_in_eval_mode_and_the_mode_is_restored(name):
    model = tiny_models()[name].train()
    modes = []
    model.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    frames = 8 if name == "i3d" else 4
    assert counted_forward_flops(model, torch.randn(1, frames, 3, 32, 32)) > 0
    assert modes == [False] and model.training


def test_model_inputs_from_the_data_path_are_contiguous():
    prep = VideoPreprocessing(36, (32, 32))
    frames = torch.randint(0, 256, (2, 4, 48, 64, 3), dtype=torch.uint8)
    sizes = torch.tensor([[48, 64], [40, 60]])
    assert centre_views(frames, sizes, prep).is_contiguous()
    assert centre_views(frames, torch.tensor([[48, 64], [48, 64]]), prep).is_contiguous()
    augmentation = ClipAugmentation(prep, AugmentationSettings(color_jitter=0.2))
    rows = torch.stack([augmentation.draw_many(2, 48, 64) for _ in range(2)])
    assert augment_batch(augmentation, frames, torch.tensor([[48, 64]] * 2), rows).is_contiguous()
    assert clip_views(frames[0], torch.tensor([[0, 1, 2, 3]]), prep, num_crops=3).is_contiguous()
