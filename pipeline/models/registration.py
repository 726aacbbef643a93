"""Makes our own architectures known to transformers' Auto classes (`AutoConfig`, `AutoModel`,
`AutoModelForVideoClassification`), so that `from_pretrained` / `pipeline()` resolve model_type "i3d" and
"video_probe" (attentive probe) without `trust_remote_code`."""

from transformers import AutoConfig, AutoModel, AutoModelForVideoClassification

from .i3d import I3DConfig, I3DForVideoClassification, I3DModel
from .probe import VideoProbeConfig, VideoProbeForVideoClassification


def register_auto_classes() -> None:
    """Registers I3D and the attentive probe with the Auto classes; calling it again is harmless."""
    AutoConfig.register(I3DConfig.model_type, I3DConfig, exist_ok=True)
    AutoModel.register(I3DConfig, I3DModel, exist_ok=True)
    AutoModelForVideoClassification.register(I3DConfig, I3DForVideoClassification, exist_ok=True)
    AutoConfig.register(VideoProbeConfig.model_type, VideoProbeConfig, exist_ok=True)
    AutoModelForVideoClassification.register(VideoProbeConfig, VideoProbeForVideoClassification, exist_ok=True)
