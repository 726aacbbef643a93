"""Frozen backbones (probing) and the parameters a classifier never uses.

``freeze_backbone(model)``: the protocol of V-JEPA 2's evaluations (and of linear probing in general): the
pretrained backbone stays fixed (no gradients, and in eval mode, so dropout, drop-path and BatchNorm statistics
do not change while the head trains) and only the head learns: for V-JEPA 2 the attentive pooler (3 self-attention
blocks and a cross-attention block with one learned query, the 4-block attentive probe of the paper) and the
linear classifier; for the other families their classifier (and VideoMAE's ``fc_norm``).

``freeze_unused(model)``: V-JEPA 2's classifier carries the self-supervised predictor inside its backbone module
but never runs it (``skip_predictor=True``); left trainable it would get no gradient, which costs optimizer
state and stops DDP ("parameters that did not receive grad").
"""

from __future__ import annotations

import logging

import torch

from .probe import backbone_of  # defined there: probe.py ships as Hub remote code and imports nothing of ours

logger = logging.getLogger(__name__)

# modules of a classifier's backbone that its forward never calls
UNUSED_BY_CLASSIFIER = {"vjepa2": ("predictor",)}


def _stay_in_eval(module: torch.nn.Module) -> None:
    """``module.train(True)`` (the Trainer calls it every step) leaves ``module`` and its children in eval mode."""
    plain_train = type(module).train

    def train(mode: bool = True) -> torch.nn.Module:
        return plain_train(module, False)

    module.train = train  # instance attribute: nn.Module.train of the parent calls it for this child
    module.eval()


def freeze_backbone(model: torch.nn.Module) -> list[str]:
    """Freezes the backbone (no gradients, eval mode); returns the names of the parameters left to train."""
    backbone = backbone_of(model)
    backbone.requires_grad_(False)
    _stay_in_eval(backbone)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        raise ValueError(f"{type(model).__name__}: nothing left to train once the backbone is frozen")
    total = sum(p.numel() for p in model.parameters())
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info("backbone frozen: %d of %d parameters train (%s)", count, total,
                ", ".join(sorted({n.split(".")[0] for n in trainable})))
    return trainable


def freeze_unused(model: torch.nn.Module) -> list[str]:
    """Turns off gradients of backbone modules the classifier never calls; returns their names."""
    names = UNUSED_BY_CLASSIFIER.get(getattr(model.config, "model_type", None), ())
    if not names:
        return []
    backbone = backbone_of(model)
    frozen = []
    for name in names:
        module = getattr(backbone, name, None)
        if module is not None:
            module.requires_grad_(False)
            frozen.append(f"{model.base_model_prefix}.{name}")
    return frozen


__all__ = ["backbone_of", "freeze_backbone", "freeze_unused", "UNUSED_BY_CLASSIFIER"]
