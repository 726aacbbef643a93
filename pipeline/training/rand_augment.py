"""RandAugment for video clips: one draw of operations per clip, applied identically to all of its frames.

``VideoRandAugment.from_spec("m7-n4-mstd0.5-inc1")`` is the policy VideoMAE fine-tunes with (its ``--aa
rand-m7-n4-mstd0.5-inc1``, the timm RandAugment spec): ``n`` = 4 operations per clip, each picked uniformly from the
15 below and applied with probability 0.5, at magnitude ``m`` = 7 of 10 perturbed per operation by a normal of std
``mstd`` = 0.5 (clipped to [0, 10]); ``inc1`` selects the variants whose strength increases with the magnitude.
Operations and their ranges at magnitude 10 (Cubuk et al. 2020, as parameterised in timm):

- AutoContrast, Equalize, Invert (no magnitude);
- Rotate +-30 degrees, ShearX / ShearY +-0.3, TranslateX / TranslateY +-45% of the frame (sign random);
- Posterize: keep ``4 - 4m/10`` bits (inc1) or ``4m/10`` bits; Solarize: invert pixels >= ``256 - 256m/10`` (inc1)
  or ``>= 256m/10``; SolarizeAdd: add ``110m/10`` to pixels < 128;
- Brightness, Contrast, Color (saturation), Sharpness: blend factor ``1 +- 0.9m/10`` (inc1) or ``0.1 + 1.8m/10``.

Video consistency: every clip of the batch draws its own operations and parameters, and all its frames get exactly
the same pixel mapping: the geometric operations use one affine map for all frames, and the operations that depend
on image statistics (AutoContrast, Equalize, Contrast) compute them over the whole clip, not per frame, so an
object keeps its colour through time.

``VideoRandAugment()(clips)`` takes uint8 clips (B, T, C, H, W) on any device and returns uint8 clips of the same
shape on that device; the per-clip draws are made on the CPU (``generator``, else torch's global generator), the
pixel work runs batched on the clips' device (one kernel per operation for all clips that drew it).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F

OPS = (
    "AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color", "Contrast",
    "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateX", "TranslateY",
)
_GEOMETRIC = ("Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY")
_SIGNED = _GEOMETRIC + ("Color", "Contrast", "Brightness", "Sharpness")  # signed only in the increasing variants
_LEVEL_MAX = 10.0
# ImageNet mean in 0..255: the fill of areas a geometric op uncovers (normalises to about 0 for ImageNet models)
DEFAULT_FILL = (124, 116, 104)


@dataclass(frozen=True)
class RandAugmentSpec:
    """Parsed ``[rand-]m<M>-n<N>[-mstd<S>][-inc<0|1>][-p<P>]`` (order free)."""

    magnitude: float = 9.0
    num_ops: int = 2
    magnitude_std: float = 0.0
    increasing: bool = False
    prob: float = 0.5

    @classmethod
    def parse(cls, text: str) -> "RandAugmentSpec":
        parts = [p for p in str(text).strip().split("-") if p]
        if parts and parts[0] == "rand":
            parts = parts[1:]
        values: dict = {}
        keys = {"m": ("magnitude", float), "n": ("num_ops", int), "mstd": ("magnitude_std", float),
                "inc": ("increasing", lambda v: bool(int(v))), "p": ("prob", float)}
        for part in parts:
            match = re.fullmatch(r"([a-z]+)([0-9.]+)", part)
            if not match or match.group(1) not in keys:
                raise ValueError(f"rand_augment: cannot read '{part}' in '{text}' (expected e.g. m7-n4-mstd0.5-inc1)")
            name, convert = keys[match.group(1)]
            try:
                values[name] = convert(match.group(2))
            except ValueError:
                raise ValueError(f"rand_augment: bad number in '{part}' of '{text}'") from None
        spec = cls(**values)
        if not (0 <= spec.magnitude <= _LEVEL_MAX and spec.num_ops >= 0 and spec.magnitude_std >= 0
                and 0 <= spec.prob <= 1):
            raise ValueError(f"rand_augment: '{text}' out of range (m in [0, 10], n >= 0, mstd >= 0, p in [0, 1])")
        return spec


class VideoRandAugment(torch.nn.Module):
    """RandAugment over a batch of uint8 clips (B, T, C, H, W); see the module docstring.

    ``ops`` restricts the operation set (tests use it to force one operation).
    """

    def __init__(self, spec: RandAugmentSpec | str = RandAugmentSpec(), fill: tuple[int, ...] = DEFAULT_FILL,
                 ops: tuple[str, ...] = OPS):
        super().__init__()
        self.spec = RandAugmentSpec.parse(spec) if isinstance(spec, str) else spec
        unknown = set(ops) - set(OPS)
        if unknown:
            raise ValueError(f"rand_augment: unknown operation(s) {sorted(unknown)}")
        self.ops = tuple(ops)
        self.fill = tuple(int(v) for v in fill)

    @classmethod
    def from_spec(cls, text: str, **kwargs) -> "VideoRandAugment":
        return cls(RandAugmentSpec.parse(text), **kwargs)

    def extra_repr(self) -> str:
        return f"{self.spec}, fill={self.fill}"

    def draw(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Per clip and slot (B, N): op index, applied or not, magnitude in [0, 10], sign (+1 / -1)."""
        spec = self.spec
        shape = (batch_size, spec.num_ops)
        op = torch.randint(0, len(self.ops), shape, generator=generator)
        apply = torch.rand(shape, generator=generator) < spec.prob
        magnitude = torch.full(shape, float(spec.magnitude))
        if spec.magnitude_std > 0:
            magnitude = magnitude + torch.randn(shape, generator=generator) * spec.magnitude_std
        magnitude = magnitude.clamp(0.0, _LEVEL_MAX)
        sign = torch.where(torch.rand(shape, generator=generator) < 0.5, -1.0, 1.0)
        return {"op": op, "apply": apply, "magnitude": magnitude, "sign": sign}

    def forward(self, clips: torch.Tensor, generator: torch.Generator | None = None,
                draws: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        if clips.dim() != 5 or clips.dtype != torch.uint8:
            raise ValueError(f"RandAugment expects uint8 clips (B, T, C, H, W), got {clips.dtype} {tuple(clips.shape)}")
        if clips.shape[2] != len(self.fill):
            raise ValueError(f"RandAugment: {clips.shape[2]} channels but a fill of {len(self.fill)} values")
        draws = draws or self.draw(clips.shape[0], generator)
        out = clips
        for slot in range(self.spec.num_ops):
            for index, name in enumerate(self.ops):
                chosen = (draws["op"][:, slot] == index) & draws["apply"][:, slot]
                if not bool(chosen.any()):
                    continue
                rows = chosen.nonzero().squeeze(1)
                if out is clips:
                    out = clips.clone()  # the caller's clips are never changed in place
                level = draws["magnitude"][rows, slot] / _LEVEL_MAX
                sign = draws["sign"][rows, slot]
                rows_dev = rows.to(out.device)
                out[rows_dev] = self._apply(name, out[rows_dev], level, sign)
        return out

    # --- the operations: x is uint8 (b, T, C, H, W); level in [0, 1] and sign per clip, on the CPU ---

    def _apply(self, name: str, x: torch.Tensor, level: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
        inc = self.spec.increasing
        if name == "Invert":
            return 255 - x
        if name == "AutoContrast":
            return _autocontrast(x)
        if name == "Equalize":
            return _equalize(x)
        if name == "Posterize":
            bits = (4 - (level * 4).long()) if inc else (level * 4).long()
            keep = (256 - 2 ** (8 - bits.clamp(0, 8))).to(torch.uint8)  # mask of the top `bits` bits
            return x & _per_clip(keep, x)
        if name == "Solarize":
            threshold = (256 - level * 256) if inc else level * 256
            return torch.where(x.float() >= _per_clip(threshold, x), 255 - x, x)
        if name == "SolarizeAdd":
            added = (x.float() + _per_clip(level * 110, x)).clamp(0, 255).round().to(torch.uint8)
            return torch.where(x < 128, added, x)
        if name in ("Color", "Contrast", "Brightness", "Sharpness"):
            factor = (1.0 + sign * level * 0.9) if inc else (0.1 + level * 1.8)
            return _enhance(name, x, factor)
        amount = level * sign  # geometric ops are signed in both variants
        if name == "Rotate":
            return _affine(x, self.fill, angle=amount * 30.0)
        if name == "ShearX":
            return _affine(x, self.fill, shear_x=amount * 0.3)
        if name == "ShearY":
            return _affine(x, self.fill, shear_y=amount * 0.3)
        if name == "TranslateX":
            return _affine(x, self.fill, translate_x=amount * 0.45 * x.shape[-1])
        if name == "TranslateY":
            return _affine(x, self.fill, translate_y=amount * 0.45 * x.shape[-2])
        raise AssertionError(name)


def _per_clip(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(b,) -> (b, 1, 1, 1, 1) on x's device, for broadcasting over a clip."""
    return values.to(x.device).view(-1, 1, 1, 1, 1)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.clamp_(0, 255).round_().to(torch.uint8)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601-2 luma (PIL's "L"), (b, T, 1, H, W) float; a single channel stays as it is."""
    if x.shape[2] == 1:
        return x.float()
    r, g, b = x.float().unbind(2)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(2)


def _enhance(name: str, x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """PIL ImageEnhance-style blends ``degenerate + factor x (x - degenerate)`` with clip-level statistics."""
    xf = x.float()
    if name == "Brightness":
        degenerate = torch.zeros_like(xf)
    elif name == "Color":
        degenerate = _grey(x).expand_as(xf)
    elif name == "Contrast":
        degenerate = _grey(x).mean(dim=(1, 2, 3, 4), keepdim=True).round().expand_as(xf)  # mean of the whole clip
    else:  # Sharpness: PIL's smoothing kernel, borders left as they are
        b, t, c, h, w = x.shape
        kernel = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]], device=x.device) / 13.0
        frames = xf.reshape(b * t * c, 1, h, w)
        smooth = F.conv2d(frames, kernel.view(1, 1, 3, 3)).round()
        degenerate = frames.clone()
        degenerate[..., 1:-1, 1:-1] = smooth
        degenerate = degenerate.view(b, t, c, h, w)
    return _to_uint8(degenerate + _per_clip(factor, x) * (xf - degenerate))


def _autocontrast(x: torch.Tensor) -> torch.Tensor:
    """Stretches each channel to 0..255 using its minimum and maximum over the whole clip."""
    xf = x.float()
    low = xf.amin(dim=(1, 3, 4), keepdim=True)
    high = xf.amax(dim=(1, 3, 4), keepdim=True)
    flat = high <= low
    scale = torch.where(flat, torch.ones_like(high), 255.0 / (high - low).clamp_min(1e-6))
    low = torch.where(flat, torch.zeros_like(low), low)
    return _to_uint8((xf - low) * scale)


def _equalize(x: torch.Tensor) -> torch.Tensor:
    """Histogram equalisation per channel with one histogram over all frames of the clip (PIL's rule)."""
    b, t, c, h, w = x.shape
    values = x.permute(0, 2, 1, 3, 4).reshape(b * c, -1).long()
    hist = torch.zeros(b * c, 256, dtype=torch.long, device=x.device)
    hist.scatter_add_(1, values, torch.ones_like(values))
    # PIL: step = (count of all pixels but those of the last used value) // 255; lut = (cumsum + step // 2) // step
    last_value = 255 - torch.argmax((hist.flip(1) > 0).long(), dim=1)
    last_count = hist.gather(1, last_value.unsqueeze(1)).squeeze(1)
    step = (hist.sum(1) - last_count) // 255
    cumulative = torch.cumsum(hist, dim=1) - hist  # pixels strictly below each value
    safe = step.clamp_min(1).unsqueeze(1)
    lut = ((cumulative + safe // 2) // safe).clamp(0, 255)
    identity = torch.arange(256, device=x.device).expand_as(lut)
    lut = torch.where((step > 0).unsqueeze(1), lut, identity)
    mapped = lut.gather(1, values).to(torch.uint8)
    return mapped.view(b, c, t, h, w).permute(0, 2, 1, 3, 4).contiguous()


def _affine(x: torch.Tensor, fill: tuple[int, ...], angle=None, shear_x=None, shear_y=None, translate_x=None,
            translate_y=None) -> torch.Tensor:
    """One affine map per clip (about the frame centre, in pixels), the same for all of its frames; bilinear;
    uncovered areas take ``fill``. Each argument is a (b,) CPU tensor or None."""
    b, t, c, h, w = x.shape
    forward = torch.eye(3).repeat(b, 1, 1)
    if angle is not None:
        radians = angle * (math.pi / 180.0)
        cos, sin = torch.cos(radians), torch.sin(radians)
        forward[:, 0, 0], forward[:, 0, 1], forward[:, 1, 0], forward[:, 1, 1] = cos, -sin, sin, cos
    if shear_x is not None:
        forward[:, 0, 1] = shear_x
    if shear_y is not None:
        forward[:, 1, 0] = shear_y
    if translate_x is not None:
        forward[:, 0, 2] = translate_x
    if translate_y is not None:
        forward[:, 1, 2] = translate_y
    # grid_sample wants, for each output pixel, where to read in the input: the inverse map, in coordinates
    # normalised to [-1, 1] (align_corners=False: pixel centres at (2i + 1) / size - 1)
    to_pixels = torch.diag(torch.tensor([w / 2.0, h / 2.0, 1.0]))
    to_normalised = torch.diag(torch.tensor([2.0 / w, 2.0 / h, 1.0]))
    theta = (to_normalised @ torch.linalg.inv(forward) @ to_pixels)[:, :2, :]
    theta = theta.to(x.device).repeat_interleave(t, dim=0)
    frames = x.reshape(b * t, c, h, w).float()
    fill_value = torch.tensor(fill, dtype=torch.float32, device=x.device).view(1, c, 1, 1)
    grid = F.affine_grid(theta, [b * t, c, h, w], align_corners=False)
    # zero padding of (x - fill) is padding with fill
    out = F.grid_sample(frames - fill_value, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return _to_uint8(out + fill_value).view(b, t, c, h, w)
