"""What a video classifier returns: logits of shape (batch, classes), whichever family it is.

transformers' ``VideoPrismForVideoClassification`` (5.25) returns logits of shape (batch, 1, classes): its
attention-pooling head keeps the axis of its single learned query, and its own loss flattens it away. Everything
here (the training loss, the evaluation's view averaging, ``pipeline()``, ONNX export, the app and the stream) reads
``logits`` as (batch, classes), so ``flatten_single_query_logits`` adds a forward hook that drops that axis.
``get_model``, ``load_trained`` and the ``pipeline()`` class install it (a Hub copy run without this package gets it
from the pipeline class). The hook changes nothing for any other output shape;
``tests/test_videoprism.py`` fails once transformers itself returns (batch, classes), so this can go then.

Shipped as Hub remote code with the pipeline: imports only torch.
"""

from __future__ import annotations

from typing import Any

import torch

# model types whose classifier returns (batch, 1, classes)
SINGLE_QUERY_LOGITS = ("videoprism_vision_model",)
_HOOKED = "_flattens_single_query_logits"


def _flatten(module: torch.nn.Module, args: Any, output: Any) -> Any:
    logits = getattr(output, "logits", None)
    if torch.is_tensor(logits) and logits.dim() == 3 and logits.shape[1] == 1:
        output.logits = logits[:, 0]
    return output


def flatten_single_query_logits(model: torch.nn.Module) -> bool:
    """Makes ``model`` return (batch, classes) logits when its family returns (batch, 1, classes); returns whether
    a hook was added (once per model)."""
    model = getattr(model, "module", model)  # DDP / accelerate wrappers
    if getattr(getattr(model, "config", None), "model_type", None) not in SINGLE_QUERY_LOGITS:
        return False
    if getattr(model, _HOOKED, False):
        return False
    model.register_forward_hook(_flatten)
    setattr(model, _HOOKED, True)
    return True


__all__ = ["flatten_single_query_logits", "SINGLE_QUERY_LOGITS"]
