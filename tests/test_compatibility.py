"""The private library APIs this package relies on (pipeline/compatibility.py) still hold in the installed versions,
and a break is reported loudly, naming the dependency, where it is used."""

from __future__ import annotations

import logging

import pytest
import torch
import transformers
from packaging.version import Version

import pipeline.compatibility as compatibility
from pipeline.compatibility import PRIVATE_APIS, problem, require, untested_versions, warn_if_untested


@pytest.mark.parametrize("key", list(PRIVATE_APIS))
def test_every_private_api_we_rely_on_is_still_there(key):
    assert problem(key) is None


def test_a_renamed_private_method_stops_the_trainer_at_once(monkeypatch):
    from pipeline.training.trainer import VideoTrainer

    monkeypatch.delattr(transformers.Trainer, "_load_best_model")
    monkeypatch.delattr(VideoTrainer, "_load_best_model")
    assert problem("trainer_load_best_model") == "transformers.Trainer._load_best_model no longer exists"
    with pytest.raises(RuntimeError, match="_load_best_model no longer exists .*tested with transformers"):
        VideoTrainer(model=None)


def test_a_changed_signature_is_named(monkeypatch):
    monkeypatch.setattr(transformers.Trainer, "_save_checkpoint", lambda self, model: None)
    with pytest.raises(RuntimeError, match=r"no longer takes trial"):
        require("trainer_save_checkpoint")


def test_versions_outside_the_tested_range_are_logged_once(monkeypatch, caplog):
    monkeypatch.setitem(compatibility.TESTED, "transformers", ("4.0.0", "4.1.0"))
    # only transformers out of range, whatever torch is installed
    installed_torch = Version(torch.__version__).base_version
    monkeypatch.setitem(compatibility.TESTED, "torch", (installed_torch, installed_torch))
    monkeypatch.setattr(compatibility, "_warned", set())
    assert untested_versions() == {"transformers": transformers.__version__}
    with caplog.at_level(logging.WARNING):
        warn_if_untested()
        warn_if_untested()
    assert caplog.text.count("outside the versions this package was tested with") == 1
    assert "Trainer._load_from_checkpoint" in caplog.text

