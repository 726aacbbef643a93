"""Configuration of I3D, the two-stream inflated 3D ConvNet of Carreira & Zisserman (2017), RGB stream.

The defaults describe DeepMind's Kinetics-400 RGB model (Inception-v1 inflated to 3D). This file imports only
`transformers` so that it can travel to the Hub as remote code next to `modeling_i3d.py`.
"""

from transformers import PretrainedConfig

# Output channels of the stem convolutions Conv3d_1a_7x7, Conv3d_2b_1x1, Conv3d_2c_3x3.
DEFAULT_STEM_CHANNELS = (64, 64, 192)

# Inception modules Mixed_3b .. Mixed_5c. Each row: branch 0 (1x1), branch 1 (1x1 reduce, 3x3),
# branch 2 (1x1 reduce, 3x3), branch 3 (1x1 after the 3x3 max pool); the same widths as Inception-v1.
DEFAULT_MIXED_CHANNELS = (
    (64, 96, 128, 16, 32, 32),  # Mixed_3b
    (128, 128, 192, 32, 96, 64),  # Mixed_3c
    (192, 96, 208, 16, 48, 64),  # Mixed_4b
    (160, 112, 224, 24, 64, 64),  # Mixed_4c
    (128, 128, 256, 24, 64, 64),  # Mixed_4d
    (112, 144, 288, 32, 64, 64),  # Mixed_4e
    (256, 160, 320, 32, 128, 128),  # Mixed_4f
    (256, 160, 320, 32, 128, 128),  # Mixed_5b
    (384, 192, 384, 48, 128, 128),  # Mixed_5c
)


class I3DConfig(PretrainedConfig):
    """Hyper-parameters of `I3DModel` / `I3DForVideoClassification`.

    Args:
        num_channels: input channels (3 for RGB).
        image_size: spatial size the model was trained at (224 for DeepMind's model); other sizes work.
        num_frames: clip length the model was trained with (64 for DeepMind's model); other lengths work.
        stem_channels: widths of Conv3d_1a_7x7, Conv3d_2b_1x1 and Conv3d_2c_3x3.
        mixed_channels: nine rows of six widths, one row per Inception module (see DEFAULT_MIXED_CHANNELS).
        width_multiplier: scales every width above (rounded, at least 1); 1.0 is the published network,
            small values give tiny models for tests and demos.
        dropout_prob: dropout before the logits convolution (Sonnet's `1 - dropout_keep_prob`).
        batch_norm_eps: BatchNorm epsilon (1e-3 as in Sonnet).
        batch_norm_momentum: PyTorch-style running-statistics momentum used when training. Sonnet used a decay
            of 0.999 (momentum 0.001); 0.1 lets statistics settle within a short fine-tuning run.
        batch_norm_scale: whether BatchNorm learns a scale (gamma). DeepMind's network has none (gamma = 1);
            networks inflated from torchvision's GoogLeNet need one.
        initializer_range: unused by the convolutions (they use Sonnet's truncated normal with std
            1/sqrt(fan_in)); kept for transformers utilities that read it.
    """

    model_type = "i3d"

    def __init__(
        self,
        num_channels: int = 3,
        image_size: int = 224,
        num_frames: int = 64,
        stem_channels=DEFAULT_STEM_CHANNELS,
        mixed_channels=DEFAULT_MIXED_CHANNELS,
        width_multiplier: float = 1.0,
        dropout_prob: float = 0.5,
        batch_norm_eps: float = 1e-3,
        batch_norm_momentum: float = 0.1,
        batch_norm_scale: bool = False,
        initializer_range: float = 0.02,
        **kwargs,
    ):
        self.num_channels = num_channels
        self.image_size = image_size
        self.num_frames = num_frames
        # Lists, not tuples, so that the config survives a JSON round trip unchanged.
        self.stem_channels = [int(c) for c in stem_channels]
        self.mixed_channels = [[int(c) for c in row] for row in mixed_channels]
        self.width_multiplier = float(width_multiplier)
        self.dropout_prob = dropout_prob
        self.batch_norm_eps = batch_norm_eps
        self.batch_norm_momentum = batch_norm_momentum
        self.batch_norm_scale = batch_norm_scale
        self.initializer_range = initializer_range
        self._check_widths()
        super().__init__(**kwargs)

    def _check_widths(self):
        if len(self.stem_channels) != 3:
            raise ValueError(f"configuration_i3d.py: stem_channels needs 3 widths, got {self.stem_channels}")
        if len(self.mixed_channels) != 9 or any(len(row) != 6 for row in self.mixed_channels):
            raise ValueError(
                "configuration_i3d.py: mixed_channels needs 9 rows (Mixed_3b .. Mixed_5c) of 6 widths, "
                f"got {self.mixed_channels}"
            )
        if not self.width_multiplier > 0:
            raise ValueError(f"configuration_i3d.py: width_multiplier must be > 0: {self.width_multiplier}")

    def scaled(self, width: int) -> int:
        """A width from the channel lists after applying `width_multiplier`."""
        return max(1, int(round(width * self.width_multiplier)))

    @property
    def hidden_size(self) -> int:
        """Channels of the final feature map (Mixed_5c): the size of the pooled features (1024 by default)."""
        last = self.mixed_channels[-1]
        return self.scaled(last[0]) + self.scaled(last[2]) + self.scaled(last[4]) + self.scaled(last[5])


# Saving a model writes this file next to the weights and names it in `auto_map`.
I3DConfig.register_for_auto_class()
