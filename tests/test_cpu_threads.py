"""setup.set_cpu_threads: compute threads on CPU leave a core to each data worker; an explicit setting wins."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import torch

from pipeline.training.setup import set_cpu_threads


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _args(device: str = "cpu", workers: int = 2):
    return SimpleNamespace(device=torch.device(device), dataloader_num_workers=workers)


@pytest.mark.parametrize(
    "cores, processes, workers, expected",
    [(2, 1, 2, 1), (8, 1, 2, 6), (8, 2, 2, 2), (16, 1, 0, 16), (4, 4, 2, 1)],
)
def test_threads_are_what_the_workers_leave(monkeypatch, restore_threads, cores, processes, workers, expected):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(processes))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert set_cpu_threads(_args(workers=workers)) == expected
    assert torch.get_num_threads() == expected


def test_explicit_omp_setting_and_gpus_are_left_alone(monkeypatch, restore_threads):
    torch.set_num_threads(3)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert set_cpu_threads(_args()) is None
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert set_cpu_threads(_args(device="cuda")) is None
    assert torch.get_num_threads() == 3
