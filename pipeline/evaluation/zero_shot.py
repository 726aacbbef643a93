"""Zero-shot evaluation: a video-text model (X-CLIP, VideoPrism) scores a labelled dataset by its class names.

    python -m pipeline.evaluation --zero_shot --model microsoft/xclip-base-patch32 --dataset ucf101 \\
        --dataset_dir /data/UCF101 --num_clips 3 --num_crops 3 --output_dir outputs/xclip-ucf101-zero-shot \\
        [--prompt_template "a video of a person {}."] [--raw_class_names]

Each class name becomes a prompt in the model's own format (``ApplyEyeMakeup`` -> ``apply eye makeup``: X-CLIP's bare
class text; VideoPrism's ``a video of apply eye makeup.``); ``--prompt_template "a video of a person {}."`` gives
another; ``--raw_class_names`` keeps names as written. A VideoPrism checkpoint's video processor is read as
``VideoPrismProcessor`` uses it (frames in [0, 1] at the model's size: ``ensure_videoprism_inputs``).
``ZeroShotClassifier`` wraps the model and the encoded prompts as an ordinary video classifier
(``forward(pixel_values) -> .logits`` over the dataset's classes), so ``evaluate_model`` does the rest
exactly as for a trained classifier: the same views (K clips x C crops, the model's own frame sampling: X-CLIP's
``vision_config.num_frames`` frames, TSN-style segments unless ``--frame_sampling_strategy`` says otherwise), softmax
averaged over views, and the same outputs (metrics.json with the prompts used, predictions.csv, report.md, figures).
The ``zero-shot-video-classification`` pipeline computes the same scores (same scoring module).
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

import torch
from transformers.modeling_outputs import ImageClassifierOutput

from pipeline.inference.zero_shot_scoring import (
    DEFAULT_STRATEGY,
    DEFAULT_TEMPLATE,
    check_zero_shot_model,
    default_template,
    prompts_for,
    text_embeddings,
    video_text_logits,
)


class ZeroShotClassifier(torch.nn.Module):
    """A video-text model plus one encoded prompt per class, used as a classifier over those classes."""

    def __init__(self, model: Any, tokenizer: Any, class_names: Sequence[str], *, template: str | None = None,
                 as_words: bool = True):
        super().__init__()
        check_zero_shot_model(model)
        template = template or default_template(model)
        self.model = model
        self.prompts = prompts_for(class_names, template, as_words=as_words)
        self.template = template
        self.register_buffer("text_embeds", text_embeddings(model, tokenizer, self.prompts), persistent=False)
        # the model's config (name, frame count, sampling) with the classes as labels: what evaluate_model reads
        self.config = copy.deepcopy(model.config)
        self.config.id2label = {i: name for i, name in enumerate(class_names)}
        self.config.label2id = {name: i for i, name in enumerate(class_names)}
        if not getattr(self.config, "frame_sampling_strategy", None):
            self.config.frame_sampling_strategy = DEFAULT_STRATEGY

    def forward(self, pixel_values: torch.Tensor) -> ImageClassifierOutput:
        return ImageClassifierOutput(logits=video_text_logits(self.model, pixel_values, self.text_embeds))


def load_zero_shot_classifier(name_or_path: str, class_names: Sequence[str], *, template: str | None = None,
                              as_words: bool = True, cache_dir: str | None = None) -> tuple[ZeroShotClassifier, Any]:
    """(classifier, image or video processor) for a video-text checkpoint (Hub id or folder) and a dataset's class
    names; ``template`` None: the model's own prompt format."""
    from transformers import AutoModel, AutoTokenizer

    from pipeline.models.processors import VIDEOPRISM_TYPES, ensure_videoprism_inputs, load_processor

    model = AutoModel.from_pretrained(name_or_path, cache_dir=cache_dir).eval()
    check_zero_shot_model(model)
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, cache_dir=cache_dir)
    processor = load_processor(name_or_path, cache_dir=cache_dir)
    if model.config.model_type in VIDEOPRISM_TYPES:
        ensure_videoprism_inputs(processor, model.config.vision_config.image_size, name=f"{name_or_path}'s processor")
    return ZeroShotClassifier(model, tokenizer, class_names, template=template, as_words=as_words), processor


__all__ = ["DEFAULT_TEMPLATE", "ZeroShotClassifier", "load_zero_shot_classifier"]
