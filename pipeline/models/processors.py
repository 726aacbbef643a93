"""The processor of each model family: what a checkpoint ships, or what a model built from a config gets.

Whatever processor a model has, ``VideoPreprocessing.from_processor`` reads its geometry and normalisation into the
one clip contract, and training, evaluation and ``pipeline()`` use that.

- A checkpoint ships an image processor (``preprocessor_config.json``: VideoMAE, TimeSformer, ViViT, X-CLIP, I3D)
  or only a video processor (``video_preprocessor_config.json``: V-JEPA 2). ``load_processor`` takes the image
  processor when there is one, else the video processor.
- ViViT was trained on frames in [-1, 1] (Scenic's ``zero_centering``: x / 127.5 - 1, no mean/std). transformers'
  ``VivitImageProcessor`` / ``VivitVideoProcessor`` defaults shift by -1 AND normalise with mean = std = 0.5,
  which maps frames to [-3, 1]; ``vivit_input_range`` measures the range a processor gives and
  ``ensure_vivit_input_range`` turns that normalisation off (logged) so a ViViT sees what it was trained on.
- VideoPrism was trained on frames in [0, 1] at its config's ``image_size`` (google-deepmind/videoprism README:
  "RGB values ... normalized in [0.0, 1.0]"). Its checkpoints ship a generic video processor
  (``LlavaOnevisionVideoProcessor``: CLIP mean/std, 384 px by default) and transformers' ``VideoPrismProcessor``
  overrides size and normalisation at call time (its ``video_kwargs``), which a video processor loaded on its own
  does not see. ``ensure_videoprism_inputs`` applies those overrides to the processor itself (logged), at the
  model's own ``image_size``, so the clip contract reads what VideoPrism expects.
- Models from a config get their family's convention (``scratch_processor_for``): ViViT [-1, 1]; V-JEPA 2 its
  video processor (resize the shorter side to crop x 256/224, centre crop, ImageNet mean/std); VideoPrism [0, 1]
  with its checkpoints' video processor class; others ImageNet mean/std with a resize to the input size.
"""

from __future__ import annotations

import logging
from typing import Any

from transformers import (
    AutoImageProcessor,
    AutoVideoProcessor,
    LlavaOnevisionVideoProcessor,
    VideoMAEImageProcessor,
    VideoPrismProcessor,
    VivitImageProcessor,
    VJEPA2VideoProcessor,
)

from ..compatibility import require
from ..inference.preprocessing import VideoPreprocessing

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# model types of VideoPrism's video tower: the classifier (videoprism_vision_model) and the video-text model
VIDEOPRISM_TYPES = ("videoprism_vision_model", "videoprism")


def load_processor(name_or_path: str, cache_dir: str | None = None) -> Any:
    """The image processor of a checkpoint, else its video processor; an error naming the checkpoint if neither."""
    errors = []
    for auto_class in (AutoImageProcessor, AutoVideoProcessor):
        try:
            return auto_class.from_pretrained(name_or_path, cache_dir=cache_dir)
        except (OSError, ValueError, KeyError, TypeError) as error:
            errors.append(f"{auto_class.__name__}: {error}")
    raise OSError(f"{name_or_path}: no image or video processor could be loaded ({'; '.join(errors)})")


def scratch_processor(image_size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> VideoMAEImageProcessor:
    """The processor of a model built from a config: resize the shorter side to the input size, centre crop."""
    return VideoMAEImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        image_mean=list(mean),
        image_std=list(std),
    )


def scratch_processor_for(model_type: str, image_size: int) -> Any:
    """The family's own preprocessing convention at ``image_size`` (see the module docstring)."""
    if model_type == "vivit":
        return VivitImageProcessor(
            size={"shortest_edge": image_size},
            crop_size={"height": image_size, "width": image_size},
            rescale_factor=1 / 127.5,
            offset=True,
            do_normalize=False,
        )
    if model_type == "vjepa2":
        return VJEPA2VideoProcessor(crop_size=image_size)
    if model_type in VIDEOPRISM_TYPES:
        return ensure_videoprism_inputs(LlavaOnevisionVideoProcessor(), image_size)
    return scratch_processor(image_size)


def _square(size: Any) -> tuple[int, int]:
    if isinstance(size, (list, tuple)):
        return int(size[0]), int(size[1])
    return int(size), int(size)


def ensure_videoprism_inputs(processor: Any, image_size: Any, name: str | None = None) -> Any:
    """Makes a VideoPrism video processor give what ``VideoPrismProcessor`` gives at call time: frames in [0, 1]
    (no mean/std) at ``image_size`` (the model's own, which may differ from the 288 of the published checkpoints);
    logs what it changed when ``name`` (the checkpoint's) is given."""
    require("videoprism_video_kwargs")
    defaults = VideoPrismProcessor.video_kwargs
    height, width = _square(image_size)
    wanted = {"do_normalize": defaults["do_normalize"], "size": {"height": height, "width": width}}
    prep = VideoPreprocessing.from_processor(processor)
    changed = []
    if bool(getattr(processor, "do_normalize", True)) != bool(wanted["do_normalize"]):
        processor.do_normalize = wanted["do_normalize"]
        changed.append(f"do_normalize {wanted['do_normalize']}")
    if prep.crop_size != (height, width):
        processor.size = wanted["size"]
        if hasattr(processor, "crop_size") and getattr(processor, "crop_size", None):
            processor.crop_size = dict(wanted["size"])
        changed.append(f"size {height}x{width} (was {prep.crop_size[0]}x{prep.crop_size[1]})")
    if changed and name:
        logger.warning("%s: VideoPrism takes frames in [0, 1] at %dx%d (VideoPrismProcessor's own settings): %s",
                       name, height, width, ", ".join(changed))
    return processor


def vivit_input_range(processor: Any) -> tuple[float, float]:
    """(value of a black pixel, value of a white pixel) after ``processor``, per the clip contract (channel 0)."""
    prep = VideoPreprocessing.from_processor(processor)
    scale = prep.rescale_factor / prep.std[0]
    return -prep.mean[0] / prep.std[0], 255 * scale - prep.mean[0] / prep.std[0]


def ensure_vivit_input_range(processor: Any, name: str = "processor") -> Any:
    """Makes a ViViT processor map frames to [-1, 1] (what ViViT was trained on); logs what it changed."""
    low, high = vivit_input_range(processor)
    if abs(low + 1) < 1e-3 and abs(high - 1) < 1e-3:
        return processor
    if getattr(processor, "offset", None) is not False and getattr(processor, "do_normalize", False):
        logger.warning(
            "%s maps ViViT inputs to [%.2f, %.2f]; ViViT was trained on [-1, 1] (x / 127.5 - 1): turning its "
            "mean/std normalisation off", name, low, high)
        processor.do_normalize = False
        low, high = vivit_input_range(processor)
    if abs(low + 1) > 1e-3 or abs(high - 1) > 1e-3:
        logger.warning("%s maps ViViT inputs to [%.2f, %.2f], not the [-1, 1] ViViT was trained on", name, low, high)
    return processor


__all__ = ["load_processor", "scratch_processor", "scratch_processor_for", "vivit_input_range",
           "ensure_vivit_input_range", "ensure_videoprism_inputs", "VIDEOPRISM_TYPES"]
