"""The clip contract: how a model sees a video, defined once, saved with the model and read everywhere.

A ``ClipSpec`` says which frames make a clip (``num_frames``, one every ``rate`` frames with the ``dense``
strategy, or one per segment with ``uniform``), what happens with videos shorter than a clip (``short``), how many
clips and crops the evaluation views are (``num_clips`` x ``num_crops``), and, through ``preprocessing``, how frames
are resized, cropped and normalised (from the model's image or video processor). ``pipeline/train.py`` writes it into
``config.json`` (``save_to``) next to the processor; the training transforms, evaluation, ``pipeline()``, export,
the stream and the model card all build it with ``ClipSpec.from_config``, so they cut the same frames, and the
card describes exactly those (``describe``). A config that carries none of these fields (a checkpoint trained
elsewhere) gets the defaults below, and ``recorded`` says so.

Shipped as Hub remote code with the pipeline: imports only numpy, torch, torchvision and siblings.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional

import numpy as np

from .model_inputs import config_num_frames
from .preprocessing import VideoPreprocessing
from .sampling import SHORT_POLICIES, STRATEGIES, eval_clip_indices, train_clip_indices

# The defaults, the only ones: what this project trains with, and what a checkpoint that records nothing gets.
DEFAULT_RATE = 4
DEFAULT_STRATEGY = "dense"
DEFAULT_SHORT = "clamp"
# config.json field -> ClipSpec attribute
CONFIG_FIELDS = {
    "frame_sampling_rate": "rate",
    "frame_sampling_strategy": "strategy",
    "short_video": "short",
    "eval_num_clips": "num_clips",
    "eval_num_crops": "num_crops",
}


@dataclass(frozen=True)
class ClipSpec:
    """How clips are cut from a video and fed to the model (see the module docstring)."""

    num_frames: int
    rate: int = DEFAULT_RATE
    strategy: str = DEFAULT_STRATEGY
    short: str = DEFAULT_SHORT
    num_clips: int = 1
    num_crops: int = 1
    preprocessing: Optional[VideoPreprocessing] = field(default=None, compare=False)
    # False when the config recorded no sampling of its own and the defaults above were used
    recorded: bool = True

    def __post_init__(self):
        for name in ("num_frames", "rate", "num_clips", "num_crops"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"clip contract: {name} must be a positive integer, got {value!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"clip contract: strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.short not in SHORT_POLICIES:
            raise ValueError(f"clip contract: short must be one of {SHORT_POLICIES}, got {self.short!r}")

    @classmethod
    def from_config(cls, config: Any, processor: Any = None, **overrides: Any) -> "ClipSpec":
        """The contract a model config records (``overrides`` win, e.g. a call's ``num_clips``).

        ``overrides`` use the attribute names (``num_frames``, ``rate``, ``strategy``, ``short``, ``num_clips``,
        ``num_crops``); None values are ignored. Raises when no frame count is known.
        """
        values: dict[str, Any] = {}
        recorded = any(getattr(config, name, None) is not None for name in ("frame_sampling_rate",
                                                                          "frame_sampling_strategy"))
        for config_name, name in CONFIG_FIELDS.items():
            value = getattr(config, config_name, None)
            if value is not None:
                values[name] = value
        frames = config_num_frames(config)
        if frames:
            values["num_frames"] = frames
        values.update({name: value for name, value in overrides.items() if value is not None})
        if "num_frames" not in values:
            name = getattr(config, "_name_or_path", None) or type(config).__name__
            raise ValueError(f"{name}: the model config has no frame count (num_frames); pass num_frames")
        if processor is not None:
            values["preprocessing"] = VideoPreprocessing.from_processor(processor)
        return cls(**{k: (int(v) if k in ("num_frames", "rate", "num_clips", "num_crops") else v)
                      for k, v in values.items()}, recorded=recorded)

    def save_to(self, config: Any) -> None:
        """Writes the sampling and the evaluation views into a model config (saved as config.json)."""
        config.num_frames = self.num_frames
        for config_name, name in CONFIG_FIELDS.items():
            setattr(config, config_name, getattr(self, name))

    def with_views(self, num_clips: Optional[int] = None, num_crops: Optional[int] = None) -> "ClipSpec":
        """The same contract with other evaluation views (None keeps the saved ones)."""
        return replace(self, num_clips=num_clips or self.num_clips, num_crops=num_crops or self.num_crops)

    # -- which frames --------------------------------------------------------------------------------------------
    @property
    def span(self) -> Optional[int]:
        """Frames one dense clip spans (None for strategies that cover the whole video)."""
        return (self.num_frames - 1) * self.rate + 1 if self.strategy == "dense" else None

    def eval_clips(self, total_frames: int, num_clips: Optional[int] = None) -> list[np.ndarray]:
        """Frame indices of the evaluation clips of a video of ``total_frames`` frames."""
        return eval_clip_indices(total_frames, self.num_frames, self.rate, strategy=self.strategy,
                                 num_clips=num_clips or self.num_clips, short=self.short)

    def train_clip(self, total_frames: int, rng=None) -> np.ndarray:
        """Frame indices of one randomly placed training clip."""
        return train_clip_indices(total_frames, self.num_frames, self.rate, strategy=self.strategy, rng=rng,
                                  short=self.short)

    # -- in words (the model card) -------------------------------------------------------------------------------
    def describe(self, fps: Optional[float] = None) -> str:
        """The contract in a sentence or two, as the model card states it."""
        if self.strategy == "dense":
            spacing = "consecutive frames" if self.rate == 1 else f"one frame every {self.rate} frames"
            seconds = f", {self.span / fps:.2f} s at {fps:g} fps" if fps else ""
            frames = (f"{self.num_frames} frames, {spacing} (a span of {self.span} frames{seconds}); "
                      f"{'one clip from the middle of the video' if self.num_clips == 1 else f'{self.num_clips} clips evenly spaced over the video'}")
            shorter = ("videos shorter than the span repeat their last frame" if self.short == "clamp"
                       else "videos shorter than the span loop")
            frames += f"; {shorter}"
        else:
            frames = (f"{self.num_frames} frames, one from each of {self.num_frames} equal segments of the whole "
                      f"video ({'segment centres' if self.num_clips == 1 else f'{self.num_clips} shifted sets of segment points'})")
        crops = "the centre crop" if self.num_crops == 1 else f"{self.num_crops} crops along the longer side"
        text = f"{frames}; {crops}"
        prep = self.preprocessing
        if prep is not None:
            height, width = prep.crop_size
            text += (f"; frames resized so the shorter side is {prep.resize_shortest} px, cropped to {height} x "
                     f"{width}, normalised with mean {list(prep.mean)} and std {list(prep.std)}")
        if not self.recorded:
            text += (". The checkpoint records no frame sampling of its own: these are this project's defaults "
                     f"(dense, every {DEFAULT_RATE}th frame)")
        return text + "."
