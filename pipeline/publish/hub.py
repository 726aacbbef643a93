"""Publishing model folders to the Hugging Face Hub: weights, processor, model card, figures and remote code.

    python -m pipeline.publish push --model_dir outputs/videomae-ucf101 --repo_id me/videomae-ucf101 [--private]

A published repo holds, next to the model files, the code that makes it usable where this package is not
installed (``pipeline.publish.remote_code``: the pipeline named in ``config.json``'s ``custom_pipelines``, the
model code of architectures transformers does not ship), as train.py's output folder does.

train.py (``--push_to_hub``): after ``trainer.push_to_hub()`` (which writes the Trainer's own README and waits
for its checkpoint uploads), ``push_model_dir(output_dir, trainer.hub_model_id, ...)`` uploads our card,
figures, remote code and config in one more commit.

Secrets: ``training_args.bin`` (the Trainer's pickle of its arguments; a consumer cannot load a pickle safely,
and one written by an older version may hold the Hub token) is never uploaded; ``recipe.yaml`` is uploaded with
its secrets removed (``pipeline.redaction.redact_recipe``); and before anything is sent every file is checked
for the token in use and for token-shaped strings: a file holding one stops the upload with its name.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from pathlib import Path
from typing import Any, Optional

import yaml
from huggingface_hub import CommitOperationAdd, HfApi

from ..redaction import find_secrets, live_tokens, redact_recipe
from ..user_errors import UserValueError, one_line_errors
from .model_card import build_model_card, write_model_card, write_run_card
from .remote_code import custom_pipelines_entry, remote_code_files, write_remote_code
from .remote_code import pipeline_code_files  # noqa: F401  (part of this module's API: the files a push uploads)

# Never uploaded: Trainer checkpoints and private/hidden files (as Trainer.push_to_hub ignores them), and the
# Trainer's pickle of its arguments (see the module docstring).
IGNORE_PATTERNS = ("checkpoint-*", "checkpoint-*/*", "_*", ".*", "*/.*", "__pycache__/*", "*/__pycache__/*",
                   "training_args.bin", "*/training_args.bin")
# Files are read in pieces this large when checked for secrets (a piece overlaps the next by SCAN_OVERLAP).
SCAN_CHUNK = 16 << 20
SCAN_OVERLAP = 512


class SecretInUploadError(UserValueError):
    """A file about to be uploaded holds an access token; nothing was uploaded."""


def prepare_model_dir_for_hub(
    model_dir: str | Path, *, repo_id: Optional[str] = None, **card_kwargs: Any
) -> list[Path]:
    """Writes into a model folder what a Hub repo needs besides the model: README.md (card), figures/, the
    remote code files and ``custom_pipelines`` in config.json. Returns the files written."""
    model_dir = Path(model_dir)
    written = [write_model_card(model_dir, repo_id=repo_id, **card_kwargs)]
    written += sorted((model_dir / "figures").glob("*")) if (model_dir / "figures").is_dir() else []
    return written + write_remote_code(model_dir)


def _ignored(path_in_repo: str) -> bool:
    return any(fnmatch.fnmatch(path_in_repo, pattern) for pattern in IGNORE_PATTERNS)


def hub_operations(
    model_dir: str | Path, *, repo_id: Optional[str] = None, **card_kwargs: Any
) -> list[CommitOperationAdd]:
    """Every file of one upload: the folder's files, then the card, figures, remote code and the config with
    ``custom_pipelines``, generated fresh (later entries replace files of the same name)."""
    model_dir = Path(model_dir)
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: missing; --model_dir must be a saved model folder")
    config = json.loads(config_path.read_text())
    files: dict[str, Any] = {}
    for path in sorted(model_dir.rglob("*")):
        relative = path.relative_to(model_dir).as_posix()
        if path.is_file() and not _ignored(relative):
            files[relative] = path
    if "recipe.yaml" in files:
        recipe = yaml.safe_load(Path(files["recipe.yaml"]).read_text()) or {}
        files["recipe.yaml"] = yaml.safe_dump(redact_recipe(recipe), sort_keys=False).encode("utf-8")
    card, figures = build_model_card(model_dir, repo_id=repo_id, **card_kwargs)
    files["README.md"] = str(card).encode("utf-8")
    for source, target in figures:
        files[target] = source
    for source in remote_code_files(model_dir):
        files[source.name] = source
    config["custom_pipelines"] = custom_pipelines_entry(config.get("model_type"))
    files["config.json"] = (json.dumps(config, indent=2, sort_keys=True) + "\n").encode("utf-8")
    return [CommitOperationAdd(path_in_repo=name, path_or_fileobj=content) for name, content in files.items()]


def check_no_secrets(operations: list[CommitOperationAdd], secrets: list[str]) -> None:
    """Raises SecretInUploadError naming every file of the upload that holds one of ``secrets`` or a
    token-shaped string."""
    problems = []
    for operation in operations:
        content = operation.path_or_fileobj
        if isinstance(content, (bytes, bytearray)):
            found = find_secrets(bytes(content), secrets)
        else:
            found = _scan_file(Path(content), secrets)
        if found:
            problems.append(f"{operation.path_in_repo} ({found[0]})")
    if problems:
        raise SecretInUploadError(
            f"upload stopped, nothing was sent: {len(problems)} file(s) hold an access token: "
            f"{'; '.join(problems[:10])}. Remove the token from them (or the files from the folder) and push again")


def _scan_file(path: Path, secrets: list[str]) -> list[str]:
    found: list[str] = []
    tail = b""
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(SCAN_CHUNK)
            if not chunk:
                return found
            found = find_secrets(tail + chunk, secrets)
            if found:
                return found
            tail = chunk[-SCAN_OVERLAP:]


def push_model_dir(
    model_dir: str | Path,
    repo_id: str,
    *,
    token: Optional[str] = None,
    private: Optional[bool] = None,
    commit_message: str = "Upload model, card and remote code with pipeline.publish.hub",
    revision: Optional[str] = None,
    endpoint: Optional[str] = None,
    **card_kwargs: Any,
):
    """Creates the repo if needed and uploads a model folder in one commit; returns huggingface_hub's
    CommitInfo.

    card_kwargs go to ``build_model_card`` (license, dataset, eval_dirs, extra_tags). ``endpoint`` defaults to
    ``HF_ENDPOINT``; ``token`` to the logged-in token / ``HF_TOKEN``."""
    api = HfApi(endpoint=endpoint, token=token)
    # build and check every file first: a folder holding a token must not even get its repo created
    secrets = [t for t in [token, *live_tokens()] if t]
    operations = hub_operations(model_dir, repo_id=repo_id, **card_kwargs)
    check_no_secrets(operations, secrets)
    created = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    if created != repo_id:  # "name" became "user/name": the card names the full id
        operations = hub_operations(model_dir, repo_id=created, **card_kwargs)
        check_no_secrets(operations, secrets)
    repo_id = created
    return api.create_commit(repo_id=repo_id, operations=operations, commit_message=commit_message,
                             revision=revision)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.publish", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    push = commands.add_parser("push", help="publish a saved model folder (weights, processor, card, code)")
    push.add_argument("--model_dir", required=True, help="folder with config.json, weights and processor")
    push.add_argument("--repo_id", required=True, help="Hub repo, e.g. me/videomae-ucf101")
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the logged-in one)")
    push.add_argument("--commit_message", default="Upload model, card and remote code with pipeline.publish.hub")
    push.add_argument("--revision", default=None, help="branch to commit to (default: main)")
    push.add_argument("--endpoint", default=None, help="Hub URL (default: HF_ENDPOINT, else huggingface.co)")
    push.add_argument("--license", default=None, help="license of the weights (default: from the base model)")
    push.add_argument("--dataset", default=None, help="training data if there is no recipe.yaml, e.g. ucf101")
    push.add_argument("--eval_dir", action="append", default=None,
                      help="evaluation output folder(s) to report (default: <model_dir>/evaluation*)")
    card = commands.add_parser("card", help="only write README.md, figures/ and the remote code into a model folder")
    card.add_argument("--model_dir", required=True)
    card.add_argument("--repo_id", default=None)
    card.add_argument("--license", default=None)
    card.add_argument("--dataset", default=None)
    card.add_argument("--eval_dir", action="append", default=None)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    card_kwargs = {"license": args.license, "dataset": args.dataset,
                   "eval_dirs": args.eval_dir}
    if args.command == "card":
        print(write_run_card(args.model_dir, repo_id=args.repo_id, **card_kwargs))
        return 0
    info = push_model_dir(args.model_dir, args.repo_id, token=args.token, private=args.private or None,
                          commit_message=args.commit_message, revision=args.revision, endpoint=args.endpoint,
                          **card_kwargs)
    print(f"pushed {args.model_dir} -> {info.commit_url}")
    return 0


if __name__ == "__main__":
    with one_line_errors("python -m pipeline.publish"):
        sys.exit(main())
