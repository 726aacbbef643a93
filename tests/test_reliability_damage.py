"""Damage is said wherever a prediction is made: pipeline() outputs (one video, a list, a timeline), predict
rows and table, evaluation's predictions.csv, the web app's status and the stream's summary, each with a WARNING
log line; an intact video gets no such field. The app shows a variable-rate video's measured average rate."""

from __future__ import annotations

import csv
import json
import logging

import numpy as np
import pytest

from pipeline.evaluation.outputs import write_predictions_csv
from pipeline.inference import load_pipeline
from pipeline.inference.decoding import probe_video
from synthetic_videos import write_video
from tiny_videomae import save_tiny_videomae


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_videomae(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def classifier(model_dir):
    return load_pipeline(str(model_dir), device="cpu")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("damage")
    good = write_video(root / "good.avi", "xvid_gop12", 60)
    damaged = root / "damaged.avi"
    damaged.write_bytes(good.read_bytes()[: int(good.stat().st_size * 0.6)])
    info = probe_video(damaged)
    assert info.damage.startswith("truncated: the header declares 60 frames"), info.damage
    return {"good": good, "damaged": damaged, "damage": info.damage}


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "damaged video" in r.getMessage()]


def test_pipeline_outputs_say_damage_and_log_a_warning(classifier, videos, caplog):
    caplog.set_level(logging.WARNING)
    predictions = classifier(str(videos["damaged"]), top_k=2)
    assert len(predictions) == 2 and all(p["damage"] == videos["damage"] for p in predictions)
    assert _warnings(caplog) == [f"{videos['damaged']}: damaged video ({videos['damage']}); classified from the "
                                 "frames that decode"]
    caplog.clear()
    assert all("damage" not in p for p in classifier(str(videos["good"]), top_k=2))
    assert _warnings(caplog) == []
    timeline = classifier(str(videos["damaged"]), timeline=True, window_frames=7, top_k=2)
    assert timeline["damage"] == videos["damage"] and "damage" not in classifier(
        str(videos["good"]), timeline=True, window_frames=7, top_k=2)
    # a list goes through the evaluation's machinery (parallel decoding): the same field, in the right place
    good, damaged = classifier([str(videos["good"]), str(videos["damaged"])], top_k=2)
    assert all("damage" not in p for p in good) and all(p["damage"] == videos["damage"] for p in damaged)


def test_predict_rows_and_table_say_damage(model_dir, videos, capsys):
    from pipeline.predict import main as predict_main

    assert predict_main(["--model", str(model_dir), str(videos["good"]), str(videos["damaged"]), "--json",
                         "--device", "cpu"]) == 0
    records = {r["video"]: r for r in json.loads(capsys.readouterr().out)}
    assert records[str(videos["damaged"])]["damage"] == videos["damage"]
    assert "damage" not in records[str(videos["good"])]
    assert all("damage" not in p for r in records.values() for p in r["predictions"])
    predict_main(["--model", str(model_dir), str(videos["damaged"]), "--device", "cpu"])
    assert f"WARNING: damaged video ({videos['damage']})" in capsys.readouterr().out


def test_predictions_csv_has_a_damage_column(tmp_path, videos):
    infos = [probe_video(videos["good"]).to_dict(), probe_video(videos["damaged"]).to_dict(), None]
    path = write_predictions_csv(tmp_path / "predictions.csv", ["good.avi", "damaged.avi", "array"],
                                 np.array([0, 1, 0]), np.array([[0.7, 0.3], [0.4, 0.6], [0.5, 0.5]]), ["a", "b"],
                                 infos=infos)
    rows = list(csv.DictReader(open(path, newline="")))
    assert [r["damage"] for r in rows] == ["", videos["damage"], ""]
    assert rows[1]["prediction"] == "b" and rows[1]["correct"] == "1"


def test_app_status_says_damage_and_the_measured_rate(model_dir, videos, tmp_path, caplog):
    from pipeline.app import VideoClassifierApp, measured_rate

    app = VideoClassifierApp(str(model_dir), device="cpu")
    caplog.set_level(logging.WARNING)
    _, _, _, status = app.classify(str(videos["damaged"]))
    assert status.startswith(f"**Warning: damaged video** ({videos['damage']})") and _warnings(caplog)
    _, _, _, status = app.classify(str(videos["good"]))
    assert "damaged" not in status and "25 fps" in status
    # a variable-frame-rate file: the average of its real timestamps, not the rate its header declares
    vfr = write_video(tmp_path / "vfr.mkv", "h264_vfr_mkv", 90)
    info = probe_video(vfr)
    from pipeline.inference.frame_times import frame_times

    times = frame_times(vfr, info.num_frames, info.fps)
    assert times is not None
    average = info.num_frames / float(times[-1])
    assert abs(average - info.fps) > 1  # the file is truly variable-rate
    text = measured_rate(str(vfr), info)
    assert text.startswith(f"{average:.3g} fps on average") and f"declares {info.fps:.3g}" in text


def test_stream_summary_says_damage(model_dir, videos, capsys, caplog):
    from pipeline.stream.__main__ import main as stream_main

    caplog.set_level(logging.WARNING)
    assert stream_main(["--model", str(model_dir), "--source", str(videos["damaged"]), "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert summary["damage"].startswith("truncated: the header declares 60 frames")
    assert any("damaged video" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert stream_main(["--model", str(model_dir), "--source", str(videos["good"]), "--device", "cpu"]) == 0
    assert "damage" not in json.loads(capsys.readouterr().err.strip().splitlines()[-1])
