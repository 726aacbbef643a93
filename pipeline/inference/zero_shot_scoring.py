"""Zero-shot video classification: scoring clips against class names written as text prompts (X-CLIP, VideoPrism).

A class name becomes a prompt through a template, by default the model's own (``default_template``): X-CLIP's
``"{}"`` (the bare class text), VideoPrism's ``"a video of {}."`` (the template of google-deepmind/videoprism's
video-text demo); a UCF-style ``CamelCase`` or ``snake_case`` name is first written as words (``ApplyEyeMakeup`` ->
``apply eye makeup``). The text tower runs ONCE per label set (``text_embeddings``); each batch of views then needs
only the video tower (``video_text_logits``):

- X-CLIP: plus its video-specific prompt generator, exactly ``XCLIPModel.forward`` split in two (a test checks
  equality); logits are the cosine similarities times the learned ``logit_scale``.
- VideoPrism (``VideoPrismClipModel``): both towers give L2-normalised embeddings; logits are their cosine
  similarity divided by the temperature 0.01 of the official demo, whose softmax over the texts is the demo's
  ``apply_softmax="over_texts"``. (``VideoPrismClipModel.forward`` normalises over the VIDEOS of a batch instead:
  retrieval, not classification.) Prompts are tokenised as ``VideoPrismProcessor`` does: padded to the text model's
  64 positions, truncated there.

Probabilities are the softmax over the candidate labels, averaged over views like every other evaluation here.

Used by the ``zero-shot-video-classification`` pipeline and ``python -m pipeline.evaluation --zero_shot``.
Shipped as Hub remote code with that pipeline: imports only torch.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import torch

# X-CLIP was trained and evaluated on the bare class text (its generate_text uses the template "{}", with class names
# written as words: "apply eye makeup"); a template such as "a video of a person {}." can be given instead
DEFAULT_TEMPLATE = "{}"
# each model's own prompt format: VideoPrism's video-text demo (google-deepmind/videoprism,
# videoprism_video_text_demo.ipynb) wraps every query as "a video of {}."
TEMPLATES = {"xclip": DEFAULT_TEMPLATE, "videoprism": "a video of {}."}
# X-CLIP's frame sampling (its data pipeline: mmaction's SampleFrames(clip_len=1, frame_interval=1, num_clips=T)): one
# frame from each of T equal segments of the video, i.e. this project's "uniform" strategy; VideoPrism's demo samples
# the same way (T frames at linspace(0, length, T, endpoint=False))
DEFAULT_STRATEGY = "uniform"
SUPPORTED_MODEL_TYPES = ("xclip", "videoprism")
# VideoPrism's demo divides the cosine similarities by this temperature before the softmax over the texts
VIDEOPRISM_TEMPERATURE = 0.01


def words_of(name: str) -> str:
    """A class name as lower-case words: ``ApplyEyeMakeup`` / ``apply_eye_makeup`` -> ``apply eye makeup``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)
    return " ".join(re.sub(r"[_\-]+", " ", spaced).split()).lower()


def prompts_for(labels: Sequence[str], template: str = DEFAULT_TEMPLATE, as_words: bool = True) -> list[str]:
    """One text prompt per label; ``template`` must contain ``{}`` where the label goes."""
    if "{}" not in template:
        raise ValueError(f"prompt template {template!r} has no '{{}}' for the class name")
    if not labels:
        raise ValueError("no candidate labels to score")
    return [template.format(words_of(label) if as_words else label) for label in labels]


def _model_type(model: Any) -> str | None:
    return getattr(getattr(model, "config", None), "model_type", None)


def default_template(model: Any) -> str:
    """The prompt template ``model`` was made for (see ``TEMPLATES``)."""
    return TEMPLATES.get(_model_type(model), DEFAULT_TEMPLATE)


def check_zero_shot_model(model: Any) -> None:
    """Zero-shot scoring needs a video-text model; anything else gets an error naming what it is."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(f"zero-shot classification needs a video-text model ({', '.join(SUPPORTED_MODEL_TYPES)}: "
                         "e.g. microsoft/xclip-base-patch32, google/videoprism-lvt-base-f16r288); got "
                         f"{model_type or type(model).__name__}")


@torch.no_grad()
def text_embeddings(model: Any, tokenizer: Any, prompts: Sequence[str]) -> torch.Tensor:
    """Text features of ``prompts``: (K, dim); X-CLIP's projected and not normalised (as in its forward),
    VideoPrism's L2-normalised (its text model's output)."""
    check_zero_shot_model(model)
    device = next(model.parameters()).device
    if _model_type(model) == "videoprism":  # as VideoPrismProcessor tokenises: the text model's full length
        length = int(model.config.text_config.max_position_embeddings)
        tokens = tokenizer(list(prompts), padding="max_length", max_length=length, truncation=True,
                           return_tensors="pt")
    else:
        tokens = tokenizer(list(prompts), padding=True, return_tensors="pt")
    features = model.get_text_features(input_ids=tokens["input_ids"].to(device),
                                       attention_mask=tokens["attention_mask"].to(device))
    return features.pooler_output


@torch.no_grad()
def video_text_logits(model: Any, pixel_values: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
    """Similarity logits (B, K) of clips (B, T, C, H, W) to K prompts whose ``text_embeddings`` are given."""
    if _model_type(model) == "videoprism":
        video_embeds = model.get_video_features(pixel_values_videos=pixel_values).pooler_output
        video_embeds = video_embeds.reshape(len(pixel_values), -1)  # (B, 1, D): the pooling head's single query
        return video_embeds @ text_embeds.to(video_embeds.dtype).reshape(len(text_embeds), -1).T / VIDEOPRISM_TEMPERATURE
    batch, frames = pixel_values.shape[:2]
    video = model.get_video_features(pixel_values=pixel_values)
    video_embeds = video.pooler_output  # after the multi-frame integration transformer
    # video-specific prompting: the text features attend to the frames' patch features
    patches = model.prompts_visual_layernorm(video.last_hidden_state[:, 1:, :]) @ model.prompts_visual_projection
    patches = patches.view(batch, frames, -1, video_embeds.shape[-1]).mean(dim=1)
    text = text_embeds.to(video_embeds.dtype).unsqueeze(0).expand(batch, -1, -1)
    text = text + model.prompts_generator(text, patches)
    video_embeds = video_embeds / video_embeds.norm(p=2, dim=-1, keepdim=True)
    text = text / text.norm(p=2, dim=-1, keepdim=True)
    return torch.einsum("bd,bkd->bk", video_embeds, model.logit_scale.exp() * text)


__all__ = ["DEFAULT_TEMPLATE", "TEMPLATES", "DEFAULT_STRATEGY", "VIDEOPRISM_TEMPERATURE", "default_template", "words_of", "prompts_for", "check_zero_shot_model",
           "text_embeddings", "video_text_logits"]
