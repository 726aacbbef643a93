"""ViViT, V-JEPA 2 and VideoPrism end to end on the demo, as a user runs them: recipes/demo_vivit.yaml,
recipes/demo_vjepa2.yaml and recipes/demo_videoprism.yaml train (ONE run per family, shared by the tests of this
module), reach the recipe's accuracy, and pipeline() agrees with the evaluation command; the zero-shot evaluation
runs on the demo with a tiny X-CLIP."""

from __future__ import annotations

import csv
import json

import pytest

from conftest import demo_test_videos, run_train
from pipeline.evaluation.command import main as evaluation_main
from pipeline.inference import load_pipeline

pytestmark = pytest.mark.slow

FAMILIES = ("vivit", "vjepa2", "videoprism")
MODEL_TYPE = {"vivit": "vivit", "vjepa2": "vjepa2", "videoprism": "videoprism_vision_model"}
# The families whose checkpoints come with a video processor (saved as video_preprocessor_config.json)
VIDEO_PROCESSOR = {"vjepa2", "videoprism"}


@pytest.fixture(scope="module")
def trained(demo_dataset, tmp_path_factory):
    """family -> output folder of its demo recipe, trained once on first use."""
    runs = {}

    def get(family: str):
        if family not in runs:
            out = tmp_path_factory.mktemp(f"demo_{family}") / "out"
            result = run_train([f"recipes/demo_{family}.yaml", "--dataset_dir", str(demo_dataset), "--output_dir",
                                str(out), "--report_to", "none", "--disable_tqdm", "true"], timeout=1800)
            (out / "train.log").write_text(result.stdout + result.stderr)
            runs[family] = out
        return runs[family]

    return get


@pytest.fixture(scope="module")
def evaluated(trained, demo_dataset, tmp_path_factory):
    """family -> single-view evaluation folder of its trained demo model (python -m pipeline.evaluation)."""
    folders = {}

    def get(family: str):
        if family not in folders:
            folder = tmp_path_factory.mktemp(f"eval_{family}")
            evaluation_main(["--model", str(trained(family)), "--dataset", "demo", "--dataset_dir",
                             str(demo_dataset), "--output_dir", str(folder), "--batch_size", "32"])
            folders[family] = folder
        return folders[family]

    return get


@pytest.mark.parametrize("family", FAMILIES)
def test_demo_recipe_trains_to_high_test_accuracy(trained, family):
    out = trained(family)
    results = json.loads((out / "all_results.json").read_text())
    assert results["test_accuracy"] >= 0.9, results
    assert results["test_samples"] == demo_test_videos() and results["skipped_videos"] == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == MODEL_TYPE[family] and config["num_frames"] == 8 and config["frame_sampling_rate"] == 4
    processor_file = "video_preprocessor_config.json" if family in VIDEO_PROCESSOR else "preprocessor_config.json"
    for name in ("model.safetensors", processor_file, "recipe.yaml", "trainer_state.json"):
        assert (out / name).is_file(), name


@pytest.mark.parametrize("family", FAMILIES)
def test_pipeline_agrees_with_the_evaluation_command(trained, evaluated, family):
    folder = evaluated(family)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["num_videos"] == demo_test_videos() and metrics["video_top1"] >= 0.9
    with open(folder / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    classifier = load_pipeline(str(trained(family)))
    outputs = classifier([r["video"] for r in rows], top_k=1, batch_size=16)
    agree = sum(out[0]["label"] == r["prediction"] for out, r in zip(outputs, rows))
    assert agree / len(rows) >= 0.99, agree / len(rows)


def test_zero_shot_evaluation_runs_on_the_demo(demo_dataset, tmp_path):
    from tiny_xclip import save_tiny_xclip

    model = save_tiny_xclip(tmp_path / "tiny-xclip")
    out = tmp_path / "zero_shot"
    metrics = evaluation_main(["--zero_shot", "--model", str(model), "--dataset", "demo", "--dataset_dir",
                               str(demo_dataset), "--output_dir", str(out), "--batch_size", "32"])
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["zero_shot"] is True and saved["num_videos"] == demo_test_videos()
    assert saved["prompts"][2] == "move left"  # demo class MoveLeft, as words
    assert metrics["video_top1"] == saved["video_top1"] and (out / "report.md").is_file()
