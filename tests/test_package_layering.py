"""The package's import layering and the clip contract's single set of defaults, read from the source (AST):

- nothing imports ``pipeline/train.py`` (the entry script): the run setup lives in ``pipeline/training/setup.py``; only
  the test helpers that run train.py's command in a process of their own (failure injection, the DDP probe) load it;
- ``pipeline/inference/`` imports nothing else of the package (it ships as Hub remote code), and
  ``pipeline/models/i3d/`` only torch, transformers and its siblings;
- no function below ``ClipSpec`` gives a clip-contract field (or an old name of one) a default other than None
  ("not given: the contract's"): the only defaults are ClipSpec's.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from pipeline.inference.clip_spec import FIELDS, OLD_NAMES

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "pipeline"
# test helpers that run train.py's command (train.cli / train.main) in a process of their own
RUN_TRAIN_AS_THE_COMMAND = {"failure_injection.py", "ddp_probe.py"}
# names the contract's fields had before they got one name each, as function parameters
OLD_PARAMETER_NAMES = {"rate", "strategy", "short", "clip_len", *OLD_NAMES}
# where such a name means something else: a model config's own temporal length (as VideoMAEConfig(num_frames=16)),
# the length of the demo's rendered videos
OTHER_MEANING = {"models/i3d/configuration_i3d.py", "data/demo.py"}


def _modules(folder: Path):
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path) -> list[str]:
    """Absolute module names ``path`` imports (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = list(path.relative_to(REPO).with_suffix("").parts[:-1])
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
                names += [module] + [f"{module}.{alias.name}" for alias in node.names]
            else:
                names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _imports_train_script(path: Path) -> bool:
    return any(name == "pipeline.train" or name.startswith("pipeline.train.") for name in _imports(path))


def test_nothing_imports_the_training_entry_script():
    importers = [p.relative_to(REPO) for p in _modules(PACKAGE) + _modules(REPO / "tests")
                 if p != PACKAGE / "train.py" and p.name not in RUN_TRAIN_AS_THE_COMMAND and _imports_train_script(p)]
    assert importers == []
    for name in RUN_TRAIN_AS_THE_COMMAND:  # the exceptions are real, or the list must shrink
        assert _imports_train_script(REPO / "tests" / name)


def test_the_check_finds_an_import_of_the_entry_script(tmp_path):
    probe = PACKAGE / "benchmark" / "_layering_probe.py"  # inside the package, so relative imports resolve
    for text in ("from pipeline.train import main\n", "import pipeline.train as t\n", "from .. import train\n"):
        probe.write_text(text)
        try:
            assert _imports_train_script(probe), text
        finally:
            probe.unlink()


def test_inference_imports_nothing_else_of_the_package():
    for path in _modules(PACKAGE / "inference"):
        outside = [n for n in _imports(path) if n.startswith("pipeline.") and not n.startswith("pipeline.inference")]
        assert outside == [], f"{path.relative_to(REPO)} imports {outside}"


def test_i3d_imports_only_torch_transformers_and_its_siblings():
    for path in _modules(PACKAGE / "models" / "i3d"):
        if path.name == "convert_i3d_jax.py":  # the converter script is not shipped as remote code
            continue
        for name in _imports(path):
            root = name.split(".")[0]
            assert root in {"torch", "transformers"} or root in sys.stdlib_module_names \
                or name.startswith("pipeline.models.i3d"), f"{path.relative_to(REPO)} imports {name}"


@pytest.mark.parametrize("path", _modules(PACKAGE), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_sampling_default_below_the_clip_contract(path):
    if path == PACKAGE / "inference" / "clip_spec.py" or str(path.relative_to(PACKAGE)) in OTHER_MEANING:
        return
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        args = node.args
        positional = args.posonlyargs + args.args
        pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
        pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
        for arg, default in pairs:
            if arg.arg in FIELDS or arg.arg in OLD_PARAMETER_NAMES:
                is_none = isinstance(default, ast.Constant) and default.value is None
                assert is_none, (f"{path.relative_to(REPO)}:{node.lineno} {getattr(node, 'name', 'lambda')}() gives "
                                 f"{arg.arg} a default: the clip contract's defaults are ClipSpec's")


COMMANDS = ("pipeline.predict", "pipeline.app", "pipeline.export", "pipeline.stream", "pipeline.evaluation.command")


def test_commands_share_code_through_the_parts_not_each_other():
    """find_videos is defined once, below the commands, and no command imports another."""
    definers = [p.relative_to(PACKAGE) for p in _modules(PACKAGE)
                if any(isinstance(n, ast.FunctionDef) and n.name == "find_videos" for n in ast.walk(ast.parse(
                    p.read_text())))]
    assert [str(p) for p in definers] == ["data/video_files.py"]
    for path in _modules(PACKAGE):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        for name in _imports(path):
            other = next((c for c in COMMANDS if name == c or name.startswith(c + ".")), None)
            if other and not module.startswith(other):
                assert module.endswith("__main__"), f"{module} imports the command {name}"


def test_find_videos_expands_folders_keeps_urls_and_reports_what_is_missing(tmp_path):
    from pipeline.data.video_files import find_videos

    (tmp_path / "b" / "deep").mkdir(parents=True)
    for name in ("b/deep/z.mp4", "b/a.AVI", "b/notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    found, errors = find_videos([str(tmp_path / "b"), "https://example.org/v.mp4", str(tmp_path / "empty"),
                                 str(tmp_path / "gone.avi")])
    assert found == [str(tmp_path / "b" / "a.AVI"), str(tmp_path / "b" / "deep" / "z.mp4"), "https://example.org/v.mp4"]
    assert [e["video"] for e in errors] == [str(tmp_path / "empty"), str(tmp_path / "gone.avi")]
    assert "no video files" in errors[0]["error"] and "no such video" in errors[1]["error"]
