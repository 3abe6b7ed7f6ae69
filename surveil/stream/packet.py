"""The versioned, checksummed binary wire format of packets as ZeroMQ multipart messages (wire version 2).

A packet travels as ``[topic, header, *payloads]``. This docstring is the specification; a station written in another
language implements it from here.

Notation: every integer is big-endian; ``u8``/``u16``/``u32`` are unsigned, ``i32`` is two's complement; ``f64`` is
an IEEE 754 binary64, big-endian; ``str`` is a ``u8`` byte count ``n`` then ``n`` bytes of UTF-8 (so at most 255
bytes, and the empty string is ``00``). Fields follow each other with no padding or alignment.

Topic (part 0)
    UTF-8 ``<camera>/bg`` (BackgroundKey), ``<camera>/obj/<codec_class>`` (FrameRegions), ``<camera>/frame``
    (FrameEnd) or ``<camera>/end`` (StreamEnd), so subscribers can filter by prefix. Camera and codec class names are
    non-empty and contain no ``/``. The topic only repeats names held in the body: a receiver rebuilds it from the
    decoded packet and rejects the packet when the two differ.

Header (part 1)
    ======  ====  ==========================================================================================
    offset  type  field
    ======  ====  ==========================================================================================
    0       u8    wire version: 2 (a receiver rejects any other value)
    1       u8    kind: 1 BackgroundKey, 2 FrameRegions, 3 FrameEnd, 4 StreamEnd (any other value is rejected)
    2       u32   CRC-32 of the packet, see below
    6       ...   body: the rest of the header, laid out by kind as below
    ======  ====  ==========================================================================================

    The CRC-32 is zlib's (the ISO-HDLC CRC: reflected polynomial 0xEDB88320, initial value and final XOR 0xFFFFFFFF;
    Python's ``zlib.crc32``) computed over, in order: header bytes 0 and 1, the body, then for each payload part its
    length as a ``u32`` followed by its bytes. So a changed bit anywhere in the header or the payloads, a payload moved
    across a part boundary, or an added or missing part all fail the check. The topic is not covered (see above).

    A body must be consumed exactly: a body that ends early or has bytes left over is rejected.

Every body starts with the same three fields::

    camera  str    camera name
    seq     u32    frame sequence number
    pts     f64    presentation time in seconds since the start of the source; finite

BackgroundKey (kind 1), then exactly one payload part, the picture's bitstream::

    key_id  u32    increases by one at each refresh
    width   u16    picture width in pixels
    height  u16    picture height in pixels
    codec   str    PyAV codec name of the bitstream, e.g. "libx264"

FrameRegions (kind 2)::

    codec_class  str   codec class of every region in the packet (regions do not repeat it)
    n_codecs     u8    then n_codecs codec table entries:
        arch         str   e.g. "msh-n64m96"
        codec_class  str   class the weights were trained for (may differ from the packet's, e.g. "generic")
        quality      u8
        weights_sha  8 bytes: the 16 lowercase hex digits of the weights' sha256 prefix, as raw bytes
    n_labels     u8    then n_labels label table entries, each a str (detector class name, e.g. "person")
    n_regions    u16   then n_regions region records

A region record is 28 fixed bytes followed by the optional fields its flags announce::

    region_id    u16
    label        u8        index into the label table
    codec        u8        index into the codec table
    flags        u8        bit 0x01 placement box, 0x02 scale, 0x04 track_id, 0x08 parent_id; other bits must be 0
    score        u16       detector score in [0, 1] as round(score * 65535); decoded as score / 65535
    box          4 x u16   x0, y0, x1, y1 in frame pixels, upper bounds exclusive; x0 <= x1 and y0 <= y1
    canvas       2 x u16   codec canvas width, height
    offset       2 x u16   x, y of the scaled box content's top-left corner in the canvas
    latent_shape 2 x u16   hyper-latent spatial shape, as the codec reports it
    n_strings    u8        number of entropy-coded strings of this region
    [placement box 4 x u16]  if flags & 0x01; otherwise the placement box equals box; x0 <= x1 and y0 <= y1
    [scale       f64]        if flags & 0x02, finite and > 0; otherwise the scale is exactly 1.0
    [track_id    i32]        if flags & 0x04; otherwise there is none
    [parent_id   i32]        if flags & 0x08; otherwise there is none

The placement must fit its canvas: with ``(w, h)`` the placement box size and the scaled size
``(max(1, round(w * scale)), max(1, round(h * scale)))`` (round half to even, as Python's ``round``),
``offset + scaled size <= canvas`` on both axes.

The payload parts of a FrameRegions packet are, for each region in record order, its mask then its ``n_strings``
strings, so there are exactly ``sum(1 + n_strings)`` of them. The mask is the region's boolean pixel mask of shape
``(y1 - y0, x1 - x0)`` (from ``box``), packed row-major eight pixels per byte with the first pixel in the most
significant bit, the last byte zero-padded, then zlib-compressed (RFC 1950); see :mod:`surveil.stream.mask`. The
strings are the learned codec's bitstreams, opaque here.

FrameEnd (kind 3), then no payload parts::

    width     u16   frame width in pixels
    height    u16   frame height in pixels
    key_id    u32   background key the frame is recomposed over
    n_counts  u8    then n_counts pairs, class names distinct:
        codec_class  str
        count        u16   regions of that class sent for this frame

StreamEnd (kind 4): the three common fields only, then no payload parts.

A sender refuses (StreamError) a packet it cannot represent exactly: a value out of its field's range, a string over
255 bytes, a non-finite float, a mask whose shape is not the box size, a region whose codec class is not the packet's.
"""

