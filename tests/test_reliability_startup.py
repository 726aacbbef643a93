"""Every user mistake gets one line at the start: a missing local model folder is named (predict, evaluation,
export, stream); every numeric recipe key, TrainingArguments' own included, is type- and range-checked before
any data work; a command stopped by SIGTERM says so; a failed write names the file that failed; the demo builder
checks the content of the files it reuses."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from transformers import TrainingArguments

from conftest import REPO, run_train
from pipeline.configs import ALL_ARGUMENT_CLASSES, parse_args
from pipeline.data import demo
from pipeline.data.demo import ensure_demo_dataset
from pipeline.training.checkpoints import CheckpointWriteError, checkpoint_writes
from pipeline.training.recipe_checks import check_numeric_fields
from pipeline.user_errors import RecipeError, check_model_reference, one_line_errors
from tiny_videomae import save_tiny_videomae

RECIPE = str(REPO / "recipes" / "demo.yaml")
MISSING = "/no/such/dir"


# --- missing local model folders ---------------------------------------------------------------------------------

def _one_line(capsys, prog: str, call) -> str:
    with pytest.raises(SystemExit) as exit_info, one_line_errors(prog):
        call()
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_missing_model_folder_is_named_by_every_command(capsys, tmp_path):
    from pipeline.evaluation.command import main as evaluation_main
    from pipeline.export.onnx_export import main as export_main
    from pipeline.predict import main as predict_main
    from pipeline.stream.__main__ import main as stream_main

    expected = f"--model {MISSING}: no such model folder"
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    calls = {
        "python -m pipeline.predict": lambda: predict_main(["--model", MISSING, str(video)]),
        "python -m pipeline.evaluation": lambda: evaluation_main(["--model", MISSING, "--output_dir",
                                                                  str(tmp_path / "eval")]),
        "python -m pipeline.export": lambda: export_main(["--model", MISSING, "--output_dir", str(tmp_path / "x")]),
        "python -m pipeline.stream": lambda: stream_main(["--model", MISSING, "--source", str(video)]),
    }
    for prog, call in calls.items():
        line = _one_line(capsys, prog, call)
        assert line.startswith(f"{prog}: error: {expected}"), line
    assert not (tmp_path / "eval").exists() and not (tmp_path / "x").exists()


def test_hub_ids_are_left_to_the_hub_and_paths_that_exist_pass(tmp_path):
    for reference in ("MCG-NJU/videomae-base", "bert-base-uncased", str(tmp_path)):
        check_model_reference(reference)
    for reference in ("./outputs/run", "../run", "~/nothing-here-either", "a/b/c", "/abs/missing"):
        with pytest.raises(FileNotFoundError, match="no such model folder"):
            check_model_reference(reference)


# --- numeric recipe keys ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra, message", [
    (["--per_device_train_batch_size", "0"], "per_device_train_batch_size: 0 is not possible; it must be above 0"),
    (["--gradient_accumulation_steps", "0"], "gradient_accumulation_steps: 0 is not possible"),
    (["--learning_rate", "-0.1"], "learning_rate: -0.1 is not possible; it must be at least 0"),
    (["--max_steps", "-5"], "max_steps: -5 is not possible; it must be at least 0 (or -1 for its default)"),
    (["--num_train_epochs", "nan"], "num_train_epochs: nan is not possible; it must be a finite number"),
    (["--dataloader_num_workers", "-1"], "dataloader_num_workers: -1 is not possible"),
])
def test_impossible_numbers_on_the_command_line_stop_in_parse_args(extra, message, tmp_path):
    with pytest.raises(RecipeError) as caught:
        parse_args([RECIPE, "--output_dir", str(tmp_path)] + extra)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


@pytest.mark.parametrize("line, message", [
    ("learning_rate: {a: 1}", "learning_rate: {'a': 1} is not possible; it must be a number"),
    ("per_device_train_batch_size: 2.5", "per_device_train_batch_size: 2.5 is not possible; it must be an integer"),
    ("weight_decay: true", "weight_decay: True is not possible; it must be a number"),
    ("seed: [1, 2]", "seed: [1, 2] is not possible; it must be an integer"),
])
def test_impossible_numbers_in_a_recipe_stop_in_parse_args(line, message, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(Path(RECIPE).read_text() + f"\n{line}\n")
    with pytest.raises(RecipeError, match="^" + message.replace("[", r"\[").replace("(", r"\(")):
        parse_args([str(recipe), "--output_dir", str(tmp_path)])


def test_sentinels_and_zeros_that_mean_something_pass(tmp_path):
    args = parse_args([RECIPE, "--output_dir", str(tmp_path), "--max_steps", "-1", "--seed", "0",
                       "--warmup_steps", "0", "--weight_decay", "0", "--max_grad_norm", "0"])
    assert args[3].max_steps == -1 and args[3].seed == 0


def test_the_check_is_generic_over_the_dataclasses():
    """Every int / float field of every argument class is checked, TrainingArguments' own included: a wrong type
    for each one is refused (so a key a new transformers release adds is covered without a hand list)."""
    import dataclasses
    import typing

    from pipeline.training.recipe_checks import _numeric_type

    checked = 0
    for cls in ALL_ARGUMENT_CLASSES:
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            if field.init and _numeric_type(hints[field.name])[0] is not None:
                with pytest.raises(RecipeError, match=f"^{field.name}: "):
                    check_numeric_fields(ALL_ARGUMENT_CLASSES, {field.name: "many"})
                checked += 1
    training_numbers = {f.name for f in dataclasses.fields(TrainingArguments)
                        if f.init and _numeric_type(typing.get_type_hints(TrainingArguments)[f.name])[0]}
    assert {"learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps"} <= training_numbers
    assert checked >= len(training_numbers) + 20


@pytest.mark.slow
def test_train_with_a_zero_batch_size_stops_before_any_data_in_one_line(tmp_path):
    started = time.monotonic()
    result = run_train([RECIPE, "--dataset_dir", str(tmp_path / "no_data_here"), "--output_dir", str(tmp_path / "o"),
                        "--per_device_train_batch_size", "0"], check=False, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == ("train.py: error: per_device_train_batch_size: 0 is not "
                                                      "possible; it must be above 0")
    assert "Traceback" not in result.stderr and not (tmp_path / "no_data_here").exists()
    assert time.monotonic() - started < 120


# --- signals ------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_command_stopped_by_sigterm_says_so(tmp_path):
    """predict on a URL whose server never answers: SIGTERM while it waits."""
    import socket

    model = save_tiny_videomae(tmp_path / "tiny")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/v.mp4"
        process = subprocess.Popen([sys.executable, "-m", "pipeline.predict", "--model", str(model), url,
                                    "--timeout", "120"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
        connection, _ = server.accept()  # the command is now waiting for an answer
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        connection.close()
    assert process.returncode == 128 + signal.SIGTERM
    assert stderr.strip().splitlines()[-1] == "python -m pipeline.predict: stopped by SIGTERM (signal 15)"


# --- write failures name the file ---------------------------------------------------------------------------------

def test_a_failed_weights_write_names_the_weights_not_config_json(tmp_path, monkeypatch):
    """safetensors' errors name no file; config.json is written (newest on disk) before the weights fail."""
    import transformers.modeling_utils as modeling_utils
    from safetensors import SafetensorError

    model_dir = save_tiny_videomae(tmp_path / "tiny")
    from transformers import AutoModelForVideoClassification

    model = AutoModelForVideoClassification.from_pretrained(model_dir)
    out = tmp_path / "out"

    def full_disk(*args, **kwargs):
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: '
                              '"No space left on device" })')

    monkeypatch.setattr(modeling_utils, "safe_save_file", full_disk)
    with pytest.raises(CheckpointWriteError) as caught:
        with checkpoint_writes(out, model=model, is_checkpoint=False):
            model.save_pretrained(out)
    assert (out / "config.json").is_file()
    assert str(caught.value).startswith(f"writing {out / 'model.safetensors'} failed: ")


