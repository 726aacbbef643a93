"""``python -m pipeline.evaluation``: see ``pipeline.evaluation.multiview.main``."""

from pipeline.evaluation.multiview import main

main()
