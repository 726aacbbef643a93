"""The ablation table: means and per-seed values per regime, gaps shown, rows without runs left out."""

from __future__ import annotations

from pipeline.benchmark.ablation import table


def run(data: str, variant: str, seed: int, accuracy: float) -> dict:
    return {"data": data, "variant": variant, "seed": seed, "test_accuracy": accuracy}


def test_table_means_seeds_per_regime_and_gaps():
    results = [run("small", "baseline", 1, 0.5), run("small", "baseline", 2, 0.7),
               run("small", "ema", 1, 0.9), run("full", "baseline", 3, 0.8), run("small", "class_balance", 2, 0.6)]
    lines = table(results, data_order=("small", "full")).splitlines()
    assert lines[0] == ("| trick | 192 clips, 600 steps: mean (seeds 1, 2) | 1,176 clips, 1,000 steps: mean (seeds 3) |")
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines[2:]}
    assert rows["plain demo recipe"] == "| plain demo recipe | **0.600** (0.500 / 0.700) | **0.800** (0.800) |"
    assert rows["ema_decay 0.999, ema_as_model"].endswith("| **0.900** (0.900 / -) | not run |")
    assert "n/a: classes exactly balanced" in rows["class_weighting balanced + balanced_sampler"]
    assert "layer_decay 0.75" not in rows  # no run in any regime: no row


def test_only_the_regimes_asked_for():
    results = [run("small", "baseline", 1, 0.5), run("demo", "baseline", 1, 0.9)]
    assert "2,500" not in table(results, data_order=("small", "full"))
    assert "2,500" in table(results)
