"""What a ``pipeline()`` input is, checked and turned into what the decoder reads: a file path or a frame array.

- a path: must be a file; a file FFmpeg would read as text art (its ``tty`` / ``bintext`` demuxers turn any text
  into "video") is refused;
- an http(s) URL: downloaded to a temporary file with a connect timeout, a read timeout (a server that stops
  sending), one deadline over the whole download (connecting, the response headers and the body: a server that
  trickles any of them) and a size cap, all settable per call and at construction (``timeout``,
  ``max_download_bytes``, ``max_download_seconds``); every failure is one line naming the URL and the cause;
- bytes: recognised by their content (the signature of a video container), never by a file suffix: anything
  else is an error that says what the bytes start with;
- a uint8 array (frames, height, width, 3).

Temporary files are removed on exit. ``call_each`` runs a list of inputs so that one bad input becomes an error
entry in its place and the other results are kept.

Shipped as Hub remote code: imports only the standard library, numpy and av.
"""

from __future__ import annotations

import http.client
import os
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Optional

import av
import numpy as np

from .decoding import VideoDecodeError
from .options import PipelineOptionError

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_MAX_DOWNLOAD_BYTES = 2 << 30  # 2 GiB
DEFAULT_MAX_DOWNLOAD_SECONDS = 600.0
CHUNK = 1 << 16
# FFmpeg demuxers that render text as pictures: never a video someone meant to classify.
TEXT_DEMUXERS = {"tty", "bintext", "xbin", "adf", "idf"}


class VideoInputError(ValueError):
    """An input that is not a readable video: ``.input`` (a short description) and ``.reason``."""

    def __init__(self, description: str, reason: str):
        self.input, self.reason = description, reason
        super().__init__(f"{description}: {reason}")

    def __reduce__(self):
        return type(self), (self.input, self.reason)


class VideoNotFoundError(VideoInputError, FileNotFoundError):
    """A path input that does not exist."""


def describe(video: Any) -> str:
    """A short name of an input for messages: the path or URL, or the kind and size of in-memory data."""
    if isinstance(video, (str, os.PathLike)):
        return os.fspath(video)
    if isinstance(video, (bytes, bytearray, memoryview)):
        return f"<{len(video):,} bytes>"
    if isinstance(video, np.ndarray):
        return f"<array {video.dtype} {tuple(video.shape)}>"
    return f"<{type(video).__name__}>"


@dataclass(frozen=True)
class DownloadLimits:
    """Bounds of one URL download (seconds, bytes)."""

    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES
    max_seconds: float = DEFAULT_MAX_DOWNLOAD_SECONDS

    @classmethod
    def from_options(cls, timeout=None, max_download_bytes=None, max_download_seconds=None) -> "DownloadLimits":
        connect, read = DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT
        if timeout is not None:
            connect, read = (timeout if isinstance(timeout, (tuple, list)) else (timeout, timeout))
        return cls(float(connect), float(read), int(max_download_bytes or DEFAULT_MAX_DOWNLOAD_BYTES),
                   float(max_download_seconds or DEFAULT_MAX_DOWNLOAD_SECONDS))


# ---- content sniffing -------------------------------------------------------------------------------------------

def sniff_container(head: bytes) -> Optional[str]:
    """The file suffix of the video container whose signature ``head`` (the first bytes) carries, else None."""
    if len(head) < 12:
        return None
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"):
        return ".avi"
    if head[:4] == b"RIFF" and head[8:12] == b"AMV ":
        return ".amv"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return ".mov"
        return ".3gp" if brand.startswith(b"3g") else ".mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return ".mov"
    if head[:4] == b"\x1aE\xdf\xa3":
        return ".mkv"  # Matroska and WebM
    if head[:3] == b"FLV":
        return ".flv"
    if head[:4] == b"OggS":
        return ".ogv"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return ".mpg"
    if head[0] == 0x47 and (len(head) < 189 or head[188] == 0x47):
        return ".ts"
    if len(head) > 196 and head[4] == 0x47 and head[196] == 0x47:
        return ".m2ts"
    if head[:8] == b"\x30\x26\xb2\x75\x8e\x66\xcf\x11":
        return ".wmv"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return ".gif"
    if head[:9] == b"YUV4MPEG2":
        return ".y4m"
    if head[:4] == b"DKIF":
        return ".ivf"
    if head[:4] == b".RMF":
        return ".rm"
    if head[:4] == b"\x06\x0e\x2b\x34":
        return ".mxf"
    if head[:4] == b"\x00\x00\x00\x01" and (head[4] & 0x1F in (7, 9) or (head[4] >> 1) & 0x3F in (32, 33, 35)):
        return ".h264" if head[4] & 0x1F in (7, 9) else ".hevc"
    return None


