"""ONNX Runtime as the model behind the ``video-classification`` pipeline (``backend="onnx"``).

``OnnxVideoClassifier`` stands where the PyTorch model stands: it carries the model's config (labels, the clip
contract) and answers ``model(pixel_values=...)`` with ``.logits``, computed by an ``onnxruntime``
``InferenceSession`` over the file ``python -m pipeline.export`` wrote. It has no weights of its own, so an export
folder (``model.onnx``, ``config.json``, ``preprocessor_config.json``) is enough to serve a model: no
``model.safetensors``, and the PyTorch code of the model's family is never run.

The exported graph takes ``pixel_values`` (batch, frames, channels, height, width) float32, the same tensor the
PyTorch models take, whatever the family calls it (V-JEPA 2: ``pixel_values_videos``), and returns ``logits``.
Graphs exported without a dynamic batch take one clip at a time; larger batches are split here.

``onnxruntime`` is imported only when a session is made (it is an optional extra: ``pip install .[onnx]``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import ImageClassifierOutput

ONNX_FILE = "model.onnx"
# Where a model folder or Hub repo may hold its ONNX graph (export writes the first; the second is the layout
# other tools use for repos that also hold PyTorch weights).
ONNX_LOCATIONS = (ONNX_FILE, "onnx/" + ONNX_FILE)
INPUT_NAME = "pixel_values"
OUTPUT_NAME = "logits"


def _require_onnxruntime():
    try:
        import onnxruntime
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "backend='onnx' needs onnxruntime: pip install 'video-pipeline[onnx]' (or pip install onnxruntime)"
        ) from error
    return onnxruntime


def find_onnx_file(model: str | os.PathLike, revision: Optional[str] = None,
                   cache_dir: Optional[str] = None) -> Path:
    """The ONNX graph of a model folder (``model.onnx`` or ``onnx/model.onnx``) or Hub repo, or a .onnx path."""
    path = Path(model)
    if path.suffix == ".onnx":
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such ONNX file")
        return path
    if path.is_dir():
        for name in ONNX_LOCATIONS:
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(
            f"{path}: no {' or '.join(ONNX_LOCATIONS)} in this folder; write one with "
            f"python -m pipeline.export --model {path} --output_dir {path}")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    for name in ONNX_LOCATIONS:
        try:
            local = hf_hub_download(str(model), name, revision=revision, cache_dir=cache_dir)
        except EntryNotFoundError:
            continue
        # a graph over 2 GB keeps its weights beside it (model.onnx.data): fetch that too when it exists
        try:
            hf_hub_download(str(model), name + ".data", revision=revision, cache_dir=cache_dir)
        except EntryNotFoundError:
            pass
        return Path(local)
    raise FileNotFoundError(f"{model}: the Hub repo has no {' or '.join(ONNX_LOCATIONS)}")


def default_providers(device: Any = None) -> list[str]:
    """CUDA when the pipeline's device is a GPU and onnxruntime was built with it, else the CPU."""
    ort = _require_onnxruntime()
    available = ort.get_available_providers()
    wants_gpu = device is not None and torch.device(device).type == "cuda"
    if wants_gpu and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def make_session(onnx_file: str | os.PathLike, *, providers: Optional[Sequence[str]] = None,
                 num_threads: Optional[int] = None):
    """An ``onnxruntime.InferenceSession`` with full graph optimisation and ``num_threads`` intra-op threads.

    The default is torch's thread count (``OMP_NUM_THREADS`` / ``torch.set_num_threads``), so one setting caps
    both backends; onnxruntime's own default, one thread per physical core, would ignore it.
    """
    ort = _require_onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = int(num_threads or torch.get_num_threads())
    options.inter_op_num_threads = 1
    return ort.InferenceSession(os.fspath(onnx_file), options, providers=list(providers or default_providers()))


