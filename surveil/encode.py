"""The ``encode`` job: a source through the edge encoder to a ZeroMQ publisher and/or a recording."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from surveil.codecs.library import build_library
from surveil.config import Config
from surveil.edge import EdgeEncoder
from surveil.errors import SurveilError
from surveil.ingest import open_source
from surveil.metrics import StreamStats, format_summary, stream_of_topic
from surveil.paths import find_data
from surveil.regions.detector import RegionDetector
from surveil.stream import RecordingWriter, encode_packet
from surveil.types import Frame, Packet

logger = logging.getLogger(__name__)


@dataclass
class EncodeResult:
    frames: int
    wall_seconds: float
    media_seconds: float
    stats: StreamStats
    stage_ms: dict[str, float]
    regions_from_key: int = 0

    def summary(self) -> str:
        text = format_summary("encode", self.frames, self.wall_seconds, self.media_seconds, self.stats, self.stage_ms)
        return text + f"\n  regions shown by the background key (sent without payload): {self.regions_from_key}"


def resolve_input(uri: str) -> str:
    """URLs pass through; a path that exists is used as is; otherwise the data search path is tried."""
    if "://" in uri:
        return uri
    found = find_data(uri)
    if found is None:
        raise SurveilError(f"input not found: {uri}")
    return str(found)


class PacketSinks:
    """Where encoded packets go: a publisher, a recording, and the byte counters."""

    def __init__(self, publish: str | None, record: Path | None, wait_subscriber_s: float) -> None:
        self.stats = StreamStats()
        self.publisher = None
        self.recording: RecordingWriter | None = None
        if publish:  # bound before the recording is created, so a bad address leaves no empty recording behind
            from surveil.stream.transport import Publisher

            self.publisher = Publisher(publish)
        try:
            self.recording = RecordingWriter(record) if record else None
        except BaseException:
            self.close()
            raise
        waited = self.publisher is not None and wait_subscriber_s > 0
        if waited and not self.publisher.wait_for_subscriber(wait_subscriber_s):
            logger.warning("no subscriber after %.1f s on %s; publishing anyway", wait_subscriber_s, publish)

    def send(self, packet: Packet) -> None:
        parts = encode_packet(packet)
        regions = len(getattr(packet, "regions", ()))
        self.stats.add(stream_of_topic(parts[0].decode()), sum(len(p) for p in parts[1:]), regions)
        if self.publisher is not None:
            self.publisher.send(parts)
        if self.recording is not None:
            self.recording.write(parts)

    def close(self) -> None:
        try:
            if self.recording is not None:
                self.recording.close()
        finally:
            if self.publisher is not None:
                self.publisher.close()


def run_encode(
    config: Config,
    uri: str,
    publish: str | None = None,
    record: Path | None = None,
    max_frames: int | None = None,
    realtime: bool = False,
    wait_subscriber_s: float = 0.0,
    on_frame: Callable[[Frame], None] | None = None,
    progress: bool = False,
) -> EncodeResult:
    """Encode ``uri`` until it ends, ``max_frames`` are done or the user interrupts (Ctrl-C still closes cleanly)."""
    source_uri = resolve_input(uri)
    detector = RegionDetector(config)
    encoder = EdgeEncoder(config, detector, build_library(config))
    frames = 0
    fps = 0.0
    last: Frame | None = None
    started = time.monotonic()
    # The source opens first: a camera that does not answer leaves an earlier recording of the same name alone.
    with open_source(source_uri, config.camera, realtime=realtime) as source:
        sinks = PacketSinks(publish, record, wait_subscriber_s)
        try:
            fps = source.fps
            total = min(filter(None, (source.frame_count, max_frames)), default=None)
            with tqdm(total=total, disable=not progress, unit="frame", desc="encode", leave=False) as bar:
                for frame in source:
                    for packet in encoder.encode(frame):
                        sinks.send(packet)
                    if on_frame is not None:
                        on_frame(frame)
                    frames += 1
                    last = frame
                    bar.update(1)
                    if max_frames is not None and frames >= max_frames:
                        break
        except KeyboardInterrupt:
            logger.warning("interrupted after %d frames: closing the stream", frames)
        finally:
            try:
                for packet in encoder.finish():
                    sinks.send(packet)
            finally:
                sinks.close()
    media_seconds = (last.pts + 1.0 / fps) if last is not None and fps else 0.0
    media_seconds = max(media_seconds, frames / fps if fps else 0.0)
    stage_ms = encoder.timer.per_frame_ms(frames)
    elapsed = time.monotonic() - started
    return EncodeResult(frames, elapsed, media_seconds, sinks.stats, stage_ms, encoder.regions_from_key)