def _unrecognised(data: bytes) -> str:
    if not data:
        return "empty (0 bytes): not a video"
    shown = " ".join(f"{b:02x}" for b in data[:8])
    return (f"not a video container this pipeline can read (unrecognised content: starts with {shown}); pass the "
            "bytes of a video file (mp4, avi, mkv, webm, mov, ...) or its path")


# ---- the input, made readable ----------------------------------------------------------------------------------

class VideoSource:
    """``with VideoSource(video, limits) as source``: ``source.value`` is a path or a uint8 array,
    ``source.is_file`` says which. Bytes and URLs go through a temporary file (PyAV's seeking decoder reads
    files), removed on exit."""

    def __init__(self, video: Any, limits: Optional[DownloadLimits] = None):
        self.video = video
        self.limits = limits or DownloadLimits()
        self.value: Any = None
        self.is_file = True
        self._temporary: Optional[str] = None

    def __enter__(self) -> "VideoSource":
        try:
            self._open()
        except BaseException:
            self._remove_temporary()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._remove_temporary()

    def _open(self) -> None:
        video = self.video
        if isinstance(video, np.ndarray):
            if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8 or video.shape[0] < 1:
                raise VideoInputError(describe(video), "a video array must be uint8 (frames, height, width, 3) "
                                                       "with at least one frame")
            self.value, self.is_file = video, False
            return
        if isinstance(video, str) and video.lower().startswith(("http://", "https://")):
            self.value = self._temporary = download(video, self.limits)
            return
        if isinstance(video, (bytes, bytearray, memoryview)):
            data = bytes(video)
            suffix = sniff_container(data[:512])
            if suffix is None:
                raise VideoInputError(describe(video), _unrecognised(data))
            handle = tempfile.NamedTemporaryFile(prefix="video-", suffix=suffix, delete=False)
            self._temporary = handle.name
            with handle:
                handle.write(data)
            self.value = handle.name
            return
        if isinstance(video, (str, os.PathLike)):
            path = os.fspath(video)
            if not os.path.exists(path):
                raise VideoNotFoundError(path, "no such video file")
            if not os.path.isfile(path):
                raise VideoInputError(path, "not a file (a folder?); pass a video file")
            refuse_text_art(path)
            self.value = path
            return
        raise VideoInputError(describe(video), "unsupported input type: expected a path, an http(s) URL, the bytes "
                                               "of a video file, or a uint8 array (frames, height, width, 3)")

    def _remove_temporary(self) -> None:
        if self._temporary is not None:
            try:
                os.unlink(self._temporary)
            except OSError:
                pass
            self._temporary = None


def refuse_text_art(path: str) -> None:
    """A file FFmpeg reads with a text-rendering demuxer is not a video: VideoInputError naming it."""
    try:
        with av.open(path, metadata_errors="ignore") as container:
            name = container.format.name
    except (av.FFmpegError, UnicodeDecodeError, ValueError, OSError):
        return  # not readable at all: the decoder reports it with its own reason
    if set(name.split(",")) & TEXT_DEMUXERS:
        raise VideoInputError(path, f"not a video: FFmpeg reads this file as text ({name} format)")


class _Deadline:
    """The end of one download: at ``seconds`` from now every socket it watches is shut down, which ends a read
    blocked anywhere (the TLS handshake, the status line and headers inside ``urlopen``, the body)."""

    def __init__(self, seconds: float):
        self.at = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> "_Deadline":
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def watch(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)
        return sock

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _watched(connection_class, deadline: _Deadline):
    """``connection_class`` whose sockets (one per connection, redirects included) the deadline watches: the raw
    socket, before TLS wraps it, through http.client's ``_create_connection`` hook."""

    def make(host, **kwargs):
        connection = connection_class(host, **kwargs)
        create = connection._create_connection
        connection._create_connection = lambda *args, **kw: deadline.watch(create(*args, **kw))
        return connection

    return make


class _DeadlineHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline):
        super().__init__()
        self._deadline = deadline

    def do_open(self, http_class, req, **kwargs):
        return super().do_open(_watched(http_class, self._deadline), req, **kwargs)


class _DeadlineHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline):
        super().__init__()
        self._deadline = deadline

    def do_open(self, http_class, req, **kwargs):
        return super().do_open(_watched(http_class, self._deadline), req, **kwargs)


def download(url: str, limits: DownloadLimits) -> str:
    """Downloads ``url`` into a temporary file named after its sniffed container; returns its path.

    VideoInputError (naming the URL) when the server cannot be reached or does not answer within the connect
    timeout, stops sending for the read timeout, the whole download (connect, headers, body) outlasts
    max_seconds, the size passes max_bytes, or the content is not a video container."""
    with _Deadline(limits.max_seconds) as deadline:
        try:
            return _download(url, limits, deadline)
        except (VideoInputError, OSError, ValueError, EOFError, http.client.HTTPException) as error:
            if deadline.expired:  # whatever the shut-down socket raised, the cause is the deadline
                raise VideoInputError(url, f"download not finished after {limits.max_seconds:g} s "
                                           "(max_download_seconds=...)") from None
            if isinstance(error, VideoInputError):
                raise
            raise VideoInputError(url, f"download broke off ({error})") from None