class OnnxVideoClassifier(PreTrainedModel):
    """A video classifier whose forward pass is an ONNX Runtime session; no parameters of its own.

    Use ``OnnxVideoClassifier.from_export(folder_or_repo)`` (config and graph), or ``OnnxVideoClassifier(config,
    session)``. ``model(pixel_values=...)`` returns an ``ImageClassifierOutput`` with float32 ``logits`` on the
    device the input came from.
    """

    config_class = PretrainedConfig
    main_input_name = INPUT_NAME
    base_model_prefix = "onnx"
    # The config may name an attention implementation (VideoMAE's default is SDPA) and PreTrainedModel checks the
    # class claims it; the graph's attention was fixed at export, so any name is accepted and none is used.
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    def __init__(self, config: PretrainedConfig, session=None, onnx_file: Optional[str] = None):
        super().__init__(config)
        self.session = session
        self.onnx_file = onnx_file
        if session is not None:
            self._check_session(session)
        self.post_init()

    @classmethod
    def from_export(cls, model: str | os.PathLike, *, onnx_file: Optional[str | os.PathLike] = None,
                    config: Optional[PretrainedConfig] = None, device: Any = None,
                    providers: Optional[Sequence[str]] = None, num_threads: Optional[int] = None,
                    revision: Optional[str] = None, cache_dir: Optional[str] = None) -> "OnnxVideoClassifier":
        """Config from ``model`` (folder or Hub id) and the graph from ``onnx_file`` or the model's own."""
        config = config or AutoConfig.from_pretrained(os.fspath(model), revision=revision, cache_dir=cache_dir)
        onnx_path = find_onnx_file(onnx_file or model, revision=revision, cache_dir=cache_dir)
        session = make_session(onnx_path, providers=providers or default_providers(device),
                               num_threads=num_threads)
        return cls(config, session, os.fspath(onnx_path))

    # What transformers' Pipeline asks of a model: a device for the inputs and a dtype to cast them to. The
    # session reads float32 numpy arrays on the host, so the inputs stay on the CPU.
    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def _check_session(self, session) -> None:
        inputs = session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
            raise ValueError(f"{self.onnx_file or 'ONNX model'}: expected one input named {INPUT_NAME!r}, got "
                             f"{[i.name for i in inputs]} (was it written by python -m pipeline.export?)")
        shape = inputs[0].shape
        if len(shape) != 5:
            raise ValueError(f"{self.onnx_file or 'ONNX model'}: input {INPUT_NAME!r} must be (batch, frames, "
                             f"channels, height, width), got shape {shape}")
        outputs = [o.name for o in session.get_outputs()]
        if OUTPUT_NAME not in outputs:
            raise ValueError(f"{self.onnx_file or 'ONNX model'}: no output named {OUTPUT_NAME!r} ({outputs})")

    @property
    def input_shape(self) -> list:
        """The graph's input shape: ints for fixed sizes, a name (str) for a dynamic batch."""
        return list(self.session.get_inputs()[0].shape)

    @property
    def dynamic_batch(self) -> bool:
        return not isinstance(self.input_shape[0], int)

    def run(self, pixel_values: np.ndarray) -> np.ndarray:
        """Logits (batch, labels) of a float32 (batch, frames, channels, height, width) array."""
        if self.session is None:
            raise RuntimeError("OnnxVideoClassifier has no session: build it with from_export(...)")
        expected = self.input_shape
        fixed = [(axis, size) for axis, size in enumerate(expected) if isinstance(size, int)]
        for axis, size in fixed:
            if axis > 0 and pixel_values.shape[axis] != size:
                raise ValueError(
                    f"input shape {tuple(pixel_values.shape)} does not match the exported {expected} "
                    "(the clip contract was fixed at export: frames, channels, height, width)")
        pixel_values = np.ascontiguousarray(pixel_values, dtype=np.float32)
        if self.dynamic_batch or pixel_values.shape[0] == expected[0]:
            return self.session.run([OUTPUT_NAME], {INPUT_NAME: pixel_values})[0]
        # a fixed batch of one: one call per clip
        step = expected[0]
        parts = [self.session.run([OUTPUT_NAME], {INPUT_NAME: pixel_values[i:i + step]})[0]
                 for i in range(0, pixel_values.shape[0], step)]
        return np.concatenate(parts)

    def forward(self, pixel_values: torch.Tensor = None, **kwargs) -> ImageClassifierOutput:
        if pixel_values is None:
            raise ValueError(f"OnnxVideoClassifier needs {INPUT_NAME}")
        device = pixel_values.device
        logits = self.run(pixel_values.detach().float().cpu().numpy())
        return ImageClassifierOutput(logits=torch.from_numpy(logits).to(device))

    def _init_weights(self, module):  # nothing to initialise
        pass


BACKENDS = ("pytorch", "onnx")


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    return backend


def as_onnx_model(model: PreTrainedModel, onnx_file: Optional[str | os.PathLike] = None,
                  device: Any = None) -> OnnxVideoClassifier:
    """The ONNX counterpart of a loaded PyTorch model: its config, the graph of its folder (or ``onnx_file``)."""
    if isinstance(model, OnnxVideoClassifier):
        return model
    source = onnx_file or getattr(model.config, "_name_or_path", None)
    if not source:
        raise ValueError("backend='onnx' needs the model's folder or onnx_file=PATH to find model.onnx")
    return OnnxVideoClassifier.from_export(source, onnx_file=onnx_file, config=model.config, device=device)


__all__ = ["OnnxVideoClassifier", "as_onnx_model", "check_backend", "find_onnx_file", "make_session",
           "BACKENDS", "ONNX_FILE", "INPUT_NAME", "OUTPUT_NAME"]
