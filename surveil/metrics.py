"""Per-stage timings and per-stream byte counts, and the closing summary both commands print."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class StageTimer:
    """Wall-clock milliseconds spent per stage, summed over frames."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started

    def per_frame_ms(self, frames: int) -> dict[str, float]:
        return {name: 1000.0 * total / max(1, frames) for name, total in self.seconds.items()}


@dataclass
class StreamStats:
    """Bytes on the wire per stream (``bg``, ``meta`` and one per object class), whole packets counted."""

    bytes_by_stream: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    regions_by_class: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, stream: str, nbytes: int, regions: int = 0) -> None:
        self.bytes_by_stream[stream] += nbytes
        if regions:
            self.regions_by_class[stream] += regions

    def kbps(self, media_seconds: float) -> dict[str, float]:
        seconds = max(media_seconds, 1e-9)
        return {name: 8.0 * n / seconds / 1000.0 for name, n in sorted(self.bytes_by_stream.items())}

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes_by_stream.values())


def stream_of_topic(topic: str) -> str:
    """``cam1/obj/person`` -> ``person``; ``cam1/bg`` -> ``bg``; frame ends and stream ends count as ``meta``."""
    parts = topic.split("/")
    if len(parts) >= 3 and parts[1] == "obj":
        return parts[2]
    if len(parts) >= 2 and parts[1] == "bg":
        return "bg"
    return "meta"


def format_summary(
    title: str,
    frames: int,
    wall_seconds: float,
    media_seconds: float,
    stats: StreamStats,
    stage_ms: dict[str, float] | None = None,
) -> str:
    kbps = stats.kbps(media_seconds)
    lines = [
        f"{title}: {frames} frames in {wall_seconds:.1f} s ({frames / max(wall_seconds, 1e-9):.2f} fps), "
        f"{media_seconds:.2f} s of video",
        f"  total {8.0 * stats.total_bytes / max(media_seconds, 1e-9) / 1000.0:.1f} kbps ({stats.total_bytes} bytes)",
    ]
    for name, rate in kbps.items():
        regions = stats.regions_by_class.get(name, 0)
        extra = f", {regions} regions" if regions else ""
        lines.append(f"  {name:<10} {rate:10.1f} kbps  ({stats.bytes_by_stream[name]} bytes{extra})")
    if stage_ms:
        lines.append("  stage ms/frame: " + ", ".join(f"{k} {v:.1f}" for k, v in stage_ms.items()))
    return "\n".join(lines)
