"""Deployment export: ONNX graphs of our video classifiers, checked against PyTorch before they are kept.

``python -m pipeline.export --model DIR_OR_HUB_ID --output_dir OUT [--opset N] [--dynamic_batch]`` writes
``OUT/model.onnx`` with the model's config (labels, clip sampling) and processor beside it, after checking on
real decoded clips that ONNX Runtime's logits match PyTorch's (``onnx_export``, ``parity``); ``speed`` times both
on the CPU. The folder serves with ``load_pipeline(OUT, backend="onnx")`` (``pipeline.inference.onnx_runner``).
"""

from .onnx_export import ExportResult, export_onnx
from .parity import ParityError, ParityReport

__all__ = ["ExportResult", "ParityError", "ParityReport", "export_onnx"]
