"""Inflation: I3D initialised from a 2D Inception-v1 in torchvision's GoogLeNet layout, the paper's way of
bootstrapping 3D filters from an ImageNet network (Carreira & Zisserman 2017, section 2.4).

Each 2D kernel is repeated along time and divided by the temporal size, so on a "boring" video (one image
repeated) a 3D convolution answers what the 2D one answers on the image. BatchNorm statistics and affine
parameters are copied as they are. torchvision's GoogLeNet has a BatchNorm scale (gamma), which DeepMind's
network does not, so the inflated model is built with `batch_norm_scale=True`.

What equality holds and why (the test checks it):
- Temporal borders: I3D pads time with zeros ("SAME"), so time steps whose receptive field reaches past the
  clip see fewer than all taps of the inflated kernels. Only time steps whose receptive field lies inside the
  clip equal the 2D network; the final features have a receptive field of about 100 frames.
- Spatial padding: I3D pads like TensorFlow ("SAME", the extra element after), torchvision pads symmetrically
  and uses ceil-mode pools. Both place their windows identically when the input side is 16 k - 1 pixels
  (e.g. 63 or 223); at 224 the stem convolution's windows shift by one pixel, which matters for initialisation
  no more than any other translation does.
- Pretrained torchvision weights (IMAGENET1K_V1) were ported from TensorFlow and expect RGB in [-1, 1]
  (torchvision's `transform_input` converts to that), which is also what I3D's processor produces.

Command line: save a GoogLeNet state dict, e.g. ImageNet's with
`torch.save(torchvision.models.googlenet(weights="DEFAULT").state_dict(), "g.pt")`, then write a model folder
usable as `model_name_or_path` in a recipe:

    python -m pipeline.models.i3d.inflate --googlenet g.pt --output_dir outputs/i3d-imagenet-inflated
"""

import argparse
from pathlib import Path

import torch

from .configuration_i3d import DEFAULT_MIXED_CHANNELS, DEFAULT_STEM_CHANNELS, I3DConfig
from .convert_i3d_jax import build_processor
from .modeling_i3d import I3DForVideoClassification

# torchvision GoogLeNet module -> I3D module (both without the trailing ".conv" / ".bn").
_STEM = {"conv1": "i3d.conv3d_1a_7x7", "conv2": "i3d.conv3d_2b_1x1", "conv3": "i3d.conv3d_2c_3x3"}
_INCEPTION = {
    "inception3a": "mixed_3b",
    "inception3b": "mixed_3c",
    "inception4a": "mixed_4b",
    "inception4b": "mixed_4c",
    "inception4c": "mixed_4d",
    "inception4d": "mixed_4e",
    "inception4e": "mixed_4f",
    "inception5a": "mixed_5b",
    "inception5b": "mixed_5c",
}
_BRANCHES = {
    "branch1": "branch_0.conv3d_0a_1x1",
    "branch2.0": "branch_1.conv3d_0a_1x1",
    "branch2.1": "branch_1.conv3d_0b_3x3",
    "branch3.0": "branch_2.conv3d_0a_1x1",
    "branch3.1": "branch_2.conv3d_0b_3x3",
    "branch4.1": "branch_3.conv3d_0b_1x1",  # branch4.0 is the max pool
}
_UNIT_TENSORS = (
    "conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"
)
# Parts of torchvision's GoogLeNet with no I3D counterpart.
_IGNORED_PREFIXES = ("aux1.", "aux2.")


def googlenet_module_map() -> dict:
    """{torchvision BasicConv2d path: I3D Unit3D path} for all 57 convolution + BatchNorm units."""
    mapping = dict(_STEM)
    for block_2d, block_3d in _INCEPTION.items():
        for branch_2d, branch_3d in _BRANCHES.items():
            mapping[f"{block_2d}.{branch_2d}"] = f"i3d.{block_3d}.{branch_3d}"
    return mapping


def _as_state_dict(source) -> dict:
    if isinstance(source, torch.nn.Module):
        return source.state_dict()
    if isinstance(source, (str, Path)):
        return torch.load(source, map_location="cpu", weights_only=True)
    if isinstance(source, dict):
        return source
    kind = type(source).__name__
    raise TypeError(f"inflate.py: expected a GoogLeNet module, a state_dict or a path, got {kind}")


