"""The showcase long video (pipeline.data.demo_video): every segment one continuous motion, longer than two clip
spans, and the trained demo model's timeline on it recovers every segment's label in order."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from pipeline.data.demo import CLASS_MOTIONS, DemoParams
from pipeline.data.demo_video import DEFAULT_SEQUENCE, SEGMENT_FRAMES, segment_spec, write_demo_video

# The demo model's clip (recipes/demo.yaml): 8 frames every 4.
DEMO_CLIP_SPAN = (8 - 1) * 4 + 1


@pytest.mark.parametrize("class_name", sorted(CLASS_MOTIONS))
def test_a_segment_is_one_continuous_motion(class_name):
    params = DemoParams()
    spec = segment_spec(class_name, 0, params, 1, SEGMENT_FRAMES)
    kind, sign = CLASS_MOTIONS[class_name]
    assert SEGMENT_FRAMES >= 2 * DEMO_CLIP_SPAN
    assert len(spec.centre) == len(spec.radius) == len(spec.angle) == SEGMENT_FRAMES
    # no cut, no jump: the object's position, size and angle change by the same step every frame, in the
    # class's direction
    for track in (spec.centre[:, 0], spec.centre[:, 1], spec.radius, spec.angle):
        steps = np.diff(track)
        np.testing.assert_allclose(steps, steps[0], atol=1e-9)
    if kind in ("horizontal", "vertical"):
        along = spec.centre[:, 0 if kind == "horizontal" else 1]
        assert sign * (along[-1] - along[0]) > 0.8 * params.size  # it crosses the frame
    elif kind == "scale":
        assert sign * (spec.radius[-1] - spec.radius[0]) > 0 and spec.radius.max() / spec.radius.min() > 5
    else:
        # the angular speed of the dataset's clip of the same draw: a turn of 180-270 degrees per 32 frames
        per_clip = np.degrees(sign * (spec.angle[1] - spec.angle[0]) * (params.num_frames - 1))
        assert 180 <= per_clip <= 270


def test_segments_are_written_and_recorded(tmp_path):
    video = tmp_path / "showcase.avi"
    segments = write_demo_video(video, ["MoveLeft", "Grow"], segment_frames=40)
    assert [(s.label, s.start_frame, s.end_frame) for s in segments] == [("MoveLeft", 0, 40), ("Grow", 40, 80)]
    recorded = json.loads(video.with_suffix(".json").read_text())
    assert recorded["segments"][1] == {"label": "Grow", "start_frame": 40, "end_frame": 80}
    with pytest.raises(ValueError, match="at least 32 frames, got 20"):
        write_demo_video(tmp_path / "short.avi", ["Grow"], segment_frames=20)


def _segment_majorities(timeline: list[dict], segments) -> list[tuple[str, str | None, int, int]]:
    """Per segment: (label, majority top-1 of the windows lying fully inside it, their count, how many are right).
    Windows across the cut between two segments see two motions, so they do not count."""
    rows = []
    for segment in segments:
        inside = [w["predictions"][0]["label"] for w in timeline
                  if segment.start_frame <= w["start_frame"] and w["end_frame"] <= segment.end_frame]
        counts = Counter(inside).most_common()
        # a strict majority, else None (a tie is not a recovered label)
        majority = counts[0][0] if counts and counts[0][1] * 2 > len(inside) else None
        rows.append((segment.label, majority, len(inside), inside.count(segment.label)))
    return rows


@pytest.mark.slow
def test_timeline_recovers_every_segment_in_order(trained_demo, tmp_path):
    """The showcase video as the app and predict make it: pipeline(timeline=True) with its default windows (one
    clip span, no overlap: what predict --timeline shows) and with the app's (half-span stride) names each
    segment's motion, in the order of the video, and shows all 8 motions."""
    from pipeline.inference import load_pipeline

    video = tmp_path / "showcase.avi"
    segments = write_demo_video(video, DEFAULT_SEQUENCE)
    assert [s.label for s in segments] == list(DEFAULT_SEQUENCE)
    classifier = load_pipeline(str(trained_demo), device="cpu")
    for options in ({}, {"window_frames": DEMO_CLIP_SPAN, "stride_frames": DEMO_CLIP_SPAN // 2}):
        output = classifier(str(video), timeline=True, top_k=1, **options)
        timeline = output["timeline"]
        assert timeline[0]["end_frame"] - timeline[0]["start_frame"] == DEMO_CLIP_SPAN
        rows = _segment_majorities(timeline, segments)
        # every segment holds whole windows, and most of them name its motion
        assert all(count >= 1 for _, _, count, _ in rows), (options, rows)
        assert [majority for _, majority, _, _ in rows] == list(DEFAULT_SEQUENCE), (options, rows)
        # over the whole timeline, with the windows across cuts included: every motion shows, in order
        top1 = [w["predictions"][0]["label"] for w in timeline]
        runs = [label for i, label in enumerate(top1) if i == 0 or top1[i - 1] != label]
        assert _in_order(list(DEFAULT_SEQUENCE), runs), (options, runs)


def _in_order(labels: list[str], runs: list[str]) -> bool:
    """Whether ``labels`` occur in ``runs`` one after another (other labels may come between them)."""
    remaining = iter(runs)
    return all(label in remaining for label in labels)
