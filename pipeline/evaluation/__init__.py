"""Evaluation like the papers: multi-view scoring, metrics, output files, figures and the report.

``python -m pipeline.evaluation --model RUN_DIR ...`` runs it from the command line; ``evaluate_model`` from Python.
"""

from .multiview import (
    dataset_clips,
    evaluate_model,
    gather_scores,
    load_trained_model,
    main,
    spec_facts,
    score_dataset,
)

__all__ = [
    "dataset_clips", "evaluate_model", "gather_scores", "load_trained_model", "main", "score_dataset", "spec_facts",
]
