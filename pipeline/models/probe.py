"""Probes: a classification head trained over a (usually frozen) video backbone.

- ``VideoProbeForVideoClassification``: an attentive probe as used in the frozen evaluations of V-JEPA (Bardes et
  al., 2024) and V-JEPA 2 (Assran et al., 2025): learned query tokens cross-attend to all of the backbone's output
  tokens (a pre-norm transformer block with cross-attention and an MLP), the queries are averaged and a linear layer
  gives the logits. Its config holds the backbone's config, so ``from_pretrained`` rebuilds backbone and probe, and
  ``pipeline()`` / evaluation read the clip sampling from its top level as for any model of this project.

Any backbone that ``AutoModel.from_config`` builds and whose output is ``last_hidden_state`` works: tokens
(batch, tokens, hidden) from VideoMAE / TimeSformer / ViViT, or a feature map (batch, channels, time, height, width)
from I3D, read as one token per position. This file imports only torch and transformers (Hub remote code).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import ImageClassifierOutput

# what a trained model of this project carries at the top of its config (clip sampling, labels are standard)
SAMPLING_FIELDS = ("num_frames", "frame_sampling_rate", "frame_sampling_strategy", "short_video", "image_size")


def backbone_of(model: nn.Module) -> nn.Module:
    """The feature extractor of a transformers classifier (``model.<base_model_prefix>``)."""
    prefix = getattr(model, "base_model_prefix", "")
    backbone = getattr(model, prefix, None) if prefix else None
    if not isinstance(backbone, nn.Module) or backbone is model:
        raise ValueError(f"{type(model).__name__} has no separate backbone (base_model_prefix={prefix!r})")
    return backbone


class VideoProbeConfig(PretrainedConfig):
    """A probe over a backbone: ``backbone_config`` (any ``AutoConfig``), and the attentive pooler's shape.

    Args:
        backbone_config: the backbone's config (or its dict, with ``model_type``).
        probe_num_queries: learned query tokens (V-JEPA: 1; averaged when more).
        probe_num_heads: attention heads of the pooler (default: 16 when they divide the width, as in V-JEPA's
            probes, else the backbone's head count, else the largest divisor up to 16).
        probe_mlp_ratio: MLP width over the model width (4, as in a ViT block).
        initializer_range: std of the truncated-normal initialisation of the probe (0.02, as in V-JEPA).
    """

    model_type = "video_probe"

    def __init__(
        self,
        backbone_config=None,
        probe_num_queries: int = 1,
        probe_num_heads: int | None = None,
        probe_mlp_ratio: float = 4.0,
        initializer_range: float = 0.02,
        **kwargs,
    ):
        if isinstance(backbone_config, dict):
            backbone_config = dict(backbone_config)
            backbone_config = AutoConfig.for_model(backbone_config.pop("model_type"), **backbone_config)
        self.backbone_config = backbone_config
        self.probe_num_queries = int(probe_num_queries)
        self.probe_mlp_ratio = float(probe_mlp_ratio)
        self.initializer_range = initializer_range
        if probe_num_heads is None and backbone_config is not None:
            probe_num_heads = _default_heads(_feature_size(backbone_config), backbone_config)
        self.probe_num_heads = probe_num_heads
        super().__init__(**kwargs)

    def to_dict(self):
        output = super().to_dict()
        if isinstance(self.backbone_config, PretrainedConfig):
            output["backbone_config"] = self.backbone_config.to_dict()
        return output

    @property
    def hidden_size(self) -> int:
        """Width of the backbone's output tokens, which the pooler keeps."""
        return _feature_size(self.backbone_config)


def _feature_size(config: PretrainedConfig) -> int:
    size = getattr(config, "hidden_size", None)
    if not size:
        raise ValueError(f"probe.py: backbone config {type(config).__name__} has no hidden_size")
    return int(size)


def _default_heads(width: int, config: PretrainedConfig) -> int:
    if width % 16 == 0:
        return 16
    heads = getattr(config, "num_attention_heads", None)
    if heads and width % heads == 0:
        return int(heads)
    return max(h for h in range(1, 17) if width % h == 0)


class AttentivePooler(nn.Module):
    """Learned queries cross-attend to the tokens (pre-norm), then an MLP; returns the queries' mean (B, D)."""

    def __init__(self, width: int, num_heads: int, num_queries: int = 1, mlp_ratio: float = 4.0):
        super().__init__()
        if width % num_heads:
            raise ValueError(f"probe.py: {num_heads} heads do not divide the width {width}")
        self.query_tokens = nn.Parameter(torch.zeros(1, num_queries, width))
        self.norm_tokens = nn.LayerNorm(width, eps=1e-6)
        self.norm_queries = nn.LayerNorm(width, eps=1e-6)
        self.cross_attention = nn.MultiheadAttention(width, num_heads, batch_first=True)
        self.norm_mlp = nn.LayerNorm(width, eps=1e-6)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        keys = self.norm_tokens(tokens)
        queries = self.query_tokens.expand(tokens.shape[0], -1, -1)
        attended, _ = self.cross_attention(self.norm_queries(queries), keys, keys, need_weights=False)
        pooled = queries + attended
        pooled = pooled + self.mlp(self.norm_mlp(pooled))
        return pooled.mean(dim=1)


class VideoProbeForVideoClassification(PreTrainedModel):
    """Backbone + attentive probe; ``pixel_values`` (B, T, C, H, W) as for every model of this project."""

    config_class = VideoProbeConfig
    config: VideoProbeConfig
    base_model_prefix = "backbone"
    main_input_name = "pixel_values"
    input_modalities = ("video",)
    supports_gradient_checkpointing = True

    def __init__(self, config: VideoProbeConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.backbone = AutoModel.from_config(config.backbone_config)
        width = config.hidden_size
        self.pooler = AttentivePooler(width, config.probe_num_heads, config.probe_num_queries, config.probe_mlp_ratio)
        self.classifier = nn.Linear(width, config.num_labels)
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module):
        # the probe's own modules; transformers initialises the backbone (a PreTrainedModel) with its own rules
        std = self.config.initializer_range
        if isinstance(module, AttentivePooler):
            _trunc_normal_(module.query_tokens, std)
        elif isinstance(module, nn.Linear):
            _trunc_normal_(module.weight, std)
            if module.bias is not None and not getattr(module.bias, "_is_hf_initialized", False):
                module.bias.zero_()
        elif isinstance(module, nn.LayerNorm):
            if not getattr(module.weight, "_is_hf_initialized", False):
                module.weight.fill_(1.0)
                module.bias.zero_()
        elif isinstance(module, nn.MultiheadAttention):
            _trunc_normal_(module.in_proj_weight, std)
            if not getattr(module.in_proj_bias, "_is_hf_initialized", False):
                module.in_proj_bias.zero_()

    def tokens(self, pixel_values: torch.Tensor, **kwargs) -> torch.Tensor:
        """The backbone's output as tokens (B, N, D)."""
        hidden = self.backbone(pixel_values=pixel_values, return_dict=True).last_hidden_state
        if hidden.dim() == 5:  # a convolutional feature map (B, C, T, H, W): one token per position
            hidden = hidden.flatten(2).transpose(1, 2)
        return hidden

    def forward(self, pixel_values: torch.Tensor = None, labels: torch.Tensor = None, return_dict: bool = None,
                **kwargs):
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        logits = self.classifier(self.pooler(self.tokens(pixel_values)))
        loss = None
        if labels is not None:
            labels = labels.to(logits.device)
            if labels.dtype.is_floating_point:  # class probabilities (e.g. mixed targets)
                loss = torch.sum(-labels * torch.log_softmax(logits, dim=-1), dim=-1).mean()
            else:
                loss = nn.functional.cross_entropy(logits, labels)
        if not return_dict:
            return (loss, logits) if loss is not None else (logits,)
        return ImageClassifierOutput(loss=loss, logits=logits)


def _trunc_normal_(tensor: torch.Tensor, std: float) -> None:
    if getattr(tensor, "_is_hf_initialized", False):
        return
    # normal(0, std) cut at 2 std by inverse CDF (no rejection loop)
    bound = math.erf(2.0 / math.sqrt(2.0))
    tensor.uniform_(-bound, bound).erfinv_().mul_(std * math.sqrt(2.0)).clamp_(-2 * std, 2 * std)


def attentive_probe(model: PreTrainedModel, **probe_kwargs) -> VideoProbeForVideoClassification:
    """Replaces ``model``'s head by an attentive probe over the same backbone module (its weights are kept).

    Labels and the clip-sampling fields of ``model.config`` move to the probe's config.
    """
    config = model.config
    backbone = backbone_of(model)
    top = {
        "num_labels": config.num_labels,
        "id2label": dict(config.id2label),
        "label2id": dict(config.label2id),
    }
    top.update({name: getattr(config, name) for name in SAMPLING_FIELDS if hasattr(config, name)})
    probe_config = VideoProbeConfig(backbone_config=backbone.config, **probe_kwargs, **top)
    probe = VideoProbeForVideoClassification(probe_config)
    # a fresh backbone of the same class: every key matches (strict), the weights become the given model's
    probe.backbone.load_state_dict(backbone.state_dict())
    return probe.to(next(model.parameters()).device)


# Saving writes this file next to the weights and names it in `auto_map` (Hub remote code).
VideoProbeConfig.register_for_auto_class()
VideoProbeForVideoClassification.register_for_auto_class("AutoModelForVideoClassification")
