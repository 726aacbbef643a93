"""The embedded demo dataset: small synthetic videos in the exact UCF101 layout.

Every class is one object motion, and the classes come in opposite pairs (moving left vs
right, up vs down, growing vs shrinking, rotating clockwise vs counter-clockwise). The
parameters of a clip and of its time-reversed version are drawn from the same
distribution, so a single frame, or a clip with its frames shuffled, cannot tell the two
classes of a pair apart: only the order of the frames can. Shape, colour, textured
background, size, speed, start position and sensor noise are random; clips of one group
share the group's scene (textured background), as clips of a UCF101 group are cut from one
long video, so holding out groups matters; every clip draws its own object (shape, colour, size,
stripes). Unlike UCF101, group gNN has the same scene in every class: the scene then says nothing
about the class. Measured while designing it: with one object look per group (12 looks in all), a
tiny VideoMAE memorised the 8 training looks (train loss 0.4, test accuracy at chance); with an
object per clip it has to learn the motion. Later, over training seeds and machines: with 96 clips per
class and slower turns, clockwise vs counter-clockwise made nearly all errors and runs ended between 0.94
and 0.99 test accuracy; 256 clips per class, faster turns and a slender (asymmetric) triangle, with the
recipe's longer training, moved the weakest runs up (see recipes/demo.yaml and README "Results").

Written tree (what the UCF101 code path reads)::

    DIR/UCF-101/<Class>/v_<Class>_g<GG>_c<CC>.avi     MPEG-4 Part 2 in AVI, 25 fps
    DIR/ucfTrainTestlist/classInd.txt                  "1 Grow"
    DIR/ucfTrainTestlist/trainlist01.txt               "Grow/v_Grow_g05_c01.avi 1"
    DIR/ucfTrainTestlist/testlist01.txt                "Grow/v_Grow_g01_c01.avi"
    DIR/demo_manifest.json                             parameters + files (size, SHA-256), written last

Regenerating never removes or overwrites a file the generator did not write (see demo_folder.py).

Command line: ``python -m pipeline.data.demo --output_dir DIR [--seed 0]``.
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import json
import logging
import math
import multiprocessing
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np

from . import demo_folder
from ..user_errors import one_line_errors

logger = logging.getLogger(__name__)

DEFAULT_DIR = Path("data/demo")
MANIFEST_NAME = "demo_manifest.json"
IN_PROGRESS_NAME = ".demo_generating"
LOCK_NAME = ".demo.lock"
VIDEO_DIR = demo_folder.VIDEO_DIR
SPLIT_DIR = demo_folder.SPLIT_DIR
# Bump when the rendering changes, so a cached dataset from older code is regenerated.
GENERATOR_VERSION = 4

# Class name -> (motion kind, direction). classInd.txt lists them alphabetically, as UCF101 does.
CLASS_MOTIONS: dict[str, tuple[str, int]] = {
    "Grow": ("scale", +1),
    "MoveDown": ("vertical", +1),  # image y grows downwards
    "MoveLeft": ("horizontal", -1),
    "MoveRight": ("horizontal", +1),
    "MoveUp": ("vertical", -1),
    "RotateClockwise": ("rotate", +1),  # on screen (y down), a growing angle turns clockwise
    "RotateCounterclockwise": ("rotate", -1),
    "Shrink": ("scale", -1),
}
CLASS_NAMES: list[str] = sorted(CLASS_MOTIONS)
# Each class and the class its time-reversed clips belong to.
OPPOSITE_CLASS: dict[str, str] = {
    name: next(
        other
        for other, (kind, sign) in CLASS_MOTIONS.items()
        if kind == CLASS_MOTIONS[name][0] and sign == -CLASS_MOTIONS[name][1]
    )
    for name in CLASS_NAMES
}
SHAPES = ("triangle", "rectangle", "ellipse", "ell", "tee", "half_disc")
TEXTURES = ("stripes", "checker", "grain")


@dataclass(frozen=True)
class DemoParams:
    """Everything the generated files depend on (stored in the manifest to validate the cache)."""

    seed: int = 0
    clips_per_class: int = 256
    groups_per_class: int = 12
    size: int = 64
    num_frames: int = 32
    fps: int = 25

    def __post_init__(self):
        if self.groups_per_class < 3:
            raise ValueError(
                f"demo dataset: groups_per_class must be >= 3 (train and test groups), "
                f"got {self.groups_per_class}"
            )
        if self.clips_per_class < self.groups_per_class:
            raise ValueError(
                f"demo dataset: clips_per_class ({self.clips_per_class}) must be >= "
                f"groups_per_class ({self.groups_per_class})"
            )
        if self.size < 32 or self.size % 2:
            raise ValueError(f"demo dataset: size must be an even number >= 32, got {self.size}")
        if self.num_frames < 8:
            raise ValueError(f"demo dataset: num_frames must be >= 8, got {self.num_frames}")

    @property
    def num_test_groups(self) -> int:
        """Groups g01..gNN form the test list, a third of them (UCF101 split 1 tests on g01-g07 of 25)."""
        return max(1, self.groups_per_class // 3)

    def clips_in_group(self, group: int) -> int:
        """Clips in 1-based `group`; the first groups take the remainder (counts vary, as in UCF101)."""
        base, extra = divmod(self.clips_per_class, self.groups_per_class)
        return base + (1 if group <= extra else 0)


@dataclass
class GroupLook:
    """What all clips of one group share: the object and the (padded) background texture."""

    shape: str
    object_rgb: np.ndarray  # (3,) float
    radius: float  # object size in pixels (canonical shapes fit in a unit disc)
    stripe_freq: float  # light stripes painted on the object, so its own rotation is visible
    background: np.ndarray  # (size + 2 * pad, size + 2 * pad, 3) float32, 0..255
    texture: str = ""  # the group's texture kind


@dataclass
class DemoClip:
    """One clip: its look, the object's trajectory per frame, and the per-clip variations."""

    class_name: str
    group: int
    clip: int
    look: GroupLook
    centre: np.ndarray  # (T, 2) x, y in pixels
    radius: np.ndarray  # (T,)
    angle: np.ndarray  # (T,) radians
    background_offset: tuple[int, int]  # crop of the padded group background (y, x)
    colour_jitter: np.ndarray  # (3,) added to the object colour
    noise_sigma: float  # per-pixel, per-frame Gaussian noise
    noise_seed: int


