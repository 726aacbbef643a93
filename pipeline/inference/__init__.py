"""Inference: exact decoding, frame sampling, evaluation views, preprocessing and the ``pipeline()`` class.

The modules here (all but ``registration``) are published with models as Hub remote code, so they import only
the standard library, numpy, torch, torchvision, av, transformers and each other (relatively).
"""

from .registration import TASK, PyAVVideoClassificationPipeline, load_pipeline, register_pipeline

__all__ = ["TASK", "PyAVVideoClassificationPipeline", "load_pipeline", "register_pipeline"]
