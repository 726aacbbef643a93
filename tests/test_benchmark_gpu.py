"""``python -m pipeline.benchmark gpu --tiny``: the whole GPU check on a CPU with tiny models and a tiny corpus.

Every measurement must run (none failed), each figure be there with its share of the model-alone speed, and the
training breakdowns add up to their walls.
"""

from __future__ import annotations

import json

import pytest

from pipeline.benchmark.gpu import RESULTS_FILE, main

pytestmark = pytest.mark.slow

EXPECTED = [
    "corpus written",
    "VideoMAE-B eager model alone", "VideoMAE-B eager loader-fed",
    "TimeSformer-B eager model alone", "TimeSformer-B eager loader-fed",
    "TimeSformer-B sdpa model alone", "TimeSformer-B sdpa loader-fed",
    "I3D model alone", "I3D loader-fed",
    "Trainer 30 steps bf16 + evaluation", "Trainer 30 steps fp16 + evaluation",
    "model inference alone (views/s)", "multi-view evaluation 2x3", "pipeline() list 1x1", "pipeline() list 5x3",
]


def test_gpu_check_runs_every_measurement_on_cpu(tmp_path, capsys):
    status = main(["--output_dir", str(tmp_path), "--tiny", "--workers", "1"])
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / RESULTS_FILE).read_text())
    rows = {row["name"]: row for row in report["measurements"]}
    failed = {name: row["error"] for name, row in rows.items() if "error" in row}
    assert status == 0 and not failed, failed
    assert list(rows) == EXPECTED
    for name, row in rows.items():
        if name.endswith("loader-fed"):
            alone = rows[name.replace("loader-fed", "model alone")]["clips_per_s"]
            assert row["share_of_model"] == pytest.approx(row["clips_per_s"] / alone)
            assert row["parts_sum_s"] == pytest.approx(row["wall_s"], rel=0.02)
            assert row["augment_on"] == "device" and row["bytes_to_device_per_clip"] > 0
        if name.endswith("model alone"):
            assert row["bytes_to_device_per_clip"] == 0 and row["data_wait_s"] < 0.05 * row["wall_s"]
    assert rows["multi-view evaluation 2x3"]["videos"] == 8  # 4 classes x 2 test groups of the tiny corpus
    assert "| multi-view evaluation 2x3 |" in printed and "share of the model alone" in printed


def test_fine_tuning_gpu_check_dry_runs_on_cpu():
    """tests/gpu_fine_tuning_check.py (run by hand on a GPU) must not rot: CHECK_DEVICE=cpu runs every check."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent / "gpu_fine_tuning_check.py"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "CHECK_DEVICE": "cpu"})
    verdicts = [line.split()[0] for line in result.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert result.returncode == 0 and verdicts == ["PASS"] * 6, result.stdout[-3000:] + result.stderr[-3000:]
