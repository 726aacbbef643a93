"""The recipe key ``gradient_checkpointing`` handed to transformers under the name the installed release uses.

transformers 5.25 renamed ``TrainingArguments.gradient_checkpointing`` / ``gradient_checkpointing_kwargs`` to
``activation_checkpointing`` / ``activation_checkpointing_kwargs`` (and ``PreTrainedModel.gradient_checkpointing_enable``
to ``activation_checkpointing_enable``). The old names stay until 6 as deprecated aliases that emit a FutureWarning,
then go. Recipes, the docs and users write ``gradient_checkpointing``; either name is accepted, in a recipe or on
the command line, and ``parse_args`` passes the value on under the library's own name: no warning on 5.25, no
unknown key on 6, and the old name still works on releases before the rename.
"""

from __future__ import annotations

from typing import Any

import transformers
from packaging.version import Version

# the release whose TrainingArguments has the new names (tests/test_checkpointing_names.py checks the fields)
RENAMED_IN = Version("5.25.0")
# recipe key users write -> the name from RENAMED_IN on
NEW_NAMES = {
    "gradient_checkpointing": "activation_checkpointing",
    "gradient_checkpointing_kwargs": "activation_checkpointing_kwargs",
}
OLD_NAMES = {new: old for old, new in NEW_NAMES.items()}


def library_uses_new_names(version: str | None = None) -> bool:
    """Whether ``version`` (default: the installed transformers) takes ``activation_checkpointing``."""
    return Version(Version(version or transformers.__version__).base_version) >= RENAMED_IN


def library_name(key: str, version: str | None = None) -> str:
    """``key`` (either spelling) as the installed TrainingArguments names it; other keys unchanged."""
    if library_uses_new_names(version):
        return NEW_NAMES.get(key, key)
    return OLD_NAMES.get(key, key)


def accepted_names() -> set[str]:
    """Both spellings of the checkpointing keys (valid in a recipe whatever the installed release calls them)."""
    return set(NEW_NAMES) | set(OLD_NAMES)


def with_library_names(values: dict[str, Any], where: str, version: str | None = None) -> dict[str, Any]:
    """``values`` (a recipe) with the checkpointing keys under the library's names; both spellings of one key is
    an error naming ``where``."""
    renamed: dict[str, Any] = {}
    for key, value in values.items():
        name = library_name(key, version)
        if name in renamed:  # only the two spellings of one checkpointing key can meet here
            raise ValueError(f"{where} gives both {key} and {OLD_NAMES.get(name, NEW_NAMES.get(name))} (one "
                             "setting, two names): keep one")
        renamed[name] = value
    return renamed


def argv_with_library_names(argv: list[str], version: str | None = None) -> list[str]:
    """Command-line flags ``--gradient_checkpointing[=V]`` (and the other spelling) under the library's names."""
    out = []
    for item in argv:
        if item.startswith("--"):
            flag, sep, value = item[2:].partition("=")
            item = f"--{library_name(flag, version)}{sep}{value}"
        out.append(item)
    return out


def checkpointing_enabled(training_args: Any) -> bool:
    """Whether ``training_args`` asks for activation checkpointing (read under either name)."""
    for name in ("activation_checkpointing", "gradient_checkpointing"):
        value = getattr(training_args, name, None)
        if value is not None:
            return bool(value)
    return False


def checkpointing_kwargs(training_args: Any) -> dict | None:
    """The keyword arguments for the checkpoint function (either name), or None."""
    for name in ("activation_checkpointing_kwargs", "gradient_checkpointing_kwargs"):
        value = getattr(training_args, name, None)
        if value is not None:
            return value
    return None


def enable_checkpointing(model: Any, kwargs: dict | None = None) -> None:
    """Turns activation checkpointing on through the model's current method (the deprecated one only where the
    new one does not exist yet)."""
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:
        enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


__all__ = ["RENAMED_IN", "NEW_NAMES", "library_uses_new_names", "library_name", "accepted_names",
           "with_library_names", "argv_with_library_names", "checkpointing_enabled", "checkpointing_kwargs",
           "enable_checkpointing"]
