"""The typed values that flow between stages (edge and station share them).

Pixels are RGB ``uint8`` arrays shaped ``(height, width, 3)``. Boxes are ``(x0, y0, x1, y1)`` in frame pixels with
exclusive upper bounds, so ``x1 - x0`` is the width.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Frame:
    """One decoded picture from a source."""

    camera: str
    seq: int
    pts: float  # seconds since the start of the source
    image: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass
class Region:
    """One detected object: its class, where it is and which pixels belong to it."""

    region_id: int
    label: str  # detector's class name (COCO), e.g. "car"
    codec_class: str  # codec family the label maps to, e.g. "vehicle"
    score: float
    box: Box
    mask: np.ndarray  # bool, shaped (y1 - y0, x1 - x0): True where the pixel belongs to this region
    track_id: int | None = None
    parent_id: int | None = None


@dataclass(frozen=True)
class Placement:
    """How a region's box was centred into the codec canvas, so the station can invert it.

    The box content was resized by ``scale`` to ``(round(w * scale), round(h * scale))`` and pasted with its top-left
    corner at ``offset`` in a canvas of ``canvas`` (width, height).
    """

    box: Box
    scale: float
    canvas: tuple[int, int]
    offset: tuple[int, int]

    @property
    def scaled_size(self) -> tuple[int, int]:
        x0, y0, x1, y1 = self.box
        return max(1, round((x1 - x0) * self.scale)), max(1, round((y1 - y0) * self.scale))


@dataclass(frozen=True)
class CodecId:
    """Identity of a learned codec: a station must hold exactly these weights to decode."""

    arch: str  # e.g. "msh-n64m96" (mean-scale hyperprior, channel counts)
    codec_class: str  # class the weights were trained for, e.g. "person" or "generic"
    quality: int  # 1 (smallest) upwards
    weights_sha: str  # first 16 hex digits of the weight file's sha256

    @property
    def key(self) -> str:
        return f"{self.arch}/{self.codec_class}/q{self.quality}/{self.weights_sha}"


@dataclass
class EncodedRegion:
    """A region as it travels: signalling plus the learned codec's bitstream."""

    region_id: int
    label: str
    codec_class: str
    score: float
    box: Box
    mask: np.ndarray  # bool, box-sized
    placement: Placement
    codec: CodecId
    latent_shape: tuple[int, int]  # hyper-latent (z) spatial shape, needed to decode
    strings: list[bytes]  # entropy-coded strings, one per latent level (y, z)
    track_id: int | None = None
    parent_id: int | None = None

    @property
    def payload_bytes(self) -> int:
        return sum(len(s) for s in self.strings)


@dataclass
class BackgroundKey:
    """A background picture coded on its own with a conventional codec (decodable without any other packet)."""

    camera: str
    seq: int  # frame sequence number at which this key was made
    pts: float
    key_id: int  # increases by one at each refresh
    width: int
    height: int
    codec: str  # PyAV codec name, e.g. "libx264"
    payload: bytes


@dataclass
class FrameRegions:
    """All regions of one class in one frame: one packet on the wire, under topic ``<camera>/obj/<class>``."""

    camera: str
    seq: int
    pts: float
    codec_class: str
    regions: list[EncodedRegion] = field(default_factory=list)


@dataclass
class FrameEnd:
    """Closes a frame: what a station needs to recompose it (size, background key, which classes were sent)."""

    camera: str
    seq: int
    pts: float
    width: int
    height: int
    key_id: int
    region_counts: dict[str, int] = field(default_factory=dict)  # codec class -> regions sent this frame


@dataclass
class StreamEnd:
    """No more packets from this camera; sent when the encoder stops."""

    camera: str
    seq: int
    pts: float


Packet = BackgroundKey | FrameRegions | FrameEnd | StreamEnd
