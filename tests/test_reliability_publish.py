"""Publishing reads only regular files inside the model folder: a symbolic link (to a file or a folder, pointing
outside or inside) stops the push before anything is written or sent, naming the link and its target."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub_server import LocalHubServer
from pipeline.configs import parse_args
from pipeline.training.recipe_checks import check_recipe
from pipeline.publish.hub import (LinkInModelDirError, hub_operations, main as publish_main,
                                  prepare_model_dir_for_hub, push_model_dir, regular_files)
from pipeline.user_errors import one_line_errors
from tiny_videomae import save_tiny_videomae

REPO = Path(__file__).resolve().parents[1]
TOKEN = "hf_local_test_token"


@pytest.fixture
def model_dir(tmp_path):
    return save_tiny_videomae(tmp_path / "model")


@pytest.fixture
def outside(tmp_path):
    secret = tmp_path / "elsewhere" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    return secret


def _push_refused(model_dir: Path, link_name: str, target: str, capsys) -> str:
    with LocalHubServer() as hub:
        with pytest.raises(SystemExit) as exit_info, one_line_errors("python -m pipeline.publish"):
            publish_main(["push", "--model_dir", str(model_dir), "--repo_id", "me/model", "--endpoint", hub.url,
                          "--token", TOKEN])
        assert exit_info.value.code == 2
        assert hub.log == []  # nothing reached the server: not even the repo was created
        assert not hub.store.exists("model", "me/model")
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1
    assert f"{link_name} -> {target}" in message and "nothing was written or sent" in message
    return message


def test_link_to_a_file_outside_is_refused_and_nothing_is_sent(model_dir, outside, capsys):
    (model_dir / "passwd.txt").symlink_to(outside)
    _push_refused(model_dir, "passwd.txt", str(outside), capsys)


def test_link_pointing_inside_the_folder_is_refused_too(model_dir, capsys):
    (model_dir / "weights_copy.safetensors").symlink_to("model.safetensors")  # relative, inside
    _push_refused(model_dir, "weights_copy.safetensors", "model.safetensors", capsys)


def test_linked_folder_and_links_inside_subfolders_are_refused(model_dir, outside, capsys):
    (model_dir / "extra").symlink_to(outside.parent, target_is_directory=True)
    (model_dir / "evaluation").mkdir()
    (model_dir / "evaluation" / "metrics.json").symlink_to(outside)
    message = _push_refused(model_dir, "extra", str(outside.parent), capsys)
    assert f"evaluation/metrics.json -> {outside}" in message and "2 symbolic link(s)" in message


def test_linked_config_is_refused_not_read(model_dir, outside):
    config = model_dir / "config.json"
    config.rename(model_dir / "real_config.json")
    config.symlink_to(outside)
    with pytest.raises(LinkInModelDirError, match="config.json -> "):
        hub_operations(model_dir, repo_id="me/model")


def test_prepare_never_writes_through_a_link(model_dir, outside):
    """README.md linked to a file outside: the card must not overwrite that file."""
    (model_dir / "README.md").symlink_to(outside)
    before = outside.read_text()
    with pytest.raises(LinkInModelDirError, match="README.md -> "):
        prepare_model_dir_for_hub(model_dir, repo_id="me/model")
    assert outside.read_text() == before


def test_links_in_places_never_uploaded_are_not_read_and_allowed(model_dir, outside):
    """Checkpoints and hidden folders are not uploaded (nor walked): a link there changes nothing."""
    (model_dir / "checkpoint-10").mkdir()
    (model_dir / "checkpoint-10" / "latest").symlink_to(outside)
    (model_dir / ".cache").symlink_to(outside.parent, target_is_directory=True)
    files = regular_files(model_dir)
    assert "config.json" in files and not any(name.startswith(("checkpoint-", ".")) for name in files)
    assert all(not path.is_symlink() and path.is_file() for path in files.values())


def test_folder_given_through_a_link_is_published(model_dir, tmp_path):
    """The folder itself may be reached through a link (outputs/latest -> outputs/run-3): what is in it counts."""
    alias = tmp_path / "latest"
    alias.symlink_to(model_dir, target_is_directory=True)
    with LocalHubServer() as hub:
        info = push_model_dir(alias, "me/model", token=TOKEN, endpoint=hub.url)
        assert info.commit_url
        assert any(line.startswith("POST") and "commit" in line for line in hub.log)


def test_train_push_to_hub_refuses_a_linked_output_dir_before_any_data(tmp_path, outside):
    """train.py --push_to_hub: the recipe check (before any data is read) refuses a folder holding a link; the
    same check runs again before the Trainer's own push at the end."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").symlink_to(outside)
    args = parse_args([str(REPO / "recipes" / "demo.yaml"), "--output_dir", str(out), "--push_to_hub", "true",
                       "--hub_model_id", "me/model", "--dataset_dir", str(tmp_path / "no_data_needed")])
    with pytest.raises(LinkInModelDirError, match=f"notes.txt -> {outside}"):
        check_recipe(*args)
    source = (REPO / "pipeline" / "train.py").read_text()
    assert source.index("regular_files(training_args.output_dir)") < source.index("trainer.push_to_hub(")
