"""Where a video model looks: attention rollout (VideoMAE, TimeSformer) and Grad-CAM (I3D and other 3D CNNs).

Every explainer returns a heat map of shape (T', h, w) over the model's token or feature grid, normalised to
[0, 1] for display (the rollout relevances before that normalisation sum to 1 over the input tokens).
``explain(model, pixel_values)`` picks the method from the model type; ``upsample_heatmap`` maps a heat map onto
the input frames for an overlay (``pipeline.evaluation.figures.plot_attention_overlay``).

Attention rollout (Abnar & Zuidema, 2020): each layer's head-averaged attention A, mixed with the residual
connection as 0.5 * A + 0.5 * I, is multiplied through the layers; the row of the pooled output gives how much
each input token contributes. VideoMAE attends jointly over space and time; TimeSformer alternates temporal
attention (each patch across frames) and spatial attention (each frame with a CLS token shared by all frames),
both folded into one token-mixing matrix per layer.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

from pipeline.inference.model_inputs import model_inputs


def _fuse_heads(attention: torch.Tensor, head_fusion: str) -> torch.Tensor:
    """(B, heads, N, N) -> (B, N, N)."""
    if head_fusion == "mean":
        return attention.mean(dim=1)
    if head_fusion == "max":
        # rows no longer sum to 1: re-normalise so the rollout stays a mixing of tokens
        fused = attention.amax(dim=1)
        return fused / fused.sum(dim=-1, keepdim=True)
    raise ValueError(f"head_fusion must be 'mean' or 'max', got {head_fusion!r}")


def _with_residual(mixing: torch.Tensor) -> torch.Tensor:
    eye = torch.eye(mixing.shape[-1], dtype=mixing.dtype, device=mixing.device)
    return 0.5 * mixing + 0.5 * eye


def attention_rollout(attentions: Sequence[torch.Tensor], head_fusion: str = "mean") -> torch.Tensor:
    """Rollout of joint self-attention layers: (B, heads, N, N) per layer -> (B, N, N), rows summing to 1.

    Row i says how much each input token contributes to output token i after the last layer.
    """
    if not attentions:
        raise ValueError("attention_rollout needs at least one layer of attentions (was the model run eagerly?)")
    rollout = None
    for attention in attentions:
        layer = _with_residual(_fuse_heads(attention.detach().double(), head_fusion))
        rollout = layer if rollout is None else layer @ rollout
    return rollout.float()


def timesformer_layer_mixing(
    spatial: torch.Tensor, temporal: torch.Tensor, num_frames: int, head_fusion: str = "mean"
) -> torch.Tensor:
    """One divided space-time TimeSformer layer as a (B, N, N) token-mixing matrix, N = 1 + S * T.

    spatial: (B*T, heads, 1+S, 1+S) attention of each frame's patches and the CLS token (batch-major, then frame);
    temporal: (B*S, heads, T, T) attention of each patch position across frames (batch-major, then position).
    Token order is TimeSformer's: CLS, then patch s at frame t at 1 + s*T + t. The CLS output is the mean over
    frames of the per-frame CLS outputs, as in the model. Residuals of both steps are included.
    """
    spatial = _fuse_heads(spatial.detach().double(), head_fusion)
    temporal = _fuse_heads(temporal.detach().double(), head_fusion)
    batch = spatial.shape[0] // num_frames
    num_patches = spatial.shape[-1] - 1
    num_tokens = 1 + num_patches * num_frames
    patch = torch.arange(num_patches, device=spatial.device)
    frame = torch.arange(num_frames, device=spatial.device)

    # temporal step: patch (s, t) <- patches (s, t'); the CLS token passes unchanged
    time_mix = torch.zeros(batch, num_tokens, num_tokens, dtype=spatial.dtype, device=spatial.device)
    time_mix[:, 0, 0] = 1.0
    temporal = _with_residual(temporal).reshape(batch, num_patches, num_frames, num_frames)
    rows = 1 + patch[:, None, None] * num_frames + frame[None, :, None]  # (S, T, 1)
    cols = 1 + patch[:, None, None] * num_frames + frame[None, None, :]  # (S, 1, T)
    time_mix[:, rows, cols] = temporal

    # spatial step within each frame t: [CLS, (s, t) for all s]; the CLS row is averaged over frames
    space_mix = torch.zeros_like(time_mix)
    spatial = _with_residual(spatial).reshape(batch, num_frames, 1 + num_patches, 1 + num_patches)
    frame_tokens = 1 + patch[None, :] * num_frames + frame[:, None]  # (T, S) token index of (s, t)
    rows = frame_tokens[:, :, None]
    cols = frame_tokens[:, None, :]
    space_mix[:, rows, cols] = spatial[:, :, 1:, 1:]
    space_mix[:, frame_tokens, 0] = spatial[:, :, 1:, 0]
    space_mix[:, 0, 0] = spatial[:, :, 0, 0].mean(dim=1)
    space_mix[:, 0, frame_tokens] = spatial[:, :, 0, 1:] / num_frames
    return space_mix @ time_mix


def timesformer_rollout(
    spatial: Sequence[torch.Tensor], temporal: Sequence[torch.Tensor], num_frames: int, head_fusion: str = "mean"
) -> torch.Tensor:
    """Rollout over all TimeSformer layers: (B, N, N), rows summing to 1 (see ``timesformer_layer_mixing``)."""
    if len(spatial) != len(temporal) or not spatial:
        raise ValueError(f"need as many spatial as temporal attentions (>0), got {len(spatial)} and {len(temporal)}")
    rollout = None
    for space, time in zip(spatial, temporal):
        layer = timesformer_layer_mixing(space, time, num_frames, head_fusion)
        rollout = layer if rollout is None else layer @ rollout
    return rollout.float()


@contextlib.contextmanager
def _capture_temporal_attentions(model: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collects TimeSformer's temporal attention probabilities, which the library never returns.

    The layer calls ``temporal_attention(x)`` without ``output_attentions``; a pre-hook asks for the weights and a
    forward hook keeps them (the layer reads only the first output, so the extra one changes nothing).
    """
    captured: list[torch.Tensor] = []
    handles = []
    for layer in model.modules():
        attention = getattr(layer, "temporal_attention", None)
        if attention is None or not isinstance(attention, torch.nn.Module):
            continue

        def ask(module, args, kwargs):
            return args, {**kwargs, "output_attentions": True}

        def keep(module, args, kwargs, output):
            captured.append(output[1])

        handles.append(attention.register_forward_pre_hook(ask, with_kwargs=True))
        handles.append(attention.register_forward_hook(keep, with_kwargs=True))
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def _eager_attention(model: torch.nn.Module) -> Iterator[None]:
    """SDPA returns no attention weights: run eagerly for the duration, then restore the implementation."""
    config = model.config
    before = getattr(config, "_attn_implementation", None)
    switch = before not in (None, "eager")
    if switch:
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switch:
            model.set_attn_implementation(before)


