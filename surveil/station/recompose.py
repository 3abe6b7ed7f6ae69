"""Station: packets in, recomposed frames out (decoded background with decoded objects pasted through their masks)."""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from surveil.codecs.library import CodecLibrary, decode_canvas
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
    keys: dict[int, np.ndarray] = field(default_factory=dict)  # key_id -> decoded picture (latest few)
    pending: dict[int, list[FrameRegions]] = field(default_factory=lambda: defaultdict(list))
    ended: bool = False


class Recomposer:
    """Feeds on packets in stream order; returns a frame each time a frame's end arrives."""

    KEYS_KEPT = 2

    def __init__(self, library: CodecLibrary) -> None:
        self.library = library
        self.timer = StageTimer()
        self.cameras: dict[str, _CameraState] = defaultdict(_CameraState)
        self.frames_without_key = 0

    @property
    def all_ended(self) -> bool:
        return bool(self.cameras) and all(state.ended for state in self.cameras.values())

    def feed(self, packet: Packet) -> RecomposedFrame | None:
        state = self.cameras[packet.camera]
        if isinstance(packet, BackgroundKey):
            with self.timer.stage("background"):
                state.keys[packet.key_id] = decode_picture(packet.payload, packet.width, packet.height, packet.codec)
            for old in sorted(state.keys)[: -self.KEYS_KEPT]:
                del state.keys[old]
        elif isinstance(packet, FrameRegions):
            state.pending[packet.seq].append(packet)
        elif isinstance(packet, FrameEnd):
            return self._recompose(state, packet)
        elif isinstance(packet, StreamEnd):
            state.ended = True
        return None

    def _recompose(self, state: _CameraState, end: FrameEnd) -> RecomposedFrame | None:
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
        with self.timer.stage("regions"):
            for region in regions:
                if not region.strings:  # the key picture already shows it
                    continue
                codec = self.library.by_id(region.codec)
                canvas = decode_canvas(codec, region.strings, region.latent_shape)
                paste_region(image, region.box, region.mask, uncentre_region(canvas, region.placement))
        return RecomposedFrame(end.camera, end.seq, end.pts, end.key_id, image, regions)
