"""Model FLOPs per clip: analytic counts for VideoMAE and TimeSformer, and a measured count for any model.

Convention (as in MFU reports, e.g. PaLM's appendix B): only matrix multiplications count, 2 FLOPs per
multiply-add (patch-embedding convolution, linear layers, attention scores and attention-weighted values);
layer norms, softmax, activations and bias additions are left out. A training step costs 3x the forward
(backward = 2x forward), whatever activation recomputation (gradient checkpointing) adds: that extra work is not
"model" FLOPs, so MFU stays comparable with and without it.

Symbols: clip of T frames of H x W pixels with C channels, patch size p, tubelet t (VideoMAE), hidden size D,
L layers, MLP size I, K classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.inference.model_inputs import model_inputs

TRAINING_FACTOR = 3

VIDEOMAE_FORMULA = (
    "N = (T/t)(H/p)(W/p); F = 2*N*(C*t*p^2)*D + L*[2*N*(4*D^2 + 2*D*I) + 4*N^2*D] + 2*D*K"
)
TIMESFORMER_FORMULAS = {
    "divided_space_time": (
        "S = (H/p)(W/p), N = T*S + 1; F = 2*T*S*(C*p^2)*D + L*[2*T*S*5*D^2 + 4*S*T^2*D"
        " + 2*T*(S+1)*4*D^2 + 4*T*(S+1)^2*D + 4*N*D*I] + 2*D*K"
    ),
    "joint_space_time": (
        "S = (H/p)(W/p), N = T*S + 1; F = 2*T*S*(C*p^2)*D + L*[2*N*(4*D^2 + 2*D*I) + 4*N^2*D] + 2*D*K"
    ),
    "space_only": (
        "S = (H/p)(W/p); F = T*{2*S*(C*p^2)*D + L*[2*(S+1)*(4*D^2 + 2*D*I) + 4*(S+1)^2*D] + 2*D*K}"
    ),
}


@dataclass(frozen=True)
class ForwardFlops:
    """Forward FLOPs of one clip and the formula that gave them."""

    forward: int
    formula: str

    @property
    def training(self) -> int:
        return TRAINING_FACTOR * self.forward


def _block(tokens: int, hidden: int, intermediate: int) -> int:
    """One standard pre-norm transformer block over ``tokens`` tokens: QKV + output projection, scores, A.V, MLP."""
    return 2 * tokens * (4 * hidden * hidden + 2 * hidden * intermediate) + 4 * tokens * tokens * hidden


def videomae_forward_flops(config, num_frames: int, height: int, width: int) -> ForwardFlops:
    """VideoMAE: tubelet embedding (Conv3d t x p x p), L full-attention blocks over all tubelets, linear head."""
    p, t, d = config.patch_size, config.tubelet_size, config.hidden_size
    tokens = (num_frames // t) * (height // p) * (width // p)
    flops = 2 * tokens * (config.num_channels * t * p * p) * d
    flops += config.num_hidden_layers * _block(tokens, d, config.intermediate_size)
    flops += 2 * d * config.num_labels
    return ForwardFlops(flops, VIDEOMAE_FORMULA)


def timesformer_forward_flops(config, num_frames: int, height: int, width: int) -> ForwardFlops:
    """TimeSformer: per-frame patch embedding, then divided (time, then space), joint or per-frame attention."""
    p, d, i = config.patch_size, config.hidden_size, config.intermediate_size
    kind = config.attention_type
    frames, spatial = num_frames, (height // p) * (width // p)
    embed = 2 * frames * spatial * (config.num_channels * p * p) * d
    head = 2 * d * config.num_labels
    if kind == "divided_space_time":
        tokens = frames * spatial + 1
        temporal = 2 * frames * spatial * 5 * d * d + 4 * spatial * frames * frames * d  # + temporal_dense
        space = 2 * frames * (spatial + 1) * 4 * d * d + 4 * frames * (spatial + 1) ** 2 * d  # CLS joins every frame
        mlp = 4 * tokens * d * i
        flops = embed + config.num_hidden_layers * (temporal + space + mlp) + head
    elif kind == "joint_space_time":
        flops = embed + config.num_hidden_layers * _block(frames * spatial + 1, d, i) + head
    elif kind == "space_only":  # frames are independent images, each with its own CLS token and head
        flops = embed + frames * (config.num_hidden_layers * _block(spatial + 1, d, i) + head)
    else:
        raise ValueError(f"TimeSformer attention_type '{kind}' has no FLOP formula")
    return ForwardFlops(flops, TIMESFORMER_FORMULAS[kind])


ANALYTIC = {"videomae": videomae_forward_flops, "timesformer": timesformer_forward_flops}


def analytic_forward_flops(config, num_frames: int, height: int, width: int) -> ForwardFlops | None:
    """Forward FLOPs of one clip for the model families with a formula; None for the others (e.g. I3D)."""
    count = ANALYTIC.get(config.model_type)
    return count(config, num_frames, height, width) if count else None


def counted_forward_flops(model: torch.nn.Module, pixel_values: torch.Tensor) -> int:
    """FLOPs of one forward on ``pixel_values`` (B, T, C, H, W) per clip, counted by torch's FlopCounterMode.

    Counted with the model in eval mode (restored afterwards): a training-mode forward of a model with BatchNorm
    fails under the counter on CUDA (measured on an H200), and eval mode is what the FLOPs of a forward mean anyway.
    Attention runs on SDPA's math backend while counting: the fused kernels a torch build picks for CPU or GPU are
    not all known to the counter (torch 2.14 counts none of the CPU kernel's matmuls), the math backend's matmuls
    are. So the count means the same on every torch version and device, as the analytic formulas do.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), sdpa_kernel([SDPBackend.MATH]), counter:
            model(**model_inputs(model, pixel_values))
    finally:
        model.train(was_training)
    return counter.get_total_flops() // pixel_values.shape[0]
