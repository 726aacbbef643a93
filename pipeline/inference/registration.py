"""Makes ``transformers.pipeline("video-classification", ...)`` use our PyAV pipeline, adds the
``"zero-shot-video-classification"`` task (X-CLIP, ``candidate_labels``), and loads either directly.

``import pipeline`` calls ``register_pipeline()``: transformers' pipeline registry then builds
``PyAVVideoClassificationPipeline`` (pipeline/inference/video_pipeline.py) for the "video-classification" task, for
any local folder or Hub id, given only an image processor.

A published repo names the same class in ``config.custom_pipelines`` (see pipeline.publish.hub) so that it works where
this package is not installed, with ``trust_remote_code=True``. transformers insists on that flag for any repo
declaring a custom pipeline, even with the class registered here; ``load_pipeline`` passes our class
explicitly instead and so needs no remote code at all.
"""

from __future__ import annotations

import logging as _std_logging
import os
from typing import Any

from transformers import AutoImageProcessor, AutoModel, AutoModelForVideoClassification
from transformers import pipeline as _transformers_pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from .onnx_runner import OnnxVideoClassifier, check_backend
from .video_pipeline import PyAVVideoClassificationPipeline
from .zero_shot_pipeline import ZeroShotVideoClassificationPipeline

TASK = "video-classification"
# transformers' default model for the task: pipeline("video-classification") without a model still works
DEFAULT_MODEL = {"model": ("MCG-NJU/videomae-base-finetuned-kinetics", "488eb9a")}
ZERO_SHOT_TASK = "zero-shot-video-classification"
ZERO_SHOT_DEFAULT_MODEL = {"model": ("microsoft/xclip-base-patch32", "main")}


def register_pipeline() -> None:
    """Registers PyAVVideoClassificationPipeline as the implementation of "video-classification"."""
    current = PIPELINE_REGISTRY.supported_tasks.get(TASK, {})
    if current.get("impl") is PyAVVideoClassificationPipeline:
        return
    # register_pipeline warns that it overwrites the built-in task: replacing it is the point here.
    registry_logger = _std_logging.getLogger("transformers.pipelines.base")
    level = registry_logger.level
    registry_logger.setLevel(_std_logging.ERROR)
    try:
        PIPELINE_REGISTRY.register_pipeline(
            TASK,
            pipeline_class=PyAVVideoClassificationPipeline,
            pt_model=AutoModelForVideoClassification,
            default=current.get("default", DEFAULT_MODEL),
            type="video",
        )
    finally:
        registry_logger.setLevel(level)
    if PIPELINE_REGISTRY.supported_tasks.get(ZERO_SHOT_TASK, {}).get("impl") is not ZeroShotVideoClassificationPipeline:
        PIPELINE_REGISTRY.register_pipeline(
            ZERO_SHOT_TASK,
            pipeline_class=ZeroShotVideoClassificationPipeline,
            pt_model=AutoModel,
            default=ZERO_SHOT_DEFAULT_MODEL,
            type="multimodal",
        )


def load_pipeline(model: str, backend: str = "pytorch", **kwargs: Any) -> PyAVVideoClassificationPipeline:
    """``transformers.pipeline("video-classification", model=model, **kwargs)`` with our class given
    explicitly: works for local folders and Hub repos alike, without ``trust_remote_code`` for our published
    repos. ``backend="onnx"`` runs ``model``'s ``model.onnx`` (an export folder needs no PyTorch weights)."""
    if check_backend(backend) == "onnx" and isinstance(model, (str, os.PathLike)):
        model = OnnxVideoClassifier.from_export(
            model, onnx_file=kwargs.pop("onnx_model", None), device=kwargs.get("device"),
            revision=kwargs.get("revision"))
        kwargs.setdefault("image_processor", AutoImageProcessor.from_pretrained(
            model.config._name_or_path, revision=kwargs.get("revision")))
    return _transformers_pipeline(TASK, model=model, pipeline_class=PyAVVideoClassificationPipeline,
                                  backend=backend, **kwargs)


def load_zero_shot_pipeline(model: str, **kwargs: Any) -> ZeroShotVideoClassificationPipeline:
    """``transformers.pipeline("zero-shot-video-classification", model=model, **kwargs)`` with our class given
    explicitly (no ``trust_remote_code`` needed)."""
    return _transformers_pipeline(ZERO_SHOT_TASK, model=model, pipeline_class=ZeroShotVideoClassificationPipeline,
                                  **kwargs)


__all__ = ["PyAVVideoClassificationPipeline", "ZeroShotVideoClassificationPipeline", "register_pipeline",
           "load_pipeline", "load_zero_shot_pipeline", "TASK", "ZERO_SHOT_TASK"]
