"""A ``video-classification`` pipeline that decodes with PyAV and samples frames as our evaluation does.

transformers' own ``VideoClassificationPipeline`` needs torchcodec for its video-processor path and, with an
image processor, looks only at the first ``num_frames * rate`` frames of a video (DESIGN fact 3). This one
feeds the model exactly what ``pipeline.evaluation`` feeds it (``load_views``: the frame sampling stored in
the model config and the saved image processor), so a model card's numbers are reproducible with
``pipeline()``.

Inputs: a path, an http(s) URL, raw bytes of a video file, a uint8 array (frames, H, W, 3), or a list of
these. Options (at construction or per call): ``top_k``, ``num_clips`` / ``num_crops`` (multi-view, softmax
averaged), ``timeline=True`` with ``window`` / ``stride`` in seconds or ``window_frames`` / ``stride_frames``
in frames (sliding windows over the whole video), ``function_to_apply``.

Shipped to the Hub as remote code (``config.custom_pipelines``): imports only the standard library, numpy,
torch, transformers and siblings (views, decoding, transforms).
"""

from __future__ import annotations

import os
import tempfile
import urllib.request
from typing import Any, Iterator, Optional

import numpy as np
import torch
from transformers.pipelines.base import ChunkPipeline
from transformers.pipelines.video_classification import VideoClassificationPipeline

from .decoding import probe_video
from .frame_count import restore_temporal_positions
from .model_inputs import config_num_frames, input_name
from .preprocessing import VideoPreprocessing
from .views import clip_frame_indices, load_views, views_of_clips

# Sampling used when a config does not carry ours (models trained elsewhere): the project's training defaults.
DEFAULT_RATE = 4
DEFAULT_STRATEGY = "dense"
# A timeline window, when not given, for strategies without a fixed span (uniform, random).
DEFAULT_WINDOW_SECONDS = 4.0
# Timeline windows decoded together: one seek and decode pass per group, bounded memory for any video length.
WINDOWS_PER_DECODE = 8


