"""A ``video-classification`` pipeline that decodes with PyAV and samples frames as our evaluation does.

transformers' own ``VideoClassificationPipeline`` needs torchcodec for its video-processor path and, with an
image processor, looks only at the first ``num_frames * rate`` frames of a video (DESIGN fact 3). This one
feeds the model exactly what ``pipeline.evaluation`` feeds it (``load_views``: the frame sampling stored in
the model config and the saved image processor), so a model card's numbers are reproducible with
``pipeline()``.

Inputs: a path, an http(s) URL, raw bytes of a video file, a uint8 array (frames, H, W, 3), or a list of
these (``video_source.py``: checks, bounded downloads, content sniffing; in a list, an input that fails gives
``{"video", "error"}`` in its place and the others their results). Options (at construction or per call):
``top_k``, the clip contract's fields (``num_frames``, ``frame_sampling_rate``, ``frame_sampling_strategy``,
``short_video``; the model's config.json gives them otherwise), ``num_clips`` / ``num_crops`` (multi-view, softmax
averaged), ``timeline=True`` with ``window`` /
``stride`` in seconds or ``window_frames`` / ``stride_frames`` in frames (sliding windows over the whole video;
variable-frame-rate videos get their real times, ``frame_times.py``), ``function_to_apply``, ``batch_size``
(views per forward pass), ``num_workers`` (decoding processes for a list of videos), and for URLs ``timeout``
(seconds, or a (connect, read) pair), ``max_download_bytes``, ``max_download_seconds``. Impossible values are
refused with a one-line error (``options.py``). ``backend="onnx"`` (at construction) runs the model with ONNX
Runtime (``onnx_runner``: the graph ``python -m pipeline.export`` writes).

Decoding yields uint8 frames; the views are resized, cropped and normalised on the model's device
(``preprocessing.clip_views``). A list of videos goes through ``video_scoring`` (the machinery of
``python -m pipeline.evaluation``): decoded in parallel loader workers, views of several videos in one batch.

Shipped to the Hub as remote code (``config.custom_pipelines``): imports only the standard library, numpy,
torch, transformers and siblings (views, decoding, transforms).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import replace
from typing import Any, Iterator, Optional

import torch
from transformers.pipelines.base import ChunkPipeline
from transformers.pipelines.video_classification import VideoClassificationPipeline

from .clip_spec import FIELDS, ClipSpec
from .decoding import probe_video
from .frame_count import restore_temporal_positions
from .frame_times import frame_times, windows_by_time
from .model_inputs import input_name
from .model_outputs import flatten_single_query_logits
from .onnx_runner import as_onnx_model, check_backend
from .options import check_options
from .preprocessing import VideoPreprocessing, clip_views
from .video_scoring import DEFAULT_BATCH_SIZE, VideoClips, default_num_workers, score_videos
from .video_source import ITEM_ERRORS, DownloadLimits, VideoSource, call_each, describe
from .views import clip_frames, sample_clips

logger = logging.getLogger(__name__)

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

    def __init__(self, *args, backend: str = "pytorch", onnx_model: Optional[str] = None, **kwargs):
        # VideoClassificationPipeline.__init__ only adds a deprecation warning for image processors and a
        # model check against a static name list that misses registered/remote models (I3D): skip it.
        ChunkPipeline.__init__(self, *args, **kwargs)
        if check_backend(backend) == "onnx":  # the model's forward becomes an ONNX Runtime session
            self.model = as_onnx_model(self.model, onnx_model, device=self.device)
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
        flatten_single_query_logits(self.model)  # VideoPrism: (batch, 1, classes) -> (batch, classes)

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
        short_video: Optional[str] = None,
        function_to_apply: Optional[str] = None,
        timeout=None,
        max_download_bytes: Optional[int] = None,
        max_download_seconds: Optional[float] = None,
    ):
        preprocess = {
            key: value
            for key, value in dict(
                num_clips=num_clips, num_crops=num_crops, timeline=timeline, window=window, stride=stride,
                window_frames=window_frames, stride_frames=stride_frames, fps=fps, num_frames=num_frames,
                frame_sampling_rate=frame_sampling_rate, frame_sampling_strategy=frame_sampling_strategy,
                short_video=short_video, timeout=timeout, max_download_bytes=max_download_bytes, max_download_seconds=max_download_seconds,
            ).items()
            if value is not None
        }
        check_options({**preprocess, "top_k": top_k, "function_to_apply": function_to_apply})
        postprocess = {}
        if top_k is not None:
            postprocess["top_k"] = top_k
        if function_to_apply is not None:
            postprocess["function_to_apply"] = function_to_apply
        return preprocess, {}, postprocess

    def __call__(self, inputs, **kwargs):
        """Classify one video or a list of videos (paths, URLs, bytes or uint8 (T, H, W, 3) arrays).

        Returns, per video, a list of ``{"label", "score"}`` (top_k, best first), or with ``timeline=True`` a
        dict ``{"predictions": [...], "timeline": [{"start", "end", "start_frame", "end_frame",
        "predictions"}, ...], "num_frames", "fps"}`` where "predictions" averages the windows. A video the probe
        found damaged (e.g. truncated) gets ``"damage"`` (what is wrong) in each prediction, or in the timeline
        dict, and a WARNING log line.
        """
        if inputs is None:
            raise ValueError("the video-classification pipeline needs a video (path, URL, bytes or array)")
        if isinstance(inputs, tuple):
            inputs = list(inputs)
        # batch_size counts views per forward pass here (a video is one chunk of K x C views, or of windows)
        views, num_workers = kwargs.pop("batch_size", None), kwargs.pop("num_workers", None)
        check_options({"batch_size": views, "num_workers": num_workers})
        self.views_per_forward = int(views or self._batch_size or DEFAULT_BATCH_SIZE)
        run = super().__call__
        if isinstance(inputs, list):  # one result, or {"video", "error"}, per input
            if not inputs:
                return []
            self._sanitize_parameters(**kwargs)  # an impossible option fails the call, not each input
            if len(inputs) > 1 and not kwargs.get("timeline", self._preprocess_params.get("timeline", False)):
                return self._classify_many(inputs, num_workers, kwargs)
            return call_each(lambda batch, **options: run(batch, batch_size=1, num_workers=0, **options), inputs,
                             kwargs)
        return run(inputs, batch_size=1, num_workers=0, **kwargs)

    def _classify_many(self, videos: list, num_workers: Optional[int], kwargs: dict) -> list:
        """A list of videos through the evaluation's machinery: parallel decoding, views batched across videos."""
        preprocess, _, postprocess = self._sanitize_parameters(**kwargs)
        preprocess = {**self._preprocess_params, **preprocess}
        postprocess = {**self._postprocess_params, **postprocess}
        spec = self.model_clip_spec(**{name: preprocess.get(name) for name in FIELDS})
        limits = DownloadLimits.from_options(preprocess.get("timeout"), preprocess.get("max_download_bytes"),
                                             preprocess.get("max_download_seconds"))
        clips = VideoClips(lambda i: (videos[i], None), len(videos), spec, open_source=functools.partial(VideoSource, limits=limits), skippable=ITEM_ERRORS)
        workers = default_num_workers(len(videos)) if num_workers is None else int(num_workers)
        errors: dict[int, str] = {}  # a video that cannot be read: its error takes its place in the results
        damages: dict[int, str] = {}

        def note_error(item):
            if "error" in item:
                errors[int(item["index"])] = item["error"]
            elif item.get("damage"):
                damages[int(item["index"])] = _said_damage(videos[int(item["index"])], item["damage"])

        scores, _ = score_videos(self._logits, clips, prep=self.preprocessing, num_crops=spec.num_crops,
                                 batch_size=self.views_per_forward, num_workers=workers, device=self.device,
                                 dtype=self.model.dtype, activation=lambda logits: logits.float(), on_video=note_error)
        return [self.postprocess([{"logits": torch.from_numpy(scores[i]), "windows": torch.zeros(len(scores[i])),
                                   "spans": torch.tensor([[0, -1]]), "fps": 0.0,
                                   "damage": damages.get(i, "")}], **postprocess)
                if i in scores else {"video": describe(videos[i]), "error": errors.get(i, "could not be read")}
                for i in range(len(videos))]

    def model_clip_spec(self, **fields) -> ClipSpec:
        """The model's clip contract (config.json + processor), with a call's own choices (``FIELDS``, None: the
        model's) winning."""
        spec = ClipSpec.from_config(self.model.config, **fields)
        return replace(spec, preprocessing=self.preprocessing)

    # -- preprocessing ---------------------------------------------------------------------------------------
    def preprocess(
        self,
        video,
        num_clips: Optional[int] = None,
        num_crops: Optional[int] = None,
        timeline: bool = False,
        window: Optional[float] = None,
        stride: Optional[float] = None,
        window_frames: Optional[int] = None,
        stride_frames: Optional[int] = None,
        fps: Optional[float] = None,
        num_frames: Optional[int] = None,
        frame_sampling_rate: Optional[int] = None,
        frame_sampling_strategy: Optional[str] = None,
        short_video: Optional[str] = None,
        timeout=None,
        max_download_bytes: Optional[int] = None,
        max_download_seconds: Optional[float] = None,
    ) -> Iterator[dict[str, Any]]:
        """Yields chunks of decoded uint8 frames with the positions of their clips: one chunk per video, or per
        group of timeline windows (bounded memory for any video length)."""
        spec = self.model_clip_spec(num_frames=num_frames, frame_sampling_rate=frame_sampling_rate,
                                    frame_sampling_strategy=frame_sampling_strategy, short_video=short_video,
                                    num_clips=num_clips, num_crops=num_crops)
        num_clips, num_crops = spec.num_clips, spec.num_crops
        limits = DownloadLimits.from_options(timeout, max_download_bytes, max_download_seconds)
        with VideoSource(video, limits) as source:
            if not timeline:
                clips, info = sample_clips(source.value, spec)
                frames, positions = clip_frames(source.value, clips, info)
                yield {"frames": frames, "positions": positions, "num_crops": num_crops,
                       "windows": torch.zeros(len(clips) * num_crops, dtype=torch.long),
                       "spans": torch.tensor([[0, -1]]), "fps": 0.0, "is_last": True,
                       "damage": _said_damage(video, info)}
                return

            info = probe_video(source.value, skip_table=False) if source.is_file else None
            damage = _said_damage(video, info)
            total = info.num_frames if info is not None else len(source.value)
            rate_hz = fps or (info.fps if info is not None else None)
            clip_span = spec.span
            # a variable frame rate: real times (None when frame / fps is right, or fps was given)
            times = frame_times(source.value, total, info.fps) if info is not None and not fps else None
            if times is not None:
                rate_hz = total / float(times[-1])  # the average rate, for the output's "fps"
            if times is not None and window_frames is None and stride_frames is None and (
                    window is not None or clip_span is None):
                seconds = window if window is not None else DEFAULT_WINDOW_SECONDS
                windows = windows_by_time(times, seconds, stride if stride is not None else seconds)
            else:
                windows = timeline_windows(
                    total, rate_hz, clip_span=clip_span,
                    window=window, stride=stride, window_frames=window_frames, stride_frames=stride_frames,
                )
            for group_start in range(0, len(windows), WINDOWS_PER_DECODE):
                group = windows[group_start:group_start + WINDOWS_PER_DECODE]
                clips = [start + clip for start, end in group for clip in spec.eval_clips(end - start)]
                # one decode per group of windows: each distinct frame decoded once, resized once on the device
                frames, positions = clip_frames(source.value, clips, info)
                per_window = num_clips * num_crops
                yield {"frames": frames, "positions": positions, "num_crops": num_crops,
                       "windows": torch.arange(group_start, group_start + len(group)).repeat_interleave(per_window),
                       "spans": torch.tensor(group), "fps": float(rate_hz or 0.0),
                       # real start and end times of the windows (-1: frame / fps is right)
                       "times": (torch.tensor([[times[s], times[e]] for s, e in group], dtype=torch.float64)
                                 if times is not None else torch.full((len(group), 2), -1.0, dtype=torch.float64)),
                       "is_last": group_start + len(group) == len(windows), "damage": damage}

    # -- model -----------------------------------------------------------------------------------------------
    def _logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The model's scores of a batch of views (the zero-shot subclass: against its candidate labels)."""
        return self.model(**{input_name(self.model): pixel_values.to(self.model.dtype)}).logits

    def _chunk_views(self, chunk: dict[str, Any]) -> torch.Tensor:
        """The views of one preprocessed chunk, made on the pipeline's device: float (views, T, C, H, W)."""
        return clip_views(chunk.pop("frames").to(self.device), chunk.pop("positions"), self.preprocessing,
                          int(chunk.pop("num_crops")), dtype=self.model.dtype)

    def views(self, video, **options) -> torch.Tensor:
        """What the model is fed for ``video`` with these options (``num_clips``, ``num_crops``, ...): every view,
        clip-major, as float (K*C, T, C, H, W) on the pipeline's device (export parity, the web app's overlays)."""
        preprocess, _, _ = self._sanitize_parameters(**options)
        return torch.cat([self._chunk_views(chunk) for chunk in self.preprocess(video, **preprocess)])

    def _forward(self, model_inputs):
        views = self._chunk_views(model_inputs)
        step = getattr(self, "views_per_forward", DEFAULT_BATCH_SIZE)
        logits = torch.cat([self._logits(views[i:i + step]) for i in range(0, len(views), step)])
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
        spans: dict[int, tuple[int, int]] = {}
        times: dict[int, tuple[float, float]] = {}
        fps = 0.0
        damage = ""
        for output in model_outputs:
            damage = str(_scalar(output.get("damage", "")) or damage)
            scores = _activate(output["logits"].reshape(-1, output["logits"].shape[-1]), function_to_apply)
            windows = output["windows"].reshape(-1).tolist()
            for window, row in zip(windows, scores):
                per_window.setdefault(int(window), []).append(row)
            first = int(windows[0]) if windows else 0
            for offset, (start, end) in enumerate(output["spans"].reshape(-1, 2).tolist()):
                spans[first + offset] = (int(start), int(end))
            if "times" in output:  # real times of a variable-frame-rate video
                for offset, (start_s, end_s) in enumerate(output["times"].reshape(-1, 2).tolist()):
                    if start_s >= 0:
                        times[first + offset] = (start_s, end_s)
            fps = float(_scalar(output["fps"])) or fps
        # a window's score: the mean over its views (clips x crops), as the evaluation averages softmax
        scores = {w: torch.stack(v).mean(dim=0) for w, v in sorted(per_window.items())}
        if spans[0][1] < 0:  # not a timeline; a damaged video's predictions say so, each of them
            return [{**p, "damage": damage} if damage else p for p in self._top(scores[0], top_k)]

        overall = torch.stack(list(scores.values())).mean(dim=0)
        timeline = []
        for window, score in scores.items():
            start, end = spans[window]
            start_s, end_s = times.get(window, (start / fps, end / fps) if fps else (None, None))
            timeline.append({
                "start": round(start_s, 3) if start_s is not None else None,
                "end": round(end_s, 3) if end_s is not None else None,
                "start_frame": start, "end_frame": end,
                "predictions": self._top(score, top_k),
            })
        return {"predictions": self._top(overall, top_k), "timeline": timeline,
                "num_frames": timeline[-1]["end_frame"], "fps": fps or None,
                **({"damage": damage} if damage else {})}

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


def _said_damage(video, info) -> str:
    """The damage the probe found in ``video`` (``info``: its VideoInfo, or the damage text), logged at WARNING:
    a prediction from fewer frames than the file declares must not pass unnoticed. "" when undamaged."""
    damage = info if isinstance(info, str) else getattr(info, "damage", "") or ""
    if damage:
        logger.warning("%s: damaged video (%s); classified from the frames that decode", describe(video), damage)
    return damage


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


__all__ = ["PyAVVideoClassificationPipeline", "timeline_windows"]