def clip_relpath(class_name: str, group: int, clip: int) -> str:
    """Path of a clip relative to UCF-101/, in UCF101's naming."""
    return f"{class_name}/v_{class_name}_g{group:02d}_c{clip:02d}.avi"


def _rng(params: DemoParams, *key: int) -> np.random.Generator:
    # One independent stream per (class, group[, clip]): a clip does not depend on generation
    # order or on how many other groups/clips there are.
    return np.random.default_rng([params.seed, GENERATOR_VERSION, *key])


def _background_pad(size: int) -> int:
    return size // 8


def _smooth_field(rng: np.random.Generator, out_size: int, cells: int) -> np.ndarray:
    """A smooth random field (out_size, out_size, 3) in about -1..1: a coarse grid, bilinearly upsampled."""
    grid = rng.normal(size=(cells, cells, 3))
    pos = np.linspace(0, cells - 1, out_size)
    # Separable linear interpolation as a matrix: each output row mixes its two nearest grid rows.
    interp = np.maximum(0.0, 1.0 - np.abs(pos[:, None] - np.arange(cells)[None, :]))
    return np.einsum("yi,xj,ijc->yxc", interp, interp, grid) / 1.5


def group_look(params: DemoParams, group: int, clip: int | None = None) -> GroupLook:
    """The scene of group `group` (1-based), in every class: its palette and texture kind; `clip` (1-based)
    draws that clip's own variation of it (texture phase and scale, shading), so clips of a group look alike
    without being copies: a small model then learns motion rather than a handful of backgrounds."""
    rng = _rng(params, 0, group)
    variation = rng if clip is None else _rng(params, 3, group, clip)
    size = params.size
    full = size + 2 * _background_pad(size)
    # A darker background and a brighter object in every group: with the contrast's sign fixed, the
    # edges of a moving object change the same way in every clip, which a small model learns quickly.
    base = rng.uniform(25, 115, size=3)
    texture = TEXTURES[rng.integers(len(TEXTURES))]
    tint = rng.uniform(0.6, 1.0, size=3)
    background = base + 22.0 * _smooth_field(variation, full, cells=5)
    yy, xx = np.mgrid[0:full, 0:full].astype(np.float64)
    if texture == "stripes":
        phi, period = variation.uniform(0, math.pi), variation.uniform(5, 11) * size / 64
        pattern = np.sin(2 * math.pi * (xx * math.cos(phi) + yy * math.sin(phi)) / period)
        amplitude = variation.uniform(6, 12)
    elif texture == "checker":
        period = variation.uniform(8, 14) * size / 64
        pattern = np.sign(np.sin(2 * math.pi * xx / period) * np.sin(2 * math.pi * yy / period))
        amplitude = variation.uniform(5, 10)
    else:
        pattern = variation.normal(size=(full, full))
        amplitude = variation.uniform(5, 9)
    background = np.clip(background + amplitude * pattern[..., None] * tint, 0, 255)
    look = _with_object(rng, background.astype(np.float32), size)
    look.texture = texture
    return look


