"""Evaluation like the papers: multi-view scoring (multiview.py), metrics (metrics.py, metric_modules/), output files
and figures (outputs.py, figures.py, attention_maps.py), the report (report.py), zero-shot (zero_shot.py).

``python -m pipeline.evaluation --model RUN_DIR ...`` runs it from the command line (command.py);
``evaluate_model`` from Python.
"""

from .multiview import dataset_clips, evaluate_model, gather_scores, score_dataset, spec_facts

__all__ = ["dataset_clips", "evaluate_model", "gather_scores", "score_dataset", "spec_facts"]
