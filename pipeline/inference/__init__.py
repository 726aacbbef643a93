"""Inference: exact decoding, frame sampling, evaluation views, preprocessing and the ``pipeline()`` class.

The modules here (all but ``registration``) are published with models as Hub remote code, so they import only
the standard library, numpy, torch, torchvision, av, transformers and each other (relatively).
"""

from .registration import (
    TASK,
    ZERO_SHOT_TASK,
    PyAVVideoClassificationPipeline,
    ZeroShotVideoClassificationPipeline,
    load_pipeline,
    load_zero_shot_pipeline,
    register_pipeline,
)

__all__ = ["TASK", "ZERO_SHOT_TASK", "PyAVVideoClassificationPipeline", "ZeroShotVideoClassificationPipeline",
           "load_pipeline", "load_zero_shot_pipeline", "register_pipeline"]