def test_an_oserror_names_its_own_file(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "config.json").write_text("{}")
    with pytest.raises(CheckpointWriteError, match=f"^writing {out / 'optimizer.pt'} failed"):
        with checkpoint_writes(out, is_checkpoint=False):
            raise OSError(28, "No space left on device", str(out / "optimizer.pt"))


# --- the demo builder checks what it reuses -----------------------------------------------------------------------

TINY = dict(seed=3, clips_per_class=3, groups_per_class=3, size=32, num_frames=8)


def test_demo_builder_checks_the_content_of_reused_files(tmp_path, caplog):
    root = ensure_demo_dataset(tmp_path, **TINY, workers=1)
    videos = sorted((root / "UCF-101").rglob("*.avi"))
    overwritten, same_size = videos[0], videos[1]
    overwritten.write_bytes(videos[2].read_bytes())  # the user copied another clip over it
    data = bytearray(same_size.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte changed: same size
    stamp = same_size.stat().st_mtime_ns
    same_size.write_bytes(bytes(data))
    os.utime(same_size, ns=(stamp, stamp))
    caplog.set_level(logging.WARNING)
    assert ensure_demo_dataset(tmp_path, **TINY, workers=1) == root
    warning = next(r.getMessage() for r in caplog.records if "differ from what the generator wrote" in r.getMessage())
    for path in (overwritten, same_size):
        assert path.relative_to(root).as_posix() in warning
    assert "2 file(s)" in warning
    assert overwritten.read_bytes() == videos[2].read_bytes()  # used as it is, never overwritten

    # a fill-in after a deletion keeps the user's files recognisably theirs: the manifest keeps the old digests
    videos[3].unlink()
    ensure_demo_dataset(tmp_path, **TINY, workers=1)
    manifest = json.loads((root / demo.MANIFEST_NAME).read_text())
    assert videos[3].is_file()
    assert demo.changed_files(root, manifest) == sorted(p.relative_to(root).as_posix()
                                                        for p in (overwritten, same_size))