class PyAVVideoClassificationPipeline(VideoClassificationPipeline, ChunkPipeline):
    """Video classification over the whole video, with PyAV decoding and the model's own frame sampling.

    Each input is split into chunks of one view (one clip x one crop) so that ``batch_size`` batches views
    across videos; ``postprocess`` averages the views of each window (one window unless ``timeline=True``).
    """

    _load_processor = False
    # None: loaded when the checkpoint has one. A checkpoint without an image processor (V-JEPA 2 ships only a
    # video processor) gets its video processor in __init__; only its geometry and normalisation are read, decoding
    # stays ours (transformers' video decoding needs torchcodec)
    _load_image_processor = None
    _load_video_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args, **kwargs):
        # VideoClassificationPipeline.__init__ only adds a deprecation warning for image processors and a
        # model check against a static name list that misses registered/remote models (I3D): skip it.
        ChunkPipeline.__init__(self, *args, **kwargs)
        if self.image_processor is None and self.video_processor is None:
            self.video_processor = _checkpoint_video_processor(self.model)
        if self.image_processor is None and self.feature_extractor is None and self.video_processor is not None:
            # transformers' batching (batch_size > 1) insists on a tokenizer, feature extractor or image processor
            # and reads only padding settings from it; our views never need padding, and the video processor serves
            self.feature_extractor = self.video_processor
        processor = self.image_processor if self.image_processor is not None else self.video_processor
        if processor is None:
            raise ValueError(
                f"{getattr(self.model.config, '_name_or_path', 'model')}: no image processor found "
                "(preprocessor_config.json) or video processor (video_preprocessor_config.json); the "
                "video-classification pipeline needs it to resize, crop and normalise frames"
            )
        self.preprocessing = VideoPreprocessing.from_processor(processor)
        restore_temporal_positions(self.model)

    # -- parameters ------------------------------------------------------------------------------------------
    def _sanitize_parameters(
        self,
        top_k: Optional[int] = None,
        num_clips: Optional[int] = None,
        num_crops: Optional[int] = None,
        timeline: Optional[bool] = None,
        window: Optional[float] = None,
        stride: Optional[float] = None,
        window_frames: Optional[int] = None,
        stride_frames: Optional[int] = None,
        fps: Optional[float] = None,
        num_frames: Optional[int] = None,
        frame_sampling_rate: Optional[int] = None,
        frame_sampling_strategy: Optional[str] = None,
        function_to_apply: Optional[str] = None,
    ):
        preprocess = {
            key: value
            for key, value in dict(
                num_clips=num_clips, num_crops=num_crops, timeline=timeline, window=window, stride=stride,
                window_frames=window_frames, stride_frames=stride_frames, fps=fps, num_frames=num_frames,
                frame_sampling_rate=frame_sampling_rate, frame_sampling_strategy=frame_sampling_strategy,
            ).items()
            if value is not None
        }
        postprocess = {}
        if top_k is not None:
            postprocess["top_k"] = top_k
        if function_to_apply is not None:
            if function_to_apply not in ("softmax", "sigmoid", "none"):
                raise ValueError(
                    f"function_to_apply must be softmax, sigmoid or none, got {function_to_apply!r}")
            postprocess["function_to_apply"] = function_to_apply
        return preprocess, {}, postprocess

    def __call__(self, inputs, **kwargs):
        """Classify one video or a list of videos (paths, URLs, bytes or uint8 (T, H, W, 3) arrays).

        Returns, per video, a list of ``{"label", "score"}`` (top_k, best first), or with ``timeline=True`` a
        dict ``{"predictions": [...], "timeline": [{"start", "end", "start_frame", "end_frame",
        "predictions"}, ...], "num_frames", "fps"}`` where "predictions" averages the windows.
        """
        if inputs is None:
            raise ValueError("the video-classification pipeline needs a video (path, URL, bytes or array)")
        if isinstance(inputs, tuple):
            inputs = list(inputs)
        return super().__call__(inputs, **kwargs)

    def _sampling(self, num_frames, frame_sampling_rate, frame_sampling_strategy):
        config = self.model.config
        num_frames = num_frames or config_num_frames(config)
        if not num_frames:
            raise ValueError(f"{config._name_or_path}: config has no num_frames; pass num_frames=...")
        rate = frame_sampling_rate or getattr(config, "frame_sampling_rate", None) or DEFAULT_RATE
        strategy = (frame_sampling_strategy or getattr(config, "frame_sampling_strategy", None)
                    or DEFAULT_STRATEGY)
        return int(num_frames), int(rate), str(strategy), getattr(config, "short_video", None) or "clamp"

    # -- preprocessing ---------------------------------------------------------------------------------------
    def preprocess(
        self,
        video,
        num_clips: int = 1,
        num_crops: int = 1,
        timeline: bool = False,
        window: Optional[float] = None,
        stride: Optional[float] = None,
        window_frames: Optional[int] = None,
        stride_frames: Optional[int] = None,
        fps: Optional[float] = None,
        num_frames: Optional[int] = None,
        frame_sampling_rate: Optional[int] = None,
        frame_sampling_strategy: Optional[str] = None,
    ) -> Iterator[dict[str, Any]]:
        clip_len, rate, strategy, short = self._sampling(
            num_frames, frame_sampling_rate, frame_sampling_strategy)
        with _VideoSource(video) as source:
            if not timeline:
                views = load_views(
                    source.value, processor_or_prep=self.preprocessing, num_frames=clip_len, rate=rate,
                    strategy=strategy, num_clips=num_clips, num_crops=num_crops, short=short,
                )
                for index, view in enumerate(views):
                    yield {"pixel_values": view.unsqueeze(0), "window": 0, "start_frame": 0, "end_frame": -1,
                           "fps": 0.0, "is_last": index == len(views) - 1}
                return

            info = probe_video(source.value) if source.is_file else None
            total = info.num_frames if info is not None else len(source.value)
            rate_hz = fps or (info.fps if info is not None else None)
            windows = timeline_windows(
                total, rate_hz, clip_span=(clip_len - 1) * rate + 1 if strategy == "dense" else None,
                window=window, stride=stride, window_frames=window_frames, stride_frames=stride_frames,
            )
            for group_start in range(0, len(windows), WINDOWS_PER_DECODE):
                group = windows[group_start:group_start + WINDOWS_PER_DECODE]
                clips = [
                    start + clip
                    for start, end in group
                    for clip in clip_frame_indices(end - start, clip_len=clip_len, rate=rate, strategy=strategy,
                                                   num_clips=num_clips, short=short)
                ]
                # one decode per group of windows: each distinct frame decoded and resized once
                views = views_of_clips(source.value, clips, processor_or_prep=self.preprocessing,
                                       num_crops=num_crops, info=info)
                per_window = num_clips * num_crops
                for offset, (start, end) in enumerate(group):
                    window_views = views[offset * per_window:(offset + 1) * per_window]
                    last_window = group_start + offset == len(windows) - 1
                    for index, view in enumerate(window_views):
                        yield {"pixel_values": view.unsqueeze(0), "window": group_start + offset,
                               "start_frame": int(start), "end_frame": int(end), "fps": float(rate_hz or 0.0),
                               "is_last": last_window and index == len(window_views) - 1}

    # -- model -----------------------------------------------------------------------------------------------
    def _logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The model's scores of a batch of views (the zero-shot subclass: against its candidate labels)."""
        return self.model(**{input_name(self.model): pixel_values.to(self.model.dtype)}).logits

    def _forward(self, model_inputs):
        pixel_values = model_inputs.pop("pixel_values")
        logits = self._logits(pixel_values)
        # "logits" first: transformers reads the batch size of a batched output from its first entry
        return {"logits": logits.float(), **model_inputs}

    # -- outputs ---------------------------------------------------------------------------------------------
    def postprocess(self, model_outputs, top_k: int = 5, function_to_apply: Optional[str] = None):
        if function_to_apply is None:
            problem = getattr(self.model.config, "problem_type", None)
            by_problem = {"regression": "none", "multi_label_classification": "sigmoid"}
            function_to_apply = by_problem.get(problem, "softmax")
        top_k = min(top_k, len(self._label_names()))
        if isinstance(model_outputs, dict):  # run_single of a one-chunk input may hand over the bare output
            model_outputs = [model_outputs]

        per_window: dict[int, list[torch.Tensor]] = {}
        spans: dict[int, tuple[int, int, float]] = {}
        for output in model_outputs:
            window = int(_scalar(output["window"]))
            logits = output["logits"].reshape(-1, output["logits"].shape[-1])
            per_window.setdefault(window, []).append(_activate(logits, function_to_apply))
            spans[window] = (int(_scalar(output["start_frame"])), int(_scalar(output["end_frame"])),
                             float(_scalar(output["fps"])))
        # a window's score: the mean over its views (clips x crops), as the evaluation averages softmax
        scores = {w: torch.cat(v).mean(dim=0) for w, v in sorted(per_window.items())}
        if spans[0][1] < 0:  # not a timeline
            return self._top(scores[0], top_k)

        overall = torch.stack(list(scores.values())).mean(dim=0)
        timeline = []
        for window, score in scores.items():
            start, end, fps = spans[window]
            timeline.append({
                "start": round(start / fps, 3) if fps else None,
                "end": round(end / fps, 3) if fps else None,
                "start_frame": start, "end_frame": end,
                "predictions": self._top(score, top_k),
            })
        fps = spans[0][2] or None
        return {"predictions": self._top(overall, top_k), "timeline": timeline,
                "num_frames": timeline[-1]["end_frame"], "fps": fps}

    def _label_names(self) -> list[str]:
        """The name of each score, in output order (the zero-shot subclass: its candidate labels)."""
        id2label = self.model.config.id2label
        return [id2label[i] for i in range(self.model.config.num_labels)]

    def _top(self, scores: torch.Tensor, top_k: int) -> list[dict[str, Any]]:
        values, ids = scores.topk(top_k)
        names = self._label_names()
        return [{"score": float(v), "label": names[int(i)]} for v, i in zip(values.tolist(), ids.tolist())]