def inflate_state_dict(
    state_dict_2d: dict, model: I3DForVideoClassification, include_classifier: bool = False
) -> dict:
    """The 3D state dict of `model` filled from a 2D GoogLeNet state dict; fails on anything left unmapped.

    include_classifier: also copy GoogLeNet's `fc` into the logits convolution (as many labels as fc outputs).
    """
    target = model.state_dict()
    inflated, problems = {}, []
    units = googlenet_module_map()
    used = set()
    for unit_2d, unit_3d in units.items():
        for leaf in _UNIT_TENSORS:
            key_2d, key_3d = f"{unit_2d}.{leaf}", f"{unit_3d}.{leaf}"
            if key_3d not in target:
                problems.append(f"I3D has no {key_3d} (needs batch_norm_scale=True, width_multiplier=1)")
                continue
            if key_2d not in state_dict_2d:
                problems.append(f"the 2D state dict lacks {key_2d}")
                continue
            tensor = state_dict_2d[key_2d]
            if leaf == "conv.weight":
                time = target[key_3d].shape[2]
                # repeat over time and rescale so that a constant-in-time input gives the 2D response
                tensor = tensor.unsqueeze(2).repeat(1, 1, time, 1, 1) / time
            if tensor.shape != target[key_3d].shape:
                wanted = tuple(target[key_3d].shape)
                problems.append(f"{key_2d} {tuple(tensor.shape)} does not fit {key_3d} {wanted}")
                continue
            inflated[key_3d] = tensor.to(target[key_3d].dtype)
            used.add(key_2d)
    head = ("fc.weight", "fc.bias")
    if include_classifier:
        weight, bias = state_dict_2d["fc.weight"], state_dict_2d["fc.bias"]
        if weight.shape[0] != model.config.num_labels:
            labels = model.config.num_labels
            problems.append(f"fc has {weight.shape[0]} outputs but the model has {labels} labels")
        else:
            inflated["classifier.weight"] = weight[:, :, None, None, None].clone()
            inflated["classifier.bias"] = bias.clone()
    used.update(k for k in head if k in state_dict_2d)
    leftover = [k for k in state_dict_2d if k not in used and not k.startswith(_IGNORED_PREFIXES)]
    problems += [f"2D tensor {k} maps to nothing" for k in leftover]
    missing = [k for k in target if k not in inflated and not k.startswith("classifier.")]
    problems += [f"I3D tensor {k} gets no 2D weights" for k in missing]
    if problems:
        raise ValueError("inflate.py: the 2D network does not match I3D:\n  " + "\n  ".join(problems))
    return inflated


def inflate_from_googlenet(
    source, config: I3DConfig = None, include_classifier: bool = False
) -> I3DForVideoClassification:
    """An I3D whose backbone is the inflated GoogLeNet `source` (module, state dict or path to one).

    config: I3D configuration for the new model (labels, frames, dropout); it must keep the default widths and
    have `batch_norm_scale=True`. The classifier keeps its fresh initialisation unless include_classifier.
    """
    config = config if config is not None else I3DConfig(batch_norm_scale=True)
    if not config.batch_norm_scale:
        raise ValueError(
            "inflate.py: GoogLeNet's BatchNorm has a scale; build the I3D config with batch_norm_scale=True"
        )
    if (
        config.width_multiplier != 1.0
        or config.stem_channels != list(DEFAULT_STEM_CHANNELS)
        or config.mixed_channels != [list(row) for row in DEFAULT_MIXED_CHANNELS]
    ):
        raise ValueError(
            "inflate.py: inflation needs Inception-v1 widths (default channels, width_multiplier=1)"
        )
    model = I3DForVideoClassification(config)
    weights = inflate_state_dict(_as_state_dict(source), model, include_classifier=include_classifier)
    model.load_state_dict(weights, strict=False)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--googlenet", required=True, help="a saved state_dict of torchvision's GoogLeNet")
    parser.add_argument("--output_dir", required=True, help="model folder to write")
    parser.add_argument("--num_frames", type=int, default=64, help="clip length recorded in the config")
    args = parser.parse_args(argv)
    config = I3DConfig(batch_norm_scale=True, num_frames=args.num_frames)
    model = inflate_from_googlenet(args.googlenet, config)
    model.save_pretrained(args.output_dir)
    # the same [-1, 1] input as DeepMind's I3D, which is also what torchvision's pretrained GoogLeNet consumes
    build_processor().save_pretrained(args.output_dir)
    print(f"wrote {args.output_dir}: I3D inflated from {args.googlenet} (classifier freshly initialised)")


if __name__ == "__main__":
    main()
