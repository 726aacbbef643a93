"""A web app for a video classifier: ``python -m pipeline.app --model DIR_OR_HUB_ID [--port 7860]``.

Upload or record a clip (or pick an example) and the page shows the top-5 classes with bars, a timeline of
per-window predictions for long videos, and where the model looks: attention rollout (VideoMAE, TimeSformer) or
Grad-CAM (I3D) over the frames it saw. Predictions come from the ``video-classification`` pipeline (the model's
clip sampling and processor; ``--backend onnx`` for an ONNX export), explanations from
``pipeline.evaluation.attention_maps`` drawn by ``pipeline.evaluation.figures``. A file that is not a readable
video gets a one-line message naming it. Needs the ``app`` extra (``pip install -e ".[app]"``: Gradio).

Examples: ``--examples FILE_OR_FOLDER ...``; without them a model trained on the demo data gets unseen demo
clips and a long demo video (rendered once into ``--examples_dir``).
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Sequence

# Offline by default: no usage statistics, no update check (set before gradio is imported).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import av  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from pipeline.inference.decoding import VIDEO_EXTENSIONS, VideoDecodeError, probe_video  # noqa: E402
from pipeline.inference.frame_times import frame_times  # noqa: E402

TOP_K = 5
# A video gets a timeline when it holds at least this many non-overlapping clip spans.
TIMELINE_MIN_WINDOWS = 3
OVERLAY_FRAMES = 8
DEFAULT_EXAMPLES_DIR = Path(tempfile.gettempdir()) / "video-pipeline-app-examples"
EXAMPLE_CLASSES = ("MoveLeft", "Grow", "RotateClockwise")
BROWSER_PLAYABLE = {".mp4", ".webm", ".ogg", ".ogv", ".m4v"}
# "[Errno 1094995529] " in PyAV's messages: a number that tells a user nothing (the words after it do)
RAW_ERRNO = re.compile(r"\[Errno -?\d+\]\s*")


class VideoClassifierApp:
    """What the page calls: classify a video, draw its timeline and its explanation."""

    def __init__(self, model: str, *, backend: str = "pytorch", device: Optional[str] = None,
                 explain: bool = True, workdir: Optional[Path] = None):
        from pipeline.inference import load_pipeline

        self.model_name = model
        self.classifier = load_pipeline(model, backend=backend, device=device)
        self.config = self.classifier.model.config
        self.spec = self.classifier.model_clip_spec()  # the model's clip contract, as pipeline() uses it
        self.explainer = self._explainer(model, backend) if explain else None
        self.why_no_overlay = ("" if self.explainer is not None else
                               "no overlay: turned off" if not explain else
                               "no overlay: the ONNX export has no PyTorch weights to explain")
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="video-app-"))
        self.workdir.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def refusal(video: Optional[str]) -> Optional[str]:
        """Why an uploaded file is refused before any decoding (one line), or None: a file whose name is not a
        video's (``VIDEO_EXTENSIONS``)."""
        if not video or Path(video).suffix.lower() in VIDEO_EXTENSIONS:
            return None
        kind = Path(video).suffix.lower() or "a name without an extension"
        return (f"{Path(video).name} was refused: {kind} is not a video file type "
                f"(accepted: {', '.join(sorted(VIDEO_EXTENSIONS))})")

    def preview(self, video: Optional[str]) -> Optional[str]:
        """What the page plays for an uploaded file: the file itself when browsers play it, else an H.264 copy
        (browsers play neither AVI nor MPEG-4 Part 2, UCF101's format); None when it cannot be read.

        The copy is only for the eye: predictions are made on the uploaded file.
        """
        if not video or Path(video).suffix.lower() in BROWSER_PLAYABLE:
            return video
        preview = self.workdir / f"preview-{time.time_ns()}.mp4"
        try:
            browser_preview(video, preview)
        except (av.FFmpegError, OSError, ValueError, IndexError):
            return None  # classify() will say what is wrong with it
        return str(preview)

    def _explainer(self, model: str, backend: str) -> Optional[torch.nn.Module]:
        """The PyTorch model for explanations: the pipeline's, or for an ONNX backend the folder's weights."""
        if backend == "pytorch":
            return self.classifier.model
        from pipeline.models.loading import load_trained

        try:
            return load_trained(model)[0].eval()
        except (OSError, ValueError):
            return None  # an export folder without PyTorch weights: no overlay

    @property
    def clip_span(self) -> Optional[int]:
        """Frames one clip covers (dense sampling); None for strategies that spread over the whole video."""
        return self.spec.span

    def describe(self) -> str:
        return (f"**{self.model_name}** ({self.config.model_type}, {self.config.num_labels} classes): "
                f"{self.spec.describe()}")

    # -- the page's one action -----------------------------------------------------------------------------------
    def classify(self, video: Optional[str], progress=None) -> tuple[dict[str, float], Any, Optional[str], str]:
        """(top-5 as {label: score}, timeline figure or None, overlay PNG path or None, a status line).

        Raises ``ValueError`` with a one-line message for a missing or unreadable video.
        """
        report = progress or (lambda *args, **kwargs: None)
        if not video:
            raise ValueError("No video: upload a file, record one, or pick an example.")
        name = Path(video).name
        started = time.perf_counter()
        report(0.05, desc="Reading the video")
        try:
            info = probe_video(video)
        except VideoDecodeError as error:
            reason = RAW_ERRNO.sub("", error.reason.replace(str(video), name))
            raise ValueError(f"{name} is not a readable video: {reason}") from None
        if info.num_frames < 1:
            raise ValueError(f"{name} has no decodable frames")

        timeline_figure, windows = None, 0
        span = self.clip_span
        long_video = span is not None and info.num_frames >= TIMELINE_MIN_WINDOWS * span
        report(0.2, desc="Classifying")
        if long_video:
            output = self.classifier(video, top_k=TOP_K, timeline=True, window_frames=span,
                                     stride_frames=max(1, span // 2))
            predictions, windows = output["predictions"], len(output["timeline"])
            report(0.5, desc="Drawing the timeline")
            timeline_figure = timeline_plot(output["timeline"], info.fps, name)
        else:
            predictions = self.classifier(video, top_k=TOP_K)
        scores = {p["label"]: float(p["score"]) for p in predictions}

        overlay = None
        if self.explainer is not None:
            report(0.7, desc="Explaining the prediction")
            overlay = self.overlay(video, predictions[0], name)
        seconds = time.perf_counter() - started
        best = predictions[0]
        fps = measured_rate(video, info)
        detail = (f"averaged over {windows} windows of {span} frames" if long_video
                  else "centre clip")
        status = (f"**{best['label']}** ({best['score']:.1%}) for `{name}`: {info.num_frames} frames, {fps}; "
                  f"{detail}; {seconds:.1f} s" + (f" ({self.why_no_overlay})" if self.why_no_overlay else ""))
        if info.damage:  # the pipeline logged it at WARNING too; the page must say it beside the answer
            status = (f"**Warning: damaged video** ({info.damage}): classified from its {info.num_frames} "
                      f"decodable frame(s).\n\n{status}")
        report(1.0, desc="Done")
        return scores, timeline_figure, overlay, status

    def overlay(self, video: str, prediction: dict[str, Any], name: str) -> Optional[str]:
        """Attention rollout / Grad-CAM over the clip the model saw (its first view), as a PNG path."""
        from pipeline.evaluation.attention_maps import explain, upsample_heatmap
        from pipeline.evaluation.figures import plot_attention_overlay
        from pipeline.inference.preprocessing import frames_of_view

        pixel_values = self.classifier.views(video)[:1]
        parameter = next(self.explainer.parameters())
        heatmaps, method = explain(self.explainer, pixel_values.to(parameter.device, parameter.dtype))
        frames = frames_of_view(pixel_values[0], self.classifier.preprocessing)
        heatmap = upsample_heatmap(heatmaps[0].float().cpu(), *frames.shape[:3]).numpy()
        title = f"{name}: {prediction['label']} ({prediction['score']:.1%})"
        path = self.workdir / f"overlay-{time.time_ns()}.png"
        plot_attention_overlay([{"frames": frames, "heatmap": heatmap, "title": title}], path, method,
                               max_frames=OVERLAY_FRAMES)
        return str(path)


def measured_rate(video: str, info) -> str:
    """The frame rate to show: the measured average of a variable-frame-rate file (its timestamps), else the
    constant rate the file declares."""
    if not info.fps:
        return "unknown frame rate"
    times = frame_times(video, info.num_frames, info.fps)
    if times is None:
        return f"{info.fps:.3g} fps"
    return f"{info.num_frames / float(times[-1]):.3g} fps on average (variable rate; the file declares {info.fps:.3g})"


def browser_preview(source: str | Path, target: Path) -> None:
    """Re-encodes ``source`` as H.264 yuv420p MP4 frame by frame (constant memory for any length)."""
    with av.open(str(source)) as src, av.open(str(target), "w", format="mp4") as dst:
        video = src.streams.video[0]
        rate = video.average_rate or video.guessed_rate or 25
        out = dst.add_stream("libx264", rate=rate)
        out.width, out.height = video.width // 2 * 2, video.height // 2 * 2  # yuv420p needs even sizes
        out.pix_fmt = "yuv420p"
        out.codec_context.options = {"crf": "18", "preset": "veryfast"}
        for frame in src.decode(video):
            frame = frame.reformat(width=out.width, height=out.height, format="yuv420p")
            frame.pts = None  # numbered by the encoder: AVI timestamps can be out of order (DESIGN fact 12)
            dst.mux(out.encode(frame))
        dst.mux(out.encode())


def timeline_plot(timeline: Sequence[dict[str, Any]], fps: Optional[float], name: str):
    """Per-window top-1 over time: one row per predicted class, a bar per window shaded by its score."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    labels = sorted({w["predictions"][0]["label"] for w in timeline})
    rows = {label: i for i, label in enumerate(labels)}
    in_seconds = all(w["start"] is not None for w in timeline)
    figure = Figure(figsize=(9.0, 1.2 + 0.45 * len(labels)), layout="constrained")
    axis = figure.add_subplot(1, 1, 1)
    colours = colormaps["tab10"]
    for window in timeline:
        top = window["predictions"][0]
        start = window["start"] if in_seconds else window["start_frame"]
        end = window["end"] if in_seconds else window["end_frame"]
        axis.barh(rows[top["label"]], end - start, left=start, height=0.6,
                  color=colours(rows[top["label"]] % 10), alpha=0.25 + 0.75 * float(top["score"]),
                  edgecolor="black", linewidth=0.3)
    axis.set_yticks(range(len(labels)))
    axis.set_yticklabels(labels)
    axis.invert_yaxis()
    axis.set_xlabel("time (s)" if in_seconds else "frame")
    axis.set_title(f"{name}: top-1 per window ({len(timeline)} windows; darker = more confident)", fontsize=10)
    axis.grid(axis="x", alpha=0.3)
    return figure


def demo_examples(directory: Path, labels: Sequence[str]) -> list[str]:
    """For a model with the demo's classes: unseen demo clips and a long demo video (H.264, plays in browsers)."""
    from pipeline.data.demo import CLASS_NAMES
    from pipeline.data.demo_video import DEFAULT_SEQUENCE, write_demo_clips, write_demo_video

    if not set(labels) <= set(CLASS_NAMES):
        return []
    directory.mkdir(parents=True, exist_ok=True)
    long_video = directory / "demo_sequence.mp4"
    if not long_video.exists():
        write_demo_clips(directory, EXAMPLE_CLASSES, clip=3, suffix=".mp4")
        write_demo_video(long_video, DEFAULT_SEQUENCE, clip=4)
    return [str(directory / f"{c}_3.mp4") for c in EXAMPLE_CLASSES] + [str(long_video)]


def _gradio():
    try:
        import gradio
    except ImportError as error:
        raise ImportError("the web app needs the app extra: pip install 'video-pipeline[app]' (Gradio)") from error
    return gradio


def build_app(app: VideoClassifierApp, examples: Sequence[str] = ()):
    """The Gradio page over ``app``."""
    gr = _gradio()

    def run(video, progress=gr.Progress()):
        try:
            scores, figure, overlay, status = app.classify(video, progress)
        except ValueError as error:
            raise gr.Error(str(error), print_exception=False) from None
        # the timeline panel shows only for videos long enough to have one
        return scores, gr.Plot(value=figure, visible=figure is not None), overlay, status

    def uploaded(path):
        # the file to classify, what the page plays for it, and the status: a refused file is said so at once
        refused = app.refusal(path)
        if refused:
            gr.Warning(refused)
            return None, None, f"**Refused:** {refused}"
        return path, app.preview(path), ""

    def cleared():
        return None, gr.Plot(value=None, visible=False), None, ""

    with gr.Blocks(title="Video classification") as page:
        gr.Markdown("## Video classification\n" + app.describe())
        current = gr.State(None)  # the video the Classify button classifies: an upload or a recording
        with gr.Row():
            with gr.Column(scale=1):
                with gr.Tabs():
                    with gr.Tab("Upload", elem_id="upload-tab"):
                        # a file input, not a video player: the browser never tries to play an AVI it cannot.
                        # No file_types: the browser would drop other files without a word; uploaded() says why.
                        upload = gr.File(label="Video file (" + ", ".join(sorted(VIDEO_EXTENSIONS)) + ")",
                                         type="filepath", elem_id="upload")
                        preview = gr.Video(label="Preview", interactive=False, height=300, elem_id="preview")
                    with gr.Tab("Record", elem_id="record-tab"):
                        camera = gr.Video(label="Webcam", sources=["webcam"], height=300, elem_id="camera")
                button = gr.Button("Classify", variant="primary", elem_id="classify")
                if examples:
                    gr.Examples(examples=[[e] for e in examples], inputs=[upload], label="Examples")
            with gr.Column(scale=1):
                top5 = gr.Label(num_top_classes=TOP_K, label="Top 5", elem_id="top5")
                status = gr.Markdown(elem_id="status")
        timeline = gr.Plot(label="Timeline: top-1 per window", elem_id="timeline", visible=False)
        overlay = gr.Image(label="Where the model looks", type="filepath", elem_id="overlay")
        outputs = [top5, timeline, overlay, status]
        upload.change(uploaded, inputs=[upload], outputs=[current, preview, status])
        camera.change(lambda path: path, inputs=[camera], outputs=[current])
        # old results go first, so a failure never leaves the previous video's answer on the page
        button.click(cleared, outputs=outputs, queue=False).then(run, inputs=[current], outputs=outputs)
    return page


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.app", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model folder (or ONNX export folder) or Hub repo id")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve other machines")
    parser.add_argument("--backend", choices=("pytorch", "onnx"), default="pytorch")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: transformers' choice)")
    parser.add_argument("--examples", nargs="*", default=None, help="example videos (files or folders)")
    parser.add_argument("--examples_dir", default=str(DEFAULT_EXAMPLES_DIR),
                        help="where demo examples are rendered for demo models")
    parser.add_argument("--no_explain", action="store_true", help="skip the attention / Grad-CAM overlay")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    gr = _gradio()
    from pipeline.data.video_files import find_videos

    app = VideoClassifierApp(args.model, backend=args.backend, device=args.device, explain=not args.no_explain)
    if args.examples is not None:
        examples, missing = find_videos(args.examples)
        if missing:
            raise SystemExit("--examples: " + "; ".join(f"{m['video']}: {m['error']}" for m in missing))
    else:
        examples = demo_examples(Path(args.examples_dir), list(app.config.id2label.values()))
    page = build_app(app, examples)
    folders = sorted({str(Path(e).resolve().parent) for e in examples} | {str(app.workdir)})
    # system fonts: the default theme would ask Google Fonts for its typeface, which an offline machine lacks
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])
    page.queue(default_concurrency_limit=1).launch(
        server_name=args.host, server_port=args.port, show_error=True, allowed_paths=folders, theme=theme,
        footer_links=[],
    )


if __name__ == "__main__":
    from pipeline.user_errors import say_signals

    say_signals("python -m pipeline.app")
    main()
