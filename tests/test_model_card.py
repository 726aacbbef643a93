"""Model cards: metadata and model-index parse back with huggingface_hub to exactly the measured numbers, and
a card never shows a number that no evaluation file holds."""

from __future__ import annotations

import json
import re

import pytest
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results

from pipeline.publish.model_card import build_model_card, write_model_card

LABELS = {"0": "ApplyEyeMakeup", "1": "Archery", "2": "Basketball"}


def make_model_dir(folder, *, model_type="videomae", labels=LABELS, recipe=True):
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_type": model_type, "id2label": labels,
              "label2id": {v: int(k) for k, v in labels.items()}, "num_frames": 16,
              "frame_sampling_rate": 4, "frame_sampling_strategy": "dense"}
    (folder / "config.json").write_text(json.dumps(config))
    if recipe:
        (folder / "recipe.yaml").write_text(
            "model_name_or_path: MCG-NJU/videomae-base\ndataset: ucf101\nucf101_split: 2\n"
            "learning_rate: 5.0e-05\nper_device_train_batch_size: 8\nnum_train_epochs: 4\nnum_frames: 16\n"
            "output_dir: outputs/x\n")
    return folder


def add_evaluation(folder, top1=0.8125, top5=0.96875):
    evaluation = folder / "evaluation"
    (evaluation / "figures").mkdir(parents=True)
    (evaluation / "metrics.json").write_text(json.dumps({
        "video_top1": top1, "video_top5": top5, "clip_top1": 0.75, "mean_class_accuracy": 0.7916,
        "macro_f1": 0.8, "num_clips": 5, "num_crops": 3, "num_videos": 32, "split": "test"}))
    (evaluation / "per_class.csv").write_text(
        "index,class,support,accuracy,precision,recall,f1,predicted\n"
        "0,ApplyEyeMakeup,10,0.9,0.818,0.9,0.857,11\n1,Archery,12,0.75,0.9,0.75,0.818,10\n"
        "2,Basketball,10,,0.0,0.0,0.0,11\n")
    for name in ("confusion_matrix", "training_curves"):
        (evaluation / "figures" / f"{name}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + name.encode())
    return evaluation


def test_card_metadata_round_trips_through_huggingface_hub(tmp_path):
    folder = make_model_dir(tmp_path / "model")
    add_evaluation(folder)
    (folder / "all_results.json").write_text(json.dumps({"test_accuracy": 0.71875, "test_samples": 32}))
    path = write_model_card(folder, repo_id="someone/videomae-ucf101")

    card = ModelCard.load(path)
    data = card.data
    assert data.library_name == "transformers" and data.pipeline_tag == "video-classification"
    assert data.license == "cc-by-nc-4.0"  # follows the MCG-NJU base checkpoint
    assert data.base_model == "MCG-NJU/videomae-base"
    assert {"video-classification", "videomae", "ucf101"} <= set(data.tags)
    assert data.metrics == ["accuracy"]

    model_name, results = model_index_to_eval_results(data.to_dict()["model-index"])
    assert model_name == "videomae-ucf101"
    measured = {(r.metric_type, r.metric_args["num_clips"], r.metric_args["num_crops"]): r.metric_value
                for r in results}
    assert measured == {("accuracy", 5, 3): 0.8125, ("top_5_accuracy", 5, 3): 0.96875,
                        ("accuracy", 1, 1): 0.71875}
    for result in results:
        identity = (result.task_type, result.dataset_type, result.dataset_name)
        assert identity == ("video-classification", "ucf101", "UCF101")
        assert result.dataset_split == "test" and result.dataset_config == "split2"


def test_card_body_shows_results_per_class_figures_recipe_and_citation(tmp_path):
    folder = make_model_dir(tmp_path / "model")
    add_evaluation(folder)
    text = write_model_card(folder).read_text()
    assert "| Top-1 accuracy (video) | 81.25% |" in text
    assert "| Top-5 accuracy (video) | 96.88% |" in text
    assert "5 clips x 3 crops" in text and "32 videos" in text
    assert "| Archery | 12 | 0.750 | 0.900 | 0.750 | 0.818 |" in text
    assert "| Basketball | 10 | n/a |" in text  # an empty accuracy is not invented
    # training curves come before the confusion matrix, both copied next to the card
    assert text.index("figures/training_curves.png") < text.index("figures/confusion_matrix.png")
    assert (folder / "figures" / "confusion_matrix.png").read_bytes().endswith(b"confusion_matrix")
    assert "| learning_rate | `5e-05` |" in text and "per_device_train_batch_size" in text
    assert 'pipeline("video-classification"' in text and "trust_remote_code=True" in text
    assert "tong2022videomae" in text and "soomro2012ucf101" in text


def test_unevaluated_model_card_reports_no_number(tmp_path):
    folder = make_model_dir(tmp_path / "model")
    card, figures = build_model_card(folder)
    assert card.data.eval_results is None and card.data.metrics is None
    assert "model-index" not in card.content and figures == []
    assert not re.search(r"\d%", card.text)  # no percentage anywhere
    assert "has not been evaluated" in card.text


def test_trainer_results_alone_are_reported_as_single_view(tmp_path):
    folder = make_model_dir(tmp_path / "model")
    (folder / "all_results.json").write_text(json.dumps({"test_accuracy": 0.5, "test_top5_accuracy": 0.875}))
    card, _ = build_model_card(folder)
    assert [(r.metric_type, r.metric_value, r.metric_args) for r in card.data.eval_results] == [
        ("accuracy", 0.5, {"num_clips": 1, "num_crops": 1}),
        ("top_5_accuracy", 0.875, {"num_clips": 1, "num_crops": 1})]
    assert "Trainer's test evaluation" in card.text


def test_converted_i3d_card(tmp_path):
    labels = {str(i): f"action {i}" for i in range(400)}
    folder = make_model_dir(tmp_path / "i3d", model_type="i3d", labels=labels, recipe=False)
    card, _ = build_model_card(folder, repo_id="someone/i3d-kinetics400")
    assert card.data.license == "apache-2.0"
    assert card.data.base_model is None and "kinetics-400" in card.data.tags
    assert "converted" in card.text and "carreira2017quovadis" in card.text and "kay2017kinetics" in card.text


def test_missing_config_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        build_model_card(tmp_path)


def test_trainer_numbers_are_not_repeated_when_an_evaluation_used_the_same_single_view(tmp_path):
    folder = make_model_dir(tmp_path / "model")
    evaluation = add_evaluation(folder)
    metrics = json.loads((evaluation / "metrics.json").read_text())
    (evaluation / "metrics.json").write_text(json.dumps({**metrics, "num_clips": 1, "num_crops": 1}))
    (folder / "all_results.json").write_text(json.dumps({"test_accuracy": 0.8125}))
    card, _ = build_model_card(folder)
    assert [(r.metric_type, r.metric_value) for r in card.data.eval_results] == [
        ("accuracy", 0.8125), ("top_5_accuracy", 0.96875)]
    assert "Trainer" not in card.text


def test_a_run_without_evaluation_still_shows_its_training_curves(tmp_path):
    folder = make_model_dir(tmp_path / "model")
    history = [{"step": s, "epoch": s / 10, "loss": 2.0 / s, "learning_rate": 1e-3} for s in range(1, 11)]
    history += [{"step": 10, "epoch": 1.0, "eval_loss": 0.9, "eval_accuracy": 0.7}]
    (folder / "trainer_state.json").write_text(json.dumps({"log_history": history, "global_step": 10}))
    card, figures = build_model_card(folder)
    assert [target for _, target in figures] == ["figures/training_curves.png"]
    assert figures[0][0].is_file() and figures[0][0].read_bytes()[:4] == b"\x89PNG"
    assert "![Training curves](figures/training_curves.png)" in str(card)


def test_card_states_how_long_the_run_trained_not_the_recipe_default(tmp_path):
    folder = make_model_dir(tmp_path / "model")  # the recipe says num_train_epochs: 4 (a default the run ignored)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 2500, "epoch": 33.78378, "log_history": []}))
    text = str(build_model_card(folder)[0])
    assert "| steps trained | `2500` |" in text and "| epochs trained | `33.78` |" in text
    table = text[text.index("## Training procedure"):text.index("<details>")]
    assert "num_train_epochs" not in table and "max_steps" not in table


def test_run_card_makes_the_folder_answer_the_cards_snippet(tmp_path):
    from pipeline.publish.model_card import write_run_card
    from pipeline.publish.remote_code import custom_pipelines_entry, pipeline_code_files

    data = tmp_path / "data"
    (data / "UCF-101" / "Archery").mkdir(parents=True)
    (data / "UCF-101" / "Archery" / "v_Archery_g01_c01.avi").write_bytes(b"")
    (data / "ucfTrainTestlist").mkdir()
    (data / "ucfTrainTestlist" / "testlist01.txt").write_text("Archery/v_Archery_g01_c01.avi\n")
    folder = make_model_dir(tmp_path / "model", recipe=False)
    (folder / "recipe.yaml").write_text(f"dataset: ucf101\ndataset_dir: {data}\nmax_steps: 10\n")
    card = write_run_card(folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["custom_pipelines"] == custom_pipelines_entry("videomae")
    assert config["id2label"] == LABELS  # the rest of the config is kept
    for source in pipeline_code_files("videomae"):
        assert (folder / source.name).read_bytes() == source.read_bytes(), source.name
    text = card.read_text()
    assert f'model="{folder}", trust_remote_code=True' in text
    assert f'video = "{data / "UCF-101" / "Archery" / "v_Archery_g01_c01.avi"}"' in text
