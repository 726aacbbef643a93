"""Scaled-dot-product attention for transformers' TimeSformer, through the library's attention interface.

transformers ships TimeSformer with eager attention only (DESIGN fact 8): every block materialises the full
(batch, heads, tokens, tokens) probability matrix twice (temporal and spatial attention) and keeps it for backward.
This module lets both attentions of every block dispatch on ``config._attn_implementation`` through
``ALL_ATTENTION_FUNCTIONS``, the mechanism transformers 5 models use, so ``"sdpa"`` runs
``torch.nn.functional.scaled_dot_product_attention`` (fused flash / memory-efficient kernels) and ``"eager"`` runs
the library's own, unchanged code.

Two ways in:

- ``enable_timesformer_sdpa(model)`` converts an existing ``TimesformerModel`` / ``TimesformerForVideoClassification``
  in place (what ``get_model`` calls for ``attn_implementation: sdpa``). ``model.config._attn_implementation`` then
  selects the path at every forward, so ``enable_timesformer_sdpa(model, "eager")`` switches back.
- ``TimesformerSdpaForVideoClassification`` declares ``_supports_sdpa = True``, so the library's own checks accept
  ``from_pretrained(..., attn_implementation="sdpa" | "eager")`` and ``model.set_attn_implementation(...)``;
  SDPA is its default, as for VideoMAE.

No parameter or buffer is added, so state_dict keys are unchanged and checkpoints load either way. transformers does
not serialise ``_attn_implementation``: a checkpoint saved from an SDPA model loads into the plain library class as
eager, which computes the same function. Attention weights cannot come out of SDPA: a call with
``output_attentions=True`` computes the attentions it returns (the spatial ones, as the library does) eagerly.
"""

from __future__ import annotations

import torch
from transformers import TimesformerConfig, TimesformerForVideoClassification, TimesformerModel
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.timesformer.modeling_timesformer import TimesformerSelfAttention

from pipeline.compatibility import require

__all__ = [
    "TimesformerDispatchSelfAttention",
    "TimesformerSdpaForVideoClassification",
    "TimesformerSdpaModel",
    "enable_timesformer_sdpa",
]

_SUPPORTED = ("sdpa", "eager")


class TimesformerDispatchSelfAttention(TimesformerSelfAttention):
    """TimeSformer self-attention (same parameters) that runs the implementation named by its model's config."""

    # Encoder attention: the interface functions must not add a causal mask.
    is_causal = False

    def __init__(self, config: TimesformerConfig):
        super().__init__(config)
        # Shared with the model, so set_attn_implementation / enable_timesformer_sdpa reach every layer at once.
        self.config = config

    def forward(self, hidden_states: torch.Tensor, output_attentions: bool = False):
        implementation = self.config._attn_implementation
        if output_attentions or implementation in (None, "eager"):
            return super().forward(hidden_states, output_attentions)

        batch_size, num_tokens, hidden_size = hidden_states.shape
        head_dim = hidden_size // self.num_heads
        # (3, batch, heads, tokens, head_dim) views, no copy: SDPA takes strided inputs.
        qkv = self.qkv(hidden_states).reshape(batch_size, num_tokens, 3, self.num_heads, head_dim).permute(2, 0, 3, 1, 4)
        # This exact call in the module's source is also what PreTrainedModel._can_set_attn_implementation looks for
        # before letting set_attn_implementation switch the subclasses below.
        attention_function = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, None)
        context, _ = attention_function(
            self,
            qkv[0],
            qkv[1],
            qkv[2],
            None,
            dropout=self.attn_drop.p if self.training else 0.0,
            scaling=self.scale,
            is_causal=False,
        )
        # The interface returns (batch, tokens, heads, head_dim), the layout the eager path reshapes to.
        return (context.reshape(batch_size, num_tokens, hidden_size),)


def _convert_attention_modules(model: torch.nn.Module, config: TimesformerConfig) -> int:
    """Re-class every TimeSformer self-attention in ``model`` in place; returns how many there are."""
    count = 0
    for module in model.modules():
        if isinstance(module, TimesformerSelfAttention):
            if not isinstance(module, TimesformerDispatchSelfAttention):
                # Same parameters and buffers, new forward: weights, devices, dtypes and hooks stay as they are.
                module.__class__ = TimesformerDispatchSelfAttention
            module.config = config
            count += 1
    return count


def enable_timesformer_sdpa(model: torch.nn.Module, attn_implementation: str = "sdpa") -> torch.nn.Module:
    """Make every TimeSformer attention of ``model`` (temporal and spatial) run ``attn_implementation``.

    ``model`` is a ``TimesformerModel``, a ``TimesformerForVideoClassification`` or a subclass. It is changed in place
    and returned. ``attn_implementation`` is ``"sdpa"`` or ``"eager"``; the result is numerically the library's eager
    TimeSformer either way (float32: within 1e-5).
    """
    if attn_implementation not in _SUPPORTED:
        raise ValueError(
            f"pipeline/models/timesformer_sdpa.py: attn_implementation must be one of {_SUPPORTED}, "
            f"got {attn_implementation!r}"
        )
    config = getattr(model, "config", None)
    if not isinstance(config, TimesformerConfig):
        raise TypeError(
            "pipeline/models/timesformer_sdpa.py: enable_timesformer_sdpa needs a TimeSformer model "
            f"(config of type TimesformerConfig), got {type(model).__name__} with config {type(config).__name__}"
        )
    if _convert_attention_modules(model, config) == 0:
        raise TypeError(
            f"pipeline/models/timesformer_sdpa.py: {type(model).__name__} holds no TimesformerSelfAttention module"
        )
    if config.output_attentions and attn_implementation != "eager":
        # The config setter refuses SDPA with output_attentions on; attentions are still returned per call.
        config.output_attentions = False
    # The internal attribute, as PreTrainedModel.set_attn_implementation writes it: no recursion, no re-validation.
    require("config_attn_implementation")
    config._attn_implementation_internal = attn_implementation
    return model


class _DispatchingTimesformer:
    """Mixin for the library's TimeSformer classes: declares SDPA support and converts the attentions at __init__."""

    _supports_sdpa = True

    def __init__(self, config: TimesformerConfig):
        require("config_attn_implementation")
        requested = config._attn_implementation
        # The library class builds a plain TimesformerModel inside, whose __init__ refuses anything but eager;
        # build under eager, then validate the request the library's way (None -> SDPA) for this class.
        config._attn_implementation_internal = "eager"
        super().__init__(config)
        self.config._attn_implementation_internal = self._check_and_adjust_attn_implementation(
            requested, is_init_check=True
        )
        _convert_attention_modules(self, self.config)


class TimesformerSdpaModel(_DispatchingTimesformer, TimesformerModel):
    """``TimesformerModel`` whose attentions follow ``config._attn_implementation`` (SDPA by default)."""


class TimesformerSdpaForVideoClassification(_DispatchingTimesformer, TimesformerForVideoClassification):
    """``TimesformerForVideoClassification`` whose attentions follow ``config._attn_implementation``.

    The class flag lets ``from_pretrained(..., attn_implementation=...)`` and ``set_attn_implementation`` validate
    and set the choice the library's way (default: SDPA). Checkpoints are interchangeable with the library class.
    """
