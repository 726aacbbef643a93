"""Stochastic depth (drop path) for the transformer video classifiers, without touching their weights.

Every residual branch of block ``i`` (of ``L``) is zeroed for a whole sample with probability
``rate * i / (L - 1)`` (``torch.linspace(0, rate, L)``, the rule of Huang et al. 2016 as used by DeiT, VideoMAE
and transformers' own TimeSformer) and scaled by ``1 / keep`` otherwise, so its expectation is unchanged; outside
training it is the identity.

transformers' VideoMAE and ViViT have no stochastic depth. Rather than re-classing their layers, the branch outputs
are scaled by forward hooks placed just before each residual addition: no parameter, buffer or module is added,
so ``state_dict`` keys and values are exactly those of the library's model and checkpoints load both ways.
TimeSformer has a drop-path module in each block (``config.drop_path_rate``, Identity when 0); it is replaced by the
library's own module with the requested rate (parameter-free as well). I3D (Inception) has no residual blocks, so
a non-zero rate is an error there rather than a silent no-op.

The mask is drawn with torch's global generator on the branch's device, so activation checkpointing (which restores
the RNG state before recomputing, ``preserve_rng_state``) recomputes the same mask.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["drop_path_rates", "set_drop_path", "transformer_layers"]

# hook handles are kept on the model under this attribute, so a second call replaces the first
_HANDLES = "_drop_path_hook_handles"


def drop_path_rates(rate: float, num_layers: int) -> list[float]:
    """Per-block rates rising linearly from 0 (first block) to ``rate`` (last block)."""
    return [float(r) for r in torch.linspace(0.0, float(rate), num_layers)]


def transformer_layers(module: nn.Module) -> list[nn.Module]:
    """The blocks of a transformers encoder in forward order: the longest ``ModuleList`` of the library's
    ``GradientCheckpointingLayer`` inside ``module`` (``encoder.layer`` of VideoMAE / TimeSformer, ``layers`` of
    ViViT); empty for a network without such blocks (I3D). A factorised encoder (VideoPrism: ``spatial_layers``
    run over every frame, then ``temporal_layers``) gives both lists, in that order."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    spatial, temporal = getattr(module, "spatial_layers", None), getattr(module, "temporal_layers", None)
    if isinstance(spatial, nn.ModuleList) and isinstance(temporal, nn.ModuleList):
        return [*spatial, *temporal]

    best: list[nn.Module] = []
    for child in module.modules():
        if isinstance(child, nn.ModuleList) and len(child) > len(best):
            if all(isinstance(layer, GradientCheckpointingLayer) for layer in child):
                best = list(child)
    return best


class _BranchDrop:
    """Forward hook: per-sample drop of a residual branch output (first element when the module returns a tuple)."""

    def __init__(self, rate: float):
        self.rate = float(rate)

    def __call__(self, module: nn.Module, args, output):
        if not module.training or self.rate <= 0.0:
            return output
        if isinstance(output, tuple):
            return (self._drop(output[0]), *output[1:])
        return self._drop(output)

    def _drop(self, branch: torch.Tensor) -> torch.Tensor:
        keep = 1.0 - self.rate
        shape = (branch.shape[0],) + (1,) * (branch.ndim - 1)
        mask = torch.rand(shape, dtype=branch.dtype, device=branch.device).add_(keep).floor_()
        return branch * mask.div_(keep)


def _branch_modules(layer: nn.Module) -> list[nn.Module] | None:
    """Modules whose outputs are a block's residual branches, right before they are added; None if unknown."""
    name = type(layer).__name__
    if name.startswith("VideoMAELayer"):
        # attention branch: VideoMAEAttention's output is added to the input by the layer; MLP branch: the output
        # module adds the residual after its dropout, so the dropout's output is the branch
        return [layer.attention, layer.output.dropout]
    if name.startswith("VivitLayer"):
        # one dropout module is applied to both branches right before each addition (called twice per block)
        return [layer.dropout]
    return None


def set_drop_path(model: nn.Module, rate: float) -> list[float]:
    """Gives every residual block of ``model`` (a classifier or a bare backbone) stochastic depth up to ``rate``.

    Calling it again replaces the previous setting (``rate=0`` removes it). Returns the per-block rates.
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"drop_path_rate must be in [0, 1), got {rate}")
    for handle in getattr(model, _HANDLES, []):
        handle.remove()
    setattr(model, _HANDLES, [])
    layers = transformer_layers(model)
    if not layers:
        if rate > 0:
            raise ValueError(
                f"drop_path_rate={rate}: {type(model).__name__} has no residual transformer blocks to drop "
                "(I3D's Inception blocks are not residual); set drop_path_rate: 0"
            )
        return []
    rates = drop_path_rates(rate, len(layers))
    kind = type(layers[0]).__name__
    if kind.startswith("TimesformerLayer"):
        from transformers.models.timesformer.modeling_timesformer import TimesformerDropPath

        for layer, layer_rate in zip(layers, rates):
            module = TimesformerDropPath(layer_rate) if layer_rate > 0 else nn.Identity()
            layer.drop_path = module.train(layer.training)  # a new module must follow the model's mode
        return rates
    handles = []
    for layer, layer_rate in zip(layers, rates):
        branches = _branch_modules(layer)
        if branches is None:
            raise ValueError(
                f"drop_path_rate: no stochastic depth for {kind} blocks yet (supported: VideoMAE, TimeSformer, ViViT)"
            )
        if layer_rate > 0:
            handles += [branch.register_forward_hook(_BranchDrop(layer_rate)) for branch in branches]
    setattr(model, _HANDLES, handles)
    return rates
