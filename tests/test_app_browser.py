"""The web app (python -m pipeline.app): its classify action on a tiny model, and the real page driven in headless
Debian Chromium (selenium with /usr/bin/chromedriver, nothing downloaded): upload a demo video, read the top-1
label from the page, upload a broken file and read the error. Screenshots go to test-artifacts/ (or
$TEST_ARTIFACTS_DIR)."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from deployment_models import CRICKET_CLIP, REPO, asset

sys.path.insert(0, str(Path(__file__).parent))
from tiny_videomae import LABELS, save_tiny_videomae  # noqa: E402

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", REPO / "test-artifacts"))
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PREVIEW_SOURCE = "var v = document.querySelector('#preview video'); return v ? v.src : '';"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1900")


@pytest.fixture(scope="module")
def tiny_app(tmp_path_factory):
    from pipeline.app import VideoClassifierApp

    folder = save_tiny_videomae(tmp_path_factory.mktemp("tiny_app_model"))
    return VideoClassifierApp(str(folder), device="cpu", workdir=tmp_path_factory.mktemp("app_work"))


def test_classify_short_video_matches_the_pipeline(tiny_app, tmp_path):
    from pipeline.data.demo import DemoParams
    from pipeline.data.demo_video import write_demo_clips
    from pipeline.inference import load_pipeline

    video = write_demo_clips(tmp_path, ["Grow"], params=DemoParams(num_frames=16))[0]  # < 3 clip spans of 7
    scores, timeline, overlay, status = tiny_app.classify(str(video))
    expected = load_pipeline(tiny_app.model_name, device="cpu")(str(video), top_k=5)
    assert list(scores) == [p["label"] for p in expected] and set(scores) == set(LABELS)
    assert list(scores.values()) == pytest.approx([p["score"] for p in expected], abs=1e-6)
    assert timeline is None
    assert overlay and Path(overlay).stat().st_size > 1000
    assert status.startswith(f"**{expected[0]['label']}**") and "16 frames" in status and "centre clip" in status


def test_long_video_gets_a_timeline(tiny_app, tmp_path):
    from pipeline.data.demo_video import write_demo_video

    video = tmp_path / "long.avi"
    frames = write_demo_video(video, ["MoveLeft", "Grow", "MoveUp"])[-1].end_frame  # clip span 7
    scores, timeline, overlay, status = tiny_app.classify(str(video))
    assert timeline is not None and timeline.axes[0].get_xlabel() == "time (s)"
    windows = (frames - 7) // 3 + 1 + ((frames - 7) % 3 > 0)  # stride 3; a last window ends on the last frame
    assert f"averaged over {windows} windows" in status
    assert abs(sum(scores.values()) - 1.0) < 1e-4


def test_bad_file_gets_a_clear_message(tiny_app, tmp_path):
    broken = tmp_path / "holiday.mp4"
    # Seeded, not os.urandom: about 1 random file in 300 parses as a lyrics (.lrc) container with no video stream.
    broken.write_bytes(random.Random(0).randbytes(4000))
    with pytest.raises(ValueError, match=r"^holiday\.mp4 is not a readable video: ") as failure:
        tiny_app.classify(str(broken))
    assert "\n" not in str(failure.value) and str(tmp_path) not in str(failure.value)
    assert "Errno" not in str(failure.value) and "Invalid data" in str(failure.value)
    lyrics = tmp_path / "song.mp4"  # a container FFmpeg opens, holding no video
    lyrics.write_text("[00:01.00]la la la\n[00:02.00]la la\n")
    with pytest.raises(ValueError, match=r"^song\.mp4 is not a readable video: no video stream$"):
        tiny_app.classify(str(lyrics))
    with pytest.raises(ValueError, match="No video"):
        tiny_app.classify(None)


def test_a_file_that_is_not_a_video_is_refused_with_the_reason(tiny_app, tmp_path):
    from pipeline.inference.decoding import VIDEO_EXTENSIONS

    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")
    message = tiny_app.refusal(str(notes))
    assert message.startswith("notes.txt was refused: .txt is not a video file type (accepted: ")
    assert all(ext in message for ext in VIDEO_EXTENSIONS) and "\n" not in message
    assert tiny_app.refusal(str(tmp_path / "clip.AVI")) is None and tiny_app.refusal(None) is None


def test_avi_upload_gets_a_browser_preview(tiny_app, tmp_path):
    from pipeline.inference.decoding import probe_video

    preview = tiny_app.preview(str(asset(CRICKET_CLIP)))
    info = probe_video(preview)
    assert preview.endswith(".mp4") and info.codec == "h264" and info.num_frames == 80
    assert (info.width, info.height) == (320, 240)
    mp4 = tmp_path / "already.mp4"
    mp4.write_bytes(Path(preview).read_bytes())
    assert tiny_app.preview(str(mp4)) == str(mp4)  # browsers play it as it is
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"garbage")
    assert tiny_app.preview(str(broken)) is None


# ---- the page in a real browser -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_http(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the app exited with {process.returncode}:\n{process.stdout.read()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"the app did not answer on {url} within {timeout:.0f} s")


def _browser(user_data_dir: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}"):
        options.add_argument(flag)
    # an explicit driver: selenium does not look for (or download) one
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


@pytest.mark.slow
def test_app_in_headless_chromium(trained_demo, demo_dataset, tmp_path):
    """Start the app on 127.0.0.1, upload a demo test video in Chromium, read the top-1 label from the page."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        message = "needs Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    from pipeline.inference import load_pipeline

    video = demo_dataset / "UCF-101" / "MoveLeft" / "v_MoveLeft_g01_c02.avi"
    expected = load_pipeline(str(trained_demo), device="cpu")(str(video))[0]["label"]
    assert expected == "MoveLeft"
    broken = tmp_path / "not_a_video.avi"
    broken.write_bytes(random.Random(1).randbytes(5000))  # seeded: a random file can parse as a container
    examples = tmp_path / "examples"
    examples.mkdir()
    shutil.copy(video, examples)

    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    env = dict(os.environ, PYTHONUNBUFFERED="1", GRADIO_ANALYTICS_ENABLED="False", no_proxy="127.0.0.1,localhost")
    app = subprocess.Popen([sys.executable, "-m", "pipeline.app", "--model", str(trained_demo), "--port", str(port),
                            "--device", "cpu", "--examples", str(examples)], cwd=REPO, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser = None
    try:
        _wait_for_http(url, app, timeout=240)
        browser = _browser(Path(tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)))
        browser.get(url)
        wait = WebDriverWait(browser, 120)
        upload = wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#upload input[type=file]")))
        upload.send_keys(str(video))
        # the page plays an H.264 copy of the AVI (browsers cannot play it); the file itself is classified
        wait.until(lambda b: "preview-" in (b.execute_script(PREVIEW_SOURCE) or ""))
        browser.find_element(By.CSS_SELECTOR, "#classify").click()
        top1 = wait.until(ready.visibility_of_element_located(
            (By.CSS_SELECTOR, "#top5 [data-testid=label-output-value]")))
        wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#overlay img")))
        time.sleep(1.0)  # let the overlay image paint before the screenshot
        browser.save_screenshot(str(ARTIFACTS / "app_top1.png"))
        assert top1.text.strip() == expected
        status = browser.find_element(By.CSS_SELECTOR, "#status").text
        assert "v_MoveLeft_g01_c02.avi" in status and "32 frames" in status
        bars = browser.find_elements(By.CSS_SELECTOR, "#top5 .confidence-set")
        assert len(bars) == 5
        assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid=toast-body]")  # no error of any kind

        # a file that is not a video: the page says so, naming it, and the previous answer is gone
        browser.find_element(By.CSS_SELECTOR, "#upload button[aria-label='Clear']").click()
        upload = wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#upload input[type=file]")))
        upload.send_keys(str(broken))
        wait.until(lambda b: "not_a_video" in b.find_element(By.CSS_SELECTOR, "#upload").text)  # name, then suffix
        browser.find_element(By.CSS_SELECTOR, "#classify").click()
        wait.until(lambda b: any("not_a_video.avi is not a readable video" in t.text
                                 for t in b.find_elements(By.CSS_SELECTOR, "[data-testid=toast-body]")))
        assert not browser.find_elements(By.CSS_SELECTOR, "#top5 [data-testid=label-output-value]")
        browser.save_screenshot(str(ARTIFACTS / "app_bad_file.png"))
    finally:
        if browser is not None:
            browser.quit()
        app.terminate()
        try:
            app.wait(timeout=20)
        except subprocess.TimeoutExpired:
            app.kill()
