"""PyTorch I3D: the Inflated 3D ConvNet of "Quo Vadis, Action Recognition?" (Carreira & Zisserman, 2017).

The network is the RGB stream exactly as DeepMind's kinetics-i3d (Sonnet) builds it: Inception-v1 with every
kernel made 3D, TensorFlow "SAME" padding (asymmetric, computed from the input size), BatchNorm with eps 1e-3,
a spatio-temporal average pool of 2x7x7 (VALID, stride 1), dropout, a 1x1x1 convolution giving logits per
time step, and the logits averaged over time. With the converted Kinetics-400 weights it reproduces
DeepMind's outputs.

Module names follow DeepMind's endpoint names (`conv3d_1a_7x7`, `mixed_4c.branch_1.conv3d_0b_3x3`, ...),
which keeps the checkpoint conversion a readable one-to-one mapping. This file imports only torch and
transformers (and its sibling configuration, relatively) so that `save_pretrained` can ship it as remote code.
"""

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import ImageClassifierOutput
from transformers.utils import ModelOutput

from .configuration_i3d import I3DConfig

try:  # transformers >= 5: init functions that leave weights loaded from a checkpoint alone
    from transformers import initialization as init
except ImportError:  # pragma: no cover - older transformers
    from torch.nn import init

# Endpoint names of DeepMind's network in forward order; `hidden_states` holds one tensor per name.
ENDPOINTS = (
    "Conv3d_1a_7x7",
    "MaxPool3d_2a_3x3",
    "Conv3d_2b_1x1",
    "Conv3d_2c_3x3",
    "MaxPool3d_3a_3x3",
    "Mixed_3b",
    "Mixed_3c",
    "MaxPool3d_4a_3x3",
    "Mixed_4b",
    "Mixed_4c",
    "Mixed_4d",
    "Mixed_4e",
    "Mixed_4f",
    "MaxPool3d_5a_2x2",
    "Mixed_5b",
    "Mixed_5c",
)
MIXED_ENDPOINTS = tuple(name for name in ENDPOINTS if name.startswith("Mixed"))

