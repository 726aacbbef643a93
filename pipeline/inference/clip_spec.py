"""The clip contract: how a model sees a video, defined once, saved with the model and read everywhere.

A ``ClipSpec`` says which frames make a clip (``num_frames``, one every ``frame_sampling_rate`` frames with the
``dense`` strategy, or one per segment with ``uniform``: ``frame_sampling_strategy``), what happens with videos
shorter than a clip (``short_video``), how many clips and crops the evaluation views are (``num_clips`` x
``num_crops``), and, through ``preprocessing``, how frames are resized, cropped and normalised (from the model's
image or video processor). The run setup (``pipeline/training/setup.py``) resolves it from the recipe and writes it
into ``config.json`` (``save_to``) next to the processor; evaluation, ``pipeline()``, export, the stream and the
model card build it with ``ClipSpec.from_config``, so they cut the same frames, and the card describes exactly
those (``describe``). A config that carries none of these fields (a checkpoint trained elsewhere) gets the defaults
below, and ``recorded`` says so.

Each field has one name everywhere: the attribute, the config.json key, the recipe key, the ``pipeline()`` option
and the command-line flag (``FIELDS``). Keys written under older names are still read (``OLD_NAMES``).

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
DEFAULT_NUM_CLIPS = 1
DEFAULT_NUM_CROPS = 1
# The contract's fields: attribute = config.json key = recipe key = pipeline() option = command-line flag.
FIELDS = ("num_frames", "frame_sampling_rate", "frame_sampling_strategy", "short_video", "num_clips", "num_crops")
# Names written by earlier versions (config.json, recipe.yaml) -> the field; read, never written.
OLD_NAMES = {"sampling_strategy": "frame_sampling_strategy", "eval_num_clips": "num_clips",
             "eval_num_crops": "num_crops"}
_INTEGERS = ("num_frames", "frame_sampling_rate", "num_clips", "num_crops")


@dataclass(frozen=True)
class ClipSpec:
    """How clips are cut from a video and fed to the model (see the module docstring)."""

    num_frames: int
    frame_sampling_rate: int = DEFAULT_RATE
    frame_sampling_strategy: str = DEFAULT_STRATEGY
    short_video: str = DEFAULT_SHORT
    num_clips: int = DEFAULT_NUM_CLIPS
    num_crops: int = DEFAULT_NUM_CROPS
    preprocessing: Optional[VideoPreprocessing] = field(default=None, compare=False)
    # False when the config recorded no sampling of its own and the defaults above were used
    recorded: bool = True

    def __post_init__(self):
        for name in _INTEGERS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"clip contract: {name} must be a positive integer, got {value!r}")
        if self.frame_sampling_strategy not in STRATEGIES:
            raise ValueError(f"clip contract: frame_sampling_strategy must be one of {STRATEGIES}, "
                             f"got {self.frame_sampling_strategy!r}")
        if self.short_video not in SHORT_POLICIES:
            raise ValueError(f"clip contract: short_video must be one of {SHORT_POLICIES}, got {self.short_video!r}")

    @classmethod
    def from_config(cls, config: Any, processor: Any = None, **overrides: Any) -> "ClipSpec":
        """The contract a model config records (``overrides`` win, e.g. a call's ``num_clips``).

        ``overrides`` are fields (``FIELDS``); None values are ignored. Raises when no frame count is known.
        """
        unknown = set(overrides) - set(FIELDS)
        if unknown:
            raise TypeError(f"clip contract: unknown field(s) {sorted(unknown)}; the fields are {FIELDS}")
        values: dict[str, Any] = {}
        recorded = any(getattr(config, name, None) is not None for name in ("frame_sampling_rate",
                                                                          "frame_sampling_strategy"))
        for old, name in OLD_NAMES.items():  # a config.json written under the older names
            if getattr(config, old, None) is not None:
                values[name] = getattr(config, old)
        for name in FIELDS[1:]:
            value = getattr(config, name, None)
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
        return cls(**{k: (int(v) if k in _INTEGERS else v) for k, v in values.items()}, recorded=recorded)

    def save_to(self, config: Any) -> None:
        """Writes the sampling and the evaluation views into a model config (saved as config.json)."""
        for name in FIELDS:
            setattr(config, name, getattr(self, name))
        for old in OLD_NAMES:  # a config loaded from an older config.json: one name per field once saved again
            if old in getattr(config, "__dict__", {}):
                delattr(config, old)

    def fields(self) -> dict[str, Any]:
        """The sampling and the views as plain values, by field name (metrics.json, the export record)."""
        return {name: getattr(self, name) for name in FIELDS}

    def with_views(self, num_clips: Optional[int] = None, num_crops: Optional[int] = None) -> "ClipSpec":
        """The same contract with other evaluation views (None keeps the saved ones)."""
        return replace(self, num_clips=num_clips or self.num_clips, num_crops=num_crops or self.num_crops)

    # -- which frames --------------------------------------------------------------------------------------------
    @property
    def span(self) -> Optional[int]:
        """Frames one dense clip spans (None for strategies that cover the whole video)."""
        return (self.num_frames - 1) * self.frame_sampling_rate + 1 if self.frame_sampling_strategy == "dense" \
            else None

    def eval_clips(self, total_frames: int, num_clips: Optional[int] = None) -> list[np.ndarray]:
        """Frame indices of the evaluation clips of a video of ``total_frames`` frames."""
        return eval_clip_indices(total_frames, self.num_frames, self.frame_sampling_rate,
                                 self.frame_sampling_strategy, self.short_video, num_clips or self.num_clips)

    def train_clip(self, total_frames: int, rng=None) -> np.ndarray:
        """Frame indices of one randomly placed training clip."""
        return train_clip_indices(total_frames, self.num_frames, self.frame_sampling_rate,
                                  self.frame_sampling_strategy, self.short_video, rng)

    # -- in words (the model card) -------------------------------------------------------------------------------
    def describe(self, fps: Optional[float] = None) -> str:
        """The contract in a sentence or two, as the model card states it."""
        if self.frame_sampling_strategy == "dense":
            spacing = ("consecutive frames" if self.frame_sampling_rate == 1
                       else f"one frame every {self.frame_sampling_rate} frames")
            seconds = f", {self.span / fps:.2f} s at {fps:g} fps" if fps else ""
            frames = (f"{self.num_frames} frames, {spacing} (a span of {self.span} frames{seconds}); "
                      f"{'one clip from the middle of the video' if self.num_clips == 1 else f'{self.num_clips} clips evenly spaced over the video'}")
            shorter = ("videos shorter than the span repeat their last frame" if self.short_video == "clamp"
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
