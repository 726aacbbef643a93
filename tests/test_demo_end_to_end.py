"""The trained demo model through the rest of the product: multi-view evaluation, pipeline(), and --push_to_hub."""

from __future__ import annotations

import csv
import json
import os

import pytest
from huggingface_hub import HfApi, ModelCard, hf_hub_download

from conftest import demo_test_videos, run_train
from hub_server import LocalHubServer
from pipeline.evaluation.command import main as evaluation_main
from pipeline.inference import load_pipeline

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def evaluations(trained_demo, demo_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluations")
    results = {}
    for clips, crops in ((1, 1), (3, 3)):
        folder = out / f"eval_{clips}x{crops}"
        evaluation_main(["--model", str(trained_demo), "--dataset", "demo", "--dataset_dir", str(demo_dataset),
                         "--num_clips", str(clips), "--num_crops", str(crops), "--output_dir", str(folder),
                         "--batch_size", "16"])
        results[(clips, crops)] = folder
    return results


def read_predictions(folder):
    with open(folder / "predictions.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_multiview_evaluation_outputs_and_consistency(evaluations):
    single, multi = (json.loads((evaluations[k] / "metrics.json").read_text()) for k in ((1, 1), (3, 3)))
    for folder in evaluations.values():
        for name in ("metrics.json", "predictions.csv", "per_class.csv", "report.md"):
            assert (folder / name).is_file(), name
        assert list(folder.rglob("*.png")), "no figure written"
        rows = read_predictions(folder)
        metrics = json.loads((folder / "metrics.json").read_text())
        recomputed = sum(r["label"] == r["prediction"] for r in rows) / len(rows)
        assert metrics["video_top1"] == pytest.approx(recomputed)
        assert metrics["num_videos"] == len(rows) == demo_test_videos()
    assert single["num_clips"] == 1 and multi["num_clips"] == 3 and multi["num_crops"] == 3
    assert multi["video_top1"] >= single["video_top1"] - 0.01
    assert single["video_top1"] >= 0.95


def test_pipeline_on_paths_agrees_with_single_view_evaluation(trained_demo, evaluations):
    rows = read_predictions(evaluations[(1, 1)])
    classifier = load_pipeline(str(trained_demo))
    outputs = classifier([r["video"] for r in rows], top_k=1, batch_size=8)
    agree = sum(out[0]["label"] == r["prediction"] for out, r in zip(outputs, rows))
    assert agree / len(rows) >= 0.99


def test_training_with_push_to_hub_publishes_model_card_and_figures(demo_dataset, tmp_path):
    with LocalHubServer() as hub:
        out = tmp_path / "pushed"
        run_train(["recipes/demo.yaml", "--dataset_dir", str(demo_dataset), "--output_dir", str(out),
                   "--max_steps", "4", "--eval_strategy", "no", "--save_strategy", "no",
                   "--load_best_model_at_end", "false", "--report_to", "none", "--disable_tqdm", "true",
                   "--run_multiview_evaluation", "true", "--push_to_hub", "true",
                   "--hub_model_id", "demo-user/demo-videomae", "--hub_token", "hf_local_test_token"],
                  env={"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf-home")})
        files = set(HfApi(endpoint=hub.url, token="hf_local_test_token").list_repo_files("demo-user/demo-videomae"))
        for name in ("config.json", "model.safetensors", "preprocessor_config.json", "README.md"):
            assert name in files, (name, sorted(files))
        assert any(f.startswith("figures/") and f.endswith(".png") for f in files), sorted(files)
        readme = hf_hub_download("demo-user/demo-videomae", "README.md", endpoint=hub.url, cache_dir=tmp_path / "dl")
        assert "model-index:" in open(readme).read()
        card = ModelCard.load(readme)
        assert card.data.pipeline_tag == "video-classification"
        assert {r.metric_type for r in card.data.eval_results} >= {"accuracy", "top_5_accuracy"}


def test_run_folder_card_snippet_runs_as_pasted_without_the_package(trained_demo, tmp_path):
    """train.py leaves a card whose snippet, pasted into a Python without `import pipeline`, gets our pipeline
    (remote code from the folder) and a prediction; the card states the steps and epochs the run trained."""
    import re
    import subprocess
    import sys

    card = (trained_demo / "README.md").read_text()
    state = json.loads((trained_demo / "trainer_state.json").read_text())
    assert f"| steps trained | `{state['global_step']}` |" in card
    assert f"| epochs trained | `{round(state['epoch'], 2)}` |" in card
    snippet = re.search(r"```python\n(.*?)```", card, re.S).group(1)
    check = ("\nimport sys\nresult = classifier(video, top_k=1)\n"
             "assert 'pipeline' not in sys.modules, 'the snippet imported this package'\n"
             "assert type(classifier).__module__.startswith('transformers_modules.'), type(classifier)\n"
             "print('LABEL', result[0]['label'])\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_HOME"] = str(tmp_path / "hf-home")
    done = subprocess.run([sys.executable, "-c", snippet + check], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    label = done.stdout.split("LABEL ")[-1].strip()
    config = json.loads((trained_demo / "config.json").read_text())
    assert label in config["id2label"].values()