def _grid(config, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
    patch = config.patch_size
    tubelet = getattr(config, "tubelet_size", 1)
    return num_frames // tubelet, height // patch, width // patch


def _normalise(heatmap: torch.Tensor) -> torch.Tensor:
    """Scales each map of a (B, ...) batch to [0, 1] (a constant map becomes zeros)."""
    flat = heatmap.flatten(1)
    low = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - low
    return ((flat - low) / span.clamp_min(1e-12)).reshape(heatmap.shape)


@torch.no_grad()
def videomae_relevance(model: torch.nn.Module, pixel_values: torch.Tensor, head_fusion: str = "mean") -> torch.Tensor:
    """VideoMAE: relevance of each input token to the pooled output, (B, T/tubelet, H/p, W/p), summing to 1."""
    with _eager_attention(model):
        outputs = model(**model_inputs(model, pixel_values, output_attentions=True))
    rollout = attention_rollout(outputs.attentions, head_fusion)
    if getattr(model.config, "use_mean_pooling", True):
        relevance = rollout.mean(dim=1)  # the classifier sees the mean of all output tokens
    else:
        relevance = rollout[:, 0]
    batch, frames, _, height, width = pixel_values.shape
    return relevance.reshape(batch, *_grid(model.config, frames, height, width))


@torch.no_grad()
def timesformer_relevance(
    model: torch.nn.Module, pixel_values: torch.Tensor, head_fusion: str = "mean"
) -> torch.Tensor:
    """TimeSformer: relevance of each patch token to the CLS output, (B, T, H/p, W/p); with the CLS share, sums to 1.

    The CLS token's own share (its input embedding, the same for every video) is dropped, so the returned map
    sums to 1 minus that share.
    """
    with _eager_attention(model), _capture_temporal_attentions(model) as temporal:
        outputs = model(**model_inputs(model, pixel_values, output_attentions=True))
    batch, frames, _, height, width = pixel_values.shape
    rollout = timesformer_rollout(outputs.attentions, temporal, frames, head_fusion)
    _, rows, cols = _grid(model.config, frames, height, width)
    # tokens are ordered patch-major (1 + s*T + t): to (B, S, T) then (B, T, h, w)
    cls_row = rollout[:, 0, 1:].reshape(batch, rows * cols, frames)
    return cls_row.permute(0, 2, 1).reshape(batch, frames, rows, cols)


def cam_target_layer(model: torch.nn.Module) -> torch.nn.Module:
    """Grad-CAM's default layer: the last 3D feature map before the classifier.

    I3D: the backbone's last endpoint (Mixed_5c, the concatenation of its four branches). Other 3D CNNs: the last
    ``nn.Conv3d`` that is not a 1x1x1 classifier (whose channels are the classes).
    """
    backbone = getattr(model, "i3d", None)
    if backbone is not None and hasattr(backbone, "endpoints"):
        return backbone.endpoints()[-1][1]
    num_labels = getattr(getattr(model, "config", None), "num_labels", None)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv3d) and m.out_channels != num_labels]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no Conv3d layer for Grad-CAM; pass target_layer explicitly")
    return convs[-1]


