"""``python -m pipeline.evaluation``: see ``pipeline.evaluation.multiview.main``; a failure ends the process promptly."""

from pipeline.evaluation.multiview import main
from pipeline.process_exit import run_or_exit

run_or_exit(main)
