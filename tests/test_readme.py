"""README.md as a reader meets it: its map names every module, and its code blocks run or at least parse.

How to mark a README block. Every fenced ``python`` or ``bash`` block needs a marker on a line of its own just
before it (blank lines between are fine); a block without one fails ``test_every_code_block_is_marked``:

- ``<!-- readme: run -->``: cheap (seconds on a CPU). ``test_run_blocks_in_reader_order`` runs these, in the
  order of the file, in one scratch folder where ``outputs/demo`` is a copy of the session's trained demo model
  (``trained_demo`` in conftest.py, trained by the README's own demo command) and ``data/demo`` its dataset;
  ``pipeline/``, ``recipes/`` and ``accelerate_configs/`` are there too. bash runs with ``bash -e``; python in a
  fresh interpreter, so each python block must stand alone.
- ``<!-- readme: syntax -->`` (any words may follow ``syntax``): long or not runnable here (training, UCF101, GPUs,
  several machines, installs). python is compiled; bash passes ``bash -n``, and every ``python -m pipeline.X ...``
  and ``accelerate launch ... pipeline/train.py ...`` command in it is parsed by that command's real argument
  parser (``PARSERS``; train.py's with ``pipeline.configs.parse_args``), so a flag that does not exist fails.
  A command of another program must be one of ``OTHER_PROGRAMS``.

Fences with another language (``text``, ``yaml``) or none are not checked.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from conftest import REPO

README = REPO / "README.md"
PACKAGE = REPO / "pipeline"
MARKER = re.compile(r"^<!--\s*readme:\s*(run|syntax)\b.*-->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")
CHECKED_LANGUAGES = ("python", "bash")
# programs a syntax block may call that have no parser of ours: their flags are theirs to check
OTHER_PROGRAMS = {"pip", "pytest", "tensorboard", "apt-get", "ffmpeg"}


def _parse_with(get_parser: Callable) -> Callable[[list[str]], None]:
    return lambda argv: get_parser().parse_args(argv)


def _stream_args(argv):
    from pipeline.stream.__main__ import parse_args

    parse_args(argv)


def _train_args(argv):
    """train.py's own parsing (recipe + flags -> dataclasses). A GPU recipe is parsed as if for the CPU: the
    dataclasses check the machine (bf16 needs a GPU), not the flags."""
    from pipeline.configs import parse_args

    parse_args(argv + ["--use_cpu", "true"])


def _shards_args(argv):
    from transformers import HfArgumentParser

    from pipeline.configs import DataArguments
    from pipeline.data.shards import ShardArguments

    HfArgumentParser((ShardArguments, DataArguments), allow_abbrev=False).parse_args_into_dataclasses(args=argv)


def _module_parsers() -> dict[str, Callable[[list[str]], None]]:
    from pipeline.app import parse_args as app_args
    from pipeline.data.demo_video import build_parser as demo_video_parser
    from pipeline.evaluation.command import parse_args as evaluation_args
    from pipeline.export.onnx_export import parse_args as export_args
    from pipeline.models.i3d.convert_i3d_jax import build_parser as convert_parser
    from pipeline.predict import build_parser as predict_parser
    from pipeline.publish.hub import build_parser as publish_parser

    return {
        "pipeline.app": app_args,
        "pipeline.data.demo_video": _parse_with(demo_video_parser),
        "pipeline.data.shards": _shards_args,
        "pipeline.evaluation": evaluation_args,
        "pipeline.export": export_args,
        "pipeline.models.i3d.convert_i3d_jax": _parse_with(convert_parser),
        "pipeline.predict": _parse_with(predict_parser),
        "pipeline.publish": _parse_with(publish_parser),
        "pipeline.stream": _stream_args,
    }


def readme_blocks(text: str) -> list[dict]:
    """Every fenced block: language, marker ("run", "syntax" or None), code, and its line number."""
    blocks, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        start, language = i, fence.group(1)
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.match(before.strip())
        blocks.append({"language": language, "marker": marker.group(1) if marker else None,
                       "code": "\n".join(lines[start + 1:end]) + "\n", "line": start + 1})
        i = end + 1
    return blocks


def shell_commands(code: str) -> list[list[str]]:
    """The simple commands of a bash block, as argument lists (continuations joined, comments and pipes split)."""
    commands = []
    for line in code.replace("\\\n", " ").split("\n"):
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        current: list[str] = []
        for token in lexer:
            if token and set(token) <= set(";&|"):
                commands.append(current)
                current = []
            else:
                current.append(token)
        commands.append(current)
    return [c for c in commands if c]


def check_command(argv: list[str], parsers: dict[str, Callable]) -> None:
    """Parses one command with its real parser; raises AssertionError naming what is wrong."""
    program = argv[0]
    if program in ("python", "python3") and argv[1:3] == ["-m", "pipeline.launch"]:
        _check_launch(argv[3:], argv)  # accelerate launch's arguments
    elif program in ("python", "python3") and argv[1:2] == ["-m"]:
        module, args = argv[2], argv[3:]
        assert module in parsers, f"no parser known for `python -m {module}`: add it to PARSERS in {__file__}"
        _parse(parsers[module], args, " ".join(argv))
    elif program == "accelerate":
        assert argv[1] == "launch", argv
        _check_launch(argv[2:], argv)
    else:
        assert program in OTHER_PROGRAMS, f"`{' '.join(argv)}`: no parser for {program} (see this file's docstring)"


def _check_launch(args: list[str], argv: list[str]) -> None:
    """``accelerate launch`` (or ``python -m pipeline.launch``) arguments, then train.py's own."""
    from accelerate.commands.launch import launch_command_parser

    launched = _parse(launch_command_parser().parse_args, args, " ".join(argv))
    script = launched.training_script
    assert script == "pipeline/train.py", f"{argv[0]} launches {script}: only pipeline/train.py is known"
    _parse(_train_args, list(launched.training_script_args), " ".join(argv))


