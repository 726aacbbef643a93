"""The showcase long video (python -m pipeline.data.demo_video): segments long enough for a timeline to show
every motion, and the trained demo model's timeline recovering them in order."""

from __future__ import annotations

import json
from collections import Counter
from itertools import groupby

import pytest

from pipeline.data.demo_video import DEFAULT_SEQUENCE, main as demo_video_main

DEMO_CLIP_SPAN = (8 - 1) * 4 + 1  # recipes/demo.yaml: 8 frames at rate 4


@pytest.fixture(scope="module")
def showcase(tmp_path_factory):
    video = tmp_path_factory.mktemp("showcase") / "demo_video.avi"
    demo_video_main(["--output", str(video)])  # as README says
    return video, json.loads(video.with_suffix(".json").read_text())["segments"]


def test_each_segment_spans_at_least_two_demo_clips(showcase):
    from pipeline.inference.decoding import probe_video

    video, segments = showcase
    assert [s["label"] for s in segments] == list(DEFAULT_SEQUENCE)
    assert segments[0]["start_frame"] == 0
    for before, after in zip(segments, segments[1:]):
        assert before["end_frame"] == after["start_frame"]
    assert all(s["end_frame"] - s["start_frame"] >= 2 * DEMO_CLIP_SPAN for s in segments), segments
    assert probe_video(video).num_frames == segments[-1]["end_frame"]


@pytest.mark.slow
def test_timeline_recovers_every_segment_in_order(trained_demo, showcase):
    from pipeline.inference import load_pipeline

    video, segments = showcase
    result = load_pipeline(str(trained_demo), device="cpu")(str(video), timeline=True)
    windows = result["timeline"]
    assert windows[-1]["end_frame"] == segments[-1]["end_frame"]
    inside = []  # (segment index, top-1 label) of every window that lies inside one segment
    for window in windows:
        for index, segment in enumerate(segments):
            if segment["start_frame"] <= window["start_frame"] and window["end_frame"] <= segment["end_frame"]:
                inside.append((index, window["predictions"][0]["label"]))
    per_segment = {i: Counter(label for j, label in inside if j == i) for i in range(len(segments))}
    majority = [per_segment[i].most_common(1)[0][0] if per_segment[i] else None for i in range(len(segments))]
    assert majority == [s["label"] for s in segments], per_segment
    # read as a viewer reads the timeline: the runs of top-1 labels, in order, are the segments
    runs = [label for label, _ in groupby(label for _, label in inside)]
    assert runs == [s["label"] for s in segments], runs
