"""Zero-shot evaluation: a video-text model (X-CLIP) scores a labelled dataset by its class names, no training.

    python -m pipeline.evaluation --zero_shot --model microsoft/xclip-base-patch32 --dataset ucf101 \\
        --dataset_dir /data/UCF101 --num_clips 3 --num_crops 3 --output_dir outputs/xclip-ucf101-zero-shot \\
        [--prompt_template "a video of a person {}."] [--raw_class_names]

Each class name becomes a prompt (``ApplyEyeMakeup`` -> ``apply eye makeup``, the bare class text X-CLIP was trained
on; ``--prompt_template "a video of {}."`` wraps it; ``--raw_class_names`` keeps names as written).
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
    prompts_for,
    text_embeddings,
    video_text_logits,
)


class ZeroShotClassifier(torch.nn.Module):
    """A video-text model plus one encoded prompt per class, used as a classifier over those classes."""

    def __init__(self, model: Any, tokenizer: Any, class_names: Sequence[str], *, template: str = DEFAULT_TEMPLATE,
                 as_words: bool = True):
        super().__init__()
        check_zero_shot_model(model)
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


def load_zero_shot_classifier(name_or_path: str, class_names: Sequence[str], *, template: str = DEFAULT_TEMPLATE,
                              as_words: bool = True, cache_dir: str | None = None) -> tuple[ZeroShotClassifier, Any]:
    """(classifier, image processor) for a video-text checkpoint (Hub id or folder) and a dataset's class names."""
    from transformers import AutoModel, AutoTokenizer

    from pipeline.models.processors import load_processor

    model = AutoModel.from_pretrained(name_or_path, cache_dir=cache_dir).eval()
    check_zero_shot_model(model)
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, cache_dir=cache_dir)
    processor = load_processor(name_or_path, cache_dir=cache_dir)
    return ZeroShotClassifier(model, tokenizer, class_names, template=template, as_words=as_words), processor


__all__ = ["DEFAULT_TEMPLATE", "ZeroShotClassifier", "load_zero_shot_classifier"]
