"""``python -m pipeline.export``: see ``pipeline.export.onnx_export.main``."""

import sys

from ..user_errors import one_line_errors, say_signals
from .onnx_export import main

if __name__ == "__main__":
    say_signals("python -m pipeline.export")
    with one_line_errors("python -m pipeline.export"):
        sys.exit(main())
