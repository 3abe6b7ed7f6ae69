"""The versioned, checksummed wire format of packets as ZeroMQ multipart messages.

A packet travels as ``[topic, header, *payloads]``:

* ``topic``: UTF-8 ``<camera>/bg``, ``<camera>/obj/<codec_class>``, ``<camera>/frame`` or ``<camera>/end``, so
  subscribers can filter by prefix.
* ``header``: 1 byte wire version, 1 byte packet kind, 4 bytes big-endian CRC32 over the JSON that follows and every
  payload in order, then compact UTF-8 JSON of the signalling.
* ``payloads``: BackgroundKey -> ``[payload]``; FrameRegions -> per region ``[encoded mask, *strings]`` (the JSON
  records each region's string count); FrameEnd and StreamEnd -> none.
"""

from __future__ import annotations

import json
import logging
import math
import struct
import zlib
from collections.abc import Sequence
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

WIRE_VERSION = 1

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


def _check_name(what: str, name: str) -> str:
    # Topics are matched by prefix, so a '/' inside a name would let one camera's topics shadow another's.
    if not isinstance(name, str) or not name or "/" in name:
        raise StreamError(f"{what} {name!r} cannot appear in a topic: it must be a non-empty string without '/'")
    return name


def topic_of(packet: Packet) -> str:
    """The topic a packet is published under."""
    if isinstance(packet, BackgroundKey):
        return f"{_check_name('camera', packet.camera)}/bg"
    if isinstance(packet, FrameRegions):
        return f"{_check_name('camera', packet.camera)}/obj/{_check_name('codec class', packet.codec_class)}"
    if isinstance(packet, FrameEnd):
        return f"{_check_name('camera', packet.camera)}/frame"
    if isinstance(packet, StreamEnd):
        return f"{_check_name('camera', packet.camera)}/end"
    raise TypeError(f"not a packet: {type(packet).__name__}")


# --- encoding -------------------------------------------------------------------------------------------------------


def _box(box: Sequence[Any]) -> list[int]:
    return [int(v) for v in box]


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _as_bytes(data: Any) -> bytes:
    return data if isinstance(data, bytes) else bytes(data)


def _region_signalling(region: EncodedRegion) -> dict[str, Any]:
    p = region.placement
    c = region.codec
    return {
        "region_id": int(region.region_id),
        "label": str(region.label),
        "codec_class": str(region.codec_class),
        "score": float(region.score),
        "box": _box(region.box),
        "mask_shape": [int(n) for n in region.mask.shape],
        "placement": {
            "box": _box(p.box),
            "scale": float(p.scale),
            "canvas": [int(v) for v in p.canvas],
            "offset": [int(v) for v in p.offset],
        },
        "codec": {
            "arch": str(c.arch),
            "codec_class": str(c.codec_class),
            "quality": int(c.quality),
            "weights_sha": str(c.weights_sha),
        },
        "latent_shape": [int(v) for v in region.latent_shape],
        "track_id": _opt_int(region.track_id),
        "parent_id": _opt_int(region.parent_id),
        "n_strings": len(region.strings),
    }


def _signalling(packet: Packet) -> tuple[int, dict[str, Any], list[bytes]]:
    """(kind, JSON-able signalling, payloads) of a packet."""
    base: dict[str, Any] = {"camera": packet.camera, "seq": int(packet.seq), "pts": float(packet.pts)}
    if isinstance(packet, BackgroundKey):
        base.update(key_id=int(packet.key_id), width=int(packet.width), height=int(packet.height), codec=packet.codec)
        return KIND_BACKGROUND, base, [_as_bytes(packet.payload)]
    if isinstance(packet, FrameRegions):
        payloads: list[bytes] = []
        regions = []
        for region in packet.regions:
            if region.mask.ndim != 2:
                raise StreamError(f"region {region.region_id} mask must be 2-D, got shape {region.mask.shape}")
            regions.append(_region_signalling(region))
            payloads.append(encode_mask(region.mask))
            payloads.extend(_as_bytes(s) for s in region.strings)
        base.update(codec_class=packet.codec_class, regions=regions)
        return KIND_REGIONS, base, payloads
    if isinstance(packet, FrameEnd):
        counts = {str(k): int(v) for k, v in packet.region_counts.items()}
        base.update(width=int(packet.width), height=int(packet.height), key_id=int(packet.key_id), region_counts=counts)
        return KIND_FRAME_END, base, []
    if isinstance(packet, StreamEnd):
        return KIND_STREAM_END, base, []
    raise TypeError(f"not a packet: {type(packet).__name__}")


