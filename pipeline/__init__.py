"""HuggingFace-native video classification: training, evaluation, inference and publishing.

Importing the package registers our models (I3D) with transformers' Auto classes and our PyAV video-classification
pipeline with ``transformers.pipeline``.
"""

from .inference import register_pipeline
from .models.registration import register_auto_classes

register_auto_classes()
register_pipeline()

__version__ = "0.1.0"
