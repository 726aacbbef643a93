"""A V-JEPA 2 and a VideoPrism classifier (video processor only, `pixel_values_videos`; VideoPrism's (batch, 1,
classes) logits), an X-CLIP and a VideoPrism video-text model (zero-shot pipeline) published with their remote code to tests/hub_server.py, then run by transformers' pipeline() in a fresh interpreter where this
package cannot be imported: same answers as locally."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from hub_server import LocalHubServer
from pipeline.inference import load_pipeline, load_zero_shot_pipeline
from pipeline.publish.hub import custom_pipelines_entry, push_model_dir
from synthetic_videos import write_video
from tiny_families import IMAGE_SIZE, LABELS, NUM_FRAMES, VJEPA2_OVERRIDES
from tiny_videoprism import save_tiny_videoprism_clip
from tiny_xclip import save_tiny_xclip

pytestmark = pytest.mark.slow
TOKEN = "hf_local_test_token"

CONSUMER = textwrap.dedent("""
    import json, sys
    sys.modules["pipeline"] = None  # this project's package must not be importable here
    from transformers import pipeline
    task, repo, video, labels = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    classifier = pipeline(task, model=repo, trust_remote_code=True)
    kwargs = {"candidate_labels": labels.split("|")} if labels else {"top_k": 4}
    print(json.dumps({"class": type(classifier).__name__, "predictions": classifier(video, num_clips=2, **kwargs)}))
""")


def run_consumer(hub, task, repo, video, labels, tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN")}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1")
    script = tmp_path / "consumer.py"
    script.write_text(CONSUMER)
    done = subprocess.run([sys.executable, str(script), task, repo, str(video), labels], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def hub():
    with LocalHubServer() as server:
        yield server


def _same(remote, local):
    assert [p["label"] for p in remote] == [p["label"] for p in local]
    np.testing.assert_allclose([p["score"] for p in remote], [p["score"] for p in local], atol=1e-5)


def test_vjepa2_classifier_runs_from_the_hub_without_this_package(hub, tmp_path):
    from pipeline.models import get_model

    torch.manual_seed(0)
    model, processor = get_model(LABELS, model_type="vjepa2", config_overrides=VJEPA2_OVERRIDES,
                                 image_size=IMAGE_SIZE, num_frames=NUM_FRAMES)
    with torch.no_grad():
        model.classifier.weight.normal_(std=3.0)
    model.config.frame_sampling_rate, model.config.frame_sampling_strategy = 2, "dense"
    folder = tmp_path / "tiny-vjepa2"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    push_model_dir(folder, "someone/tiny-vjepa2", token=TOKEN, endpoint=hub.url)
    video = write_video(tmp_path / "clip.avi", "xvid_gop12", 30)
    remote = run_consumer(hub, "video-classification", "someone/tiny-vjepa2", video, "", tmp_path)
    assert remote["class"] == "PyAVVideoClassificationPipeline"
    _same(remote["predictions"], load_pipeline(str(folder))(str(video), num_clips=2, top_k=4))


def test_xclip_zero_shot_pipeline_runs_from_the_hub_without_this_package(hub, tmp_path):
    folder = save_tiny_xclip(tmp_path / "tiny-xclip")
    push_model_dir(folder, "someone/tiny-xclip", token=TOKEN, endpoint=hub.url)
    from huggingface_hub import hf_hub_download

    config = json.loads(open(hf_hub_download("someone/tiny-xclip", "config.json", endpoint=hub.url,
                                             cache_dir=tmp_path / "dl")).read())
    assert config["custom_pipelines"] == custom_pipelines_entry("xclip")
    video = write_video(tmp_path / "clip.avi", "xvid_gop12", 30)
    labels = ["move left", "grow", "rotate"]
    remote = run_consumer(hub, "zero-shot-video-classification", "someone/tiny-xclip", video, "|".join(labels),
                          tmp_path)
    assert remote["class"] == "ZeroShotVideoClassificationPipeline"
    assert sum(p["score"] for p in remote["predictions"]) == pytest.approx(1.0, abs=1e-5)
    _same(remote["predictions"],
          load_zero_shot_pipeline(str(folder))(str(video), candidate_labels=labels, num_clips=2))


def test_videoprism_classifier_runs_from_the_hub_without_this_package(hub, tmp_path):
    from deployment_models import FAMILIES
    from pipeline.models import get_model

    torch.manual_seed(0)
    model, processor = get_model(LABELS, **FAMILIES["videoprism"])
    with torch.no_grad():
        model.classifier.weight.normal_(std=3.0)
    model.config.frame_sampling_rate, model.config.frame_sampling_strategy = 2, "dense"
    folder = tmp_path / "tiny-videoprism"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    assert (folder / "video_preprocessor_config.json").is_file()
    push_model_dir(folder, "someone/tiny-videoprism", token=TOKEN, endpoint=hub.url)
    video = write_video(tmp_path / "clip.avi", "xvid_gop12", 30)
    remote = run_consumer(hub, "video-classification", "someone/tiny-videoprism", video, "", tmp_path)
    assert remote["class"] == "PyAVVideoClassificationPipeline"
    _same(remote["predictions"], load_pipeline(str(folder))(str(video), num_clips=2, top_k=4))


def test_videoprism_zero_shot_pipeline_runs_from_the_hub_without_this_package(hub, tmp_path):
    folder = save_tiny_videoprism_clip(tmp_path / "tiny-videoprism-clip")
    push_model_dir(folder, "someone/tiny-videoprism-clip", token=TOKEN, endpoint=hub.url)
    video = write_video(tmp_path / "clip.avi", "xvid_gop12", 30)
    labels = ["move left", "grow", "rotate"]
    remote = run_consumer(hub, "zero-shot-video-classification", "someone/tiny-videoprism-clip", video,
                          "|".join(labels), tmp_path)
    assert remote["class"] == "ZeroShotVideoClassificationPipeline"
    assert sum(p["score"] for p in remote["predictions"]) == pytest.approx(1.0, abs=1e-5)
    _same(remote["predictions"],
          load_zero_shot_pipeline(str(folder))(str(video), candidate_labels=labels, num_clips=2))
