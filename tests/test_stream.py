"""Live-stream classification (python -m pipeline.stream): the ring buffer, window planning and skipping, equality
with pipeline()'s timeline on a file, stdin, and real-time runs of the trained demo model (keeps up) and of the
converted Kinetics-400 I3D (too slow for 25 fps on a CPU: it skips windows, never frames)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.stream import FrameRing, StreamStats, WindowPlan, classify_windows
from pipeline.stream.__main__ import main as stream_main

from deployment_models import CRICKET_CLIP, REPO, asset, converted_i3d


def _frame(i: int) -> np.ndarray:
    return np.full((2, 3, 3), i % 256, dtype=np.uint8)


def test_ring_keeps_the_last_frames_in_order():
    ring = FrameRing(4)
    for i in range(6):
        assert ring.push(_frame(i)) == i
    frames, _ = ring.window(3, 6)
    assert [int(f[0, 0, 0]) for f in frames] == [3, 4, 5]
    with pytest.raises(ValueError, match="already overwritten"):
        ring.window(1, 4)
    with pytest.raises(ValueError, match="not all in"):
        ring.window(5, 7)
    with pytest.raises(ValueError, match="changed resolution"):
        ring.push(np.zeros((4, 4, 3), np.uint8))


def test_blocking_reader_waits_for_the_consumer():
    ring = FrameRing(3)
    for i in range(3):
        ring.push(_frame(i), block=True)
    pushed = threading.Event()
    thread = threading.Thread(target=lambda: (ring.push(_frame(3), block=True), pushed.set()))
    thread.start()
    assert not pushed.wait(0.2)  # would overwrite frame 0, still held
    ring.hold_from(1)
    assert pushed.wait(5)
    thread.join()
    assert ring.count == 4


def test_window_plan_follows_the_clip_contract():
    dense = SimpleNamespace(num_frames=8, frame_sampling_rate=4, frame_sampling_strategy="dense")
    plan = WindowPlan.for_model(dense, 25.0)
    assert (plan.window, plan.stride) == (29, 14)  # one clip span, half of it
    assert WindowPlan.for_model(dense, 25.0, stride=1.0) == WindowPlan(29, 25)
    assert WindowPlan.for_model(dense, 25.0, window_frames=10, stride_frames=3) == WindowPlan(10, 3)
    uniform = SimpleNamespace(num_frames=8, frame_sampling_rate=1, frame_sampling_strategy="uniform")
    assert WindowPlan.for_model(uniform, 25.0).window == 100  # DEFAULT_WINDOW_SECONDS at 25 fps
    assert plan.ring_capacity(25.0) >= plan.window + plan.stride


class _Recorder:
    """Stands in for the pipeline: records each window's first frame value, takes ``delay`` seconds."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.calls = []

    def __call__(self, frames, top_k=5):
        self.calls.append(int(frames[0, 0, 0, 0]))
        time.sleep(self.delay)
        return [{"label": "x", "score": 1.0}]


def test_offline_file_gets_every_window():
    ring = FrameRing(50)
    for i in range(20):
        ring.push(_frame(i))
    ring.close()
    recorder, stats = _Recorder(), StreamStats()
    records = list(classify_windows(recorder, ring, WindowPlan(6, 3), fps=25.0, live=False, stats=stats))
    # the strides end at frame 18: a last window ends at the last frame, as pipeline(timeline=True)'s
    assert [r["start_frame"] for r in records] == [0, 3, 6, 9, 12, 14]
    assert recorder.calls == [0, 3, 6, 9, 12, 14]  # each window is exactly its frames
    assert stats.skipped_windows == 0 and stats.windows == 6


def test_live_stream_skips_windows_never_frames():
    """A paced 25 fps feeder and a classifier 4x slower than the stride: windows are skipped and counted, the
    latest complete one is always taken, and latency stays bounded (no backlog builds up)."""
    plan = WindowPlan(window=8, stride=2)  # a new window every 80 ms, each takes 320 ms to classify
    ring = FrameRing(plan.ring_capacity(25.0))
    total = 75

    def feed():
        start = time.monotonic()
        for i in range(total):
            time.sleep(max(0.0, start + i / 25.0 - time.monotonic()))
            ring.push(_frame(i))
        ring.close()

    feeder = threading.Thread(target=feed)
    recorder, stats = _Recorder(delay=0.32), StreamStats()
    feeder.start()
    records = list(classify_windows(recorder, ring, plan, fps=25.0, live=True, stats=stats))
    feeder.join()
    grid = (total - plan.window) // plan.stride + 1
    assert stats.frames == total
    assert stats.windows + stats.skipped_windows == grid  # every window on the grid: classified or skipped
    assert stats.skipped_windows >= grid // 2
    starts = [r["start_frame"] for r in records]
    assert starts == sorted(starts) and starts[-1] == (grid - 1) * plan.stride  # ends on the last window
    # one classification plus at most a stride of waiting (and feeder jitter on a busy machine): no backlog, which
    # would grow by 240 ms with every window
    assert all(r["latency_ms"] < 320 + 80 + 800 for r in records)