def _with_object(rng: np.random.Generator, background: np.ndarray, size: int) -> GroupLook:
    """A random object over `background`, always clearly brighter than it (see group_look)."""
    mean_bg = background.reshape(-1, 3).mean(0)
    for _ in range(1000):
        colour = rng.uniform(0, 255, size=3)
        if np.linalg.norm(colour - mean_bg) >= 150 and _luma(colour) - _luma(mean_bg) >= 90:
            break
    else:  # practically unreachable: white always qualifies
        colour = np.full(3, 245.0)
    return GroupLook(
        shape=SHAPES[rng.integers(len(SHAPES))],
        object_rgb=colour,
        radius=rng.uniform(9.0, 12.0) * size / 64,
        stripe_freq=rng.uniform(2.0, 4.0),
        background=background,
    )


def _luma(rgb: np.ndarray) -> float:
    return float(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])


def draw_clip(
    params: DemoParams, class_index: int, group: int, clip: int, look: GroupLook | None = None
) -> DemoClip:
    """Draws the trajectory of one clip. Its time reversal is a likely draw of the opposite class."""
    class_name = CLASS_NAMES[class_index]
    kind, sign = CLASS_MOTIONS[class_name]
    scene = look if look is not None else group_look(params, group, clip)
    # the group gives the scene; each clip brings its own object
    look = _with_object(_rng(params, 2, class_index, group, clip), scene.background, params.size)
    rng = _rng(params, 1, class_index, group, clip)
    size, steps = params.size, params.num_frames
    t = np.linspace(0.0, 1.0, steps)
    radius0 = look.radius * rng.uniform(0.9, 1.1)
    angle0 = rng.uniform(0, 2 * math.pi)
    radius = np.full(steps, radius0)
    angle = np.full(steps, angle0)
    if kind in ("horizontal", "vertical"):
        margin = 0.9 * radius0 + 1
        # Across the clip: a large, clear motion that still keeps the whole object in view.
        travel = min(rng.uniform(0.45, 0.62) * size, size - 2 * margin - 2)
        along_mid = rng.uniform(margin + travel / 2, size - margin - travel / 2)
        across = rng.uniform(margin + 2, size - margin - 2)
        # Symmetric about the middle of the path: reversing time swaps the direction only.
        along = along_mid + sign * travel * (t - 0.5)
        fixed = np.full(steps, across)
        centre = np.stack([along, fixed] if kind == "horizontal" else [fixed, along], 1)
    else:
        if kind == "scale":
            small, large = radius0 * rng.uniform(0.35, 0.45), radius0 * rng.uniform(1.45, 1.6)
            # Grow: small -> large; Shrink: large -> small, with the same end-point distributions.
            radius = small + (large - small) * (t if sign > 0 else 1 - t)
            margin = large + 1
        else:
            # 180-270 degrees: 23-35 degrees between frames 4 apart, below the 90 at which the 180-degree
            # symmetric shapes (rectangle, ellipse) would alias. Measured over training seeds: turning direction
            # is the demo's hardest cue (its errors are clockwise <-> counter-clockwise); slower turns
            # (120-200 degrees) made more of them, and revolving about a pivot instead of turning in place made
            # many more (test top-1 0.87 on the seed that gave 0.97 here).
            turn = math.radians(rng.uniform(180, 270))
            angle = angle0 + sign * turn * t
            radius = np.full(steps, radius0 * 1.2)
            margin = radius0 * 1.2 + 1
        cx, cy = rng.uniform(margin, size - margin, size=2)
        centre = np.tile([cx, cy], (steps, 1))
    pad = _background_pad(size)
    return DemoClip(
        class_name=class_name,
        group=group,
        clip=clip,
        look=look,
        centre=centre,
        radius=radius,
        angle=angle,
        background_offset=(int(rng.integers(0, 2 * pad + 1)), int(rng.integers(0, 2 * pad + 1))),
        colour_jitter=rng.uniform(-10, 10, size=3),
        noise_sigma=float(rng.uniform(2.0, 5.0)),
        noise_seed=int(rng.integers(2**31)),
    )


