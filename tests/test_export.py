"""ONNX export (python -m pipeline.export) and the ONNX Runtime backend of pipeline() / predict.

Fast tests use a hand-built ONNX graph and fake backends; the slow ones export a tiny model of every family
get_model builds, the trained demo model and DeepMind's converted Kinetics-400 I3D, and check ONNX Runtime
against PyTorch on clips the export never saw (the real UCF101 cricket clip, other unseen demo clips, demo test
videos).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.export import ParityError, export_onnx
from pipeline.export.parity import check_parity
from pipeline.inference import load_pipeline
from pipeline.inference.onnx_runner import OnnxVideoClassifier, find_onnx_file, make_session

from deployment_models import CRICKET_CLIP, FAMILIES, LABELS, REPO, asset, converted_i3d, tiny_family_model

SHAPE = (2, 3, 4, 4)  # frames, channels, height, width of the hand-built graph


def _linear_graph(path: Path, weight: np.ndarray, dynamic_batch: bool) -> Path:
    """pixel_values (batch, 2, 3, 4, 4) -> Flatten -> MatMul(weight) -> logits: a graph with a known answer."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    batch = "batch" if dynamic_batch else 1
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["pixel_values"], ["flat"], axis=1),
         helper.make_node("MatMul", ["flat", "weight"], ["logits"])],
        "linear",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, [batch, *SHAPE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, weight.shape[1]])],
        [numpy_helper.from_array(weight.astype(np.float32), "weight")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("dynamic_batch", [True, False])
def test_onnx_classifier_runs_any_batch(tmp_path, dynamic_batch):
    from transformers import PretrainedConfig

    weight = np.random.default_rng(0).normal(size=(int(np.prod(SHAPE)), 3))
    path = _linear_graph(tmp_path / "model.onnx", weight, dynamic_batch)
    model = OnnxVideoClassifier(PretrainedConfig(num_labels=3), make_session(path), str(path))
    assert model.dynamic_batch is dynamic_batch
    pixel_values = torch.randn(5, *SHAPE)
    logits = model(pixel_values=pixel_values).logits  # a fixed batch of one is run clip by clip
    expected = pixel_values.reshape(5, -1).double().numpy() @ weight
    assert logits.shape == (5, 3)
    np.testing.assert_allclose(logits.numpy(), expected, atol=1e-4)
    with pytest.raises(ValueError, match="does not match the exported"):
        model(pixel_values=torch.randn(1, 3, 3, 4, 4))


def test_onnx_file_lookup(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m pipeline.export"):
        find_onnx_file(tmp_path)
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "model.onnx").write_bytes(b"")
    assert find_onnx_file(tmp_path) == tmp_path / "onnx" / "model.onnx"
    (tmp_path / "model.onnx").write_bytes(b"")
    assert find_onnx_file(tmp_path) == tmp_path / "model.onnx"


def test_parity_check_reports_by_how_much():
    views = [torch.randn(2, *SHAPE), torch.randn(1, *SHAPE)]
    weight = torch.randn(int(np.prod(SHAPE)), 4)

    def reference(x):
        return x.reshape(len(x), -1) @ weight

    exact = check_parity(reference, lambda a: reference(torch.from_numpy(a)).numpy(), views, ["a", "b"],
                         batch_all=True)
    assert exact.passed and exact.max_abs_diff < 1e-5 and exact.top1_agreement == 1.0
    assert exact.largest_batch == 3

    def off_on_b(a):
        out = reference(torch.from_numpy(a)).numpy()
        return out + (0.25 if len(a) == 1 else 0.0)

    failed = check_parity(reference, off_on_b, views, ["a", "b"], tolerance=1e-3)
    assert not failed.passed
    assert failed.worst_video == "b" and failed.max_abs_diff == pytest.approx(0.25, abs=1e-5)
    message = str(ParityError(failed))
    assert "0.25" in message and "> tolerance 0.001" in message and "b" in message


def test_backend_is_checked():
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        load_pipeline("unused", backend="tensorrt")


# ---- real exports ---------------------------------------------------------------------------------------------


def _save(model, processor, folder: Path) -> Path:
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _views(model_dir: Path, video: Path) -> torch.Tensor:
    """The views pipeline() feeds the model for ``video`` (its own preprocessing)."""
    from pipeline.models.loading import load_trained
    from pipeline.inference.video_pipeline import PyAVVideoClassificationPipeline

    model, processor = load_trained(str(model_dir))
    classifier = PyAVVideoClassificationPipeline(model=model, image_processor=processor, device="cpu")
    return classifier.views(str(video), num_clips=2)


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(set(FAMILIES) - {"i3d"}))
def test_every_family_exports_with_parity(tmp_path, family, capsys, caplog):
    """Each family get_model builds exports through the command, passes parity, and serves with backend="onnx".
    (I3D: the real Kinetics-400 model below.)"""
    from pipeline.export.onnx_export import main

    model, processor = tiny_family_model(family)
    model_dir = _save(model, processor, tmp_path / "model")
    attn = {"timesformer-eager": "eager", "timesformer-sdpa": "sdpa"}.get(family)
    out = tmp_path / "onnx"
    argv = ["--model", str(model_dir), "--output_dir", str(out), "--dynamic_batch"]
    argv += ["--attn_implementation", attn] if attn else []
    argv += ["--opset", "18"] if family == "videomae" else []  # an older opset than the exporter's default
    with caplog.at_level("INFO"):
        assert main(argv) == 0
    said = capsys.readouterr()
    assert (said.out + said.err + caplog.text).count("parity passed") == 1  # said once, with the result

    record = json.loads((out / "export.json").read_text())
    assert record["parity"]["passed"] and record["parity"]["max_abs_diff"] <= 1e-3
    assert record["input"]["shape"][0] == "batch" and record["clip_contract"]["frame_sampling_rate"] == 2
    assert record["model_type"] == model.config.model_type
    if attn:
        assert record["attn_implementation"] == attn
    if family == "videomae":
        assert record["opset"] == 18
    assert {"model.onnx", "config.json", "preprocessor_config.json"} <= {p.name for p in out.iterdir()}
    assert not (out / ".export-partial").exists()

    # unseen clip: the real UCF101 video, never used by the export
    runtime = OnnxVideoClassifier.from_export(out)
    torch_model = model.eval()
    views = _views(model_dir, asset(CRICKET_CLIP))
    with torch.inference_mode():
        expected = torch_model(**{torch_model.main_input_name: views}).logits.numpy()
    got = runtime.run(views.numpy())
    assert np.abs(got - expected).max() <= 1e-3
    assert (got.argmax(-1) == expected.argmax(-1)).all()
    # pipeline() feeds each family under its own input name (pipeline/inference/model_inputs.py)
    by_torch = load_pipeline(str(model_dir), device="cpu")(str(CRICKET_CLIP), num_clips=2)
    by_onnx = load_pipeline(str(out), backend="onnx")(str(CRICKET_CLIP), num_clips=2)
    assert [p["label"] for p in by_onnx] == [p["label"] for p in by_torch]
    np.testing.assert_allclose([p["score"] for p in by_onnx], [p["score"] for p in by_torch], atol=1e-4)