def timeline_windows(
    num_frames: int,
    fps: Optional[float],
    *,
    clip_span: Optional[int] = None,
    window: Optional[float] = None,
    stride: Optional[float] = None,
    window_frames: Optional[int] = None,
    stride_frames: Optional[int] = None,
) -> list[tuple[int, int]]:
    """Sliding windows [start, end) over frames 0..num_frames-1 that together cover every frame.

    Window length: ``window_frames``, else ``window`` seconds, else the span of one training clip (dense
    sampling), else DEFAULT_WINDOW_SECONDS. Stride: ``stride_frames``, else ``stride`` seconds, else the
    window (no overlap). When the strides do not land on the end, a last window ends exactly at the last
    frame.
    """
    def frames(seconds, what):
        if fps is None or fps <= 0:
            raise ValueError(f"{what} is given in seconds but the frame rate is unknown (an array input): "
                             f"pass {what}_frames=..., or fps=...")
        return max(1, int(round(seconds * fps)))

    if window_frames is None:
        if window is not None:
            window_frames = frames(window, "window")
        elif clip_span is not None:
            window_frames = clip_span
        else:
            window_frames = frames(DEFAULT_WINDOW_SECONDS, "window")
    if stride_frames is None:
        stride_frames = frames(stride, "stride") if stride is not None else window_frames
    if window_frames < 1 or stride_frames < 1:
        raise ValueError(
            f"window and stride must be at least one frame, got {window_frames} and {stride_frames}")
    if num_frames <= window_frames:
        return [(0, num_frames)]
    starts = list(range(0, num_frames - window_frames + 1, stride_frames))
    if starts[-1] + window_frames < num_frames:
        starts.append(num_frames - window_frames)
    return [(s, s + window_frames) for s in starts]