def _box_sdf(u: np.ndarray, v: np.ndarray, cx: float, cy: float, hx: float, hy: float) -> np.ndarray:
    # Max of half-plane distances: exact inside and along the edges, which is all antialiasing needs.
    return np.maximum(np.abs(u - cx) - hx, np.abs(v - cy) - hy)


def _shape_sdf(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Approximate signed distance (negative inside) to a canonical shape of about unit radius."""
    if shape == "triangle":
        # a slender isosceles one, apex (0, -1), base corners (+-0.5, 0.7): no rotational symmetry, so a fast
        # turn cannot alias into a slow turn the other way (an equilateral triangle repeats every 120 degrees;
        # measured: near-equilateral ones were half of the demo's clockwise/counter-clockwise errors)
        return np.maximum(v - 0.7, np.abs(u) * 0.959 - 0.282 * v - 0.282)
    if shape == "rectangle":
        return _box_sdf(u, v, 0.0, 0.0, 0.95, 0.5)
    if shape == "ellipse":
        return (np.sqrt(u**2 + (v / 0.55) ** 2) - 1.0) * 0.55
    if shape == "ell":
        return np.minimum(_box_sdf(u, v, -0.5, 0.0, 0.3, 0.9), _box_sdf(u, v, 0.0, 0.6, 0.8, 0.3))
    if shape == "tee":
        return np.minimum(_box_sdf(u, v, 0.0, -0.62, 0.9, 0.28), _box_sdf(u, v, 0.0, 0.0, 0.28, 0.9))
    if shape == "half_disc":
        v = v + 0.4  # centre the half disc's mass near the origin
        return np.maximum(np.sqrt(u**2 + v**2) - 1.0, -v)
    raise ValueError(f"demo dataset: unknown shape {shape!r}")


def render_clip(spec: DemoClip, params: DemoParams) -> np.ndarray:
    """The frames of one clip: uint8 (T, H, W, 3) RGB."""
    size = params.size
    oy, ox = spec.background_offset
    background = spec.look.background[oy : oy + size, ox : ox + size]
    pix = np.arange(size, dtype=np.float32) + 0.5
    dx = pix[None, None, :] - spec.centre[:, 0, None, None].astype(np.float32)
    dy = pix[None, :, None] - spec.centre[:, 1, None, None].astype(np.float32)
    cos = np.cos(spec.angle).astype(np.float32)[:, None, None]
    sin = np.sin(spec.angle).astype(np.float32)[:, None, None]
    r = spec.radius.astype(np.float32)[:, None, None]
    # Object coordinates: rotate the pixel offsets back by the object's angle, in units of its radius.
    u = (cos * dx + sin * dy) / r
    v = (-sin * dx + cos * dy) / r
    distance_px = _shape_sdf(spec.look.shape, u, v) * r
    alpha = np.clip(0.5 - distance_px, 0.0, 1.0)[..., None]  # one-pixel antialiased edge
    shade = 1.0 - 0.18 * (0.5 + 0.5 * np.sin(spec.look.stripe_freq * math.pi * u))[..., None]
    colour = np.clip(spec.look.object_rgb + spec.colour_jitter, 0, 255).astype(np.float32)
    frames = background[None] * (1.0 - alpha) + (colour * shade) * alpha
    noise = np.random.default_rng(spec.noise_seed).standard_normal(frames.shape, dtype=np.float32)
    frames += spec.noise_sigma * noise
    return np.clip(frames + 0.5, 0, 255).astype(np.uint8)


def write_video(path: Path, frames: np.ndarray, fps: int) -> None:
    """Encodes uint8 (T, H, W, 3) RGB frames as MPEG-4 Part 2 in AVI (UCF101's container and codec family).

    High quality (qscale 2) so compression artefacts cannot mark the keyframes, no B-frames,
    a keyframe every 12 frames so decoders can seek, one thread and bitexact flags so the
    same frames give the same bytes.
    """
    height, width = frames.shape[1:3]
    with av.open(str(path), "w", format="avi", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        ctx = stream.codec_context
        ctx.gop_size, ctx.max_b_frames, ctx.thread_count = 12, 0, 1
        ctx.options = {"flags": "+qscale+bitexact", "global_quality": str(2 * 118), "qmin": "2", "qmax": "2"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def _available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _clip_list(params: DemoParams) -> list[tuple[int, int, int]]:
    return [
        (class_index, group, clip)
        for class_index in range(len(CLASS_NAMES))
        for group in range(1, params.groups_per_class + 1)
        for clip in range(1, params.clips_in_group(group) + 1)
    ]


def _write_clip(video_root: Path, params: DemoParams, key: tuple[int, int, int]) -> str:
    class_index, group, clip = key
    spec = draw_clip(params, class_index, group, clip)
    rel = clip_relpath(spec.class_name, group, clip)
    write_video(video_root / rel, render_clip(spec, params), params.fps)
    return rel


def split_list_texts(params: DemoParams) -> dict[str, str]:
    """The exact text of classInd.txt, trainlist01.txt and testlist01.txt for these parameters."""
    train_lines, test_lines = [], []
    for class_index, group, clip in _clip_list(params):
        rel = clip_relpath(CLASS_NAMES[class_index], group, clip)
        if group <= params.num_test_groups:
            test_lines.append(rel)
        else:
            train_lines.append(f"{rel} {class_index + 1}")
    # UCF101's lists use CRLF line ends; "\n" here, which every reader accepts as well.
    class_lines = [f"{i + 1} {name}" for i, name in enumerate(CLASS_NAMES)]
    return {
        "classInd.txt": "".join(line + "\n" for line in class_lines),
        "trainlist01.txt": "".join(line + "\n" for line in train_lines),
        "testlist01.txt": "".join(line + "\n" for line in test_lines),
    }


def expected_files(params: DemoParams) -> list[str]:
    """Every file the generator writes for these parameters, relative to the dataset folder."""
    videos = [f"{VIDEO_DIR}/{clip_relpath(CLASS_NAMES[c], g, k)}" for c, g, k in _clip_list(params)]
    return videos + [f"{SPLIT_DIR}/{name}" for name in split_list_texts(params)]


def generate_demo_dataset(output_dir: str | os.PathLike, params: DemoParams, workers: int | None = None,
                          missing_only: bool = False) -> list[str]:
    """Writes all videos and split lists under `output_dir` (no caching; see ensure_demo_dataset).

    Clips are rendered by `workers` processes (default: one per available core); every clip has its own random
    stream, so the files are the same whatever the count. `missing_only`: write only the files that do not
    exist (an existing file is never overwritten). Returns the video paths relative to UCF-101/.
    """
    root = Path(output_dir)
    video_root, split_root = root / VIDEO_DIR, root / SPLIT_DIR
    split_root.mkdir(parents=True, exist_ok=True)
    for name in CLASS_NAMES:
        (video_root / name).mkdir(parents=True, exist_ok=True)
    keys = _clip_list(params)
    all_videos = [clip_relpath(CLASS_NAMES[c], g, k) for c, g, k in keys]
    if missing_only:
        keys = [key for key, rel in zip(keys, all_videos) if not (video_root / rel).exists()]
    if keys:
        workers = min(workers or _available_cores(), 8, len(keys))
        write = functools.partial(_write_clip, video_root, params)
        if workers > 1:
            # fork: the children need only numpy and PyAV, already imported; spawn would re-import the caller
            # (transformers and torch in train.py) in every child, which costs more than the rendering
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
                list(pool.map(write, keys, chunksize=16))
        else:
            for key in keys:
                write(key)
    for name, text in split_list_texts(params).items():
        if not (missing_only and (split_root / name).exists()):
            (split_root / name).write_text(text)
    return all_videos


def _read_manifest(root: Path) -> dict | None:
    try:
        manifest = json.loads((root / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _matches(manifest: dict | None, params: DemoParams) -> bool:
    return (manifest is not None and manifest.get("params") == asdict(params)
            and manifest.get("generator_version") == GENERATOR_VERSION and bool(manifest.get("complete")))


def changed_files(root: Path, manifest: dict | None) -> list[str]:
    """The files the manifest records whose size or SHA-256 now differ (a user overwrote or edited them);
    missing files are not listed (they are written again)."""
    changed = []
    for rel, recorded in sorted(((manifest or {}).get("files") or {}).items()):
        path = root / rel
        if not path.is_file():
            continue
        if path.stat().st_size != recorded.get("size") or demo_folder.file_digest(path) != recorded:
            changed.append(rel)
    return changed


def _is_complete(root: Path, params: DemoParams) -> bool:
    manifest = _read_manifest(root)
    if not _matches(manifest, params):
        return False
    if not all((root / VIDEO_DIR / rel).is_file() for rel in manifest.get("videos", [])):
        return False
    # The content is checked, never "repaired": a copy corrupted on purpose (bad-input tests) or a clip a user
    # replaced is theirs; it is used as it is, and said.
    _warn_changed(root, changed_files(root, manifest))
    return True


def _warn_changed(root: Path, changed: list[str]) -> None:
    if changed:
        logger.warning("demo dataset %s: %d file(s) differ from what the generator wrote (%s%s): used as they are, "
                       "never overwritten; delete them to have them written again", root, len(changed),
                       ", ".join(changed[:5]), ", ..." if len(changed) > 5 else "")


@contextmanager
def _exclusive_lock(root: Path):
    # Several training processes may call ensure_demo_dataset at once: one generates, the others wait.
    with open(root / LOCK_NAME, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _params_of(settings: dict | None) -> DemoParams | None:
    try:
        return DemoParams(**settings) if isinstance(settings, dict) else None
    except (TypeError, ValueError):
        return None


def _read_marker(root: Path) -> dict | None:
    """The in-progress marker: {} for a marker of an older version (no settings recorded), None if absent."""
    path = root / IN_PROGRESS_NAME
    if not path.exists():
        return None
    try:
        marker = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


# Any demo video path, whatever the settings (stands in for the file set of an interrupted generation whose
# settings were not recorded).
_DEMO_VIDEO_NAME = re.compile(
    rf"{VIDEO_DIR}/(?P<cls>{'|'.join(CLASS_NAMES)})/v_(?P=cls)_g\d{{2}}_c\d{{2}}\.avi|{SPLIT_DIR}/"
    r"(classInd|trainlist01|testlist01)\.txt")


def _clear_for(root: Path, params: DemoParams, manifest: dict | None, marker: dict | None) -> None:
    """Makes `root` ready for a generation with `params`: removes the files of the previous demo that the new
    one does not overwrite, after checking that every file there is the generator's own (else
    DemoFolderConflict, with nothing changed)."""
    if manifest is None and marker is None:
        existing = [name for name in (VIDEO_DIR, SPLIT_DIR) if (root / name).exists()]
        if existing:
            raise demo_folder.DemoFolderConflict(
                f"demo dataset: {root / existing[0]} exists but was not written by the demo generator (no "
                f"{MANIFEST_NAME}); nothing was changed: choose another folder (dataset_dir in a recipe, "
                "--output_dir for python -m pipeline.data.demo)")
        return
    old_params = _params_of(manifest.get("params")) if manifest else None
    marker_params = _params_of(marker.get("params")) if marker else None
    interrupted = None
    if marker is not None:
        interrupted = set(expected_files(marker_params)) if marker_params else set()
    sort = demo_folder.sort_files(
        root, manifest=manifest,
        manifest_lists=split_list_texts(old_params) if old_params and "files" not in manifest else None,
        interrupted=interrupted, demo_name=_DEMO_VIDEO_NAME if marker is not None and not marker_params else None,
    )
    if manifest is not None:
        why = "it holds a demo made with other settings (" + demo_folder.settings_change(
            manifest.get("params"), asdict(params), manifest.get("generator_version"), GENERATOR_VERSION) + ")"
    else:
        why = "an earlier generation there was interrupted"
    if sort.foreign:
        raise demo_folder.DemoFolderConflict(
            f"demo dataset: {root} cannot be regenerated without touching files that are not the generator's: "
            f"{why}, and {len(sort.foreign)} file(s) there were not written by it or changed since: "
            f"{sort.describe_foreign()}. Nothing was changed: move those files away, or choose another folder "
            "(dataset_dir in a recipe, --output_dir for python -m pipeline.data.demo)")
    stale = sorted(set(sort.ours) - set(expected_files(params)))
    if sort.ours:
        logger.warning("demo dataset: %s: %s; replacing the generator's own %d file(s) (%d removed, the rest "
                       "rewritten), no other file touched", root, why, len(sort.ours), len(stale))
    demo_folder.remove_files(root, stale)


def ensure_demo_dataset(
    output_dir: str | os.PathLike = DEFAULT_DIR,
    seed: int = 0,
    clips_per_class: int = DemoParams.clips_per_class,
    groups_per_class: int = DemoParams.groups_per_class,
    size: int = 64,
    num_frames: int = 32,
    workers: int | None = None,
) -> Path:
    """Returns `output_dir` holding a complete demo dataset with these parameters, generating it if needed.

    A dataset counts as complete only once its manifest is written, which happens last, so an interrupted
    generation is redone rather than half-used. `workers`: rendering processes (default: one per core).
    Never removes or overwrites a file it did not write: a folder holding a demo of other settings, or the
    remains of an interrupted generation, is regenerated only when every file under UCF-101/ and
    ucfTrainTestlist/ is the generator's own and unchanged (see pipeline.data.demo_folder); otherwise it stops
    with DemoFolderConflict naming the other files. A demo with these settings that only lacks some files gets
    just those written.
    """
    params = DemoParams(seed, clips_per_class, groups_per_class, size, num_frames)
    root = Path(output_dir)
    if _is_complete(root, params):
        return root
    root.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(root):
        if _is_complete(root, params):  # another process finished it while we waited
            return root
        manifest, marker = _read_manifest(root), _read_marker(root)
        fill_in = marker is None and _matches(manifest, params)
        # a fill-in keeps the files a user changed, and their recorded digests: they stay recognisably not ours
        changed = set(changed_files(root, manifest)) if fill_in else set()
        _warn_changed(root, sorted(changed))
        if not fill_in:
            _clear_for(root, params, manifest, marker)
        demo_folder.write_marker(root / IN_PROGRESS_NAME, json.dumps({"params": asdict(params),
                                                                      "generator_version": GENERATOR_VERSION}))
        start = time.perf_counter()
        videos = generate_demo_dataset(root, params, workers, missing_only=fill_in)
        seconds = time.perf_counter() - start
        files = {rel: manifest["files"][rel] if rel in changed else demo_folder.file_digest(root / rel)
                 for rel in expected_files(params)}
        manifest = {
            "generator_version": GENERATOR_VERSION,
            "params": asdict(params),
            "classes": CLASS_NAMES,
            "num_videos": len(videos),
            "videos": videos,
            "files": files,
            "complete": True,
        }
        tmp = root / (MANIFEST_NAME + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, root / MANIFEST_NAME)
        (root / IN_PROGRESS_NAME).unlink()
        action = "filled in the missing files of" if fill_in else "wrote"
        logger.info("demo dataset: %s %d videos in %s (%.1f s)", action, len(videos), root, seconds)
    return root


def main(argv: list[str] | None = None) -> Path:
    """Command line: writes (or finds cached) the demo dataset and prints where it is."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", default=str(DEFAULT_DIR))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clips_per_class", type=int, default=DemoParams.clips_per_class)
    parser.add_argument("--groups_per_class", type=int, default=DemoParams.groups_per_class)
    parser.add_argument("--size", type=int, default=64, help="frame width and height in pixels")
    parser.add_argument("--num_frames", type=int, default=32, help="frames per clip (25 fps)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with one_line_errors("python -m pipeline.data.demo"):
        root = ensure_demo_dataset(
            args.output_dir, args.seed, args.clips_per_class, args.groups_per_class, args.size, args.num_frames
        )
    print(root)
    return root


if __name__ == "__main__":
    main()
