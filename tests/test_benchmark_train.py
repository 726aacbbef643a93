"""``python -m pipeline.benchmark train``: the subcommand dispatcher, the FLOP formulas (against hand counts and
torch's FlopCounterMode) and a real 3-step run of the demo recipe on CPU."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
import torch
from transformers import (
    TimesformerConfig,
    TimesformerForVideoClassification,
    VideoMAEConfig,
    VideoMAEForVideoClassification,
)

from pipeline.benchmark import __main__ as dispatcher
from pipeline.benchmark.model_flops import analytic_forward_flops, counted_forward_flops
from pipeline.benchmark.train import PARTS, format_table, main, summarize

REPO = Path(__file__).resolve().parents[1]


def tiny_videomae(attn: str = "eager") -> VideoMAEForVideoClassification:
    config = VideoMAEConfig(
        image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=8, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=16, num_labels=3, use_mean_pooling=True,
    )
    return VideoMAEForVideoClassification._from_config(config, attn_implementation=attn)


def test_videomae_flops_match_a_hand_count():
    # 4 frames / tubelet 2 x (32/16)^2 patches = 8 tokens of width 8, MLP 16, 3 classes, RGB
    tubelet_embedding = 2 * 8 * (3 * 2 * 16 * 16) * 8  # Conv3d as a matmul: 8 tokens x 1536 inputs x 8 outputs
    qkv = 2 * 8 * 8 * (3 * 8)
    scores = 2 * 8 * 8 * 8  # (8 x 8) query-key products of length 8, summed over heads
    weighted_values = 2 * 8 * 8 * 8
    out_projection = 2 * 8 * 8 * 8
    mlp = 2 * 8 * 8 * 16 + 2 * 8 * 16 * 8
    head = 2 * 8 * 3
    hand = tubelet_embedding + qkv + scores + weighted_values + out_projection + mlp + head
    assert hand == 206_896
    model = tiny_videomae()
    assert analytic_forward_flops(model.config, 4, 32, 32).forward == hand


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_videomae_flops_match_flop_counter(attn):
    model = tiny_videomae(attn)
    clips = torch.randn(2, 4, 3, 32, 32)
    assert counted_forward_flops(model, clips) == analytic_forward_flops(model.config, 4, 32, 32).forward


def test_timesformer_divided_flops_match_a_hand_count():
    # 2 frames of (16/8)^2 = 4 patches (S = 4), CLS token: N = 9 tokens, width 8, MLP 16, 3 classes
    config = TimesformerConfig(
        image_size=16, patch_size=8, num_frames=2, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, num_labels=3, attention_type="divided_space_time",
    )
    patches = 2 * 8 * (3 * 8 * 8) * 8  # 8 patches (2 frames x 4) x 192 inputs x 8 outputs
    # temporal attention: 4 sequences of 2 tokens; qkv + output + temporal_dense on 8 tokens, then per sequence
    # (2 x 2) scores and (2 x 2) weighted values of length 8
    temporal = 2 * 8 * 8 * 24 + 2 * 8 * 8 * 8 + 2 * 8 * 8 * 8 + 4 * (2 * 2 * 2 * 8 + 2 * 2 * 2 * 8)
    # spatial attention: 2 sequences of 5 tokens (4 patches + the CLS copied into each frame)
    spatial = 2 * 10 * 8 * 24 + 2 * 10 * 8 * 8 + 2 * (2 * 5 * 5 * 8 + 2 * 5 * 5 * 8)
    mlp = 2 * 9 * 8 * 16 * 2
    head = 2 * 8 * 3
    hand = patches + temporal + spatial + mlp + head
    assert hand == 41_584
    assert analytic_forward_flops(config, 2, 16, 16).forward == hand


@pytest.mark.parametrize("attention_type", ["divided_space_time", "joint_space_time", "space_only"])
def test_timesformer_flops_match_flop_counter(attention_type):
    config = TimesformerConfig(
        image_size=32, patch_size=8, num_frames=4, hidden_size=24, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=40, num_labels=5, attention_type=attention_type,
    )
    model = TimesformerForVideoClassification(config)
    counted = counted_forward_flops(model, torch.randn(2, 4, 3, 32, 32))
    assert counted == analytic_forward_flops(config, 4, 32, 32).forward


def test_models_without_a_formula_get_none():
    class Config:
        model_type = "i3d"

    assert analytic_forward_flops(Config(), 8, 224, 224) is None


def test_dispatcher_names_a_missing_subcommand_module(monkeypatch, capsys):
    monkeypatch.setitem(dispatcher.SUBCOMMANDS, "ghost", ("pipeline.benchmark.ghost", "not written yet"))
    assert dispatcher.main(["ghost", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "'ghost' is not available" in err and "pipeline/benchmark/ghost.py" in err


def test_dispatcher_rejects_unknown_subcommands_and_lists_the_known(capsys):
    assert dispatcher.main(["trian"]) == 2
    err = capsys.readouterr().err
    assert "unknown subcommand 'trian'" in err and "train" in err and "data" in err
    assert dispatcher.main([]) == 2


def _records(steps: int = 4) -> list[dict]:
    return [{"other_s": 0.001, "data_wait_s": 0.05 * (i % 2), "host_to_device_s": 0.01, "augment_s": 0.02,
             "compute_s": 0.2, "clips": 8, "bytes_to_device": 8_000_000, "loss": 1.0} for i in range(steps)]


def test_summary_counts_data_bound_steps_cpu_and_bytes_per_clip():
    records = _records()
    wall = sum(r[f"{p}_s"] for r in records for p in PARTS)
    result = summarize(records, wall, main_cpu=0.32, worker_cpu=0.64)
    assert result["clips"] == 32 and result["clips_per_s"] == pytest.approx(32 / wall)
    assert result["data_bound_steps"] == 2  # the two steps that waited 50 ms of ~280 ms
    assert result["host_cpu_s_per_clip"] == pytest.approx(0.03) and result["worker_cpu_s_per_clip"] == 0.02
    assert result["bytes_to_device_per_clip"] == 1_000_000
    assert result["parts_sum_s"] == pytest.approx(wall)


def test_table_says_mfu_is_na_without_a_peak():
    result = {
        "model_type": "videomae", "num_parameters": 1_000_000, "attn_implementation": "sdpa",
        "gradient_checkpointing": False, "device_name": "cpu", "precision": "fp32", "batch_size": 4,
        "clip_shape": [8, 3, 64, 64], "dataloader_num_workers": 2, "steps": 4, "warmup_steps": 1,
        "peak_memory_bytes": 2**30, "peak_memory_kind": "cpu_peak_rss_main_process", "flops_per_clip_train": 3e9,
        "flops_source": "analytic", "achieved_tflops": 0.03, "mfu": None, "peak_tflops": None,
    }
    records = _records()
    result.update(summarize(records, sum(r[f"{p}_s"] for r in records for p in PARTS), 0.1, 0.2))
    table = format_table(result)
    assert "MFU" in table and "n/a (give --peak_tflops)" in table and "clips/s" in table
    assert "data wait" in table and "host-to-device" in table.replace("host to device", "host-to-device")


@pytest.mark.slow
def test_benchmark_runs_three_demo_steps_on_cpu(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)  # the recipe's data/demo is relative to the repository, as for train.py
    out = tmp_path / "bench.json"
    argv = ["--recipe", "recipes/demo.yaml", "--steps", "3", "--warmup", "1", "--peak_tflops", "0.5",
            "--json", str(out), "--per_device_train_batch_size", "4"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "clips/s" in printed and "MFU" in printed and "data wait" in printed and "data-bound steps" in printed

    result = json.loads(out.read_text())
    for key in ("clips_per_s", "wall_s", "data_wait_s", "host_to_device_s", "augment_s", "compute_s", "other_s",
                "data_bound_steps", "host_cpu_s_per_clip", "bytes_to_device_per_clip", "peak_memory_bytes",
                "flops_per_clip_forward", "flops_per_clip_train", "flops_formula", "achieved_tflops", "mfu",
                "per_step", "precision", "device"):
        assert key in result, key
    assert result["device"] == "cpu" and result["precision"] == "fp32"
    assert result["batch_size"] == 4 and result["clips"] == 12 and len(result["per_step"]) == 3
    assert result["clips_per_s"] == pytest.approx(12 / result["wall_s"])
    assert result["clips_per_s"] > 0 and result["peak_memory_bytes"] > 0
    # the parts account for the whole measured wall (the old benchmark left 37% unattributed on a GPU run)
    assert result["parts_sum_s"] == pytest.approx(result["wall_s"], rel=0.02)
    assert result["host_cpu_s_per_clip"] > result["worker_cpu_s_per_clip"] > 0  # workers decoded, and were counted
    assert result["bytes_to_device_per_clip"] > 0

    # the demo's tiny VideoMAE: 8 frames / tubelet 2 x (64/16)^2 = 64 tokens, width 96, 3 layers, MLP 192, 8 classes
    tokens, width = 64, 96
    hand = 2 * tokens * (3 * 2 * 16 * 16) * width + 3 * (
        2 * tokens * (4 * width**2 + 2 * width * 192) + 4 * tokens**2 * width
    ) + 2 * width * 8
    assert result["flops_per_clip_forward"] == hand == result["flops_per_clip_forward_counted"]
    assert result["flops_per_clip_train"] == 3 * hand
    assert result["achieved_tflops"] == pytest.approx(3 * hand * result["clips_per_s"] / 1e12)
    assert result["mfu"] == pytest.approx(result["achieved_tflops"] / 0.5)


def test_dispatcher_passes_arguments_and_maps_results_to_an_exit_status(monkeypatch):
    calls = []
    fake = types.ModuleType("pipeline.benchmark.fake")
    fake.main = lambda argv: calls.append(argv) or (3 if "--fail" in argv else {"clips_per_s": 1.0})
    monkeypatch.setitem(sys.modules, "pipeline.benchmark.fake", fake)
    monkeypatch.setitem(dispatcher.SUBCOMMANDS, "fake", ("pipeline.benchmark.fake", "test double"))
    assert dispatcher.main(["fake", "--steps", "2"]) == 0  # results (not an int) mean success
    assert dispatcher.main(["fake", "--fail"]) == 3
    assert calls == [["--steps", "2"], ["--fail"]]


def test_benchmark_checks_the_recipe_like_training_before_reading_data(tmp_path):
    from pipeline.benchmark.train import build_training_setup
    from pipeline.user_errors import RecipeError

    with pytest.raises(RecipeError, match="num_frames: 0 is not possible"):
        build_training_setup(str(REPO / "recipes" / "demo.yaml"),
                             ["--num_frames", "0", "--dataset_dir", str(tmp_path / "nothing-here")])


@pytest.mark.slow
def test_benchmark_builds_the_model_training_builds(monkeypatch):
    """The fine-tuning changes train.py makes to the model (here a frozen backbone) are in the measured model."""
    from pipeline.benchmark.train import build_training_setup

    monkeypatch.chdir(REPO)
    args, model, train_ds, transform, _, _ = build_training_setup(
        "recipes/demo.yaml", ["--freeze_backbone", "true", "--max_train_samples", "4"])
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc_norm.weight", "fc_norm.bias", "classifier.weight", "classifier.bias"}  # the head only
    assert len(train_ds) == 4 and transform.spec.num_frames == args[1].num_frames == model.config.num_frames
