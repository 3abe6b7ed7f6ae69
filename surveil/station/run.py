"""The ``decode`` job: a recording or a live ZeroMQ stream in, recomposed video and per-frame events out."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from tqdm import tqdm

from surveil.codecs.library import build_library
from surveil.config import Config
from surveil.errors import StreamError, SurveilError
from surveil.metrics import StreamStats, format_summary, stream_of_topic
from surveil.station.recompose import RecomposedFrame, Recomposer
from surveil.stream import RecordingReader, camera_topic, decode_packet, region_topic

logger = logging.getLogger(__name__)

LIVE_POLL_S = 0.2
DEFAULT_FPS = 25.0


@dataclass
class DecodeResult:
    frames: int
    wall_seconds: float
    media_seconds: float
    stats: StreamStats
    stage_ms: dict[str, float]
    size: tuple[int, int] | None
    corrupt_packets: int = 0
    frames_without_key: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = format_summary("decode", self.frames, self.wall_seconds, self.media_seconds, self.stats, self.stage_ms)
        if self.size is not None:
            text += f"\n  recomposed {self.size[0]}x{self.size[1]}"
        if self.corrupt_packets or self.frames_without_key:
            text += f"\n  skipped: {self.corrupt_packets} corrupt packets, {self.frames_without_key} frames without key"
        return text


class VideoWriter:
    """Writes RGB frames to a video file with libx264 at near-transparent quality (the station's archive copy)."""

    def __init__(self, path: Path, fps: float, crf: int = 12) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fps = fps
        self.crf = crf
        try:
            self._container = av.open(str(path), mode="w")
        except (av.error.FFmpegError, ValueError) as exc:
            raise SurveilError(f"cannot write video {path}: {getattr(exc, 'strerror', None) or exc}") from exc
        self._stream = None

    def write(self, image: np.ndarray) -> None:
        height, width = image.shape[:2]
        if self._stream is None:
            from fractions import Fraction

            self._stream = self._container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
            self._stream.width, self._stream.height = width, height
            # 4:2:0 needs even sizes; odd-sized cameras keep full chroma instead of being cropped.
            self._stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
            self._stream.options = {"crf": str(self.crf), "preset": "veryfast"}
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        if self._stream is not None:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        self._container.close()


VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi")


def _check_writable(path: Path, what: str, suffixes: tuple[str, ...] | None = None) -> None:
    """Fail before decoding, not after the first frames, when an output cannot be written."""
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise SurveilError(f"{what} {path}: unknown video type {path.suffix!r} (use one of {', '.join(suffixes)})")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SurveilError(f"cannot create the folder of {what} {path}: {exc.strerror or exc}") from exc
    if path.is_dir() or not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise SurveilError(f"cannot write {what} {path}")


def _recording_parts(path: Path, problems: list[str]) -> Iterator[list[bytes]]:
    reader = RecordingReader(path)
    try:
        yield from reader
        if reader.truncated:
            problems.append(reader.truncated)
    finally:
        reader.close()


def _live_parts(address: str, topics: list[str] | None, idle_timeout_s: float) -> Iterator[list[bytes]]:
    from surveil.stream.transport import Subscriber

    with Subscriber(address, topics) as subscriber:
        silent_since = time.monotonic()
        while True:
            parts = subscriber.recv(LIVE_POLL_S)
            if parts is not None:
                silent_since = time.monotonic()
                yield parts
            elif time.monotonic() - silent_since > idle_timeout_s:
                logger.info("no packet from %s for %.1f s: stopping", address, idle_timeout_s)
                return


def _meta_topics(topics: list[str]) -> list[str]:
    """Frame and stream ends of every camera the selection names: they carry no pixels and close frames."""
    cameras = dict.fromkeys(t.split("/")[0] for t in topics if t)
    return [camera_topic(camera, stream) for camera in cameras for stream in ("frame", "end")]


def _filtered(parts_iter: Iterator[list[bytes]], topics: list[str] | None) -> Iterator[list[bytes]]:
    """Topic selection for recordings, the same as a live subscriber's at the socket."""
    selected = None if topics is None else [*topics, *_meta_topics(topics)]
    for parts in parts_iter:
        topic = parts[0].decode("utf-8", "replace") if parts else ""
        if selected is None or any(topic.startswith(t) for t in selected):
            yield parts


def _wanted(topics: list[str] | None) -> Callable[[str, str], bool]:
    """Whether this station subscribed to a camera's regions of a class."""

    def wanted(camera: str, codec_class: str) -> bool:
        return topics is None or any(region_topic(camera, codec_class).startswith(t) for t in topics)

    return wanted


def run_decode(
    config: Config,
    source: str,
    output: Path | None,
    events: Path | None = None,
    max_frames: int | None = None,
    topics: list[str] | None = None,
    idle_timeout_s: float = 15.0,
    on_frame: Callable[[RecomposedFrame], None] | None = None,
    progress: bool = False,
) -> DecodeResult:
    """Decode ``source`` (a recording path or a ``tcp://``/``ipc://`` address) into recomposed frames."""
    live = "://" in source
    problems: list[str] = []
    if live:
        # Frame ends and stream ends carry no pixels: always receive them so frames close and the stream can end.
        socket_topics = None if topics is None else [*topics, *_meta_topics(topics)]
        parts_iter = _live_parts(source, socket_topics, idle_timeout_s)
    else:
        path = Path(source)
        if not path.exists():
            raise SurveilError(f"input not found: {source}")
        parts_iter = _filtered(_recording_parts(path, problems), topics)

    if output is not None:
        _check_writable(output, "output video", VIDEO_SUFFIXES)
    if events is not None:
        _check_writable(events, "events file")
    recomposer = Recomposer(build_library(config), _wanted(topics))
    stats = StreamStats()
    writer: VideoWriter | None = None
    events_file = None
    held: list[np.ndarray] = []
    frames = 0
    corrupt = 0
    first_pts: float | None = None
    last_pts = 0.0
    size: tuple[int, int] | None = None
    stopped_early = False
    started = time.monotonic()
    if events is not None:
        events_file = events.open("w")
    bar = tqdm(total=max_frames, disable=not progress, unit="frame", desc="decode", leave=False)
    try:
        for parts in parts_iter:
            try:
                packet = decode_packet(parts)
            except StreamError as exc:
                corrupt += 1
                logger.warning("skipping corrupt packet: %s", exc)
                continue
            stats.add(
                stream_of_topic(parts[0].decode()), sum(len(p) for p in parts[1:]), len(getattr(packet, "regions", ()))
            )
            try:
                frame = recomposer.feed(packet)
            except StreamError as exc:
                corrupt += 1
                logger.warning("skipping a packet the station cannot use: %s", exc)
                continue
            if frame is None:
                if recomposer.all_ended:
                    break
                continue
            first_pts = frame.pts if first_pts is None else first_pts
            last_pts = frame.pts
            if output is not None:
                # The stream carries timestamps, not a rate: the first two frames tell the output's frame rate.
                held.append(frame.image)
                if writer is None and len(held) >= 2:
                    writer = VideoWriter(output, _fps_between(first_pts, frame.pts))
                if writer is not None:
                    for image in held:
                        writer.write(image)
                    held.clear()
            if events_file is not None:
                events_file.write(json.dumps(frame.describe()) + "\n")
            if on_frame is not None:
                on_frame(frame)
            frames += 1
            bar.update(1)
            size = (frame.image.shape[1], frame.image.shape[0])

            if max_frames is not None and frames >= max_frames:
                stopped_early = True
                break
    except KeyboardInterrupt:
        logger.warning("interrupted after %d frames", frames)
    finally:
        bar.close()
        try:
            if held and output is not None:
                writer = writer or VideoWriter(output, DEFAULT_FPS)
                for image in held:
                    writer.write(image)
            if writer is not None:
                writer.close()
        finally:
            if events_file is not None:
                events_file.close()
            parts_iter.close()

    if not live and not stopped_early and not recomposer.all_ended and not problems:
        # A cut between two records (the usual result of a killed encoder) leaves no partial record for the reader to
        # report; only the missing stream end tells.
        problems.append(f"recording {source} ends without its end-of-stream packet (cut short?)")
    if corrupt:
        problems.append(f"{corrupt} corrupt packets skipped")
    if recomposer.incomplete_frames:
        problems.append(f"{recomposer.incomplete_frames} frames recomposed without all their regions (packets lost)")
    if live and frames and not recomposer.all_ended and not stopped_early:
        problems.append(f"{source} went silent without its end-of-stream packet")
    if frames == 0:
        problems.append(f"no frame could be recomposed from {source}")
    frame_s = (last_pts - first_pts) / max(1, frames - 1) if first_pts is not None and frames > 1 else 0.0
    media_seconds = (last_pts - (first_pts or 0.0)) + frame_s if frames else 0.0
    return DecodeResult(
        frames=frames,
        wall_seconds=time.monotonic() - started,
        media_seconds=media_seconds,
        stats=stats,
        stage_ms=recomposer.timer.per_frame_ms(frames),
        size=size,
        corrupt_packets=corrupt,
        frames_without_key=recomposer.frames_without_key,
        problems=problems,
    )


def _fps_between(first_pts: float | None, second_pts: float) -> float:
    step = second_pts - (first_pts or 0.0)
    return DEFAULT_FPS if step <= 0 else max(1.0, min(120.0, 1.0 / step))
