"""Every bad input gets a clear answer, nothing hangs, counts are exact.

pipeline(): URLs with connect/read timeouts, a time limit and a size cap (per call and at construction), bytes
sniffed by content, text files refused, per-input errors in lists, impossible options refused in one line, real
times on variable-frame-rate timelines. predict: per-input errors. train.py / pipeline.evaluation: impossible
recipe values and empty splits stop at the start in one line; videos scored + skipped = videos listed.

Run alone: ``python -m pytest -q tests/test_reliability_inputs.py`` (the slow tests launch train.py).
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import datasets
import numpy as np
import pytest
import torch
from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEImageProcessor

from conftest import REPO, run_train
from pipeline.configs import DataArguments, ModelArguments, RunArguments
from pipeline.inference import load_pipeline
from pipeline.inference.clip_spec import ClipSpec
from pipeline.inference.options import PipelineOptionError
from pipeline.inference.video_source import VideoInputError, sniff_container
from pipeline.training.recipe_checks import check_recipe, report_short_videos
from pipeline.user_errors import RecipeError
from synthetic_videos import write_video
from tiny_videomae import LABELS, save_tiny_videomae


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tiny_videomae(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="module")
def classifier(model_dir):
    return load_pipeline(str(model_dir))


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("videos")
    return {"mp4": write_video(root / "clip.mp4", "h264", 40), "avi": write_video(root / "clip.avi", "xvid_gop12", 40),
            "vfr": write_video(root / "vfr.mkv", "h264_vfr_mkv", 90)}


# --- URLs: nothing hangs ------------------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - BaseHTTPRequestHandler's naming
        server = self.server
        if self.path == "/silent":  # accepts the connection, never answers
            server.release.wait(30)
            return
        if self.path == "/stall":  # headers, some bytes, then nothing
            self.send_response(200)
            self.send_header("Content-Length", str(len(server.video)))
            self.end_headers()
            self.wfile.write(server.video[:100])
            self.wfile.flush()
            server.release.wait(30)
            return
        if self.path == "/trickle":  # a byte now and then, forever
            self.send_response(200)
            self.end_headers()
            for _ in range(300):
                if server.release.wait(0.2):
                    return
                self.wfile.write(b"\0")
                self.wfile.flush()
            return
        if self.path == "/trickle-headers":  # the status line, then a header byte now and then, forever
            try:
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                for _ in range(300):
                    if server.release.wait(0.2):
                        return
                    self.wfile.write(b"a")
                    self.wfile.flush()
            except OSError:  # the client gave up, as it should
                pass
            return
        if self.path == "/huge":
            self.send_response(200)
            self.send_header("Content-Length", str(50 << 30))
            self.end_headers()
            return
        if self.path == "/unannounced":  # no Content-Length, more than the cap
            self.send_response(200)
            self.end_headers()
            for _ in range(64):
                self.wfile.write(b"\0" * 65536)
            return
        if self.path == "/video.mp4":
            self.send_response(200)
            self.send_header("Content-Length", str(len(server.video)))
            self.end_headers()
            self.wfile.write(server.video)
            return
        self.send_error(404, "Not Found")


@pytest.fixture(scope="module")
def web(videos):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.video = videos["mp4"].read_bytes()
    server.release = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.release.set()
    server.shutdown()
    server.server_close()


def timed(call):
    start = time.monotonic()
    try:
        call()
    except VideoInputError as error:
        return str(error), time.monotonic() - start
    raise AssertionError("no error raised")


def test_a_server_that_never_answers_fails_after_the_timeout(classifier, web):
    message, seconds = timed(lambda: classifier(f"{web}/silent", timeout=1))
    assert message == f"{web}/silent: no answer within 1 s (connect timeout; timeout=...)" and seconds < 6


def test_a_server_that_stops_sending_fails_after_the_read_timeout(classifier, web):
    message, seconds = timed(lambda: classifier(f"{web}/stall", timeout=(5, 1)))
    assert message.startswith(f"{web}/stall: the server sent nothing for 1 s after 100 bytes") and seconds < 6


def test_a_trickling_server_is_cut_at_the_time_limit(classifier, web):
    message, seconds = timed(lambda: classifier(f"{web}/trickle", timeout=5, max_download_seconds=1.5))
    assert "download not finished after 1.5 s" in message and seconds < 8


def test_trickled_headers_are_cut_at_the_time_limit(classifier, web):
    """The deadline covers connecting and the response headers too, not only the body."""
    message, seconds = timed(lambda: classifier(f"{web}/trickle-headers", timeout=3, max_download_seconds=2))
    assert message == f"{web}/trickle-headers: download not finished after 2 s (max_download_seconds=...)"
    assert seconds < 6


@pytest.mark.slow
def test_predict_with_trickled_headers_answers_in_time(model_dir, web):
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "pipeline.predict", "--model", str(model_dir),
                             f"{web}/trickle-headers", "--timeout", "3", "--max_download_seconds", "2", "--json"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert time.monotonic() - started < 90
    assert "download not finished after 2 s" in result.stdout + result.stderr, result.stderr[-2000:]


def test_stream_open_of_trickled_headers_is_cut_at_the_time_limit(web, monkeypatch):
    """A network stream's opening (connect + headers) is bounded as a whole; FFmpeg's own socket timeout is per
    read and a trickling server never trips it."""
    from pipeline.inference.decoding import VideoDecodeError
    from pipeline.stream import frame_source

    monkeypatch.setattr(frame_source, "NETWORK_OPEN_TIMEOUT_S", 2.0)
    started = time.monotonic()
    with pytest.raises(VideoDecodeError, match="trickle-headers: not opened within 2 s"):
        frame_source.open_source(f"{web}/trickle-headers")
    assert time.monotonic() - started < 8


def test_size_cap_applies_to_announced_and_unannounced_sizes(classifier, web):
    message, seconds = timed(lambda: classifier(f"{web}/huge"))
    assert "announces 53,687,091,200 bytes, more than max_download_bytes=2,147,483,648" in message and seconds < 5
    message, _ = timed(lambda: classifier(f"{web}/unannounced", max_download_bytes=1_000_000))
    assert message.endswith("more than max_download_bytes=1,000,000 bytes")


def test_http_errors_and_unreachable_hosts_are_named(classifier, web):
    message, _ = timed(lambda: classifier(f"{web}/nothing-here.mp4"))
    assert message == f"{web}/nothing-here.mp4: download failed: HTTP 404 Not Found"
    message, _ = timed(lambda: classifier("http://127.0.0.1:9/v.mp4", timeout=2))
    assert message.startswith("http://127.0.0.1:9/v.mp4: cannot connect (")


def test_limits_set_at_construction_apply_and_a_good_url_matches_the_file(model_dir, web, videos):
    bounded = load_pipeline(str(model_dir), timeout=1)
    message, seconds = timed(lambda: bounded(f"{web}/silent"))
    assert "no answer within 1 s" in message and seconds < 6
    assert bounded(f"{web}/video.mp4", top_k=4) == bounded(str(videos["mp4"]), top_k=4)
    with pytest.raises(PipelineOptionError, match="timeout must be seconds"):
        load_pipeline(str(model_dir), timeout=0)


# --- bytes, paths, lists ----------------------------------------------------------------------------------------

def test_bytes_are_recognised_by_content_and_garbage_is_refused(classifier, videos):
    with pytest.raises(VideoInputError) as caught:
        classifier(b"\x00garbage" * 100)
    assert str(caught.value) == ("<800 bytes>: not a video container this pipeline can read (unrecognised content: "
                                 "starts with 00 67 61 72 62 61 67 65); pass the bytes of a video file (mp4, avi, mkv, "
                                 "webm, mov, ...) or its path")
    with pytest.raises(VideoInputError, match=r"<0 bytes>: empty \(0 bytes\)"):
        classifier(b"")
    for kind, suffix in (("mp4", ".mp4"), ("avi", ".avi"), ("vfr", ".mkv")):
        data = videos[kind].read_bytes()
        assert sniff_container(data[:512]) == suffix
        assert classifier(data, top_k=4) == classifier(str(videos[kind]), top_k=4), kind


def test_a_text_file_is_not_a_video(classifier, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello world\n" * 50)
    with pytest.raises(VideoInputError, match=r"notes\.txt: not a video: FFmpeg reads this file as text \(tty"):
        classifier(str(notes))
    with pytest.raises(VideoInputError, match="not a file"):
        classifier(str(tmp_path))


def same_predictions(a, b) -> bool:
    return [p["label"] for p in a] == [p["label"] for p in b] and np.allclose(
        [p["score"] for p in a], [p["score"] for p in b], atol=1e-6)


def test_lists_keep_the_good_results_and_name_each_bad_input(classifier, videos, tmp_path, monkeypatch):
    assert classifier([]) == []
    good = [str(videos["mp4"]), str(videos["avi"])]
    alone = [classifier(v, top_k=2) for v in good]
    out = classifier([good[0], str(tmp_path / "gone.mp4"), b"\x00garbage" * 100, good[1], 42], top_k=2)
    assert same_predictions(out[0], alone[0]) and same_predictions(out[3], alone[1])
    assert out[1] == {"video": str(tmp_path / "gone.mp4"), "error": "no such video file"}
    assert out[2]["video"] == "<800 bytes>" and out[2]["error"].startswith("not a video container")
    assert out[4]["video"] == "<int>" and "unsupported input type" in out[4]["error"]
    # one input alone, and timelines (which go one video at a time), answer the same way
    assert classifier([str(tmp_path / "gone.mp4")]) == [{"video": str(tmp_path / "gone.mp4"),
                                                         "error": "no such video file"}]
    timelines = classifier([good[0], str(tmp_path / "gone.mp4")], timeline=True, window_frames=20, top_k=1)
    assert len(timelines[0]["timeline"]) == 2 and timelines[1]["error"] == "no such video file"

    # a video that passes the checks but fails while its frames are decoded
    import pipeline.inference.video_scoring as video_scoring
    from pipeline.inference.decoding import VideoDecodeError

    real = video_scoring.clip_frames

    def failing(source, clips, info):
        if str(source).endswith(".avi"):
            raise VideoDecodeError(source, "decoding stopped at frame 12 (simulated damage)")
        return real(source, clips, info)

    monkeypatch.setattr(video_scoring, "clip_frames", failing)
    out = classifier(good, top_k=2, num_workers=0)
    assert same_predictions(out[0], alone[0])
    assert out[1] == {"video": good[1], "error": "decoding stopped at frame 12 (simulated damage)"}


@pytest.mark.parametrize("options, message", [
    ({"top_k": -1}, "top_k must be a positive integer, got -1"),
    ({"top_k": 0}, "top_k must be a positive integer, got 0"),
    ({"num_crops": 0}, "num_crops must be a positive integer, got 0"),
    ({"num_clips": 2.5}, "num_clips must be a positive integer, got 2.5"),
    ({"timeline": True, "window": 0}, "window must be a positive number (seconds), got 0"),
    ({"timeline": True, "window": 1.0, "stride": -1}, "stride must be a positive number (seconds), got -1"),
    ({"timeline": True, "window_frames": 0}, "window_frames must be a positive integer, got 0"),
    ({"frame_sampling_strategy": "middle"}, "frame_sampling_strategy must be dense | uniform | random, got 'middle'"),
    ({"max_download_bytes": -5}, "max_download_bytes must be a positive integer, got -5"),
])
def test_impossible_options_are_refused_in_one_line(classifier, model_dir, videos, options, message):
    with pytest.raises(PipelineOptionError) as caught:
        classifier(str(videos["mp4"]), **options)
    assert str(caught.value) == f"video-classification pipeline: {message}"
    with pytest.raises(PipelineOptionError, match=re.escape(message)):  # at construction too
        load_pipeline(str(model_dir), **options)
    with pytest.raises(PipelineOptionError):  # and for a list, before any input is read
        classifier([str(videos["mp4"])], **options)


def test_variable_frame_rate_timeline_reports_real_times(classifier, videos):
    with av.open(str(videos["vfr"])) as container:
        real = [float(frame.time) for frame in container.decode(video=0)]
    result = classifier(str(videos["vfr"]), timeline=True, window=1.0, top_k=1)
    windows = result["timeline"]
    assert windows[0]["start"] == 0.0 and windows[-1]["end_frame"] == len(real)
    for window in windows:
        assert window["start"] == round(real[window["start_frame"]], 3)
        if window["end_frame"] < len(real):
            assert window["end"] == round(real[window["end_frame"]], 3)
            assert window["end"] - window["start"] == pytest.approx(1.0, abs=0.09)  # 1 s of real time
    # what frame / fps (25, the container's claim) would have reported: wrong by far more than a frame
    assert max(abs(w["start_frame"] / 25 - w["start"]) for w in windows) > 0.3
    assert result["fps"] == pytest.approx(len(real) / (real[-1] + (real[-1] - real[-2])), rel=0.05)


def test_constant_rate_timeline_is_unchanged(classifier, videos):
    windows = classifier(str(videos["mp4"]), timeline=True, window_frames=10, top_k=1)["timeline"]
    assert [(w["start"], w["end"]) for w in windows] == [(0.0, 0.4), (0.4, 0.8), (0.8, 1.2), (1.2, 1.6)]


# --- predict ------------------------------------------------------------------------------------------------------

def test_predict_reports_missing_paths_and_empty_folders_and_goes_on(model_dir, videos, tmp_path, capsys):
    from pipeline.predict import main as predict_main

    empty = tmp_path / "empty"
    empty.mkdir()
    code = predict_main(["--model", str(model_dir), str(tmp_path / "gone.mp4"), str(empty), str(videos["mp4"]),
                         "--json", "--top_k", "2"])
    records = {r["video"]: r for r in json.loads(capsys.readouterr().out)}
    assert code == 1
    assert records[str(tmp_path / "gone.mp4")]["error"] == "no such video file or folder"
    assert records[str(empty)]["error"].startswith("no video files (")
    assert len(records[str(videos["mp4"])]["predictions"]) == 2
    with pytest.raises(SystemExit) as exit_info:
        predict_main(["--model", str(model_dir), str(videos["mp4"]), "--top_k", "-1"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "python -m pipeline.predict: error: video-classification pipeline: top_k must be a positive integer, got -1")


# --- recipes: impossible values stop at the start -------------------------------------------------------------

def recipe(num_frames=8, **data):
    model = ModelArguments(model_type="videomae", image_size=64,
                           config_overrides={"hidden_size": 96, "num_hidden_layers": 1, "num_attention_heads": 4,
                                             "intermediate_size": 192, "patch_size": 16, "tubelet_size": 2})
    return model, DataArguments(num_frames=num_frames, **data), RunArguments()


@pytest.mark.parametrize("num_frames, data, message", [
    (0, {}, "num_frames: 0 is not possible; it must be a positive integer"),
    (-3, {}, "num_frames: -3 is not possible; it must be a positive integer"),
    (1, {}, "num_frames: 1 is not possible; videomae groups frames in tubelets of 2 (tubelet_size), so a clip "
            "needs at least 2 frames"),
    (7, {}, "num_frames: 7 is not a multiple of tubelet_size 2 (videomae): the last 1 frame(s) of every clip "
            "would be ignored; use 6 or 8"),
    (8, {"frame_sampling_rate": 0}, "frame_sampling_rate: 0 is not possible; it must be a positive integer"),
    (8, {"frame_sampling_strategy": "middle"}, "frame_sampling_strategy: 'middle' is not one of dense | uniform | random"),
    (8, {"crop_scale": [0.8, 0.2]}, "crop_scale: [0.8, 0.2] is not possible"),
    (8, {"validation_fraction": 1.0}, "validation_fraction: 1.0 is not possible"),
    (8, {"on_missing_video": "ignore"}, "on_missing_video: 'ignore' is not one of error | skip"),
])
def test_impossible_recipe_values_are_named(num_frames, data, message):
    with pytest.raises(RecipeError) as caught:
        check_recipe(*recipe(num_frames, **data))
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_short_videos_are_reported_once_with_the_count(caplog):
    infos = [{"num_frames": n} for n in (32, 32, 100, 200)]
    splits = {"train": datasets.Dataset.from_dict({"video": ["a", "b", "c", "d"], "video_info": infos}),
              "test": datasets.Dataset.from_dict({"video": ["e"], "video_info": [{"num_frames": 32}]})}
    with caplog.at_level(logging.WARNING, logger="pipeline.train"):
        assert report_short_videos(splits, ClipSpec(50, 4, "dense", "clamp")) == 4
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["4 of 5 videos (80%) are shorter than the 197 frames a clip spans (num_frames 50 x "
                     "frame_sampling_rate 4): in their clips the last frame repeats (short_video: clamp)"]


# --- train.py and pipeline.evaluation end to end ----------------------------------------------------------------

@pytest.fixture(scope="module")
def small_demo(tmp_path_factory) -> Path:
    from pipeline.data.demo import ensure_demo_dataset

    return ensure_demo_dataset(tmp_path_factory.mktemp("inputs_data") / "demo", clips_per_class=6,
                               groups_per_class=3, num_frames=16)


def train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["recipes/demo.yaml", "--dataset", "ucf101", "--dataset_dir", str(data), "--output_dir", str(out),
            "--max_steps", "2", "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end",
            "false", "--per_device_train_batch_size", "4", "--dataloader_num_workers", "0",
            "--dataloader_persistent_workers", "false", "--report_to", "none", "--disable_tqdm", "true", *extra]


@pytest.mark.slow
def test_train_stops_at_the_start_on_an_impossible_num_frames(small_demo, tmp_path):
    start = time.monotonic()
    result = run_train(train_args(small_demo, tmp_path / "out", "--num_frames", "0"), check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "train.py: error: num_frames: 0 is not possible; it must be a positive integer")
    assert "Traceback" not in result.stderr and "Probing" not in result.stdout + result.stderr
    assert time.monotonic() - start < 120


@pytest.mark.slow
def test_a_videofolder_too_small_for_validation_stops_with_the_fix(tmp_path):
    folder = tmp_path / "clips"
    for label in ("jump", "run"):
        (folder / label).mkdir(parents=True)
        write_video(folder / label / f"{label}_1.mp4", "h264", 24)
        write_video(folder / label / f"{label}_2.mp4", "h264", 24)
    result = run_train(train_args(folder, tmp_path / "out", "--dataset", "videofolder", "--eval_strategy", "steps",
                                  "--eval_steps", "1", "--test_fraction", "0.4", "--validation_fraction", "0.2"),
                       check=False, env={"VIDEO_PIPELINE_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: the validation split is empty: with validation_fraction 0.2, no class")
    assert "set validation_fraction: 0 to train without validation" in last and "KeyError" not in result.stderr


def poison_probe(cache: Path, video: Path) -> None:
    """The cache says the video has 500 frames: probing passes, decoding in the loader worker fails."""
    from pipeline.data.metadata import _cache_key, probe_videos

    probe_videos([str(video)], cache_dir=cache)
    db = sqlite3.connect(cache / "video_info.sqlite")
    key = _cache_key(str(video))
    info = json.loads(db.execute("SELECT value FROM probes WHERE key = ?", (key,)).fetchone()[0])
    info["num_frames"] = 500
    with db:
        db.execute("UPDATE probes SET value = ? WHERE key = ?", (json.dumps(info), key))
    db.close()


@pytest.mark.slow
def test_counts_are_exact_when_a_video_fails_in_a_loader_worker(small_demo, tmp_path):
    """The last test video decodes badly after probing, alone in the last evaluation batch: it is neither scored
    nor repeated, and it is named."""
    test_list = (small_demo / "ucfTrainTestlist" / "testlist01.txt").read_text().split()
    victim = small_demo / "UCF-101" / test_list[-1]
    cache = tmp_path / "cache"
    poison_probe(cache, victim)
    out = tmp_path / "out"
    run_train(train_args(small_demo, out, "--per_device_eval_batch_size", str(len(test_list) - 1)),
              env={"VIDEO_PIPELINE_CACHE": str(cache)})
    results = json.loads((out / "all_results.json").read_text())
    assert results["test_samples"] == len(test_list) - 1 and results["test_skipped_videos"] == 1
    skipped = json.loads((out / "skipped_videos.json").read_text())
    assert [(e["split"], e["video"]) for e in skipped] == [("test", str(victim))]
    assert "frame" in skipped[0]["reason"]


@pytest.mark.slow
def test_evaluation_can_skip_listed_but_missing_videos_and_counts_them(small_demo, tmp_path):
    import shutil

    from pipeline.data.demo import CLASS_NAMES

    data = tmp_path / "data"
    shutil.copytree(small_demo, data)
    test_list = (data / "ucfTrainTestlist" / "testlist01.txt").read_text().split()
    (data / "UCF-101" / test_list[3]).unlink()
    model = tmp_path / "model"
    config = VideoMAEConfig(image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=32,
                            num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                            id2label=dict(enumerate(CLASS_NAMES)), label2id={n: i for i, n in enumerate(CLASS_NAMES)})
    config.frame_sampling_rate = 2
    VideoMAEForVideoClassification(config).save_pretrained(model)
    VideoMAEImageProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32}).save_pretrained(model)
    command = [sys.executable, "-m", "pipeline.evaluation", "--model", str(model), "--dataset", "ucf101",
               "--dataset_dir", str(data), "--output_dir", str(tmp_path / "eval"), "--num_workers", "0",
               "--no_attention_maps"]
    refused = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and "--on_missing_video skip" in refused.stderr
    done = subprocess.run(command + ["--on_missing_video", "skip"], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env={**__import__("os").environ, "VIDEO_PIPELINE_CACHE": str(tmp_path / "c")})
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["listed_videos"] == len(test_list)
    assert metrics["num_videos"] == len(test_list) - 1 and metrics["skipped_videos"] == 1
    assert metrics["skipped"][0]["video"].endswith(test_list[3])