def _exports_differently(model):
    """A copy of ``model`` whose logits are shifted by one in eager mode only: the traced graph lacks the shift."""

    class ExportsDifferently(type(model)):
        def forward(self, pixel_values=None, **kwargs):
            output = super().forward(pixel_values=pixel_values, **kwargs)
            if not torch.compiler.is_exporting():
                output.logits = output.logits + 1.0
            return output

    copy = ExportsDifferently(model.config)
    copy.load_state_dict(model.state_dict())
    return copy.eval()


@pytest.mark.slow
def test_failed_parity_says_by_how_much_and_writes_nothing(tmp_path):
    model, processor = tiny_family_model("videomae")
    out = tmp_path / "onnx"
    with pytest.raises(ParityError) as failure:
        export_onnx(_exports_differently(model), processor, out, num_clips=1)
    assert failure.value.report.max_abs_diff == pytest.approx(1.0, abs=1e-4)
    assert "max |logit difference| 1 (> tolerance 0.001)" in str(failure.value)
    assert not (out / "model.onnx").exists() and not (out / ".export-partial").exists()


def test_export_command_fails_on_a_bad_video(tmp_path, capsys):
    from pipeline.export.onnx_export import main

    model, processor = tiny_family_model("videomae")
    model_dir = _save(model, processor, tmp_path / "model")
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"not a video at all")
    assert main(["--model", str(model_dir), "--output_dir", str(tmp_path / "onnx"), "--videos", str(broken)]) == 1
    error = capsys.readouterr().err
    assert "export failed" in error and "broken.avi" in error
    assert not (tmp_path / "onnx" / "model.onnx").exists()


