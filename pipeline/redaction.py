"""Keeping access tokens out of everything a run writes, logs or uploads.

A Hub token given as ``--hub_token`` (or in a recipe) would otherwise be written in plain text into
``recipe.yaml``, the model card that embeds the recipe, and ``training_args.bin`` (the Trainer's pickle of its
arguments), and all three are uploaded. The rules here:

- ``take_hub_token``: train.py moves the token out of ``TrainingArguments`` into this process's ``HF_TOKEN``
  before the Trainer exists; huggingface_hub reads it from there for every call, so no object that gets
  written (pickled, logged, dumped to TensorBoard) ever holds it.
- ``redact_recipe``: a recipe never carries a secret: keys that name one (``hub_token``, ``*_token``,
  ``*password*``, ``*api_key*``, ``*secret*``) become null, and any string that looks like a token becomes
  ``<redacted>``.
- ``RedactingFilter``: log records are scrubbed of token-looking strings and of the live token.
- ``find_secrets``: what an upload checks each file's bytes against before anything leaves the machine.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any, Iterable, Optional

REDACTED = "<redacted>"
# Shapes of access tokens that must never be written: Hugging Face (hf_..., api_org_...), GitHub, OpenAI-style
# keys, AWS access key ids, Slack. Long enough not to match ordinary identifiers.
TOKEN_PATTERN = re.compile(
    r"("
    r"hf_[A-Za-z0-9]{20,}"
    r"|api_org_[A-Za-z0-9]{20,}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|github_pat_[A-Za-z0-9_]{40,}"
    r"|sk-[A-Za-z0-9_-]{32,}"
    r"|AKIA[0-9A-Z]{16}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"
    r")"
)
TOKEN_PATTERN_BYTES = re.compile(TOKEN_PATTERN.pattern.encode())
# Recipe keys whose value is a secret whatever it looks like.
SECRET_KEY_PATTERN = re.compile(r"(^|_)(token|password|passwd|secret|api_key|apikey|credentials?)($|_)",
                                re.IGNORECASE)
# Keys that contain "token" but hold no secret (TrainingArguments' token counting switches).
NOT_SECRET_KEYS = {"average_tokens_across_devices", "include_num_input_tokens_seen", "include_tokens_per_second"}
TOKEN_ENVIRONMENT_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


def is_secret_key(key: str) -> bool:
    """Whether a recipe/config key names a secret (``hub_token``, ``wandb_api_key``, ...)."""
    return key not in NOT_SECRET_KEYS and bool(SECRET_KEY_PATTERN.search(key))


def looks_like_token(value: str) -> bool:
    """Whether a string contains something shaped like an access token."""
    return bool(TOKEN_PATTERN.search(value))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every token-shaped string and every one of ``secrets`` replaced by ``<redacted>``."""
    for secret in secrets:
        if secret and len(secret) >= 8:
            text = text.replace(secret, REDACTED)
    return TOKEN_PATTERN.sub(REDACTED, text)


def redact_recipe(value: Any, key: str = "") -> Any:
    """A copy of a recipe (nested dicts/lists) with secret-named keys set to None and token-shaped strings
    replaced: what is safe to write into recipe.yaml, a checkpoint or a model card."""
    if key and is_secret_key(key) and value is not None and not isinstance(value, bool):
        return None
    if isinstance(value, dict):
        return {k: redact_recipe(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_recipe(v) for v in value)
    if isinstance(value, str) and looks_like_token(value):
        return redact_text(value)
    return value


def take_hub_token(training_args) -> Optional[str]:
    """Moves ``training_args.hub_token`` into this process's ``HF_TOKEN`` and clears the field.

    huggingface_hub (and the Trainer's pushes through it) read ``HF_TOKEN`` on every call, so the token still
    authenticates, while ``training_args.bin``, TensorBoard's copy of the arguments and ``recipe.yaml`` are
    written from an object that no longer holds it. Returns the token (None when none was given)."""
    token = getattr(training_args, "hub_token", None)
    if token:
        os.environ["HF_TOKEN"] = token
        training_args.hub_token = None
    return token or None


def live_tokens() -> list[str]:
    """The tokens this process could authenticate with (environment variables, the stored login)."""
    tokens = [os.environ.get(name) for name in TOKEN_ENVIRONMENT_VARIABLES]
    try:
        from huggingface_hub import get_token

        tokens.append(get_token())
    except Exception:  # no huggingface_hub, or an unreadable token file: nothing more to protect
        pass
    return [t for t in dict.fromkeys(tokens) if t and len(t) >= 8]


def find_secrets(data: bytes, secrets: Iterable[str] = (), *, patterns: bool = True) -> list[str]:
    """What in ``data`` is a secret: ``secrets`` found verbatim, and (``patterns``) token-shaped strings.

    Returns short descriptions (never the secret itself): ``["the token in use", "a string shaped like a Hub
    token (hf_Ab...)"]``."""
    found = []
    for secret in secrets:
        if secret and secret.encode() in data:
            found.append("the access token in use")
    if patterns:
        for match in TOKEN_PATTERN_BYTES.finditer(data):
            text = match.group(0).decode("ascii", "replace")
            found.append(f"a string shaped like an access token ({text[:5]}...)")
            break
    return found


class RedactingFilter(logging.Filter):
    """Scrubs token-shaped strings, the tokens of the environment and ``secrets`` from log records before any
    handler writes them."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        environment = [os.environ.get(name, "") for name in TOKEN_ENVIRONMENT_VARIABLES]
        cleaned = redact_text(message, self.secrets + environment)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction(loggers: Iterable[logging.Logger] = (), secrets: Iterable[str] = ()) -> RedactingFilter:
    """Adds a RedactingFilter to every handler of the root logger, of transformers' logger and of ``loggers``
    (a handler filter sees the records of every logger that propagates to it)."""
    redactor = RedactingFilter(secrets)
    targets = [logging.getLogger(), logging.getLogger("transformers"), *loggers]
    for target in targets:
        for handler in target.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(redactor)
    return redactor