def grad_cam(
    model: torch.nn.Module,
    pixel_values: torch.Tensor,
    target_class: int | Sequence[int] | None = None,
    target_layer: torch.nn.Module | None = None,
) -> torch.Tensor:
    """Grad-CAM on a 3D feature map: (B, T', H', W') non-negative maps (not normalised).

    ``model(pixel_values=...)`` must return ``.logits``; ``target_layer`` (default: ``cam_target_layer``) must output
    (B, C, T', H', W'). ``target_class``: class per video (default: the predicted one). Channel weights are the
    gradients of the class logit averaged over time and space (Selvaraju et al., 2017, extended to 3D).
    """
    layer = target_layer or cam_target_layer(model)
    stored: dict[str, torch.Tensor] = {}

    def keep(module, args, output):
        output.retain_grad()
        stored["features"] = output

    handle = layer.register_forward_hook(keep)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            # an input that needs grad keeps the graph even when every weight is frozen
            inputs = pixel_values.detach().requires_grad_(True)
            logits = model(**model_inputs(model, inputs)).logits
            if target_class is None:
                target = logits.argmax(dim=-1)
            else:
                target = torch.as_tensor(target_class, device=logits.device).reshape(-1).expand(logits.shape[0])
            model.zero_grad(set_to_none=True)
            logits.gather(1, target[:, None]).sum().backward()
    finally:
        handle.remove()
        model.train(was_training)
    features = stored["features"]
    if features.ndim != 5:
        raise ValueError(f"Grad-CAM target layer must output (B, C, T, H, W), got shape {tuple(features.shape)}")
    weights = features.grad.mean(dim=(2, 3, 4), keepdim=True)
    cam = F.relu((weights * features).sum(dim=1))
    model.zero_grad(set_to_none=True)
    return cam.detach()


def explain(model: torch.nn.Module, pixel_values: torch.Tensor, **kwargs) -> tuple[torch.Tensor, str]:
    """Heat maps (B, T', h, w) in [0, 1] and the method used, chosen from ``model.config.model_type``."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type == "videomae":
        return _normalise(videomae_relevance(model, pixel_values, **kwargs)), "attention rollout"
    if model_type == "timesformer":
        return _normalise(timesformer_relevance(model, pixel_values, **kwargs)), "attention rollout"
    return _normalise(grad_cam(model, pixel_values, **kwargs)), "Grad-CAM"


def upsample_heatmap(heatmap: torch.Tensor, num_frames: int, height: int, width: int) -> torch.Tensor:
    """(T', h, w) -> (num_frames, height, width): trilinear over time and space, kept in [min, max] of the input."""
    resized = F.interpolate(
        heatmap[None, None].float(), size=(num_frames, height, width), mode="trilinear", align_corners=False
    )[0, 0]
    return resized.clamp(float(heatmap.min()), float(heatmap.max()))
