"""The stream's windows over a file are pipeline(timeline=True)'s: the last partial stride gets a window ending
at the last frame, and a file shorter than one window gets one window (the short-video rule), over several
lengths; the scores are the timeline's too."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from pipeline.data.demo_video import write_demo_video
from pipeline.inference import load_pipeline
from pipeline.inference.video_pipeline import timeline_windows
from pipeline.stream import FrameRing, StreamStats, WindowPlan, classify_windows
from pipeline.stream.__main__ import main as stream_main
from synthetic_videos import write_video
from tiny_videomae import save_tiny_videomae


class _Recorder:
    def __init__(self):
        self.windows = []

    def __call__(self, frames, top_k=5):
        self.windows.append((int(frames[0, 0, 0, 0]), int(frames[0, 0, 0, 0]) + len(frames)))
        return [{"label": "x", "score": 1.0}]


def _stream_windows(total: int, plan: WindowPlan) -> list[tuple[int, int]]:
    ring = FrameRing(plan.ring_capacity(25.0))

    def feed():  # an offline reader: it waits rather than overwrite a frame the classifier still needs
        for i in range(total):
            ring.push(np.full((2, 2, 3), i, dtype=np.uint8), block=True)
        ring.close()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    recorder, stats = _Recorder(), StreamStats()
    records = list(classify_windows(recorder, ring, plan, fps=25.0, live=False, stats=stats))
    feeder.join(10)
    assert not feeder.is_alive() and stats.frames == total
    assert recorder.windows == [(r["start_frame"], r["end_frame"]) for r in records]  # each window is its frames
    assert [r["window"] for r in records] == list(range(len(records)))
    return recorder.windows


@pytest.mark.parametrize("window, stride", [(29, 14), (7, 3), (8, 8), (5, 1)])
def test_windows_equal_the_timeline_for_every_length(window, stride):
    for total in [1, 2, 3, window - 1, window, window + 1, window + stride - 1, window + stride, 32, 64, 65, 100]:
        if total < 1:
            continue
        expected = timeline_windows(total, 25.0, window_frames=window, stride_frames=stride)
        assert _stream_windows(total, WindowPlan(window, stride)) == expected, (total, window, stride)


def test_the_example_of_the_report():
    """32 frames, window 29, stride 14: (0, 29) and (3, 32), as the timeline; 3 frames: one window."""
    assert _stream_windows(32, WindowPlan(29, 14)) == [(0, 29), (3, 32)]
    assert _stream_windows(3, WindowPlan(29, 14)) == [(0, 3)]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_tiny_videomae(tmp_path_factory.mktemp("tiny"))


@pytest.mark.parametrize("frames", [3, 32, 40])
def test_stream_command_over_files_equals_pipeline_timeline(model, tmp_path, capsys, frames):
    """The command over real files (shorter than a window, a partial last stride): same windows, same scores."""
    video = write_video(tmp_path / f"clip{frames}.mp4", "h264", frames)
    assert stream_main(["--model", str(model), "--source", str(video), "--top_k", "2", "--device", "cpu",
                        "--window_frames", "29", "--stride_frames", "14"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    timeline = load_pipeline(str(model), device="cpu")(str(video), timeline=True, window_frames=29,
                                                        stride_frames=14, top_k=2)["timeline"]
    assert [(w["start_frame"], w["end_frame"]) for w in lines] == \
        [(t["start_frame"], t["end_frame"]) for t in timeline]
    for window, expected in zip(lines, timeline):
        assert [p["label"] for p in window["predictions"]] == [p["label"] for p in expected["predictions"]]
        np.testing.assert_allclose([p["score"] for p in window["predictions"]],
                                   [p["score"] for p in expected["predictions"]], atol=1e-4)
