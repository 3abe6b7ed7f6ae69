"""Video sources: local files and network streams (RTSP, HTTP, ...) decoded with PyAV into RGB ``Frame``s."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import av
import av.error
from av.video.stream import VideoStream

from surveil.errors import SourceError
from surveil.paths import find_data
from surveil.types import Frame

logger = logging.getLogger(__name__)

DEFAULT_FPS = 25.0
MAX_CONSECUTIVE_DECODE_ERRORS = 50  # past this many bad packets in a row the source is considered broken
RTSP_SCHEMES = frozenset({"rtsp", "rtsps"})


def _scheme(uri: str) -> str:
    """URL scheme in lower case, or "" for a local path (a Windows drive letter is not a scheme)."""
    if "://" not in uri:
        return ""
    scheme = urlsplit(uri).scheme.lower()
    return "" if scheme == "file" else scheme


def _local_path(uri: str) -> Path:
    """The existing file a local URI names (``file://`` URLs and data-path-relative names included)."""
    raw = urlsplit(uri).path if uri.lower().startswith("file://") else uri
    found = find_data(raw)
    if found is None:
        raise SourceError(f"input not found: {raw}")
    if found.is_dir():
        raise SourceError(f"input is a directory, not a video: {found}")
    return found


def _fps_of(stream: VideoStream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and 0 < float(rate) < 1000:
            return float(rate)
    return DEFAULT_FPS


class VideoSource:
    """An open video source: iterate it for ``Frame``s; use it as a context manager or call ``close()``.

    Not thread-safe: iterate and close it from one thread.
    """

    def __init__(
        self,
        uri: str,
        camera: str = "cam1",
        *,
        realtime: bool = False,
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 10.0,
    ) -> None:
        self.uri = uri
        self.camera = camera
        scheme = _scheme(uri)
        self._is_live = bool(scheme)
        self._realtime = realtime and not self._is_live
        self._read_timeout_s = read_timeout_s
        target = uri if self._is_live else str(_local_path(uri))
        self._name = uri if self._is_live else target

        options = {"rtsp_transport": "tcp"} if scheme in RTSP_SCHEMES else {}
        started = time.monotonic()
        try:
            self._container = av.open(target, options=options, timeout=(open_timeout_s, read_timeout_s))
        except av.error.FFmpegError as exc:
            elapsed = time.monotonic() - started
            # A silent server surfaces as whatever error the interrupted read left behind, often "invalid data".
            if self._is_live and elapsed >= 0.9 * open_timeout_s:
                raise SourceError(f"no answer from {uri} within {open_timeout_s:g} s") from exc
            if isinstance(exc, av.error.InvalidDataError) and not self._is_live:
                raise SourceError(f"not a video file: {target}") from exc
            raise SourceError(f"cannot open {self._name}: {_reason(exc)}") from exc

        if not self._container.streams.video:
            self._container.close()
            raise SourceError(f"no video stream in {self._name}")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._fps = _fps_of(self._stream)
        self._time_base: Fraction | None = self._stream.time_base
        self._frames = self._decode()
        self._pending: Frame | None = None
        self._closed = False
        if not (self._stream.codec_context.width and self._stream.codec_context.height):
            # Some live streams only reveal their size with the first picture.
            try:
                self._pending = next(self._frames, None)
            except BaseException:
                self.close()
                raise
        logger.info(
            "opened %s: %dx%d at %.3g fps%s",
            self._name,
            self.width,
            self.height,
            self._fps,
            " (live)" if self._is_live else "",
        )

    @property
    def width(self) -> int:
        if self._pending is not None:
            return self._pending.size[0]
        return int(self._stream.codec_context.width)

    @property
    def height(self) -> int:
        if self._pending is not None:
            return self._pending.size[1]
        return int(self._stream.codec_context.height)

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def frame_count(self) -> int | None:
        """Frames the container announces (files only; None when unknown or live)."""
        count = int(self._stream.frames or 0)
        return count if count > 0 and not self._is_live else None

    @property
    def is_live(self) -> bool:
        return self._is_live

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._frames.close()
        self._container.close()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        if self._closed:
            raise StopIteration
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        return next(self._frames)

    def _packets(self) -> Iterator[av.Packet]:
        """Demuxed packets of the video stream; read failures become ``SourceError``."""
        packets = self._container.demux(self._stream)
        while True:
            started = time.monotonic()
            try:
                yield next(packets)
            except (StopIteration, av.error.EOFError) as exc:
                # A live stream's read cut short by the timeout can surface as a plain end of stream; it is a stall.
                if self._stalled_since(started):
                    raise self._stall_error() from exc
                return
            except av.error.ExitError as exc:  # PyAV's read timeout interrupts the blocked read
                raise self._stall_error() from exc
            except av.error.FFmpegError as exc:
                if self._stalled_since(started):
                    raise self._stall_error() from exc
                raise SourceError(f"read error from {self._name}: {_reason(exc)}") from exc

    def _stall_error(self) -> SourceError:
        return SourceError(f"no data from {self._name} for {self._read_timeout_s:g} s")

    def _stalled_since(self, started: float) -> bool:
        """Whether a live read that began at ``started`` (monotonic) ran into the read timeout."""
        return self._is_live and time.monotonic() - started >= 0.9 * self._read_timeout_s

    def _decode(self) -> Iterator[Frame]:
        """Decode the video stream, skipping undecodable packets; pace to timestamps when replaying in real time."""
        seq = 0
        offset: float | None = None  # subtracted from stream times so the first frame is at 0
        last_pts = -1.0 / self._fps
        clock_start: float | None = None
        bad_in_a_row = 0
        for packet in self._packets():
            try:
                decoded = packet.decode()
            except av.error.FFmpegError as exc:
                bad_in_a_row += 1
                logger.warning("%s: skipping undecodable packet (pts %s): %s", self._name, packet.pts, _reason(exc))
                if bad_in_a_row >= MAX_CONSECUTIVE_DECODE_ERRORS:
                    raise SourceError(f"{self._name}: {bad_in_a_row} packets in a row failed to decode") from exc
                continue
            bad_in_a_row = 0
            for av_frame in decoded:
                if av_frame.pts is not None and self._time_base is not None:
                    stream_time = float(av_frame.pts * self._time_base)
                    if offset is None:
                        offset = stream_time - seq / self._fps
                    pts = stream_time - offset
                else:
                    pts = last_pts + 1.0 / self._fps
                last_pts = pts
                image = av_frame.to_ndarray(format="rgb24")
                if self._realtime:
                    clock_start = _pace(clock_start, pts)
                yield Frame(camera=self.camera, seq=seq, pts=pts, image=image)
                seq += 1


def _pace(clock_start: float | None, pts: float) -> float:
    """Sleep until ``pts`` seconds after the replay's start on the monotonic clock; returns that start."""
    now = time.monotonic()
    if clock_start is None:
        clock_start = now - pts
    delay = clock_start + pts - now
    if delay > 0:
        time.sleep(delay)
    return clock_start


def _reason(exc: BaseException) -> str:
    """FFmpeg's error text without the errno and file name PyAV adds."""
    return getattr(exc, "strerror", None) or str(exc)


def open_source(
    uri: str,
    camera: str = "cam1",
    *,
    realtime: bool = False,
    open_timeout_s: float = 10.0,
    read_timeout_s: float = 10.0,
) -> VideoSource:
    """Open a local video file or a network stream (``rtsp://``, ``http://``, ...) for reading.

    A relative path that does not exist is looked up on the data search path. ``realtime`` paces a file replay to its
    timestamps; live streams are never paced. Raises ``SourceError`` when the source cannot be opened.
    """
    return VideoSource(uri, camera, realtime=realtime, open_timeout_s=open_timeout_s, read_timeout_s=read_timeout_s)


def probe_source(uri: str, *, open_timeout_s: float = 10.0) -> tuple[int, int, float]:
    """(width, height, fps) of a source, without keeping it open."""
    with open_source(uri, open_timeout_s=open_timeout_s) as source:
        return source.width, source.height, source.fps