def _parse(parse: Callable, args: list[str], command: str):
    try:
        return parse(args)
    except SystemExit as error:
        raise AssertionError(f"`{command}` does not parse (status {error.code}): see the error above") from None
    except ValueError as error:  # HfArgumentParser's word for flags no dataclass has
        raise AssertionError(f"`{command}` does not parse: {error}") from None


@pytest.fixture(scope="module")
def blocks() -> list[dict]:
    return readme_blocks(README.read_text())


def test_every_code_block_is_marked(blocks):
    unmarked = [b["line"] for b in blocks if b["language"] in CHECKED_LANGUAGES and b["marker"] is None]
    assert not unmarked, f"README.md blocks without <!-- readme: run|syntax --> before them, at lines {unmarked}"
    assert any(b["marker"] == "run" for b in blocks) and any(b["marker"] == "syntax" for b in blocks)


def test_syntax_blocks_compile_and_their_flags_exist(blocks):
    parsers = _module_parsers()
    for block in blocks:
        if block["language"] == "python":
            compile(block["code"], f"README.md:{block['line']}", "exec")
        elif block["language"] == "bash":
            checked = subprocess.run(["bash", "-n"], input=block["code"], text=True, capture_output=True)
            assert checked.returncode == 0, f"README.md:{block['line']}: {checked.stderr}"
            if block["marker"] == "syntax":
                for command in shell_commands(block["code"]):
                    check_command(command, parsers)


def test_flag_check_catches_a_flag_that_does_not_exist():
    parsers = _module_parsers()
    check_command(["python", "-m", "pipeline.predict", "--model", "m", "--top_k", "3", "v.avi"], parsers)
    for wrong in (["python", "-m", "pipeline.predict", "--model", "m", "--topk", "3", "v.avi"],
                  ["accelerate", "launch", "pipeline/train.py", "recipes/demo.yaml", "--learning_rat", "1"],
                  ["accelerate", "launch", "--num_proceses", "2", "pipeline/train.py", "recipes/demo.yaml"],
                  ["python", "-m", "pipeline.nowhere", "--x"], ["wget", "http://example.com"]):
        with pytest.raises(AssertionError):
            check_command(wrong, parsers)


def test_map_names_every_module():
    text = README.read_text()
    section = text[text.index("## Map of the package"):]
    section = section[:section.index("\n## ", 1)]
    named = {line.split()[0] for line in section.split("\n") if line.split() and line.split()[0].endswith(".py")}
    modules = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
               if p.name not in ("__init__.py", "__main__.py") and "__pycache__" not in p.parts}
    assert not modules - named, f"modules missing from README's map: {sorted(modules - named)}"
    assert not named - modules, f"README's map names modules that do not exist: {sorted(named - modules)}"


@pytest.mark.slow
def test_run_blocks_in_reader_order(blocks, trained_demo, demo_dataset, tmp_path):
    work = tmp_path / "reader"
    (work / "data").mkdir(parents=True)
    (work / "outputs").mkdir()
    for name in ("pipeline", "recipes", "accelerate_configs"):
        (work / name).symlink_to(REPO / name)
    (work / "data" / "demo").symlink_to(demo_dataset)
    shutil.copytree(trained_demo, work / "outputs" / "demo", ignore=shutil.ignore_patterns("checkpoint-*"))
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HOME=str(tmp_path / "hf-home"))
    ran = 0
    for block in blocks:
        if block["marker"] != "run":
            continue
        command = ["bash", "-e", "-c", block["code"]] if block["language"] == "bash" else [sys.executable, "-c",
                                                                                           block["code"]]
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"README.md:{block['line']} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        ran += 1
    assert ran >= 3