@pytest.mark.slow
def test_demo_model_onnx_agrees_on_unseen_clips(trained_demo, demo_dataset, tmp_path):
    """The trained demo model, exported like a user does; ONNX and PyTorch agree on clips the export never saw."""
    from pipeline.data.demo import CLASS_NAMES
    from pipeline.data.demo_video import write_demo_clips

    out = tmp_path / "demo-onnx"
    result = subprocess.run([sys.executable, "-m", "pipeline.export", "--model", str(trained_demo), "--output_dir",
                             str(out), "--dynamic_batch", "--benchmark_runs", "3"], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((out / "export.json").read_text())
    assert record["parity"]["passed"], record["parity"]
    assert record["speed"]["onnxruntime"]["median_ms"] > 0 and record["speed"]["pytorch"]["median_ms"] > 0

    # unseen: other clip numbers than the export's parity clips, demo test videos, and the real UCF101 clip
    unseen = write_demo_clips(tmp_path / "unseen", CLASS_NAMES, clip=5)
    unseen += sorted((demo_dataset / "UCF-101").glob("*/v_*_g02_c03.avi"))
    unseen.append(asset(CRICKET_CLIP))
    by_torch = load_pipeline(str(trained_demo), device="cpu")
    by_onnx = load_pipeline(str(out), backend="onnx")
    assert type(by_onnx.model).__name__ == "OnnxVideoClassifier"
    wrong = []
    for video in unseen:
        expected = by_torch(str(video), num_clips=2)
        got = by_onnx(str(video), num_clips=2)
        assert got[0]["label"] == expected[0]["label"], video
        np.testing.assert_allclose([p["score"] for p in got], [p["score"] for p in expected], atol=1e-4)
        true_class = video.parent.name if video.parent.name in CLASS_NAMES else video.name.split("_")[0]
        if true_class in CLASS_NAMES and got[0]["label"] != true_class:
            wrong.append(video.name)
    assert len(wrong) <= 2, wrong  # the trained model is right on (nearly) all unseen demo clips

    predicted = subprocess.run([sys.executable, "-m", "pipeline.predict", "--model", str(out), "--backend", "onnx",
                                "--json", str(unseen[0])], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert json.loads(predicted.stdout)[0]["predictions"][0]["label"] == by_torch(str(unseen[0]))[0]["label"]


@pytest.mark.slow
def test_kinetics_i3d_export_parity_and_cricket(tmp_path_factory):
    """DeepMind's I3D (64 x 224 x 224) exports within 1e-3 and labels the unseen cricket clip as PyTorch does."""
    from pipeline.export.onnx_export import main

    i3d = converted_i3d(tmp_path_factory.getbasetemp())
    out = tmp_path_factory.mktemp("i3d-onnx")
    assert main(["--model", str(i3d), "--output_dir", str(out)]) == 0
    record = json.loads((out / "export.json").read_text())
    assert record["input"]["shape"] == [1, 64, 3, 224, 224]
    assert record["parity"]["passed"] and record["parity"]["max_abs_diff"] <= 1e-3

    by_torch = load_pipeline(str(i3d), device="cpu")(str(CRICKET_CLIP), top_k=3)
    by_onnx = load_pipeline(str(out), backend="onnx")(str(CRICKET_CLIP), top_k=3)
    assert by_onnx[0]["label"] == by_torch[0]["label"] == "playing cricket"
    np.testing.assert_allclose([p["score"] for p in by_onnx], [p["score"] for p in by_torch], atol=1e-4)
