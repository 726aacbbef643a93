"""Video classifiers: ``get_model`` (Hub id, local folder or config) and our own I3D."""

from .loading import BackboneMismatchError, get_model, scratch_processor

__all__ = ["BackboneMismatchError", "get_model", "scratch_processor"]