from __future__ import annotations

import logging
import math
import operator
import struct
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from surveil.errors import StreamError
from surveil.stream.mask import decode_mask, encode_mask
from surveil.types import (
    BackgroundKey,
    Box,
    CodecId,
    EncodedRegion,
    FrameEnd,
    FrameRegions,
    Packet,
    Placement,
    StreamEnd,
)

logger = logging.getLogger(__name__)

WIRE_VERSION = 2

KIND_BACKGROUND = 1
KIND_REGIONS = 2
KIND_FRAME_END = 3
KIND_STREAM_END = 4

_KIND_NAMES = {
    KIND_BACKGROUND: "BackgroundKey",
    KIND_REGIONS: "FrameRegions",
    KIND_FRAME_END: "FrameEnd",
    KIND_STREAM_END: "StreamEnd",
}

_HEADER = struct.Struct(">BBI")
_U32 = struct.Struct(">I")
# region_id, label index, codec index, flags, score, box (4), canvas (2), offset (2), latent_shape (2), n_strings
_REGION = struct.Struct(">HBBBH4H2H2H2HB")
_BOX = struct.Struct(">4H")
_SCALE = struct.Struct(">d")
_ID = struct.Struct(">i")

FLAG_PLACEMENT_BOX = 0x01
FLAG_SCALE = 0x02
FLAG_TRACK_ID = 0x04
FLAG_PARENT_ID = 0x08
_KNOWN_FLAGS = FLAG_PLACEMENT_BOX | FLAG_SCALE | FLAG_TRACK_ID | FLAG_PARENT_ID

SCORE_SCALE = 65535
SHA_HEX_DIGITS = 16

_RANGES = {
    "B": (0, 0xFF),
    "H": (0, 0xFFFF),
    "I": (0, 0xFFFF_FFFF),
    "i": (-0x8000_0000, 0x7FFF_FFFF),
}
_HEX = frozenset("0123456789abcdef")


def _check_name(what: str, name: str) -> str:
    # Topics are matched by prefix, so a '/' inside a name would let one camera's topics shadow another's.
    if not isinstance(name, str) or not name or "/" in name:
        raise StreamError(f"{what} {name!r} cannot appear in a topic: it must be a non-empty string without '/'")
    return name


def camera_topic(camera: str, stream: str) -> str:
    """The topic of one of a camera's streams without a class: ``bg``, ``frame`` or ``end``."""
    return f"{_check_name('camera', camera)}/{stream}"


