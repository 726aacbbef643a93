"""Metric modules shipped with the pipeline, loaded by path so `evaluate` never goes to the Hub.

Each module lives in ``pipeline/evaluation/metric_modules/<name>/<name>.py`` (the layout `evaluate.load`
expects of a local directory) and imports only standalone libraries, one ``import``
per line, because `evaluate` copies the file and imports it outside this package.
"""

from pathlib import Path

import evaluate

METRICS_DIR = Path(__file__).resolve().parent


def available_metrics() -> list[str]:
    """Names of the metric modules shipped in ``pipeline/metrics``."""
    return sorted(p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file())


def load_metric(name: str, **kwargs) -> evaluate.EvaluationModule:
    """Load the shipped metric module ``name`` (e.g. ``"topk_accuracy"``) offline.

    ``kwargs`` go to ``evaluate.load`` (e.g. ``experiment_id``, ``keep_in_memory``).
    """
    path = METRICS_DIR / name / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(
            f"No metric module {name!r}: {path} does not exist; shipped metrics: {', '.join(available_metrics())}"
        )
    kwargs.setdefault("keep_in_memory", True)
    return evaluate.load(str(path), **kwargs)
