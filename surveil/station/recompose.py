"""Station: packets in, recomposed frames out (decoded background with decoded objects pasted through their masks)."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from surveil.codecs.library import CodecLibrary, decode_canvas
from surveil.codecs.model import LATENT_STRIDE, STRINGS_PER_REGION
from surveil.errors import StreamError
from surveil.metrics import StageTimer
from surveil.regions.centring import paste_region, uncentre_region
from surveil.scene.coding import decode_picture
from surveil.types import BackgroundKey, EncodedRegion, FrameEnd, FrameRegions, Packet, StreamEnd

logger = logging.getLogger(__name__)


@dataclass
class RecomposedFrame:
    camera: str
    seq: int
    pts: float
    key_id: int
    image: np.ndarray
    regions: list[EncodedRegion]

    @property
    def image_md5(self) -> str:
        return hashlib.md5(np.ascontiguousarray(self.image).tobytes()).hexdigest()

    def describe(self) -> dict:
        """One JSON line of the events file."""
        return {
            "camera": self.camera,
            "seq": self.seq,
            "pts": round(self.pts, 4),
            "key_id": self.key_id,
            "md5": self.image_md5,
            "regions": [
                {
                    "id": r.region_id,
                    "label": r.label,
                    "class": r.codec_class,
                    "score": round(r.score, 4),
                    "box": list(r.box),
                    "parent": r.parent_id,
                    "mask_pixels": int(r.mask.sum()),
                    "codec": r.codec.key,
                    "bytes": r.payload_bytes,
                    "from_key": not r.strings,
                }
                for r in self.regions
            ],
        }


@dataclass
class _CameraState:
    keys: dict[int, np.ndarray] = field(default_factory=dict)  # key_id -> decoded picture, latest few by arrival
    pending: dict[int, list[FrameRegions]] = field(default_factory=lambda: defaultdict(list))
    last_seq: int = -1
    ended: bool = False


class Recomposer:
    """Feeds on packets in stream order; returns a frame each time a frame's end arrives.

    ``wanted(camera, codec_class)`` says which region streams this station subscribed to: a frame whose end announces
    regions of a wanted class that did not all arrive (a publisher drops packets when a subscriber lags) is still
    recomposed, and counted in ``incomplete_frames``.
    """

    KEYS_KEPT = 2

    def __init__(self, library: CodecLibrary, wanted: Callable[[str, str], bool] | None = None) -> None:
        self.library = library
        self.wanted = wanted or (lambda camera, codec_class: True)
        self.timer = StageTimer()
        self.cameras: dict[str, _CameraState] = defaultdict(_CameraState)
        self.frames_without_key = 0
        self.incomplete_frames = 0
        self.restarts = 0

    @property
    def all_ended(self) -> bool:
        return bool(self.cameras) and all(state.ended for state in self.cameras.values())

    def feed(self, packet: Packet) -> RecomposedFrame | None:
        state = self.cameras[packet.camera]
        if isinstance(packet, BackgroundKey):
            with self.timer.stage("background"):
                picture = decode_picture(packet.payload, packet.width, packet.height, packet.codec)
            state.keys.pop(packet.key_id, None)  # a restarted edge numbers its keys from 0 again: newest wins
            state.keys[packet.key_id] = picture
            while len(state.keys) > self.KEYS_KEPT:
                del state.keys[next(iter(state.keys))]
        elif isinstance(packet, FrameRegions):
            state.pending[packet.seq].append(packet)
        elif isinstance(packet, FrameEnd):
            return self._recompose(state, packet)
        elif isinstance(packet, StreamEnd):
            state.ended = True
        return None

    def _recompose(self, state: _CameraState, end: FrameEnd) -> RecomposedFrame | None:
        if end.seq <= state.last_seq:  # the edge restarted without a stream end: what is pending is from before
            self.restarts += 1
            logger.warning("%s restarted (frame %d after %d)", end.camera, end.seq, state.last_seq)
            state.pending = defaultdict(list, {end.seq: state.pending.get(end.seq, [])})
        state.last_seq = end.seq
        state.ended = False
        groups = state.pending.pop(end.seq, [])
        for stale in [seq for seq in state.pending if seq < end.seq]:  # their frame end was lost
            del state.pending[stale]
        key = state.keys.get(end.key_id)
        if key is None:
            self.frames_without_key += 1
            logger.debug("frame %d of %s needs background key %d, not received yet", end.seq, end.camera, end.key_id)
            return None
        image = key.copy()
        regions = [region for group in groups for region in group.regions]
        received = Counter(group.codec_class for group in groups for _ in group.regions)
        if any(received[c] != n for c, n in end.region_counts.items() if n and self.wanted(end.camera, c)):
            self.incomplete_frames += 1
        with self.timer.stage("regions"):
            for region in regions:
                if not region.strings:  # the key picture already shows it
                    continue
                _check_region(region, image.shape)
                codec = self.library.by_id(region.codec)
                canvas = decode_canvas(codec, region.strings, region.latent_shape)
                paste_region(image, region.box, region.mask, uncentre_region(canvas, region.placement))
        return RecomposedFrame(end.camera, end.seq, end.pts, end.key_id, image, regions)


def _check_region(region: EncodedRegion, frame_shape: tuple[int, ...]) -> None:
    """What the wire format cannot check alone: the region fits the frame and its strings fit its codec."""
    x0, y0, x1, y1 = region.box
    height, width = frame_shape[:2]
    latent_h, latent_w = region.latent_shape
    canvas_w, canvas_h = region.placement.canvas
    where = f"region {region.region_id} ({region.codec_class})"
    if x1 > width or y1 > height:
        raise StreamError(f"{where}: box {region.box} outside the {width}x{height} frame")
    px0, py0, px1, py1 = region.placement.box
    if (px1 - px0, py1 - py0) != (x1 - x0, y1 - y0):
        raise StreamError(f"{where}: placement box {region.placement.box} is not the size of its box {region.box}")
    if (canvas_w, canvas_h) != (latent_w * LATENT_STRIDE, latent_h * LATENT_STRIDE):
        raise StreamError(f"{where}: canvas {canvas_w}x{canvas_h} does not match latent shape {region.latent_shape}")
    if len(region.strings) != STRINGS_PER_REGION:
        raise StreamError(f"{where}: {len(region.strings)} codec strings, expected {STRINGS_PER_REGION}")