# Window of the final average pool, (time, height, width), VALID padding, stride 1.
FINAL_POOL_WINDOW = (2, 7, 7)


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple:
    """(before, after) padding of one dimension under TensorFlow's "SAME" rule: ceil(size / stride) outputs,
    with the odd padding element placed after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _same_pads(x: torch.Tensor, kernel: tuple, stride: tuple) -> tuple:
    """F.pad argument (last dimension first) for "SAME" padding of the three trailing dimensions of x."""
    pads = []
    for size, k, s in zip(reversed(x.shape[-3:]), reversed(kernel), reversed(stride)):
        pads.extend(tf_same_padding(size, k, s))
    return tuple(pads)


def _is_symmetric(kernel: tuple, stride: tuple) -> bool:
    # With stride 1 and odd kernels "SAME" pads (k - 1) / 2 on both sides whatever the input size, so the
    # layer's own padding does it without materialising a padded copy of the input.
    return all(s == 1 and k % 2 == 1 for k, s in zip(kernel, stride))


def _truncated_normal_(tensor: torch.Tensor, std: float) -> torch.Tensor:
    """Normal(0, std) cut at two standard deviations, by inverse-CDF sampling (torch's trunc_normal_ rejects
    and redraws: seconds for I3D on a CPU). Leaves alone a tensor that transformers marks as loaded."""
    if getattr(tensor, "_is_hf_initialized", False):
        return tensor
    bound = math.erf(2.0 / math.sqrt(2.0))  # erf-space image of +-2 standard deviations
    with torch.no_grad():
        return tensor.uniform_(-bound, bound).erfinv_().mul_(std * math.sqrt(2.0)).clamp_(-2 * std, 2 * std)


class I3DBatchNorm3d(nn.BatchNorm3d):
    """BatchNorm3d whose scale (gamma) is optional: DeepMind's network learns only the offset (beta).

    Without a learned scale, ``weight`` is a constant buffer of ones that is not saved (state_dict keys are those
    of a scale-free checkpoint): cuDNN's batch norm rejects ``weight=None`` with a bias in the backward pass
    ("tensor does not have a device", measured on an H200), where the CPU kernel accepts it.
    """

    def __init__(self, num_features: int, eps: float, momentum: float, scale: bool):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=True)
        if not scale:
            del self.weight
            self.register_buffer("weight", torch.ones(num_features), persistent=False)


class I3DUnit3D(nn.Module):
    """Sonnet's Unit3D: 3D convolution with "SAME" padding and no bias, BatchNorm, ReLU."""

    def __init__(self, config: I3DConfig, in_channels: int, out_channels: int, kernel, stride=(1, 1, 1)):
        super().__init__()
        self.kernel = tuple(kernel)
        self.stride = tuple(stride)
        self.static_padding = _is_symmetric(self.kernel, self.stride)
        padding = tuple(k // 2 for k in self.kernel) if self.static_padding else 0
        self.conv = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, padding, bias=False)
        self.bn = I3DBatchNorm3d(
            out_channels, config.batch_norm_eps, config.batch_norm_momentum, config.batch_norm_scale
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.static_padding:
            x = F.pad(x, _same_pads(x, self.kernel, self.stride))
        return F.relu(self.bn(self.conv(x)), inplace=True)


class I3DMaxPool3d(nn.Module):
    """Max pool with TensorFlow "SAME" padding; padded positions never win (they count as -inf)."""

    def __init__(self, kernel: tuple, stride: tuple):
        super().__init__()
        self.kernel = tuple(kernel)
        self.stride = tuple(stride)
        self.static_padding = _is_symmetric(self.kernel, self.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.static_padding:
            # PyTorch pads max pools implicitly with -inf, as TensorFlow does.
            return F.max_pool3d(x, self.kernel, self.stride, padding=tuple(k // 2 for k in self.kernel))
        x = F.pad(x, _same_pads(x, self.kernel, self.stride), value=float("-inf"))
        return F.max_pool3d(x, self.kernel, self.stride)


class I3DInceptionModule(nn.Module):
    """Inception block with every kernel inflated to 3D: four branches concatenated along channels."""

    def __init__(self, config: I3DConfig, in_channels: int, widths: list):
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3 = (config.scaled(w) for w in widths)
        self.branch_0 = nn.Sequential(
            OrderedDict(conv3d_0a_1x1=I3DUnit3D(config, in_channels, b0, (1, 1, 1)))
        )
        self.branch_1 = nn.Sequential(
            OrderedDict(
                conv3d_0a_1x1=I3DUnit3D(config, in_channels, b1a, (1, 1, 1)),
                conv3d_0b_3x3=I3DUnit3D(config, b1a, b1b, (3, 3, 3)),
            )
        )
        self.branch_2 = nn.Sequential(
            OrderedDict(
                conv3d_0a_1x1=I3DUnit3D(config, in_channels, b2a, (1, 1, 1)),
                conv3d_0b_3x3=I3DUnit3D(config, b2a, b2b, (3, 3, 3)),
            )
        )
        self.branch_3 = nn.Sequential(
            OrderedDict(
                maxpool3d_0a_3x3=I3DMaxPool3d((3, 3, 3), (1, 1, 1)),
                conv3d_0b_1x1=I3DUnit3D(config, in_channels, b3, (1, 1, 1)),
            )
        )
        self.out_channels = b0 + b1b + b2b + b3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch_0(x), self.branch_1(x), self.branch_2(x), self.branch_3(x)], dim=1)


@dataclass
class I3DModelOutput(ModelOutput):
    """Outputs of `I3DModel`.

    last_hidden_state: Mixed_5c features, (batch, channels, time, height, width).
    pooler_output: the pooled features averaged over all positions, (batch, channels).
    pooled_features: the 2x7x7 average-pooled map the logits convolution reads, (batch, channels, t, h, w);
        t, h, w are 1 less than the Mixed_5c sizes where those exceed the window (h = w = 1 at 224 pixels).
    hidden_states: one tensor per endpoint in ENDPOINTS, each (batch, channels, time, height, width).
    """

    last_hidden_state: torch.FloatTensor = None
    pooler_output: torch.FloatTensor = None
    pooled_features: torch.FloatTensor = None
    hidden_states: tuple = None


class I3DPreTrainedModel(PreTrainedModel):
    """Weight initialisation and loading conventions shared by the I3D models."""

    config_class = I3DConfig
    config: I3DConfig
    base_model_prefix = "i3d"
    main_input_name = "pixel_values"
    input_modalities = ("video",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["I3DInceptionModule"]

    @torch.no_grad()
    def _init_weights(self, module):
        if isinstance(module, nn.Conv3d):
            # Sonnet's default initializer: truncated normal, std 1/sqrt(fan_in), cut at two deviations.
            fan_in = module.in_channels * math.prod(module.kernel_size)
            _truncated_normal_(module.weight, std=1.0 / math.sqrt(fan_in))
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm3d):
            if module.weight is not None:
                init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            if module.num_batches_tracked is not None:
                init.zeros_(module.num_batches_tracked)


class I3DModel(I3DPreTrainedModel):
    """The I3D backbone: pixel_values (B, T, C, H, W) -> Mixed_5c features and their 2x7x7 average pool."""

    def __init__(self, config: I3DConfig):
        super().__init__(config)
        c1, c2, c3 = (config.scaled(c) for c in config.stem_channels)
        layers = OrderedDict()
        layers["Conv3d_1a_7x7"] = I3DUnit3D(config, config.num_channels, c1, (7, 7, 7), (2, 2, 2))
        layers["MaxPool3d_2a_3x3"] = I3DMaxPool3d((1, 3, 3), (1, 2, 2))
        layers["Conv3d_2b_1x1"] = I3DUnit3D(config, c1, c2, (1, 1, 1))
        layers["Conv3d_2c_3x3"] = I3DUnit3D(config, c2, c3, (3, 3, 3))
        layers["MaxPool3d_3a_3x3"] = I3DMaxPool3d((1, 3, 3), (1, 2, 2))
        channels = c3
        mixed_widths = dict(zip(MIXED_ENDPOINTS, config.mixed_channels))
        for name in ENDPOINTS[5:]:
            if name == "MaxPool3d_4a_3x3":
                layers[name] = I3DMaxPool3d((3, 3, 3), (2, 2, 2))
            elif name == "MaxPool3d_5a_2x2":
                layers[name] = I3DMaxPool3d((2, 2, 2), (2, 2, 2))
            else:
                layers[name] = I3DInceptionModule(config, channels, mixed_widths[name])
                channels = layers[name].out_channels
        for name, layer in layers.items():
            self.add_module(name.lower(), layer)
        self.num_features = channels
        self.gradient_checkpointing = False
        self.post_init()

    def endpoints(self):
        """(DeepMind endpoint name, module) pairs in forward order."""
        return [(name, getattr(self, name.lower())) for name in ENDPOINTS]

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool = None,
        return_dict: bool = None,
        **kwargs,
    ):
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if pixel_values.dim() != 5 or pixel_values.shape[2] != self.config.num_channels:
            raise ValueError(
                "modeling_i3d.py: pixel_values must be (batch, frames, channels, height, width) with "
                f"{self.config.num_channels} channels, got shape {tuple(pixel_values.shape)}"
            )
        hidden = pixel_values.permute(0, 2, 1, 3, 4)  # (B, C, T, H, W) for Conv3d
        hidden_states = () if output_hidden_states else None
        checkpointing = self.gradient_checkpointing and self.training
        for _, layer in self.endpoints():
            if checkpointing:
                hidden = self._gradient_checkpointing_func(layer.__call__, hidden)
            else:
                hidden = layer(hidden)
            if output_hidden_states:
                hidden_states = hidden_states + (hidden,)

        # DeepMind pools 2x7x7 VALID with stride 1; a smaller map (short or low-resolution clips) is pooled
        # whole along the dimensions that are too small.
        window = tuple(min(w, s) for w, s in zip(FINAL_POOL_WINDOW, hidden.shape[-3:]))
        pooled_features = F.avg_pool3d(hidden, window, stride=1)
        pooler_output = pooled_features.mean(dim=(2, 3, 4))

        if not return_dict:
            return tuple(v for v in (hidden, pooler_output, pooled_features, hidden_states) if v is not None)
        return I3DModelOutput(
            last_hidden_state=hidden,
            pooler_output=pooler_output,
            pooled_features=pooled_features,
            hidden_states=hidden_states,
        )


class I3DForVideoClassification(I3DPreTrainedModel):
    """I3D with DeepMind's head: dropout, a 1x1x1 convolution with bias giving logits at every pooled
    position, and the logits averaged over those positions (over time at 224 pixels)."""

    def __init__(self, config: I3DConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.i3d = I3DModel(config)
        self.dropout = nn.Dropout(config.dropout_prob)
        self.classifier = nn.Conv3d(self.i3d.num_features, config.num_labels, kernel_size=1, bias=True)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor = None,
        labels: torch.Tensor = None,
        output_hidden_states: bool = None,
        return_dict: bool = None,
        **kwargs,
    ):
        """pixel_values (B, T, C, H, W) normalised to [-1, 1]; labels (B,) class indices (or floats for
        regression / multi-label, following config.problem_type)."""
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.i3d(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        per_position = self.classifier(self.dropout(outputs.pooled_features))  # (B, labels, t, h, w)
        logits = per_position.mean(dim=(2, 3, 4))

        # the loss of transformers' classifiers (PreTrainedModel.loss_function, "ForVideoClassification"): cross-entropy
        # for class indices, MSE / BCE when config.problem_type is regression / multi-label
        loss = self.loss_function(labels, logits, self.config, **kwargs) if labels is not None else None
        if not return_dict:
            output = (logits,) + ((outputs.hidden_states,) if outputs.hidden_states is not None else ())
            return ((loss,) + output) if loss is not None else output
        return ImageClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


# Saving a model writes this file (and configuration_i3d.py) next to the weights and names them in `auto_map`,
# so `from_pretrained(..., trust_remote_code=True)` works where this package is not installed.
I3DModel.register_for_auto_class("AutoModel")
I3DForVideoClassification.register_for_auto_class("AutoModelForVideoClassification")
