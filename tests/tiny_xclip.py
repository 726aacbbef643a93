"""Test helper: a tiny X-CLIP (video-text model) built from a config, with a character-level CLIP tokenizer and an
image processor, saved like a Hub checkpoint. Nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import pre_tokenizers
from transformers import CLIPTokenizer, VideoMAEImageProcessor, XCLIPConfig, XCLIPModel, XCLIPProcessor

NUM_FRAMES = 4
IMAGE_SIZE = 32
SPECIALS = ("<|startoftext|>", "<|endoftext|>")


def tiny_tokenizer() -> CLIPTokenizer:
    """CLIP's byte-level BPE with no merges: every character is a token (a word's last one carries ``</w>``).

    The special tokens come last, as in CLIP's vocabulary: X-CLIP's text model pools the hidden state at the
    HIGHEST token id (transformers keeps CLIP's legacy ``argmax(input_ids)``), which must be ``<|endoftext|>``.
    """
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: i for i, token in enumerate([*alphabet, *(c + "</w>" for c in alphabet), *SPECIALS])}
    return CLIPTokenizer(vocab=vocab, merges=[])


def tiny_xclip_config(vocab_size: int) -> XCLIPConfig:
    return XCLIPConfig(
        text_config=dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=40,
                         bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1),
        vision_config=dict(image_size=IMAGE_SIZE, patch_size=16, num_frames=NUM_FRAMES, hidden_size=32,
                           intermediate_size=37, num_hidden_layers=1, num_attention_heads=2, mit_hidden_size=16,
                           mit_intermediate_size=24, mit_num_hidden_layers=1, mit_num_attention_heads=2),
        projection_dim=16, prompt_layers=1, prompt_num_attention_heads=2,
    )


def save_tiny_xclip(folder: str | Path, *, seed: int = 0, frame_sampling_rate: int | None = 2) -> Path:
    """Writes config.json, model.safetensors, the tokenizer and preprocessor_config.json of a tiny X-CLIP."""
    folder = Path(folder)
    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer()
    config = tiny_xclip_config(len(tokenizer))
    if frame_sampling_rate is not None:
        config.frame_sampling_rate = frame_sampling_rate
    model = XCLIPModel(config).eval()
    with torch.no_grad():  # a sharper temperature and a visible prompt generator make scores differ between inputs
        model.logit_scale.fill_(4.0)
        model.prompts_generator.alpha.fill_(0.5)
    model.save_pretrained(folder)
    processor = XCLIPProcessor(
        image_processor=VideoMAEImageProcessor(
            size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
            image_mean=[0.48145466, 0.4578275, 0.40821073], image_std=[0.26862954, 0.26130258, 0.27577711]),
        tokenizer=tokenizer,
    )
    processor.save_pretrained(folder)
    return folder
