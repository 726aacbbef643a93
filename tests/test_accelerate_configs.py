"""Every accelerate config in accelerate_configs/ loads with accelerate's own loader and is self-consistent; the
ones this machine can run (CPU DDP, single process, and two 'nodes' on localhost) launch a tiny script and report
the expected world size, with ranks that really talk to each other (an all-reduce)."""

from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import DistributedType

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "accelerate_configs"
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))
GPU_TYPES = {DistributedType.MULTI_GPU, DistributedType.FSDP, DistributedType.DEEPSPEED}

# Writes what the process sees to world_rank<R>.json in its working directory (printing would interleave the
# ranks' lines), after an all-reduce of (rank + 1) whose sum proves the processes form one group.
WORLD_SCRIPT = textwrap.dedent(
    """
    import json, os
    import torch
    import torch.distributed as dist
    from accelerate import PartialState

    # what the Trainer does with use_cpu: true (the recipe decides CPU, not the accelerate config)
    state = PartialState(cpu=not torch.cuda.is_available())
    total = torch.tensor([state.process_index + 1])
    if state.num_processes > 1:
        dist.all_reduce(total)
    report = json.dumps({
        "rank": state.process_index, "local_rank": state.local_process_index, "world_size": state.num_processes,
        "backend": state.backend, "distributed_type": str(state.distributed_type),
        "mixed_precision": os.environ.get("ACCELERATE_MIXED_PRECISION"), "rank_sum": int(total.item()),
    })
    with open(f"world_rank{state.process_index}.json", "w") as f:
        f.write(report)
    # orderly gloo teardown: a rank leaving while the other still talks aborted the run now and then
    # ("terminate called without an active exception")
    if state.num_processes > 1:
        dist.barrier()
        dist.destroy_process_group()
    """
)


def load(name: str):
    return load_config_from_file(str(CONFIG_DIR / name))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(tmp_path: Path, config: str, *extra: str) -> subprocess.Popen:
    script = tmp_path / "world.py"
    script.write_text(WORLD_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIG_DIR / config),
               *extra, str(script)]
    return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def reports(process: subprocess.Popen, folder: Path, timeout: int = 240) -> list[dict]:
    """Waits for a launch and returns what each process started in ``folder`` reported, by rank."""
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-3000:]
    found = [json.loads(path.read_text()) for path in folder.glob("world_rank*.json")]
    assert found, output[-3000:]
    return sorted(found, key=lambda r: r["rank"])