def region_topic(camera: str, codec_class: str) -> str:
    """The topic of a camera's regions of one codec class."""
    return f"{_check_name('camera', camera)}/obj/{_check_name('codec class', codec_class)}"


def topic_of(packet: Packet) -> str:
    """The topic a packet is published under."""
    if isinstance(packet, BackgroundKey):
        return camera_topic(packet.camera, "bg")
    if isinstance(packet, FrameRegions):
        return region_topic(packet.camera, packet.codec_class)
    if isinstance(packet, FrameEnd):
        return camera_topic(packet.camera, "frame")
    if isinstance(packet, StreamEnd):
        return camera_topic(packet.camera, "end")
    raise TypeError(f"not a packet: {type(packet).__name__}")


def _crc(prefix: bytes, body: bytes, payloads: Sequence[bytes]) -> int:
    crc = zlib.crc32(body, zlib.crc32(prefix))
    for payload in payloads:
        crc = zlib.crc32(payload, zlib.crc32(_U32.pack(len(payload)), crc))
    return crc


def _check_geometry(box: Box, placement: Placement) -> None:
    """Box ordering and the placement fitting its canvas; raises StreamError without a location prefix."""
    for what, (x0, y0, x1, y1) in (("box", box), ("placement box", placement.box)):
        if x0 > x1 or y0 > y1:
            raise StreamError(f"{what} {(x0, y0, x1, y1)} is inverted (needs x0 <= x1 and y0 <= y1)")
    if not (math.isfinite(placement.scale) and placement.scale > 0):
        raise StreamError(f"placement scale {placement.scale!r} should be a finite number above 0")
    try:
        scaled_w, scaled_h = placement.scaled_size
    except OverflowError:
        raise StreamError(f"placement scale {placement.scale!r} overflows the scaled size") from None
    (off_x, off_y), (canvas_w, canvas_h) = placement.offset, placement.canvas
    if off_x + scaled_w > canvas_w or off_y + scaled_h > canvas_h:
        raise StreamError(
            f"placement does not fit its canvas: scaled size {scaled_w}x{scaled_h} at offset ({off_x}, {off_y}) "
            f"in a {canvas_w}x{canvas_h} canvas"
        )


# --- encoding -------------------------------------------------------------------------------------------------------


def _int(what: str, value: Any, code: str) -> int:
    try:
        n = operator.index(value)
    except TypeError:
        raise StreamError(f"{what} should be an integer, got {value!r:.80}") from None
    lo, hi = _RANGES[code]
    if not lo <= n <= hi:
        raise StreamError(f"{what} {n} is outside the wire range {lo}..{hi}")
    return n


def _ints(what: str, values: Any, n: int, code: str) -> tuple[int, ...]:
    try:
        items = tuple(values)
    except TypeError:
        raise StreamError(f"{what} should be {n} integers, got {values!r:.80}") from None
    if len(items) != n:
        raise StreamError(f"{what} should be {n} integers, got {len(items)}")
    return tuple(_int(what, v, code) for v in items)


