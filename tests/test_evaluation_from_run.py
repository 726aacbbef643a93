"""``python -m pipeline.evaluation --model RUN_DIR`` evaluates exactly the training run's test split: the data
(kind, folder, split seed, fractions, columns) comes from the run's recipe.yaml, and flags given win."""

from __future__ import annotations

import csv

import datasets
import pytest
import yaml

from pipeline.configs import DataArguments
from pipeline.data.sources import build_dataset
from pipeline.evaluation.command import main
from synthetic_videos import write_video
from tiny_videomae import LABELS, save_tiny_videomae


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder")
    for c, name in enumerate(LABELS):
        (root / name).mkdir()
        for v in range(6):  # every video its own group
            write_video(root / name / f"{name}_{v}.avi", "xvid_gop12", 16 + 2 * c + v)
    return root


def _test_videos(out) -> list[str]:
    with open(out / "predictions.csv", newline="") as handle:
        return sorted(row["video"] for row in csv.DictReader(handle))


def test_the_test_split_is_the_runs_own(video_folder, tmp_path):
    run = save_tiny_videomae(tmp_path / "run")
    recipe = {"dataset": "videofolder", "dataset_dir": str(video_folder), "split_seed": 7, "test_fraction": 0.5,
              "validation_fraction": 0.0, "learning_rate": 1e-3}
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    trained_on = build_dataset(DataArguments(dataset="videofolder", dataset_dir=str(video_folder), split_seed=7,
                                             test_fraction=0.5, validation_fraction=0.0))
    default_seed = build_dataset(DataArguments(dataset="videofolder", dataset_dir=str(video_folder),
                                               test_fraction=0.5, validation_fraction=0.0))
    assert sorted(trained_on["test"]["video"]) != sorted(default_seed["test"]["video"])  # the seed matters here

    metrics = main(["--model", str(run), "--output_dir", str(tmp_path / "eval"), "--num_workers", "0"])
    assert metrics["data_from_recipe"] is True and metrics["dataset"] == "videofolder"
    assert _test_videos(tmp_path / "eval") == sorted(trained_on["test"]["video"])
    # nothing the model trained on is evaluated
    assert not set(_test_videos(tmp_path / "eval")) & set(trained_on["train"]["video"])

    # a flag given wins over the recipe
    main(["--model", str(run), "--output_dir", str(tmp_path / "eval_seed"), "--num_workers", "0", "--split_seed",
          "42"])
    assert _test_videos(tmp_path / "eval_seed") == sorted(default_seed["test"]["video"])


def test_columns_of_a_datasets_dataset_come_from_the_recipe(video_folder, tmp_path):
    paths = sorted(str(p) for p in video_folder.rglob("*.avi"))
    labels = [LABELS.index(p.split("/")[-2]) for p in paths]
    features = datasets.Features({"clip": datasets.Value("string"),
                                  "action": datasets.ClassLabel(names=list(LABELS))})
    saved = tmp_path / "hf_dataset"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"clip": paths[::2], "action": labels[::2]},
                                                              features=features),
                          "test": datasets.Dataset.from_dict({"clip": paths[1::2], "action": labels[1::2]},
                                                             features=features)}).save_to_disk(str(saved))
    run = save_tiny_videomae(tmp_path / "run")
    (run / "recipe.yaml").write_text(yaml.safe_dump({"dataset": "hf", "dataset_dir": str(saved),
                                                     "video_column": "clip", "label_column": "action",
                                                     "validation_fraction": 0.0}))
    metrics = main(["--model", str(run), "--output_dir", str(tmp_path / "eval"), "--num_workers", "0"])
    assert metrics["num_videos"] == len(paths[1::2])
    assert _test_videos(tmp_path / "eval") == sorted(paths[1::2])


def test_data_flags_are_train_pys_and_the_run_recipe_sits_between_recipe_and_flags(tmp_path):
    """DataArguments through HfArgumentParser: defaults < RECIPE.yaml < the run's recipe.yaml < flags; the clip
    contract's fields stay None (the model's config.json) unless given as flags, even when a recipe sets them."""
    import dataclasses

    from pipeline.configs import DataArguments
    from pipeline.evaluation.command import parse_args

    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.yaml").write_text(yaml.safe_dump({"dataset": "videofolder", "split_seed": 7, "test_fraction": 0.5,
                                                     "sampling_strategy": "uniform", "learning_rate": 1e-3}))
    recipe = tmp_path / "given.yaml"
    recipe.write_text(yaml.safe_dump({"split_seed": 3, "label_column": "action", "frame_sampling_rate": 2}))
    args, data, from_run = parse_args([str(recipe), "--model", str(run), "--output_dir", "out"])
    assert from_run and (data.dataset, data.split_seed, data.test_fraction, data.label_column) == (
        "videofolder", 7, 0.5, "action")
    assert all(getattr(data, name) is None for name in ("num_frames", "frame_sampling_rate",
                                                       "frame_sampling_strategy", "short_video", "num_clips",
                                                       "num_crops"))
    args, data, _ = parse_args(["--model", str(run), "--output_dir", "out", "--split_seed", "42", "--num_clips",
                                "3", "--frame_sampling_strategy", "dense", "--video_column", "clip"])
    assert (data.split_seed, data.num_clips, data.frame_sampling_strategy, data.video_column) == (
        42, 3, "dense", "clip")
    assert (args.model, args.output_dir, args.split) == (str(run), "out", "test")
    # every data key of a recipe is a flag of the evaluation, under the same name
    flags = parse_args(["--model", "hub/id", "--output_dir", "out", "--probe_num_proc", "2"])[1]
    assert flags.probe_num_proc == 2 and isinstance(flags, DataArguments)
    assert {f.name for f in dataclasses.fields(DataArguments)} <= set(vars(flags))
