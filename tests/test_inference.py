"""The PyAV video-classification pipeline: what transformers.pipeline() builds after `import pipeline`, that
it feeds the model exactly what evaluation feeds it (load_views), its inputs, top_k, multi-view and timeline
modes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from transformers import AutoImageProcessor, AutoModelForVideoClassification

import pipeline  # noqa: F401  (registers our pipeline class with transformers)
from pipeline.inference.decoding import decode_frames, probe_video
from pipeline.inference.video_pipeline import PyAVVideoClassificationPipeline, timeline_windows
from pipeline.inference.clip_spec import ClipSpec
from pipeline.inference.preprocessing import VideoPreprocessing
from pipeline.inference.views import load_views
from pipeline.inference import load_pipeline
from synthetic_videos import write_video
from tiny_videomae import FRAME_SAMPLING_RATE, LABELS, NUM_FRAMES, save_tiny_videomae

ALL = len(LABELS)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_videomae(tmp_path_factory.mktemp("tiny-videomae"))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    return {
        "short": write_video(folder / "short.avi", "xvid_gop12", 40),
        "long": write_video(folder / "long.mp4", "h264", 150),  # 6 s at 25 fps
    }


@pytest.fixture(scope="module")
def classifier(model_dir):
    return transformers.pipeline("video-classification", model=str(model_dir))


@pytest.fixture(scope="module")
def reference(model_dir):
    """Scores by hand: load_views (the evaluation's input), model forward, mean softmax over the views."""
    model = AutoModelForVideoClassification.from_pretrained(model_dir).eval()
    processor = AutoImageProcessor.from_pretrained(model_dir)

    def scores(source, num_clips=1, num_crops=1):
        views = load_views(source, ClipSpec(NUM_FRAMES, FRAME_SAMPLING_RATE, "dense", num_clips=num_clips,
                                            num_crops=num_crops, preprocessing=VideoPreprocessing.from_processor(
                                                processor)))
        with torch.no_grad():
            return model(pixel_values=views).logits.softmax(-1).mean(0).numpy()

    return scores


def as_vector(predictions):
    """[{"label", "score"}, ...] (all labels) -> scores in label order."""
    assert len(predictions) == ALL
    by_label = {p["label"]: p["score"] for p in predictions}
    return np.array([by_label[name] for name in LABELS])


def test_transformers_pipeline_builds_our_class(classifier):
    assert isinstance(classifier, PyAVVideoClassificationPipeline)
    assert classifier.image_processor is not None and classifier.video_processor is None


@pytest.mark.parametrize("num_clips,num_crops", [(1, 1), (3, 2)])
def test_scores_equal_evaluation_input_through_the_model(classifier, reference, videos, num_clips, num_crops):
    result = classifier(str(videos["short"]), top_k=ALL, num_clips=num_clips, num_crops=num_crops)
    expected = reference(str(videos["short"]), num_clips, num_crops)
    np.testing.assert_allclose(as_vector(result), expected, atol=1e-5)
    assert [p["score"] for p in result] == sorted((p["score"] for p in result), reverse=True)
    assert abs(sum(p["score"] for p in result) - 1.0) < 1e-5


def test_views_change_the_scores(classifier, videos):
    """Multi-view really averages other clips: the scores differ from the single centre clip's."""
    one = as_vector(classifier(str(videos["long"]), top_k=ALL))
    many = as_vector(classifier(str(videos["long"]), top_k=ALL, num_clips=4))
    assert np.abs(one - many).max() > 1e-4


def test_path_bytes_array_and_batched_list_agree(classifier, videos):
    path = str(videos["short"])
    frames = decode_frames(path, np.arange(probe_video(path).num_frames))
    from_path = as_vector(classifier(path, top_k=ALL))
    from_bytes = as_vector(classifier(videos["short"].read_bytes(), top_k=ALL))
    from_array = as_vector(classifier(frames, top_k=ALL))
    np.testing.assert_allclose(from_bytes, from_path, atol=1e-6)
    np.testing.assert_allclose(from_array, from_path, atol=1e-6)

    batch = classifier([path, str(videos["long"]), frames], top_k=ALL, batch_size=2, num_clips=2)
    assert len(batch) == 3
    for item, source in zip(batch, [path, str(videos["long"]), frames]):
        alone = classifier(source, top_k=ALL, num_clips=2)
        np.testing.assert_allclose(as_vector(item), as_vector(alone), atol=1e-5)


def test_list_of_videos_decoded_by_workers_equals_one_at_a_time(classifier, videos):
    sources = [str(videos["short"]), videos["long"].read_bytes(), str(videos["long"]), str(videos["short"])]
    batch = classifier(sources, top_k=ALL, num_clips=2, num_crops=3, batch_size=4, num_workers=2)
    for item, source in zip(batch, sources):
        np.testing.assert_allclose(as_vector(item), as_vector(classifier(source, top_k=ALL, num_clips=2,
                                                                         num_crops=3)), atol=1e-5)


def test_top_k(classifier, videos):
    assert len(classifier(str(videos["short"]), top_k=2)) == 2
    assert len(classifier(str(videos["short"]), top_k=100)) == ALL  # capped at the number of labels
    best = classifier(str(videos["short"]), top_k=1)[0]
    assert best == classifier(str(videos["short"]), top_k=ALL)[0]


def test_timeline_covers_the_whole_video(classifier, videos):
    result = classifier(str(videos["long"]), timeline=True, window=1.0, stride=0.5, top_k=ALL)
    windows = result["timeline"]
    assert result["num_frames"] == 150 and result["fps"] == pytest.approx(25.0)
    assert windows[0]["start_frame"] == 0 and windows[-1]["end_frame"] == 150
    for previous, current in zip(windows, windows[1:]):
        assert current["start_frame"] <= previous["end_frame"]  # no gap
        assert current["start_frame"] > previous["start_frame"]
    for window in windows:
        assert window["end_frame"] - window["start_frame"] == 25  # 1 s at 25 fps
        assert window["start"] == pytest.approx(window["start_frame"] / 25)
        assert window["end"] == pytest.approx(window["end_frame"] / 25)
    per_window = np.stack([as_vector(w["predictions"]) for w in windows])
    np.testing.assert_allclose(as_vector(result["predictions"]), per_window.mean(0), atol=1e-6)
    assert np.abs(per_window - per_window[0]).max() > 1e-4  # windows see different frames


def test_timeline_window_spanning_the_video_equals_the_plain_prediction(classifier, videos):
    path = str(videos["long"])
    result = classifier(path, timeline=True, window_frames=10_000, top_k=ALL, num_clips=2)
    assert [(w["start_frame"], w["end_frame"]) for w in result["timeline"]] == [(0, 150)]
    np.testing.assert_allclose(as_vector(result["timeline"][0]["predictions"]),
                               as_vector(classifier(path, top_k=ALL, num_clips=2)), atol=1e-6)


def test_timeline_windows():
    assert timeline_windows(10, 25.0, window_frames=4) == [(0, 4), (4, 8), (6, 10)]
    assert timeline_windows(10, 25.0, window_frames=4, stride_frames=3) == [(0, 4), (3, 7), (6, 10)]
    assert timeline_windows(3, 25.0, window_frames=4) == [(0, 3)]
    assert timeline_windows(100, 10.0, window=2.0, stride=1.0)[:2] == [(0, 20), (10, 30)]
    assert timeline_windows(100, 10.0, clip_span=7)[0] == (0, 7)  # default: one training clip's span
    with pytest.raises(ValueError, match="fps"):
        timeline_windows(100, None, window=2.0)


def test_bad_inputs_name_the_problem(classifier, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.avi"):
        classifier(str(tmp_path / "missing.avi"))
    with pytest.raises(ValueError, match="frames, height, width, 3"):
        classifier(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="fps"):
        classifier(np.zeros((8, 32, 32, 3), np.uint8), timeline=True, window=1.0)


def test_load_pipeline_gives_the_same_class_and_scores(model_dir, classifier, videos):
    direct = load_pipeline(str(model_dir))
    assert type(direct) is PyAVVideoClassificationPipeline
    np.testing.assert_allclose(as_vector(direct(str(videos["short"]), top_k=ALL)),
                               as_vector(classifier(str(videos["short"]), top_k=ALL)), atol=1e-6)


def test_predict_command_json_and_table(model_dir, classifier, videos, tmp_path, capsys):
    from pipeline.predict import main as predict_main

    folder = tmp_path / "inbox"
    (folder / "nested").mkdir(parents=True)
    good = folder / "nested" / "short.avi"
    good.write_bytes(videos["short"].read_bytes())
    (folder / "broken.mp4").write_bytes(b"this is not a video")
    (folder / "notes.txt").write_text("ignored: not a video suffix")

    assert predict_main(["--model", str(model_dir), str(folder), "--json", "--top_k", "2"]) == 1  # one failed
    records = {Path(r["video"]).name: r for r in json.loads(capsys.readouterr().out)}
    assert set(records) == {"short.avi", "broken.mp4"}
    assert "broken.mp4" in records["broken.mp4"]["error"]
    assert records["short.avi"]["predictions"] == classifier(str(good), top_k=2)

    assert predict_main(["--model", str(model_dir), str(good), "--timeline", "--window", "0.4"]) == 0
    table = capsys.readouterr().out.splitlines()
    best = classifier(str(good), top_k=1)[0]["label"]
    assert table[0].split()[:3] == ["video", "top-1", "score"] and best in table[1]
    assert len(table) == 2 + 4  # header and video rows, then 40 frames in 4 windows of 10 frames
