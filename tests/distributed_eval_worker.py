"""Worker of test_evaluation's multi-process test: evaluates a tiny model on fake views in every process.

Run as ``torchrun --standalone --nproc_per_node N tests/distributed_eval_worker.py MODEL_DIR OUT_DIR`` (or called
in-process through ``run``). Each rank writes the metrics it got to OUT_DIR/rank<R>.json; the main process writes
the usual evaluation files to OUT_DIR/evaluation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import datasets
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.inference.decoding import VideoDecodeError  # noqa: E402
from pipeline.evaluation import evaluate_model
from pipeline.models.loading import load_trained  # noqa: E402

LABELS = ("archery", "bowling", "cycling", "diving")
NUM_VIDEOS = 11  # odd: the processes get unequal shares
BROKEN = {5}
NUM_CLIPS = 2


def fake_dataset() -> datasets.Dataset:
    features = datasets.Features(
        {"video": datasets.Value("string"), "label": datasets.ClassLabel(names=list(LABELS))})
    return datasets.Dataset.from_dict(
        {"video": [f"/videos/{i}.avi" for i in range(NUM_VIDEOS)], "label": [(i * 3) % 4 for i in range(NUM_VIDEOS)]},
        features=features,
    )


def fake_clips(path: str, info=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic random decoded frames of the (non-existent) video at ``path``, NUM_CLIPS clips of 4 frames at
    the tiny model's resize size, and where each clip's frames are; some videos are 'undecodable'."""
    index = int(Path(path).stem)
    if index in BROKEN:
        raise VideoDecodeError(path, "invalid data found when processing input")
    generator = torch.Generator().manual_seed(index)
    frames = torch.randint(0, 256, (NUM_CLIPS * 4, 36, 40, 3), generator=generator, dtype=torch.uint8)
    return frames, torch.arange(NUM_CLIPS * 4).reshape(NUM_CLIPS, 4)


def fake_views(path: str, processor) -> torch.Tensor:
    """The views the model is fed for ``fake_clips(path)``."""
    from pipeline.inference.preprocessing import VideoPreprocessing, clip_views

    return clip_views(*fake_clips(path), VideoPreprocessing.from_processor(processor), 1)


def run(model_dir: str, out_dir: str) -> dict:
    model, processor = load_trained(model_dir)
    metrics = evaluate_model(
        model, processor, fake_dataset(), num_clips=NUM_CLIPS, num_crops=1,
        output_dir=Path(out_dir) / "evaluation", batch_size=NUM_CLIPS, num_workers=0, clip_loader=fake_clips,
        sample_figures=False,
    )
    return metrics


if __name__ == "__main__":
    torch.set_num_threads(1)
    result = run(sys.argv[1], sys.argv[2])
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    keep = {k: v for k, v in result.items() if k not in ("classification_report", "elapsed_s", "videos_per_second")}
    Path(sys.argv[2], f"rank{rank}.json").write_text(json.dumps(keep, default=str))
