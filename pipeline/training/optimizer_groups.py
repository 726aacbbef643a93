"""Optimizer parameter groups: weight-decay exclusions and layer-wise learning-rate decay (LLRD).

Weight decay: besides transformers' default exclusions (biases and LayerNorm weights), no decay on any 1-D
parameter (normalisation scales and shifts of every kind, I3D's BatchNorm included) and on the learned token and
position embeddings (cls token, position / time embeddings, query tokens), as BEiT, VideoMAE and timm do.

Layer-wise lr decay (BEiT; VideoMAE fine-tunes with 0.75): with ``L`` blocks, the embeddings have depth 0, block
``i`` (0-based) depth ``i + 1``, and everything after the last block (final norm, pooler, head) depth ``L + 1``;
a parameter's learning rate is ``base_lr x decay ** (L + 1 - depth)``, so the head trains at the base rate and the
patch embedding at ``decay ** (L + 1)`` of it. The blocks are the library's transformer layers for VideoMAE,
TimeSformer, ViViT and any transformers encoder of that kind, and the Inception blocks for I3D (its stem
convolutions count as the embedding, depth 0). The learning-rate schedule multiplies every group's rate by the
same factor, so the ratios hold throughout training.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from torch import nn

from pipeline.models.drop_path import transformer_layers
from pipeline.models.probe import backbone_of

# last name component of learned tokens / embeddings that get no weight decay
NO_DECAY_TOKENS = frozenset(
    {"cls_token", "mask_token", "dist_token", "pos_embed", "position_embeddings", "time_embeddings",
     "temporal_embeddings", "query_tokens"}
)


def is_no_decay(name: str, parameter: nn.Parameter) -> bool:
    """True for parameters that get no weight decay beyond transformers' own list (see the module docstring)."""
    return parameter.ndim <= 1 or name.rsplit(".", 1)[-1] in NO_DECAY_TOKENS


def decay_parameter_names(model: nn.Module, library_names: Iterable[str]) -> list[str]:
    """``library_names`` (the Trainer's ``get_decay_parameter_names``) without the exclusions above."""
    parameters = dict(model.named_parameters())
    return [name for name in library_names if name in parameters and not is_no_decay(name, parameters[name])]


def parameter_depths(model: nn.Module) -> tuple[dict[str, int], int]:
    """(depth of every parameter name, depth of the head = number of blocks + 1) as described above."""
    backbone = backbone_of(model)
    depth_of: dict[int, int] = {}
    if hasattr(backbone, "endpoints"):  # I3D: endpoints in forward order; each Inception block is one level
        depth = 0
        for name, module in backbone.endpoints():
            if name.startswith("Mixed"):
                depth += 1
            for parameter in module.parameters():
                depth_of[id(parameter)] = depth
        top = depth + 1
    else:
        layers = transformer_layers(backbone)
        if not layers:
            raise ValueError(
                f"layer_decay: cannot tell the blocks of {type(backbone).__name__} (no transformer layers, no "
                "Inception endpoints); set layer_decay: 1.0"
            )
        top = len(layers) + 1
        for index, layer in enumerate(layers):
            for parameter in layer.parameters():
                depth_of[id(parameter)] = index + 1
        for name, parameter in backbone.named_parameters():
            # outside the blocks: embeddings come first, final norms / poolers of the backbone after the last block
            depth_of.setdefault(id(parameter), 0 if "embed" in name else top)
    return {name: depth_of.get(id(p), top) for name, p in model.named_parameters()}, top


def layerwise_param_groups(
    model: nn.Module, decay_names: Iterable[str], learning_rate: float, weight_decay: float, layer_decay: float
) -> list[dict]:
    """Optimizer groups, one per (depth, decay or not), head first (the Trainer logs the first group's rate).

    Each group has ``lr`` = ``learning_rate x layer_decay ** (top - depth)`` and also records ``lr_scale`` and
    ``layer_depth``. Parameters that do not require gradients (a frozen backbone) are left out, as the Trainer does.
    """
    if not 0.0 < layer_decay <= 1.0:
        raise ValueError(f"layer_decay must be in (0, 1], got {layer_decay}")
    depths, top = parameter_depths(model)
    decay_names = set(decay_names)
    buckets: dict[tuple[int, bool], list] = defaultdict(list)
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            buckets[(depths[name], name in decay_names)].append(parameter)
    groups = []
    for (depth, decays), parameters in sorted(buckets.items(), key=lambda item: (-item[0][0], not item[0][1])):
        scale = layer_decay ** (top - depth)
        groups.append({
            "params": parameters,
            "weight_decay": weight_decay if decays else 0.0,
            "lr": learning_rate * scale,
            "lr_scale": scale,
            "layer_depth": depth,
        })
    return groups


def create_layerwise_optimizer(trainer, model: nn.Module, layer_decay: float):
    """The Trainer's optimizer class and arguments (``optim``, betas, ``optim_args``, ...) over layer-wise groups."""
    from transformers.trainer_optimizer import is_optimizer_factory

    optimizer_cls, optimizer_kwargs = trainer.get_optimizer_cls_and_kwargs(trainer.args, model)
    if is_optimizer_factory(optimizer_cls) or {"params", "model", "optimizer_dict"} & set(optimizer_kwargs):
        raise ValueError(f"layer_decay: optim={trainer.args.optim} builds its own parameter groups; use layer_decay: 1.0")
    groups = layerwise_param_groups(
        model, trainer.get_decay_parameter_names(model), trainer.args.learning_rate, trainer.args.weight_decay,
        layer_decay,
    )
    return optimizer_cls(groups, **optimizer_kwargs)
