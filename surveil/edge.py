"""The edge encoder: frames in, region-stream packets out (background keys, per-class regions, frame ends)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from surveil.codecs.library import CodecLibrary, encode_canvases
from surveil.config import Config
from surveil.metrics import StageTimer
from surveil.regions.centring import canvas_mask, centre_region
from surveil.regions.detector import RegionDetector
from surveil.scene.background import BackgroundModel
from surveil.scene.coding import decode_picture, encode_picture
from surveil.types import (
    BackgroundKey,
    EncodedRegion,
    Frame,
    FrameEnd,
    FrameRegions,
    Packet,
    Placement,
    Region,
    StreamEnd,
)

logger = logging.getLogger(__name__)


@dataclass
class _KeyState:
    key_id: int = -1
    pts: float = float("-inf")
    picture: np.ndarray | None = None  # the background estimate the key was made from
    decoded: np.ndarray | None = None  # what a station sees: the key after coding
    observed_fraction: float = 0.0


class EdgeEncoder:
    """Turns each frame into the packets that describe it; stateful only through the background model."""

    CHANGE_CHECK_EVERY = 10  # frames between checks of how far the background drifted from the last key

    def __init__(self, config: Config, detector: RegionDetector, library: CodecLibrary) -> None:
        self.config = config
        self.detector = detector
        self.library = library
        settings = config.background
        self.background = BackgroundModel(settings.learning_rate, settings.still_frames, settings.still_level)
        self.timer = StageTimer()
        self.regions_from_key = 0  # regions sent without payload because the key already shows them
        self._key = _KeyState()
        self._last: Frame | None = None

    def encode(self, frame: Frame) -> list[Packet]:
        with self.timer.stage("detect"):
            regions = self.detector.detect(frame)
        packets: list[Packet] = []
        with self.timer.stage("background"):
            self.background.update(frame.image, _foreground(frame, regions))
            if self._key_due(frame):
                packets.append(self._make_key(frame))
        with self.timer.stage("regions"):
            by_class = self._encode_regions(frame, regions)
        packets += [FrameRegions(frame.camera, frame.seq, frame.pts, cls, encoded) for cls, encoded in by_class.items()]
        packets.append(
            FrameEnd(
                camera=frame.camera,
                seq=frame.seq,
                pts=frame.pts,
                width=frame.size[0],
                height=frame.size[1],
                key_id=self._key.key_id,
                region_counts={cls: len(encoded) for cls, encoded in by_class.items()},
            )
        )
        self._last = frame
        return packets

    def finish(self) -> list[Packet]:
        if self._last is None:
            return []
        return [StreamEnd(self._last.camera, self._last.seq, self._last.pts)]

    def _key_due(self, frame: Frame) -> bool:
        settings = self.config.background
        if self._key.picture is None or frame.pts - self._key.pts >= settings.refresh_s:
            return True
        if frame.seq % self.CHANGE_CHECK_EVERY:
            return False
        newly_observed = self.background.observed_fraction - self._key.observed_fraction
        if newly_observed > 0.02:
            return True
        changed = cv2.absdiff(self.background.picture(), self._key.picture).max(axis=2) > settings.change_threshold
        return float(changed.mean()) >= settings.change_fraction

    def _make_key(self, frame: Frame) -> BackgroundKey:
        settings = self.config.background
        picture = self.background.picture()
        payload = encode_picture(picture, settings.codec, settings.crf, settings.preset)
        decoded = decode_picture(payload, frame.size[0], frame.size[1], settings.codec)
        self._key = _KeyState(self._key.key_id + 1, frame.pts, picture, decoded, self.background.observed_fraction)
        logger.debug("background key %d at frame %d: %d bytes", self._key.key_id, frame.seq, len(payload))
        return BackgroundKey(
            camera=frame.camera,
            seq=frame.seq,
            pts=frame.pts,
            key_id=self._key.key_id,
            width=frame.size[0],
            height=frame.size[1],
            codec=settings.codec,
            payload=payload,
        )

    def _shown_by_key(self, frame: Frame, region: Region) -> bool:
        """Whether the current key picture already shows this region's pixels (a parked car, a still bag)."""
        level = self.config.codec.reuse_key_below
        if level <= 0 or self._key.decoded is None:
            return False
        x0, y0, x1, y1 = region.box
        now = frame.image[y0:y1, x0:x1][region.mask].astype(np.int16)
        key = self._key.decoded[y0:y1, x0:x1][region.mask].astype(np.int16)
        return float(np.abs(now - key).mean()) < level

    def _encode_regions(self, frame: Frame, regions: list[Region]) -> dict[str, list[EncodedRegion]]:
        by_codec: dict[str, list[tuple[Region, np.ndarray, Placement]]] = {}
        for region in regions:
            canvas, placement = centre_region(frame.image, region.box, region.mask, self.config.crops)
            by_codec.setdefault(region.codec_class, []).append((region, canvas, placement))
        encoded: dict[str, list[EncodedRegion]] = {}
        for codec_class, items in by_codec.items():
            codec = self.library.codec_for(codec_class)
            from_key = [self._shown_by_key(frame, region) for region, _, _ in items]
            self.regions_from_key += sum(from_key)
            to_code = [
                (canvas, region, placement)
                for (region, canvas, placement), k in zip(items, from_key, strict=True)
                if not k
            ]
            steps = self.config.codec.refine_steps
            masks = [canvas_mask(region.mask, placement) for _, region, placement in to_code] if steps else None
            sent = iter(encode_canvases(codec, [canvas for canvas, _, _ in to_code], masks, steps))
            coded = [([], (0, 0)) if k else next(sent) for k in from_key]
            encoded[codec_class] = [
                EncodedRegion(
                    region_id=region.region_id,
                    label=region.label,
                    codec_class=codec_class,
                    score=region.score,
                    box=region.box,
                    mask=region.mask,
                    placement=placement,
                    codec=codec.codec_id,
                    latent_shape=shape,
                    strings=strings,
                    track_id=region.track_id,
                    parent_id=region.parent_id,
                )
                for (region, _, placement), (strings, shape) in zip(items, coded, strict=True)
            ]
        return encoded


def _foreground(frame: Frame, regions: list[Region]) -> np.ndarray:
    mask = np.zeros(frame.image.shape[:2], dtype=bool)
    for region in regions:
        x0, y0, x1, y1 = region.box
        mask[y0:y1, x0:x1] |= region.mask
    return mask
