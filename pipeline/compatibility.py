"""The private library APIs this package depends on, why, and the versions they were tested with: checked where used.

Each entry names a private method or attribute of a library, the upstream behaviour it works around, and the
library versions the dependent code was tested on (``constraints.txt`` pins the same set for CI). ``require``
fails at once, naming the entry, when the installed library no longer has what the entry relies on (a renamed
private method would otherwise be silently bypassed: an override that is never called). ``warn_if_untested`` logs
once per process when a library's installed version is outside the tested range: nothing is known to be broken,
but nothing was checked either. ``tests/test_compatibility.py`` runs every check, so a library release that
changes one fails the suite loudly.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
from dataclasses import dataclass
from typing import Any

from packaging.version import Version

logger = logging.getLogger(__name__)

# The versions the private-API dependencies below were tested with (inclusive).
TESTED = {
    "transformers": ("5.17.0", "5.25.0"),
    # 2.15.0: the fast tests (every check below included) in a fresh venv; constraints.txt keeps 2.14.1, the newest
    # release the CI machines hold on disk
    "torch": ("2.11.0", "2.15.0"),
}


@dataclass(frozen=True)
class PrivateApi:
    """One dependency: ``owner`` (dotted path of a class or module) must have ``attribute`` with ``parameters``."""

    owner: str
    attribute: str
    parameters: tuple[str, ...]
    library: str
    why: str

    @property
    def name(self) -> str:
        return f"{self.owner}.{self.attribute}"


PRIVATE_APIS = {
    "trainer_load_from_checkpoint": PrivateApi(
        "transformers.Trainer", "_load_from_checkpoint", ("resume_from_checkpoint", "model"), "transformers",
        "VideoTrainer reloads resumed weights through from_pretrained: the Trainer's own reload uses "
        "load_state_dict on the raw file, which loses VideoMAE's renamed q_bias/v_bias (DESIGN fact 9)"),
    "trainer_load_best_model": PrivateApi(
        "transformers.Trainer", "_load_best_model", (), "transformers",
        "VideoTrainer reloads the best checkpoint through from_pretrained (same renamed-weight loss)"),
    "trainer_save_checkpoint": PrivateApi(
        "transformers.Trainer", "_save_checkpoint", ("model", "trial"), "transformers",
        "VideoTrainer names the file and the disk space when a checkpoint write fails, and keeps the last good one"),
    "trainer_get_train_sampler": PrivateApi(
        "transformers.Trainer", "_get_train_sampler", ("train_dataset",), "transformers",
        "VideoTrainer draws training videos class-balanced (balanced_sampler) through the Trainer's sampler hook"),
    "trainer_init_training_state": PrivateApi(
        "transformers.Trainer", "_init_training_state",
        ("max_steps", "num_update_steps_per_epoch", "num_train_epochs", "resume_from_checkpoint", "trial"),
        "transformers",
        "VideoTrainer resumes a stream (no length) in the epoch and at the batch its checkpoint saved "
        "(training/stream_position.py): the Trainer's own count takes the whole run for one epoch"),
    "config_attn_implementation": PrivateApi(
        "transformers.PretrainedConfig", "_attn_implementation_internal", (), "transformers",
        "TimeSformer's SDPA path sets the attention kernel the way set_attn_implementation writes it, without "
        "its validation, which refuses anything but eager for the library's TimeSformer classes"),
    "untyped_storage_new_shared": PrivateApi(
        "torch.UntypedStorage", "_new_shared", ("size",), "torch",
        "loader workers build batches in shared memory from the start (torch's own default_collate does the "
        "same): a batch made in ordinary memory is copied once more when a worker sends it"),
    "videomae_sinusoid_table": PrivateApi(
        "transformers.models.videomae.modeling_videomae", "get_sinusoid_encoding_table", ("n_position", "d_hid"),
        "transformers",
        "VideoMAE at another frame count rebuilds its fixed position table the library's way "
        "(inference/frame_count.py, shipped as remote code: checked here and by its tests)"),
    "vivit_processor_offset": PrivateApi(
        "transformers.VivitImageProcessor", "offset", (), "transformers",
        "ViViT's processors subtract 1 after rescaling (offset); the clip contract folds that into the mean "
        "(inference/preprocessing.py) to feed ViViT the [-1, 1] it was trained on"),
    "videoprism_video_kwargs": PrivateApi(
        "transformers.VideoPrismProcessor", "video_kwargs", (), "transformers",
        "VideoPrism's checkpoints ship a generic video processor; VideoPrismProcessor sets frames in [0, 1] and the "
        "size at call time (its video_kwargs class defaults), which models/processors.py applies to the video "
        "processor itself so the clip contract feeds VideoPrism what it was trained on"),
    "argparse_actions": PrivateApi(
        "argparse.ArgumentParser", "_actions", (), "python",
        "a recipe's values make HfArgumentParser's required flags optional (HfArgumentParser exposes no other "
        "way to mark an argument given)"),
}


def _owner(path: str) -> Any:
    try:
        return importlib.import_module(path)  # a module (a function of it is the dependency)
    except ImportError:
        module, _, name = path.rpartition(".")
        return getattr(importlib.import_module(module), name)


def problem(key: str) -> str | None:
    """Why PRIVATE_APIS[key] no longer holds in this environment, or None when it does."""
    api = PRIVATE_APIS[key]
    owner = _owner(api.owner)
    if api.attribute == "_actions":  # an instance attribute: look at a fresh parser
        owner = argparse.ArgumentParser()
    if api.attribute in ("_attn_implementation_internal", "offset"):  # instance attributes: a default instance
        owner = owner()
    if not hasattr(owner, api.attribute):
        return f"{api.name} no longer exists"
    member = getattr(owner, api.attribute)
    if api.parameters and callable(member):
        names = list(inspect.signature(member).parameters)
        missing = [p for p in api.parameters if p not in names]
        if missing:
            return f"{api.name} no longer takes {', '.join(missing)} (it takes {', '.join(names)})"
    return None


def require(key: str) -> None:
    """Raises, naming the dependency and why it exists, when the installed library broke PRIVATE_APIS[key]."""
    found = problem(key)
    if found:
        api = PRIVATE_APIS[key]
        versions = TESTED.get(api.library)
        tested = f" (tested with {api.library} {versions[0]} to {versions[1]})" if versions else ""
        raise RuntimeError(f"{found}{tested}: this package relies on it because {api.why}. Install a tested "
                           "version (constraints.txt) or update pipeline/compatibility.py and the code using it.")


_warned: set[str] = set()


def untested_versions() -> dict[str, str]:
    """{library: installed version} for each library of TESTED whose version lies outside its tested range."""
    found = {}
    for library, (low, high) in TESTED.items():
        installed = importlib.import_module(library).__version__
        base = Version(Version(installed).base_version)  # 2.14.1+cpu -> 2.14.1
        if not Version(low) <= base <= Version(high):
            found[library] = installed
    return found


def warn_if_untested() -> dict[str, str]:
    """Logs (once per library and process) the libraries installed at versions outside the tested range."""
    found = untested_versions()
    for library, installed in found.items():
        if library not in _warned:
            _warned.add(library)
            low, high = TESTED[library]
            uses = ", ".join(api.name for api in PRIVATE_APIS.values() if api.library == library)
            logger.warning("%s %s is outside the versions this package was tested with (%s to %s); it relies on "
                           "private APIs of it (%s), checked at start but not for behaviour: see "
                           "pipeline/compatibility.py", library, installed, low, high, uses)
    return found