def _float(what: str, value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise StreamError(f"{what} should be a number, got {value!r:.80}") from None
    if not math.isfinite(x):
        raise StreamError(f"{what} {x} is not finite")
    return x


def _str(what: str, value: Any) -> bytes:
    if not isinstance(value, str):
        raise StreamError(f"{what} should be a string, got {type(value).__name__}")
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise StreamError(f"{what} {value!r:.80} cannot be encoded as UTF-8: {e.reason}") from None
    if len(raw) > 0xFF:
        raise StreamError(f"{what} {value!r:.40} is {len(raw)} bytes of UTF-8, more than the 255 the wire allows")
    return bytes([len(raw)]) + raw


def _as_bytes(what: str, data: Any) -> bytes:
    if isinstance(data, bytes):
        return data
    try:
        return bytes(memoryview(data))
    except TypeError:
        raise StreamError(f"{what} should be bytes, got {type(data).__name__}") from None


def _common(packet: Packet) -> bytes:
    return (
        _str("camera", packet.camera)
        + struct.pack(">I", _int("seq", packet.seq, "I"))
        + _SCALE.pack(_float("pts", packet.pts))
    )


def _codec_entry(codec: Any, where: str) -> bytes:
    if not isinstance(codec, CodecId):
        raise StreamError(f"{where}: codec should be a CodecId, got {type(codec).__name__}")
    sha = codec.weights_sha
    if not isinstance(sha, str) or len(sha) != SHA_HEX_DIGITS or not set(sha) <= _HEX:
        raise StreamError(f"{where}: codec weights_sha {sha!r:.40} should be {SHA_HEX_DIGITS} lowercase hex digits")
    return (
        _str(f"{where}: codec arch", codec.arch)
        + _str(f"{where}: codec class", codec.codec_class)
        + bytes([_int(f"{where}: codec quality", codec.quality, "B")])
        + bytes.fromhex(sha)
    )


def _table_index(table: dict[bytes, int], entry: bytes, what: str) -> int:
    """Index of ``entry`` in a per-packet table (u8 count, so at most 255 entries), adding it if new."""
    if entry not in table:
        if len(table) == 0xFF:
            raise StreamError(f"more than 255 distinct {what} in one packet")
        table[entry] = len(table)
    return table[entry]


def _encode_region(
    region: EncodedRegion, codec_class: str, codecs: dict[bytes, int], labels: dict[bytes, int]
) -> tuple[bytes, list[bytes]]:
    """One region's record and payload parts; the codec and label tables grow as needed."""
    region_id = _int("region_id", region.region_id, "H")
    where = f"region {region_id}"
    if region.codec_class != codec_class:
        raise StreamError(
            f"{where} has codec class {region.codec_class!r} but the packet carries {codec_class!r} "
            "(one FrameRegions packet holds one class)"
        )
    box = _ints(f"{where}: box", region.box, 4, "H")
    p = region.placement
    if not isinstance(p, Placement):
        raise StreamError(f"{where}: placement should be a Placement, got {type(p).__name__}")
    placement = Placement(
        box=_ints(f"{where}: placement box", p.box, 4, "H"),  # type: ignore[arg-type]
        scale=_float(f"{where}: placement scale", p.scale),
        canvas=_ints(f"{where}: placement canvas", p.canvas, 2, "H"),  # type: ignore[arg-type]
        offset=_ints(f"{where}: placement offset", p.offset, 2, "H"),  # type: ignore[arg-type]
    )
    try:
        _check_geometry(box, placement)  # type: ignore[arg-type]
    except StreamError as e:
        raise StreamError(f"{where}: {e}") from None
    mask = region.mask
    expected_shape = (box[3] - box[1], box[2] - box[0])
    if not hasattr(mask, "shape") or tuple(mask.shape) != expected_shape:
        shape = getattr(mask, "shape", type(mask).__name__)
        raise StreamError(f"{where}: mask shape {shape} should be the box size (height, width) {expected_shape}")
    score = _float(f"{where}: score", region.score)
    if not 0.0 <= score <= 1.0:
        raise StreamError(f"{where}: score {score} is outside [0, 1]")
    strings = [_as_bytes(f"{where}: string", s) for s in region.strings]
    flags = 0
    tail = b""
    if placement.box != box:
        flags |= FLAG_PLACEMENT_BOX
        tail += _BOX.pack(*placement.box)
    if placement.scale != 1.0:
        flags |= FLAG_SCALE
        tail += _SCALE.pack(placement.scale)
    if region.track_id is not None:
        flags |= FLAG_TRACK_ID
        tail += _ID.pack(_int(f"{where}: track_id", region.track_id, "i"))
    if region.parent_id is not None:
        flags |= FLAG_PARENT_ID
        tail += _ID.pack(_int(f"{where}: parent_id", region.parent_id, "i"))
    record = _REGION.pack(
        region_id,
        _table_index(labels, _str(f"{where}: label", region.label), "labels"),
        _table_index(codecs, _codec_entry(region.codec, where), "codecs"),
        flags,
        round(score * SCORE_SCALE),
        *box,
        *placement.canvas,
        *placement.offset,
        *_ints(f"{where}: latent_shape", region.latent_shape, 2, "H"),
        _int(f"{where}: number of strings", len(strings), "B"),
    )
    return record + tail, [encode_mask(mask), *strings]


def _body(packet: Packet) -> tuple[int, bytes, list[bytes]]:
    """(kind, body, payloads) of a packet."""
    if isinstance(packet, BackgroundKey):
        body = (
            _common(packet)
            + struct.pack(
                ">IHH",
                _int("key_id", packet.key_id, "I"),
                _int("width", packet.width, "H"),
                _int("height", packet.height, "H"),
            )
            + _str("codec", packet.codec)
        )
        return KIND_BACKGROUND, body, [_as_bytes("payload", packet.payload)]
    if isinstance(packet, FrameRegions):
        codecs: dict[bytes, int] = {}
        labels: dict[bytes, int] = {}
        records: list[bytes] = []
        payloads: list[bytes] = []
        for region in packet.regions:
            record, parts = _encode_region(region, packet.codec_class, codecs, labels)
            records.append(record)
            payloads.extend(parts)
        body = b"".join(
            [
                _common(packet),
                _str("codec_class", packet.codec_class),
                bytes([len(codecs)]),
                *codecs,
                bytes([len(labels)]),
                *labels,
                struct.pack(">H", _int("number of regions", len(records), "H")),
                *records,
            ]
        )
        return KIND_REGIONS, body, payloads
    if isinstance(packet, FrameEnd):
        if not isinstance(packet.region_counts, Mapping):
            raise StreamError(f"region_counts should be a mapping, got {type(packet.region_counts).__name__}")
        pairs = [
            _str("region_counts class", name) + struct.pack(">H", _int(f"region count of {name!r}", count, "H"))
            for name, count in packet.region_counts.items()
        ]
        body = b"".join(
            [
                _common(packet),
                struct.pack(
                    ">HHI",
                    _int("width", packet.width, "H"),
                    _int("height", packet.height, "H"),
                    _int("key_id", packet.key_id, "I"),
                ),
                bytes([_int("number of region_counts classes", len(pairs), "B")]),
                *pairs,
            ]
        )
        return KIND_FRAME_END, body, []
    if isinstance(packet, StreamEnd):
        return KIND_STREAM_END, _common(packet), []
    raise TypeError(f"not a packet: {type(packet).__name__}")


def encode_packet(packet: Packet) -> list[bytes]:
    """Serialise a packet into multipart parts ``[topic, header, *payloads]``."""
    topic = topic_of(packet)
    try:
        kind, body, payloads = _body(packet)
    except StreamError as e:
        raise StreamError(f"cannot encode {topic} packet: {e}") from None
    prefix = bytes([WIRE_VERSION, kind])
    header = _HEADER.pack(WIRE_VERSION, kind, _crc(prefix, body, payloads)) + body
    return [topic.encode("utf-8"), header, *payloads]


# --- decoding -------------------------------------------------------------------------------------------------------


class _Reader:
    """Sequential typed reads from a body; every failure is a StreamError naming the field and where it is."""

    def __init__(self, body: bytes, where: str) -> None:
        self.body = body
        self.pos = 0
        self.where = where

    def error(self, message: str) -> StreamError:
        return StreamError(f"{self.where}: {message}")

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.body):
            left = len(self.body) - self.pos
            raise self.error(f"signalling truncated: {what} needs {n} bytes at body offset {self.pos}, {left} left")
        data = self.body[self.pos : self.pos + n]
        self.pos += n
        return data

    def unpack(self, fmt: struct.Struct, what: str) -> tuple[Any, ...]:
        return fmt.unpack(self.take(fmt.size, what))

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return int.from_bytes(self.take(2, what), "big")

    def u32(self, what: str) -> int:
        return int.from_bytes(self.take(4, what), "big")

    def i32(self, what: str) -> int:
        return int.from_bytes(self.take(4, what), "big", signed=True)

    def f64(self, what: str) -> float:
        (x,) = self.unpack(_SCALE, what)
        if not math.isfinite(x):
            raise self.error(f"{what} {x} is not finite")
        return float(x)

    def string(self, what: str) -> str:
        raw = self.take(self.u8(f"length of {what}"), what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise self.error(f"{what} is not valid UTF-8 ({e.reason} at byte {e.start}): {raw[:40]!r}") from None

    def done(self) -> None:
        if self.pos != len(self.body):
            left = len(self.body) - self.pos
            raise self.error(f"{left} trailing bytes after the signalling (body offset {self.pos})")


def _expect_payloads(what: str, payloads: list[bytes], n: int) -> None:
    if len(payloads) != n:
        raise StreamError(f"{what} packet should carry {n} payload parts, got {len(payloads)}")


def _decode_regions(r: _Reader, camera: str, seq: int, pts: float, payloads: list[bytes]) -> FrameRegions:
    codec_class = r.string("codec_class")
    codecs = []
    for i in range(r.u8("number of codecs")):
        what = f"codec table entry {i}"
        codecs.append(
            CodecId(
                arch=r.string(f"{what} arch"),
                codec_class=r.string(f"{what} class"),
                quality=r.u8(f"{what} quality"),
                weights_sha=r.take(SHA_HEX_DIGITS // 2, f"{what} weights_sha").hex(),
            )
        )
    if len(set(codecs)) != len(codecs):
        raise r.error("the codec table lists a codec twice")
    labels = [r.string(f"label table entry {i}") for i in range(r.u8("number of labels"))]
    if len(set(labels)) != len(labels):
        raise r.error("the label table lists a label twice")
    pending = []
    for i in range(r.u16("number of regions")):
        what = f"region record {i}"
        region_id, label, codec, flags, score, *fixed, n_strings = r.unpack(_REGION, what)
        box, canvas, offset, latent_shape = tuple(fixed[0:4]), tuple(fixed[4:6]), tuple(fixed[6:8]), tuple(fixed[8:10])
        where = f"{what} (region {region_id})"
        if flags & ~_KNOWN_FLAGS:
            raise r.error(f"{where} has unknown flag bits {flags & ~_KNOWN_FLAGS:#04x}")
        if label >= len(labels):
            raise r.error(f"{where} refers to label {label} but the table has {len(labels)}")
        if codec >= len(codecs):
            raise r.error(f"{where} refers to codec {codec} but the table has {len(codecs)}")
        placement = Placement(
            box=r.unpack(_BOX, f"{where} placement box") if flags & FLAG_PLACEMENT_BOX else box,
            scale=r.f64(f"{where} scale") if flags & FLAG_SCALE else 1.0,
            canvas=canvas,
            offset=offset,
        )
        track_id = r.i32(f"{where} track_id") if flags & FLAG_TRACK_ID else None
        parent_id = r.i32(f"{where} parent_id") if flags & FLAG_PARENT_ID else None
        try:
            _check_geometry(box, placement)
        except StreamError as e:
            raise r.error(f"{where}: {e}") from None
        pending.append(
            (
                EncodedRegion(
                    region_id=region_id,
                    label=labels[label],
                    codec_class=codec_class,
                    score=score / SCORE_SCALE,
                    box=box,
                    mask=None,  # type: ignore[arg-type]  # filled in from the payloads below
                    placement=placement,
                    codec=codecs[codec],
                    latent_shape=latent_shape,
                    strings=[],
                    track_id=track_id,
                    parent_id=parent_id,
                ),
                n_strings,
                where,
            )
        )
    r.done()
    _expect_payloads("FrameRegions", payloads, sum(1 + n for _, n, _ in pending))
    at = 0
    for region, n_strings, where in pending:
        x0, y0, x1, y1 = region.box
        try:
            region.mask = decode_mask(payloads[at], (y1 - y0, x1 - x0))
        except StreamError as e:
            raise r.error(f"{where}: {e}") from None
        region.strings = payloads[at + 1 : at + 1 + n_strings]
        at += 1 + n_strings
    return FrameRegions(camera=camera, seq=seq, pts=pts, codec_class=codec_class, regions=[p[0] for p in pending])


def _decode_body(kind: int, r: _Reader, payloads: list[bytes]) -> Packet:
    camera, seq, pts = r.string("camera"), r.u32("seq"), r.f64("pts")
    if kind == KIND_BACKGROUND:
        key_id, width, height, codec = r.u32("key_id"), r.u16("width"), r.u16("height"), r.string("codec")
        r.done()
        _expect_payloads("BackgroundKey", payloads, 1)
        return BackgroundKey(camera, seq, pts, key_id, width, height, codec, payloads[0])
    if kind == KIND_REGIONS:
        return _decode_regions(r, camera, seq, pts, payloads)
    if kind == KIND_FRAME_END:
        width, height, key_id = r.u16("width"), r.u16("height"), r.u32("key_id")
        region_counts: dict[str, int] = {}
        for i in range(r.u8("number of region_counts classes")):
            name = r.string(f"region_counts class {i}")
            if name in region_counts:
                raise r.error(f"region_counts lists class {name!r} twice")
            region_counts[name] = r.u16(f"region_counts count of {name!r}")
        r.done()
        _expect_payloads("FrameEnd", payloads, 0)
        return FrameEnd(camera, seq, pts, width, height, key_id, region_counts)
    r.done()
    _expect_payloads("StreamEnd", payloads, 0)
    return StreamEnd(camera, seq, pts)


def decode_packet(parts: Sequence[bytes]) -> Packet:
    """Parse and validate multipart parts made by :func:`encode_packet`; any defect raises StreamError."""
    if not isinstance(parts, Sequence) or isinstance(parts, (bytes, bytearray, str)):
        raise StreamError(f"packet must be a list of byte strings, got {type(parts).__name__}")
    if len(parts) < 2:
        raise StreamError(f"packet has {len(parts)} parts; needs at least a topic and a header")
    try:
        raw = [p if isinstance(p, bytes) else bytes(memoryview(p)) for p in parts]
    except TypeError:
        raise StreamError("packet parts must be byte strings") from None
    try:
        topic = raw[0].decode("utf-8")
    except UnicodeDecodeError:
        raise StreamError(f"packet topic is not UTF-8: {raw[0][:40]!r}") from None
    header, payloads = raw[1], raw[2:]
    if len(header) < _HEADER.size:
        raise StreamError(f"{topic} packet header is {len(header)} bytes, shorter than the {_HEADER.size}-byte prefix")
    version, kind, crc = _HEADER.unpack_from(header)
    if version != WIRE_VERSION:
        raise StreamError(f"{topic} packet has unknown wire version {version} (this build reads {WIRE_VERSION})")
    if kind not in _KIND_NAMES:
        raise StreamError(f"{topic} packet has unknown kind {kind}")
    body = header[_HEADER.size :]
    actual = _crc(header[:2], body, payloads)
    if actual != crc:
        raise StreamError(
            f"checksum mismatch in {topic} packet: header says {crc:08x}, data gives {actual:08x} "
            f"over {len(payloads)} payload parts (corrupted or truncated)"
        )
    packet = _decode_body(kind, _Reader(body, f"{topic} {_KIND_NAMES[kind]}"), payloads)
    try:
        expected = topic_of(packet)
    except StreamError as e:
        raise StreamError(f"{topic} packet: {e}") from None
    if expected != topic:
        raise StreamError(f"packet arrived under topic {topic!r} but its content belongs to {expected!r}")
    return packet


def packet_summary(packet: Packet) -> str:
    """One line describing a packet, for logs."""
    name = type(packet).__name__
    if isinstance(packet, FrameRegions):
        size = sum(r.payload_bytes for r in packet.regions)
        return f"{name} {packet.camera}#{packet.seq} {packet.codec_class} x{len(packet.regions)} ({size} B)"
    if isinstance(packet, BackgroundKey):
        return f"{name} {packet.camera}#{packet.seq} key {packet.key_id} ({len(packet.payload)} B)"
    return f"{name} {packet.camera}#{packet.seq}"


__all__ = ["WIRE_VERSION", "decode_packet", "encode_packet", "packet_summary", "topic_of"]
