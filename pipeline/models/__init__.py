"""Video classifiers: ``get_model`` (Hub id, local folder or config), their processors, and our own I3D."""

from .loading import BackboneMismatchError, get_model, load_trained
from .processors import load_processor, scratch_processor

__all__ = ["BackboneMismatchError", "get_model", "load_processor", "load_trained", "scratch_processor"]
