"""``pipeline("zero-shot-video-classification")``: rank candidate labels for a video with a video-text model (X-CLIP,
VideoPrism's ``VideoPrismClipModel``).

    classifier = pipeline("zero-shot-video-classification", model="microsoft/xclip-base-patch32")
    classifier("video.mp4", candidate_labels=["playing guitar", "juggling", "surfing"])
    -> [{"label": "juggling", "score": 0.93}, ...]        # best first, scores sum to 1

Like transformers' ``zero-shot-image-classification``: ``candidate_labels`` (a list, or one comma-separated
string) and ``hypothesis_template`` (default: the model's own format, X-CLIP's ``"{}"``, the label alone, and
VideoPrism's ``"a video of {}."``). Videos go through exactly what the video-classification pipeline does
(``PyAVVideoClassificationPipeline``: PyAV decoding of paths, URLs, bytes or uint8 (T, H, W, 3) arrays, the frame
sampling of the model config, ``num_clips`` / ``num_crops`` multi-view, ``timeline=True``), so
``python -m pipeline.evaluation --zero_shot`` and this pipeline score the same views.
The frame count comes from ``config.vision_config.num_frames``. VideoPrism's frames are fed in [0, 1] at its
``vision_config.image_size`` whatever its saved video processor says (``VideoPrismProcessor`` sets both at call
time). Frames are sampled as X-CLIP was trained and evaluated (TSN-style: one frame from each of T equal segments of the whole video, mmaction's ``SampleFrames(clip_len=1,
num_clips=T)``; our ``uniform`` strategy) unless the config or the call names another strategy.

Labels are used as given (no CamelCase splitting: that is for dataset class names in the evaluation). The text tower
runs once per label set and template and is cached.

Shipped to the Hub as remote code: imports only torch, transformers and siblings.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch

from .preprocessing import VideoPreprocessing
from .video_pipeline import PyAVVideoClassificationPipeline
from .zero_shot_scoring import (
    DEFAULT_STRATEGY,
    check_zero_shot_model,
    default_template,
    prompts_for,
    text_embeddings,
    video_text_logits,
)


class ZeroShotVideoClassificationPipeline(PyAVVideoClassificationPipeline):
    """Scores a video against ``candidate_labels``; softmax over the labels, averaged over views."""

    _load_tokenizer = True
    _load_image_processor = None  # X-CLIP ships an image processor, VideoPrism only a video processor

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        check_zero_shot_model(self.model)
        if self.tokenizer is None:
            raise ValueError(f"{getattr(self.model.config, '_name_or_path', 'model')}: no tokenizer found; the "
                             "zero-shot pipeline needs one to encode the candidate labels")
        self._text_cache: dict[tuple[tuple[str, ...], str], torch.Tensor] = {}
        # the labels and template of the call in progress (one set per call, for every input of a list)
        self._labels: list[str] = []
        self._template = default_template(self.model)
        if self.model.config.model_type == "videoprism":
            self.preprocessing = _videoprism_preprocessing(self.preprocessing, self.model.config.vision_config)
        self._postprocess_labels: list[str] = []

    def _sanitize_parameters(self, candidate_labels=None, hypothesis_template: Optional[str] = None, **kwargs):
        preprocess, forward, postprocess = super()._sanitize_parameters(**kwargs)
        if candidate_labels is not None:
            postprocess["candidate_labels"] = _as_labels(candidate_labels)
        return preprocess, forward, postprocess

    def __call__(self, inputs, candidate_labels=None, hypothesis_template: Optional[str] = None, **kwargs):
        """Rank ``candidate_labels`` for one video or a list of videos; see the module docstring."""
        if candidate_labels is None:
            raise ValueError("zero-shot-video-classification needs candidate_labels=[...] (the classes to rank)")
        template = default_template(self.model) if hypothesis_template is None else hypothesis_template
        self._labels = _as_labels(candidate_labels)
        self._template = template
        self._text(self._labels, template)  # encodes once now; fails here, naming the template, without "{}"
        return super().__call__(inputs, candidate_labels=self._labels, **kwargs)

    def model_clip_spec(self, **fields):
        # X-CLIP was trained on one frame per segment: that is its default where the config records no sampling
        fields["frame_sampling_strategy"] = (fields.get("frame_sampling_strategy")
                                             or getattr(self.model.config, "frame_sampling_strategy", None)
                                             or DEFAULT_STRATEGY)
        return super().model_clip_spec(**fields)

    def _text(self, labels: Sequence[str], template: str) -> torch.Tensor:
        key = (tuple(labels), template)
        if key not in self._text_cache:
            prompts = prompts_for(labels, template, as_words=False)
            self._text_cache[key] = text_embeddings(self.model, self.tokenizer, prompts)
        return self._text_cache[key]

    def _logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        text = self._text(self._labels, self._template)
        return video_text_logits(self.model, pixel_values.to(self.model.dtype), text)

    def postprocess(self, model_outputs, candidate_labels: Sequence[str] = (), top_k: Optional[int] = None,
                    function_to_apply: Optional[str] = None):
        labels = list(candidate_labels) or self._labels
        self._postprocess_labels = labels
        return super().postprocess(model_outputs, top_k=top_k or len(labels),
                                   function_to_apply=function_to_apply or "softmax")

    def _label_names(self) -> list[str]:
        return self._postprocess_labels


def _videoprism_preprocessing(saved: VideoPreprocessing, vision_config: Any) -> VideoPreprocessing:
    """What ``VideoPrismProcessor`` feeds VideoPrism: frames in [0, 1] (no mean/std) at the model's image size."""
    size = vision_config.image_size
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    return VideoPreprocessing(min(height, width), (height, width), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0),
                              saved.rescale_factor)


def _as_labels(candidate_labels: Any) -> list[str]:
    """A list of labels, or one comma-separated string of them (as transformers' zero-shot pipelines take)."""
    if isinstance(candidate_labels, str):
        candidate_labels = [label.strip() for label in candidate_labels.split(",")]
    labels = [str(label) for label in candidate_labels if str(label).strip()]
    if not labels:
        raise ValueError("candidate_labels is empty")
    if len(set(labels)) != len(labels):
        raise ValueError(f"candidate_labels repeats a label: {labels}")
    return labels


__all__ = ["ZeroShotVideoClassificationPipeline"]