# ---- the command ----------------------------------------------------------------------------------------------


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_stream_of_a_file_equals_the_pipeline_timeline(tmp_path, capsys):
    """Offline over a file, the stream's windows are pipeline()'s timeline windows, with the same scores."""
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_videomae import save_tiny_videomae

    from pipeline.data.demo_video import write_demo_video
    from pipeline.inference import load_pipeline

    model = save_tiny_videomae(tmp_path / "tiny")
    video = tmp_path / "demo_video.avi"
    frames = write_demo_video(video, ["MoveLeft", "Grow"])[-1].end_frame
    assert stream_main(["--model", str(model), "--source", str(video), "--top_k", "2", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    windows = _lines(captured.out)
    summary = json.loads(captured.err.strip().splitlines()[-1])
    # the tiny model's clip: 4 frames every 2 -> window of 7 frames, stride 3
    # 4 frames every 2: windows of 7 frames every 3, and a last one ending on the last frame
    grid = list(range(0, frames - 7 + 1, 3))
    assert [w["start_frame"] for w in windows] == grid + ([frames - 7] if grid[-1] != frames - 7 else [])
    assert summary["frames"] == frames and summary["windows"] == len(windows) and summary["skipped_windows"] == 0

    timeline = load_pipeline(str(model), device="cpu")(str(video), timeline=True, window_frames=7,
                                                        stride_frames=3, top_k=2)["timeline"]
    by_start = {t["start_frame"]: t["predictions"] for t in timeline}
    for window in windows:
        expected = by_start[window["start_frame"]]
        assert [p["label"] for p in window["predictions"]] == [p["label"] for p in expected]
        np.testing.assert_allclose([p["score"] for p in window["predictions"]], [p["score"] for p in expected],
                                   atol=1e-4)
        assert window["end"] == pytest.approx(window["end_frame"] / 25.0)


def test_stream_rejects_a_bad_source(tmp_path, capsys):
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"garbage")
    assert stream_main(["--model", "unused", "--source", str(broken)]) == 1
    assert "broken.avi" in capsys.readouterr().err
    assert stream_main(["--model", "unused", "--source", str(tmp_path / "missing.avi")]) == 1
    assert "no such file" in capsys.readouterr().err


def _run_stream(args: list[str], *, stdin=None, timeout: int = 600) -> tuple[list[dict], dict]:
    result = subprocess.run([sys.executable, "-m", "pipeline.stream", *args], cwd=REPO, capture_output=True,
                            text=True, timeout=timeout, stdin=stdin)
    assert result.returncode == 0, result.stderr[-3000:]
    return _lines(result.stdout), json.loads(result.stderr.strip().splitlines()[-1])


@pytest.mark.slow
def test_stdin_is_a_live_source(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_videomae import save_tiny_videomae

    from pipeline.data.demo_video import write_demo_video

    model = save_tiny_videomae(tmp_path / "tiny")
    video = tmp_path / "demo_video.avi"
    frames = write_demo_video(video, ["MoveLeft", "Grow", "MoveUp"])[-1].end_frame
    with open(video, "rb") as pipe:
        windows, summary = _run_stream(["--model", str(model), "--source", "-", "--device", "cpu"], stdin=pipe)
    assert summary["live"] is True and summary["frames"] == frames
    grid = (frames - 7) // 3 + 1
    assert summary["windows"] + summary["skipped_windows"] == grid
    assert windows[-1]["end_frame"] == (grid - 1) * 3 + 7


@pytest.mark.slow
def test_demo_model_keeps_up_in_real_time(trained_demo, tmp_path):
    """The acceptance command: the demo model on the 20 s showcase video paced at 25 fps classifies every window."""
    from pipeline.data.demo_video import write_demo_video

    video = tmp_path / "demo_video.avi"
    segments = write_demo_video(video)  # 8 classes x 64 frames
    windows, summary = _run_stream(["--model", str(trained_demo), "--source", str(video), "--realtime",
                                    "--device", "cpu"])
    frames = segments[-1].end_frame
    assert summary["live"] and summary["frames"] == frames == 512
    assert summary["window_frames"] == 29 and summary["stride_frames"] == 14
    assert summary["skipped_windows"] == 0 and summary["kept_up"], summary
    assert len(windows) == (frames - 29) // 14 + 1
    assert summary["latency_ms"]["max"] < summary["stride_ms"]  # each result before the next window completes
    assert summary["reader_lag_ms"] < 500  # and the reader kept the stream's pace
    # windows that lie inside one segment are classified as that segment's motion
    inside = [(w, s.label) for w in windows for s in segments
              if s.start_frame <= w["start_frame"] and w["end_frame"] <= s.end_frame]
    assert inside and sum(w["predictions"][0]["label"] == label for w, label in inside) >= len(inside) - 1


@pytest.mark.slow
def test_kinetics_i3d_skips_windows_in_real_time(tmp_path_factory):
    """I3D (64 x 224 x 224) on a CPU is slower than a new window every 1.28 s: it skips windows and counts them,
    reads every frame, and its latency does not grow (it always takes the latest window)."""
    import av

    from pipeline.data.demo import write_video

    i3d = converted_i3d(tmp_path_factory.getbasetemp())
    with av.open(str(asset(CRICKET_CLIP))) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    video = tmp_path_factory.mktemp("i3d-stream") / "cricket_x3.avi"
    write_video(video, np.concatenate([frames] * 3), 25)  # 240 frames, 9.6 s
    windows, summary = _run_stream(["--model", str(i3d), "--source", str(video), "--realtime", "--top_k", "1",
                                    "--device", "cpu"])
    grid = (240 - 64) // 32 + 1
    assert summary["frames"] == 240 and summary["window_frames"] == 64 and summary["stride_frames"] == 32
    assert summary["windows"] + summary["skipped_windows"] == grid
    assert summary["skipped_windows"] > 0 and not summary["kept_up"]
    assert windows[-1]["end_frame"] == (grid - 1) * 32 + 64
    # no backlog: a result comes at most one classification and one stride after its window completed (plus
    # whatever the reader itself lagged behind the clock on a busy machine). Not the last window: the stream
    # ended while the one before it was classified, so no newer window could supersede it.
    for window in windows[:-1]:
        assert window["latency_ms"] <= window["inference_ms"] + summary["stride_ms"] + summary["reader_lag_ms"] + 1000
    assert windows[0]["predictions"][0]["label"] == "playing cricket"