def test_the_expected_configs_exist():
    names = {path.stem for path in CONFIGS}
    assert {"cpu_ddp", "single_gpu", "multi_gpu", "multi_node", "fsdp", "deepspeed_zero2"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads_and_is_consistent(path):
    config = load_config_from_file(str(path))
    kind = DistributedType(config.distributed_type)
    assert config.compute_environment.value == "LOCAL_MACHINE", path.name
    assert config.mixed_precision in ("no", "fp16", "bf16"), f"{path.name}: mixed_precision {config.mixed_precision}"
    assert config.num_machines >= 1 and config.num_processes >= config.num_machines, path.name
    # num_processes is the TOTAL over all machines: every machine must run the same number
    assert config.num_processes % config.num_machines == 0, f"{path.name}: processes not a multiple of machines"
    assert 0 <= config.machine_rank < config.num_machines, path.name
    if kind == DistributedType.NO:
        assert config.num_processes == 1 and config.num_machines == 1, path.name
    else:
        assert kind in GPU_TYPES, f"{path.name}: {kind} (MULTI_CPU would launch one process, DESIGN fact 6)"
        assert config.num_processes >= 2, f"{path.name}: a distributed launch needs at least 2 processes"
    if config.num_machines > 1:
        # every node dials the main process: its address and port must be set
        assert config.main_process_ip and config.main_process_port, path.name
        assert config.same_network or config.rdzv_backend != "static", path.name
    if not config.use_cpu:
        # GPU runs train in reduced precision (the recipes may still override it per run)
        assert config.mixed_precision in ("bf16", "fp16"), f"{path.name}: GPU config without mixed precision"


def test_cpu_ddp_config_is_the_working_cpu_route():
    config = load("cpu_ddp.yaml")
    # MULTI_GPU is what makes accelerate start several processes (through torchrun); MULTI_CPU would start one
    assert config.distributed_type == DistributedType.MULTI_GPU
    assert config.num_processes == 2 and config.num_machines == 1
    assert config.mixed_precision == "no"  # fp16 does nothing on CPU (DESIGN fact 7)


def test_fsdp_wraps_a_layer_class_that_exists():
    config = load("fsdp.yaml")
    names = config.fsdp_config["fsdp_transformer_layer_cls_to_wrap"].split(",")
    for name in names:
        assert _layer_class_exists(name.strip()), f"fsdp.yaml wraps {name}, which no model family defines"


def _layer_class_exists(name: str) -> bool:
    """A transformer block class of one of our model families, looked up where transformers defines it."""
    families = (
        "transformers.models.videomae.modeling_videomae",
        "transformers.models.timesformer.modeling_timesformer",
    )
    for module in families:
        if hasattr(importlib.import_module(module), name):
            return True
    return False


def test_deepspeed_config_leaves_batch_settings_to_the_trainer():
    config = load("deepspeed_zero2.yaml")
    ds = config.deepspeed_config
    assert ds["zero_stage"] in (0, 1, 2, 3)
    # "auto" lets the HF Trainer fill them from TrainingArguments, so a recipe stays the single source
    assert ds["gradient_accumulation_steps"] == "auto" and ds["gradient_clipping"] == "auto"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_passes_accelerates_own_launch_preparation(path):
    """What `accelerate launch` does before it starts processes (argument checks, environment for the workers),
    run for every config without starting any: GPU-only configs are checked as far as this machine allows."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import (
        prepare_deepspeed_cmd_env,
        prepare_multi_gpu_env,
        prepare_simple_launcher_cmd_env,
    )

    # a free port: preparation refuses a busy one for multi-node, and other jobs may hold 29500
    argv = ["--config_file", str(path), "--main_process_port", str(free_port()), "train.py"]
    args, defaults, _ = _validate_launch_command(launch_command_parser().parse_args(argv))
    if args.use_deepspeed:
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
        _, env = prepare_deepspeed_cmd_env(args)
        assert env["ACCELERATE_DEEPSPEED_ZERO_STAGE"] == str(defaults.deepspeed_config["zero_stage"])
    elif args.multi_gpu or args.use_fsdp:
        env = prepare_multi_gpu_env(args)
        assert int(args.nproc_per_node) * defaults.num_machines == defaults.num_processes
    else:
        _, env = prepare_simple_launcher_cmd_env(args)
    assert env["ACCELERATE_MIXED_PRECISION"] == defaults.mixed_precision
    if args.use_fsdp:
        from accelerate.utils import FullyShardedDataParallelPlugin

        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            plugin = FullyShardedDataParallelPlugin()
        assert plugin.fsdp_version == defaults.fsdp_config["fsdp_version"]
        assert plugin.transformer_cls_names_to_wrap == [defaults.fsdp_config["fsdp_transformer_layer_cls_to_wrap"]]


@pytest.mark.slow
def test_cpu_ddp_launches_two_gloo_processes(tmp_path):
    found = reports(launch(tmp_path, "cpu_ddp.yaml"), tmp_path)
    assert [r["rank"] for r in found] == [0, 1]
    assert all(r["world_size"] == 2 and r["backend"] == "gloo" for r in found), found
    assert all(r["rank_sum"] == 1 + 2 for r in found), found


@pytest.mark.slow
def test_single_gpu_config_launches_one_process(tmp_path):
    # no GPU here: the one process runs on CPU, which is all this config promises about processes
    found = reports(launch(tmp_path, "single_gpu.yaml"), tmp_path)
    assert len(found) == 1 and found[0]["world_size"] == 1 and found[0]["rank_sum"] == 1, found
    assert found[0]["mixed_precision"] == "bf16"


@pytest.mark.slow
def test_multi_node_config_on_two_local_nodes(tmp_path):
    """The README's multi-node recipe, with two 'nodes' on this machine: same command, only machine_rank differs."""
    # One retry on a fresh port: once in CI (busy 2-core machine) the two launchers' loopback rendezvous hung
    # until the timeout; a failure of the launch itself (non-zero exit) is never retried.
    for attempt in (1, 2):
        port = str(free_port())
        common = ["--num_machines", "2", "--num_processes", "2", "--main_process_ip", "127.0.0.1",
                  "--main_process_port", port]
        nodes = []
        for rank in (0, 1):
            folder = tmp_path / f"try{attempt}" / f"node{rank}"
            folder.mkdir(parents=True)
            nodes.append((launch(folder, "multi_node.yaml", "--machine_rank", str(rank), *common), folder))
        try:
            found = [r for node, folder in nodes for r in reports(node, folder, timeout=120)]
            break
        except subprocess.TimeoutExpired:
            for node, _ in nodes:
                node.kill()  # the launcher; its workers then fail their next collective and exit
            if attempt == 2:
                raise
    assert sorted(r["rank"] for r in found) == [0, 1], found
    assert all(r["world_size"] == 2 and r["local_rank"] == 0 and r["rank_sum"] == 3 for r in found), found