def _checkpoint_video_processor(model):
    """The video processor saved with ``model`` (video_preprocessor_config.json), or None."""
    from transformers import AutoVideoProcessor

    name = getattr(model.config, "_name_or_path", None)
    if not name:
        return None
    try:
        return AutoVideoProcessor.from_pretrained(name)
    except (OSError, ValueError, KeyError):
        return None


def _scalar(value):
    """Metadata arrives as a plain value, or as a one-element list/tensor after batching."""
    if isinstance(value, torch.Tensor):
        return value.reshape(-1)[0].item()
    if isinstance(value, (list, tuple)):
        return value[0]
    return value


def _activate(logits: torch.Tensor, function: str) -> torch.Tensor:
    if function == "softmax":
        return logits.softmax(-1)
    if function == "sigmoid":
        return logits.sigmoid()
    return logits


class _VideoSource:
    """Turns a pipeline input into what ``load_views`` reads: a path or a uint8 (T, H, W, 3) array.

    Bytes and URLs go through a temporary file, removed on exit (PyAV's seeking decoder reads files)."""

    def __init__(self, video):
        self.video = video
        self.value = None
        self.is_file = True
        self._temporary: Optional[str] = None

    def __enter__(self) -> "_VideoSource":
        video = self.video
        if isinstance(video, np.ndarray):
            if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
                raise ValueError("a video array must be uint8 (frames, height, width, 3), got "
                                 f"{video.dtype} {tuple(video.shape)}")
            self.value, self.is_file = video, False
            return self
        if isinstance(video, str) and video.startswith(("http://", "https://")):
            with urllib.request.urlopen(video) as response:  # noqa: S310 - the user asked for this URL
                video = response.read()
        if isinstance(video, (bytes, bytearray, memoryview)):
            handle = tempfile.NamedTemporaryFile(prefix="video-", suffix=".bin", delete=False)
            with handle:
                handle.write(video)
            self._temporary = self.value = handle.name
            return self
        if isinstance(video, (str, os.PathLike)):
            path = os.fspath(video)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{path}: no such video file")
            self.value = path
            return self
        raise TypeError(f"unsupported video input {type(video).__name__}: expected a path, URL, bytes or a "
                        "uint8 array (frames, height, width, 3)")

    def __exit__(self, *exc) -> None:
        if self._temporary is not None:
            try:
                os.unlink(self._temporary)
            except OSError:
                pass


__all__ = ["PyAVVideoClassificationPipeline", "timeline_windows"]
