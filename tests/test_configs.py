"""Recipe + CLI parsing: values, overrides, and errors that name the bad key."""

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.configs import parse_args

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, text):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return str(path)


def test_recipe_values_and_cli_override(tmp_path):
    recipe = write(
        tmp_path,
        "model_type: videomae\nconfig_overrides: {hidden_size: 32}\nnum_frames: 8\nhorizontal_flip: false\n"
        "crop_scale: [0.5, 1.0]\noutput_dir: out\nlearning_rate: 0.001\nlr_scheduler_kwargs: {min_lr_rate: 0.1}\n",
    )
    model, data, run, train = parse_args([recipe, "--learning_rate", "0.0005", "--horizontal_flip", "true"])
    assert model.model_type == "videomae" and model.overrides() == {"hidden_size": 32}
    assert data.num_frames == 8 and data.crop_scale == [0.5, 1.0]
    assert data.horizontal_flip is True  # CLI beats recipe
    assert train.learning_rate == 0.0005 and train.output_dir == "out"
    assert train.lr_scheduler_kwargs == {"min_lr_rate": 0.1}
    assert run.auto_resume is True


def test_cli_config_overrides_string(tmp_path):
    model, *_ = parse_args([write(tmp_path, "model_type: i3d\n"), "--config_overrides", '{"width_multiplier": 0.25}'])
    assert model.overrides() == {"width_multiplier": 0.25}


def test_unknown_recipe_key_is_named(tmp_path):
    with pytest.raises(ValueError, match="unknown key 'lerning_rate'.*learning_rate"):
        parse_args([write(tmp_path, "lerning_rate: 0.1\n")])


def test_unknown_cli_flag_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args([write(tmp_path, "model_type: videomae\n"), "--num_frame", "8"])
    assert exc.value.code == 2
    assert "'--num_frame'" in capsys.readouterr().err


def test_train_script_rejects_typo_at_start():
    result = subprocess.run(
        [sys.executable, "pipeline/train.py", "recipes/demo.yaml", "--nm_train_epochs", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "--nm_train_epochs" in result.stderr and "num_train_epochs" in result.stderr


@pytest.mark.parametrize("recipe", sorted(p.name for p in (REPO / "recipes").glob("*.yaml")))
def test_every_shipped_recipe_parses(recipe):
    # GPU recipes ask for bf16, which TrainingArguments refuses on a machine without a GPU unless told to use the CPU
    model, data, run, train = parse_args([str(REPO / "recipes" / recipe), "--use_cpu", "true"])
    assert bool(model.model_name_or_path) != bool(model.model_type), "a recipe names one model source"
    assert train.output_dir
    if not data.horizontal_flip:
        assert data.dataset == "demo", "only the demo's direction classes need flips off"
