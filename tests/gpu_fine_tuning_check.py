"""GPU check of the fine-tuning pieces (not collected by pytest; needs CUDA): ``python tests/gpu_fine_tuning_check.py``.

Each check prints one line ``PASS|FAIL name: details``; the exit status is the number of failures. What it covers:
RandAugment and Mixup/CutMix on CUDA batches (CPU and CUDA agree, frames share one mapping / one box, timings);
drop path under bf16 autocast with activation checkpointing (same gradients as without); the EMA closed form on CUDA;
a VideoTrainer run on CUDA with every Trainer-side key on (bf16, layer decay, mixup/cutmix, EMA, class weights,
balanced sampler, gradient checkpointing); a frozen I3D backbone under an attentive probe (weights and BatchNorm
statistics unchanged).
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fine_tuning_models import TINY, tiny_model  # noqa: E402
from pipeline.models.drop_path import set_drop_path  # noqa: E402
from pipeline.models.backbone_freezing import freeze_backbone  # noqa: E402
from pipeline.models.probe import attentive_probe  # noqa: E402
from pipeline.training.classification_loss import ClassificationLoss  # noqa: E402
from pipeline.training.ema import EMACallback, ema_decay_at  # noqa: E402
from pipeline.training.fine_tuning import FineTuning  # noqa: E402
from pipeline.training.mixing import VideoMixup  # noqa: E402
from pipeline.training.rand_augment import VideoRandAugment  # noqa: E402
from pipeline.training.trainer import VideoTrainer  # noqa: E402

import transformers  # noqa: E402

print("torch", torch.__version__, "transformers", transformers.__version__,
      torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA", flush=True)
CUDA = torch.device(os.environ.get("CHECK_DEVICE", "cuda"))  # CHECK_DEVICE=cpu: a dry run of the script itself
RESULTS: list[tuple[str, bool, str]] = []


def check(name):
    def wrap(fn):
        try:
            detail = fn() or ""
            RESULTS.append((name, True, detail))
        except Exception as err:  # noqa: BLE001 - every failure is reported, the others still run
            RESULTS.append((name, False, f"{type(err).__name__}: {err} | {traceback.format_exc(limit=3)!r}"))
        print(("PASS" if RESULTS[-1][1] else "FAIL"), name + ":", RESULTS[-1][2], flush=True)
        return fn
    return wrap


def sync():
    if CUDA.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, repeat=10):
    fn()
    sync()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    sync()
    return (time.perf_counter() - start) / repeat * 1000


@check("rand_augment: CUDA equals CPU for the same draws, one mapping per clip")
def _():
    augment = VideoRandAugment.from_spec("m7-n4-mstd0.5-inc1")
    size = 224 if CUDA.type == "cuda" else 32
    clips = torch.randint(20, 230, (16, 16, 3, size, size), dtype=torch.uint8)
    clips[:, 2] = clips[:, 0]  # frames 0 and 2 identical
    draws = augment.draw(16, torch.Generator().manual_seed(0))
    on_cpu = augment(clips, draws=draws)
    on_gpu = augment(clips.to(CUDA), draws=draws)
    diff = (on_gpu.cpu().int() - on_cpu.int()).abs()
    assert float((diff > 1).float().mean()) < 1e-3, f"CPU/CUDA differ: max {int(diff.max())}"
    assert torch.equal(on_gpu[:, 0], on_gpu[:, 2])
    ms = timed(lambda: augment(clips.to(CUDA, non_blocking=True)))
    return f"max |cpu - cuda| {int(diff.max())}; 16 clips x 16 x {size}^2 in {ms:.1f} ms (H2D copy included)"


@check("mixup/cutmix on a CUDA batch: mass 1, one box for all frames")
def _():
    mixer = VideoMixup(101, mixup_alpha=0.8, cutmix_alpha=1.0)
    size = 224 if CUDA.type == "cuda" else 32
    x = torch.arange(32, device=CUDA, dtype=torch.float32).view(32, 1, 1, 1, 1).expand(32, 16, 3, size, size).contiguous()
    labels = torch.arange(32, device=CUDA) % 101
    for seed in range(20):
        out = mixer(x, labels, generator=torch.Generator().manual_seed(seed))
        assert out.targets.device.type == CUDA.type and torch.allclose(out.targets.sum(1), torch.ones(32, device=CUDA))
        if out.box is not None:
            top, bottom, left, right = out.box
            assert torch.all(out.pixel_values[0, :, :, top:bottom, left:right] == 31)
            assert abs(out.lam - (1 - (bottom - top) * (right - left) / size**2)) < 1e-9
    ms = timed(lambda: mixer(x, labels))
    return f"32 clips x 16 x {size}^2: {ms:.1f} ms per batch"


@check("drop path + bf16 autocast + activation checkpointing: same gradients as without checkpointing")
def _():
    config = dict(TINY["videomae"], hidden_size=384, num_hidden_layers=6, num_attention_heads=6, intermediate_size=1536,
                  image_size=64, num_frames=8)
    grads = []
    for checkpointing in (False, True):
        model = tiny_model("videomae", **config).to(CUDA)
        set_drop_path(model, 0.3)
        if checkpointing:
            model.activation_checkpointing_enable()
        x = torch.randn(8, 8, 3, 64, 64, generator=torch.Generator().manual_seed(0)).to(CUDA)
        torch.manual_seed(3)
        with torch.autocast(CUDA.type, dtype=torch.bfloat16):
            loss = model(pixel_values=x, labels=torch.arange(8, device=CUDA) % 3).loss
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    relative = float((grads[0] - grads[1]).norm() / grads[0].norm())
    assert relative < 1e-2, relative
    return f"relative gradient difference {relative:.2e}"


@check("EMA on CUDA follows the closed form")
def _():
    model = torch.nn.Linear(64, 64).to(CUDA)
    w0 = model.weight.detach().clone()
    ema = EMACallback(0.99, warmup=True)
    ema.start(model)
    with torch.no_grad():
        model.weight.fill_(1.0)
    for t in range(200):
        ema.update(t)
    kept = math.prod(ema_decay_at(t, 0.99, True) for t in range(200))
    torch.testing.assert_close(ema.shadow["weight"], 1.0 + (w0 - 1.0) * kept)
    return f"weight of the initial weights after 200 steps: {kept:.3e}"


class RandomClips(torch.utils.data.Dataset):
    def __init__(self, frames, n=96):
        self.frames, self.n = frames, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        label = 0 if i < self.n * 0.7 else (1 if i < self.n * 0.9 else 2)  # imbalanced
        return {"pixel_values": torch.randn(self.frames, 3, 32, 32, generator=g) + label, "labels": label}


@check("VideoTrainer on CUDA with bf16, layer decay, mixup/cutmix, EMA, class weights, balanced sampler, checkpointing")
def _():
    from transformers import TrainingArguments

    from pipeline.training.sampling_weights import balanced_class_weights

    dataset = RandomClips(4)
    labels = [dataset[i]["labels"] for i in range(len(dataset))]
    ema = EMACallback(0.9)
    fine_tuning = FineTuning(loss=ClassificationLoss(3, 0.1, balanced_class_weights(labels, 3)), layer_decay=0.75,
                             mixup=VideoMixup(3, 0.8, 1.0), sampler_labels=labels, num_classes=3, callbacks=[ema],
                             ema=ema)
    model = tiny_model("videomae")
    set_drop_path(model, 0.1)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(out, per_device_train_batch_size=8, learning_rate=1e-3, max_steps=24, bf16=True,
                                 gradient_checkpointing=True, eval_strategy="steps", eval_steps=12,
                                 save_strategy="no", logging_steps=6, report_to="none", disable_tqdm=True,
                                 use_cpu=CUDA.type == "cpu")
        trainer = VideoTrainer(model=model, args=args, train_dataset=dataset, eval_dataset=dataset,
                               fine_tuning=fine_tuning)
        trainer.train()
    history = trainer.state.log_history
    assert next(trainer.model.parameters()).device.type == CUDA.type
    assert any("train_accuracy" in h for h in history) and any("eval_ema_loss" in h for h in history)
    assert all(math.isfinite(h["loss"]) for h in history if "loss" in h)
    ratios = {round(g["lr_scale"], 6) for g in trainer.optimizer.param_groups}  # the schedule ends at 0
    assert ratios == {round(0.75 ** k, 6) for k in range(5)}, ratios
    return f"{len(trainer.optimizer.param_groups)} lr groups; last loss {[h['loss'] for h in history if 'loss' in h][-1]}"


@check("frozen I3D under an attentive probe on CUDA: backbone weights and BatchNorm statistics unchanged")
def _():
    from transformers import TrainingArguments

    model = attentive_probe(tiny_model("i3d"))
    freeze_backbone(model)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(out, per_device_train_batch_size=8, learning_rate=1e-2, max_steps=10, bf16=True,
                                 save_strategy="no", report_to="none", disable_tqdm=True, use_cpu=CUDA.type == "cpu")
        trainer = VideoTrainer(model=model, args=args, train_dataset=RandomClips(8, 32),
                               fine_tuning=FineTuning(loss=ClassificationLoss(3)))
        trainer.train()
    after = {k: v.cpu() for k, v in trainer.model.backbone.state_dict().items()}
    changed = [k for k, v in before.items() if not torch.equal(after[k], v)]
    assert not changed, changed[:5]
    return f"{len(before)} backbone tensors unchanged"


if __name__ == "__main__":
    failures = sum(not ok for _, ok, _ in RESULTS)
    print(f"{len(RESULTS) - failures} passed, {failures} failed")
    sys.exit(failures)