def _download(url: str, limits: DownloadLimits, deadline: _Deadline) -> str:
    started = time.monotonic()
    request = urllib.request.Request(url, headers={"User-Agent": "video-classification-pipeline"})
    opener = urllib.request.build_opener(_DeadlineHTTPHandler(deadline), _DeadlineHTTPSHandler(deadline))
    try:
        response = opener.open(request, timeout=min(limits.connect_timeout, deadline.remaining() or 0.001))
    except urllib.error.HTTPError as error:
        raise VideoInputError(url, f"download failed: HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, (socket.timeout, TimeoutError)):
            raise VideoInputError(url, f"no answer within {limits.connect_timeout:g} s (connect timeout; "
                                       "timeout=...)") from None
        raise VideoInputError(url, f"cannot connect ({error.reason})") from None
    except (socket.timeout, TimeoutError):
        raise VideoInputError(url, f"no answer within {limits.connect_timeout:g} s (connect timeout; "
                                   "timeout=...)") from None
    except (ValueError, OSError) as error:
        raise VideoInputError(url, f"cannot download ({error})") from None
    handle = tempfile.NamedTemporaryFile(prefix="video-", suffix=".download", delete=False)
    try:
        with response, handle:
            _set_read_timeout(response, limits.read_timeout)
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limits.max_bytes:
                raise VideoInputError(url, f"the server announces {int(declared):,} bytes, more than "
                                           f"max_download_bytes={limits.max_bytes:,}")
            received = 0
            while True:
                if time.monotonic() - started > limits.max_seconds:
                    raise VideoInputError(url, f"download not finished after {limits.max_seconds:g} s "
                                               f"({received:,} bytes received; max_download_seconds=...)")
                try:
                    chunk = response.read1(CHUNK)
                except (socket.timeout, TimeoutError):
                    raise VideoInputError(url, f"the server sent nothing for {limits.read_timeout:g} s after "
                                               f"{received:,} bytes (read timeout; timeout=...)") from None
                except OSError as error:
                    raise VideoInputError(url, f"download broke off after {received:,} bytes ({error})") from None
                if not chunk:
                    break
                received += len(chunk)
                if received > limits.max_bytes:
                    raise VideoInputError(url, f"more than max_download_bytes={limits.max_bytes:,} bytes")
                handle.write(chunk)
        with open(handle.name, "rb") as downloaded:
            head = downloaded.read(512)
        suffix = sniff_container(head)
        if suffix is None:
            raise VideoInputError(url, _unrecognised(head))
        final = handle.name[: -len(".download")] + suffix
        os.replace(handle.name, final)
        return final
    except BaseException:
        try:
            os.unlink(handle.name)
        except OSError:
            pass
        raise


def _set_read_timeout(response, seconds: float) -> None:
    """The connect timeout also bounds each read; give reads their own (the socket under urllib's response)."""
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        try:
            sock.settimeout(seconds)
        except OSError:
            pass


# ---- lists: one result or error per input ----------------------------------------------------------------------

ITEM_ERRORS = (VideoInputError, VideoDecodeError, OSError, ValueError, TypeError, av.FFmpegError)


def check_input(video: Any) -> None:
    """Cheap checks of one input before a batch runs (URLs are left to the download)."""
    if isinstance(video, str) and video.lower().startswith(("http://", "https://")):
        return
    with VideoSource(video, DownloadLimits()):
        pass


def call_each(run: Callable[..., list], inputs: list, kwargs: dict) -> list:
    """``run(inputs, **kwargs)`` over a list, where an input that fails becomes ``{"video", "error"}`` in its
    place and the other results are kept. Inputs are checked first (missing files, unrecognised bytes); when
    the batch still fails (a video damaged past its header), each input is run alone."""
    if not inputs:
        return []
    results: list[Any] = [None] * len(inputs)
    good: list[int] = []
    for index, video in enumerate(inputs):
        try:
            check_input(video)
            good.append(index)
        except ITEM_ERRORS as error:
            results[index] = _error_entry(video, error)
    if good:
        try:
            outputs = run([inputs[i] for i in good], **kwargs)
            for index, output in zip(good, outputs):
                results[index] = output
        except PipelineOptionError:
            raise  # a problem of the call, not of an input
        except ITEM_ERRORS:
            for index in good:
                try:
                    results[index] = run(inputs[index], **kwargs)
                except PipelineOptionError:
                    raise
                except ITEM_ERRORS as error:
                    results[index] = _error_entry(inputs[index], error)
    return results


def _error_entry(video: Any, error: BaseException) -> dict:
    message = str(error)
    name = describe(video)
    if message.startswith(name + ": "):
        message = message[len(name) + 2:]
    return {"video": name, "error": message or type(error).__name__}
