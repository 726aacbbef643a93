"""``python -m pipeline.export``: see ``pipeline.export.onnx_export.main``."""

import sys

from .onnx_export import main

if __name__ == "__main__":
    sys.exit(main())