def _crc(body: bytes, payloads: Sequence[bytes]) -> int:
    crc = zlib.crc32(body)
    for payload in payloads:
        crc = zlib.crc32(payload, crc)
    return crc


def encode_packet(packet: Packet) -> list[bytes]:
    """Serialise a packet into multipart parts ``[topic, header, *payloads]``."""
    topic = topic_of(packet)
    kind, signalling, payloads = _signalling(packet)
    try:
        body = json.dumps(signalling, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except ValueError as e:  # NaN or infinity in a float field
        raise StreamError(f"cannot encode {topic} packet: {e}") from None
    header = _HEADER.pack(WIRE_VERSION, kind, _crc(body, payloads)) + body
    return [topic.encode("utf-8"), header, *payloads]


# --- decoding -------------------------------------------------------------------------------------------------------


class _Fields:
    """Typed access to one JSON object; every failure is a StreamError naming the field."""

    def __init__(self, obj: Any, where: str) -> None:
        if not isinstance(obj, dict):
            raise StreamError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        self.data = obj
        self.where = where

    def _get(self, key: str) -> Any:
        if key not in self.data:
            raise StreamError(f"{self.where}: missing field {key!r}")
        return self.data[key]

    def _bad(self, key: str, expected: str) -> StreamError:
        return StreamError(f"{self.where}: field {key!r} should be {expected}, got {self.data[key]!r:.80}")

    def get_int(self, key: str) -> int:
        value = self._get(key)
        if not _is_int(value):
            raise self._bad(key, "an integer")
        return value

    def get_opt_int(self, key: str) -> int | None:
        value = self._get(key)
        if value is not None and not _is_int(value):
            raise self._bad(key, "an integer or null")
        return value

    def get_float(self, key: str) -> float:
        value = self._get(key)
        if not (_is_int(value) or isinstance(value, float)) or not math.isfinite(value):
            raise self._bad(key, "a finite number")
        return float(value)

    def get_str(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        return value

    def _get_ints(self, key: str, n: int) -> tuple[int, ...]:
        value = self._get(key)
        if not isinstance(value, list) or len(value) != n or not all(_is_int(v) for v in value):
            raise self._bad(key, f"a list of {n} integers")
        return tuple(value)

    def get_pair(self, key: str) -> tuple[int, int]:
        a, b = self._get_ints(key, 2)
        return a, b

    def get_box(self, key: str) -> Box:
        x0, y0, x1, y1 = self._get_ints(key, 4)
        return x0, y0, x1, y1

    def get_obj(self, key: str) -> _Fields:
        return _Fields(self._get(key), f"{self.where}.{key}")

    def get_list(self, key: str) -> list[Any]:
        value = self._get(key)
        if not isinstance(value, list):
            raise self._bad(key, "a list")
        return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _decode_region(f: _Fields, payloads: list[bytes], at: int) -> tuple[EncodedRegion, int]:
    """Build one region from its signalling and the payloads starting at index ``at``; return it and the next index."""
    n_strings = f.get_int("n_strings")
    if n_strings < 0:
        raise StreamError(f"{f.where}: field 'n_strings' is negative ({n_strings})")
    if at + 1 + n_strings > len(payloads):
        left = len(payloads) - at
        raise StreamError(f"{f.where}: needs a mask and {n_strings} strings, but only {left} payload parts remain")
    region_id = f.get_int("region_id")
    mask_shape = f.get_pair("mask_shape")
    try:
        mask = decode_mask(payloads[at], mask_shape)
    except StreamError as e:
        raise StreamError(f"{f.where} (region {region_id}): {e}") from None
    p = f.get_obj("placement")
    c = f.get_obj("codec")
    placement = Placement(
        box=p.get_box("box"),
        scale=p.get_float("scale"),
        canvas=p.get_pair("canvas"),
        offset=p.get_pair("offset"),
    )
    codec = CodecId(
        arch=c.get_str("arch"),
        codec_class=c.get_str("codec_class"),
        quality=c.get_int("quality"),
        weights_sha=c.get_str("weights_sha"),
    )
    region = EncodedRegion(
        region_id=region_id,
        label=f.get_str("label"),
        codec_class=f.get_str("codec_class"),
        score=f.get_float("score"),
        box=f.get_box("box"),
        mask=mask,
        placement=placement,
        codec=codec,
        latent_shape=f.get_pair("latent_shape"),
        strings=list(payloads[at + 1 : at + 1 + n_strings]),
        track_id=f.get_opt_int("track_id"),
        parent_id=f.get_opt_int("parent_id"),
    )
    return region, at + 1 + n_strings


def _expect_payloads(what: str, payloads: list[bytes], n: int) -> None:
    if len(payloads) != n:
        raise StreamError(f"{what} packet should carry {n} payload parts, got {len(payloads)}")


def _build(kind: int, f: _Fields, payloads: list[bytes]) -> Packet:
    camera, seq, pts = f.get_str("camera"), f.get_int("seq"), f.get_float("pts")
    if kind == KIND_BACKGROUND:
        _expect_payloads("BackgroundKey", payloads, 1)
        return BackgroundKey(
            camera=camera,
            seq=seq,
            pts=pts,
            key_id=f.get_int("key_id"),
            width=f.get_int("width"),
            height=f.get_int("height"),
            codec=f.get_str("codec"),
            payload=payloads[0],
        )
    if kind == KIND_REGIONS:
        regions = []
        at = 0
        for i, obj in enumerate(f.get_list("regions")):
            region, at = _decode_region(_Fields(obj, f"{f.where} regions[{i}]"), payloads, at)
            regions.append(region)
        _expect_payloads("FrameRegions", payloads, at)
        return FrameRegions(camera=camera, seq=seq, pts=pts, codec_class=f.get_str("codec_class"), regions=regions)
    if kind == KIND_FRAME_END:
        _expect_payloads("FrameEnd", payloads, 0)
        counts = f.get_obj("region_counts")
        region_counts = {str(k): counts.get_int(k) for k in counts.data}
        return FrameEnd(
            camera=camera,
            seq=seq,
            pts=pts,
            width=f.get_int("width"),
            height=f.get_int("height"),
            key_id=f.get_int("key_id"),
            region_counts=region_counts,
        )
    _expect_payloads("StreamEnd", payloads, 0)
    return StreamEnd(camera=camera, seq=seq, pts=pts)


def decode_packet(parts: Sequence[bytes]) -> Packet:
    """Parse and validate multipart parts made by :func:`encode_packet`; any defect raises StreamError."""
    if not isinstance(parts, Sequence) or isinstance(parts, (bytes, bytearray, str)):
        raise StreamError(f"packet must be a list of byte strings, got {type(parts).__name__}")
    if len(parts) < 2:
        raise StreamError(f"packet has {len(parts)} parts; needs at least a topic and a header")
    try:
        raw = [p if isinstance(p, bytes) else bytes(p) for p in parts]
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
    actual = _crc(body, payloads)
    if actual != crc:
        raise StreamError(
            f"checksum mismatch in {topic} packet: header says {crc:08x}, data gives {actual:08x} "
            f"over {len(payloads)} payload parts (corrupted or truncated)"
        )
    try:
        signalling = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise StreamError(f"{topic} packet signalling is not valid JSON: {e}") from None
    packet = _build(kind, _Fields(signalling, f"{topic} {_KIND_NAMES[kind]}"), payloads)
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
