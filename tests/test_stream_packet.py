import struct
import zlib

import numpy as np
import pytest

from surveil.errors import StreamError
from surveil.stream.packet import WIRE_VERSION, decode_packet, encode_packet, topic_of
from surveil.types import (
    BackgroundKey,
    CodecId,
    EncodedRegion,
    FrameEnd,
    FrameRegions,
    Packet,
    Placement,
    StreamEnd,
)


def _region(region_id: int, shape: tuple[int, int], n_strings: int, seed: int = 0) -> EncodedRegion:
    rng = np.random.default_rng(seed)
    h, w = shape
    x0, y0 = 10 + region_id, 20
    box = (x0, y0, x0 + w, y0 + h)
    return EncodedRegion(
        region_id=region_id,
        label="person",
        codec_class="person",
        score=0.87654321,
        box=box,
        mask=rng.random(shape) > 0.4,
        placement=Placement(box=box, scale=1.75, canvas=(128, 256), offset=(3, 0)),
        codec=CodecId(arch="msh-n64m96", codec_class="person", quality=3, weights_sha="0123456789abcdef"),
        latent_shape=(4, 2),
        strings=[rng.bytes(int(rng.integers(1, 300))) for _ in range(n_strings)],
        track_id=region_id * 10 if region_id % 2 else None,
        parent_id=7 if region_id == 1 else None,
    )


def _packets() -> list[Packet]:
    return [
        BackgroundKey(
            camera="cam1",
            seq=0,
            pts=0.0,
            key_id=1,
            width=640,
            height=480,
            codec="libx264",
            payload=bytes(range(256)) * 10,
        ),
        BackgroundKey(camera="cam1", seq=5, pts=0.2, key_id=2, width=64, height=48, codec="mjpeg", payload=b""),
        FrameRegions(
            camera="cam1",
            seq=3,
            pts=0.12345678901,
            codec_class="person",
            regions=[
                _region(0, (17, 9), 2),
                _region(1, (1, 33), 3, seed=1),
                _region(2, (0, 5), 0, seed=2),
                _region(3, (31, 31), 1, seed=3),
            ],
        ),
        FrameRegions(camera="cam1", seq=4, pts=0.16, codec_class="vehicle", regions=[]),
        FrameEnd(
            camera="cam1",
            seq=3,
            pts=0.12345678901,
            width=640,
            height=480,
            key_id=1,
            region_counts={"person": 4, "vehicle": 0},
        ),
        FrameEnd(camera="cam1", seq=4, pts=0.16, width=640, height=480, key_id=1),
        StreamEnd(camera="cam1", seq=99, pts=3.96),
    ]


def _assert_same(a: Packet, b: Packet) -> None:
    assert type(a) is type(b)
    if isinstance(a, FrameRegions):
        assert isinstance(b, FrameRegions)
        assert (a.camera, a.seq, a.pts, a.codec_class) == (b.camera, b.seq, b.pts, b.codec_class)
        assert len(a.regions) == len(b.regions)
        for ra, rb in zip(a.regions, b.regions, strict=True):
            np.testing.assert_array_equal(ra.mask, rb.mask)
            assert ra.mask.shape == rb.mask.shape
            assert rb.mask.dtype == bool
            assert ra.score == pytest.approx(rb.score, abs=1e-4)
            fields = [f for f in vars(ra) if f not in ("mask", "score")]
            assert {f: getattr(ra, f) for f in fields} == {f: getattr(rb, f) for f in fields}
            assert isinstance(rb.box, tuple) and isinstance(rb.latent_shape, tuple)
            assert isinstance(rb.placement.canvas, tuple) and isinstance(rb.placement.offset, tuple)
    else:
        assert a == b


@pytest.mark.parametrize("packet", _packets(), ids=lambda p: type(p).__name__)
def test_round_trip(packet: Packet) -> None:
    parts = encode_packet(packet)
    assert all(isinstance(p, bytes) for p in parts)
    assert parts[0] == topic_of(packet).encode()
    assert parts[1][0] == WIRE_VERSION
    _assert_same(packet, decode_packet(parts))


def test_topics() -> None:
    bg, _, regions, _, end, _, stop = _packets()
    assert topic_of(bg) == "cam1/bg"
    assert topic_of(regions) == "cam1/obj/person"
    assert topic_of(end) == "cam1/frame"
    assert topic_of(stop) == "cam1/end"


def test_region_payload_layout() -> None:
    packet = _packets()[2]
    assert isinstance(packet, FrameRegions)
    parts = encode_packet(packet)
    # topic, header, then per region: mask + its strings
    assert len(parts) == 2 + sum(1 + len(r.strings) for r in packet.regions)
    assert parts[3:5] == packet.regions[0].strings


def test_numpy_scalars_are_accepted() -> None:
    region = _region(0, (4, 4), 1)
    region.score = np.float32(0.5)
    region.box = tuple(np.int64(v) for v in region.box)  # type: ignore[assignment]
    packet = FrameRegions(camera="c", seq=np.int64(1), pts=np.float64(0.5), codec_class="person", regions=[region])
    out = decode_packet(encode_packet(packet))
    assert isinstance(out, FrameRegions)
    assert out.seq == 1 and out.regions[0].box == (10, 20, 14, 24) and out.regions[0].score == 0.5


def test_camera_with_slash_is_rejected() -> None:
    with pytest.raises(StreamError, match="camera"):
        encode_packet(StreamEnd(camera="lobby/east", seq=0, pts=0.0))


def _all_positions(parts: list[bytes]) -> list[tuple[int, int]]:
    return [(i, j) for i in range(1, len(parts)) for j in range(len(parts[i]))]


@pytest.mark.parametrize("where", ["json", "payload", "mask", "string"])
def test_flipped_byte_is_checksum_mismatch(where: str) -> None:
    packets = _packets()
    packet = packets[0] if where == "payload" else packets[2]
    parts = encode_packet(packet)
    index, offset = {"json": (1, 12), "payload": (2, 100), "mask": (2, 3), "string": (3, 0)}[where]
    damaged = list(parts)
    data = bytearray(damaged[index])
    data[offset] ^= 0x01
    damaged[index] = bytes(data)
    with pytest.raises(StreamError, match="checksum mismatch"):
        decode_packet(damaged)


def test_every_single_bit_flip_is_caught() -> None:
    parts = encode_packet(_packets()[4])
    for i, j in _all_positions(parts):
        for bit in (0x01, 0x80):
            damaged = list(parts)
            data = bytearray(damaged[i])
            data[j] ^= bit
            damaged[i] = bytes(data)
            with pytest.raises(StreamError):
                decode_packet(damaged)


def test_unknown_version() -> None:
    parts = encode_packet(_packets()[-1])
    parts[1] = bytes([WIRE_VERSION + 6]) + parts[1][1:]
    with pytest.raises(StreamError, match=f"version {WIRE_VERSION + 6}"):
        decode_packet(parts)


def test_unknown_kind() -> None:
    parts = encode_packet(_packets()[-1])
    parts[1] = parts[1][:1] + b"\x63" + parts[1][2:]
    with pytest.raises(StreamError, match="kind 99"):
        decode_packet(parts)


@pytest.mark.parametrize("keep", [0, 1, 2, 3, 5, 9])
def test_truncated_parts_list(keep: int) -> None:
    parts = encode_packet(_packets()[2])
    assert keep < len(parts)
    with pytest.raises(StreamError):
        decode_packet(parts[:keep])


def test_short_header() -> None:
    parts = encode_packet(_packets()[-1])
    with pytest.raises(StreamError, match="header"):
        decode_packet([parts[0], parts[1][:4]])


def _reheader(parts: list[bytes], body: bytes) -> list[bytes]:
    crc = zlib.crc32(body)
    for p in parts[2:]:
        crc = zlib.crc32(p, crc)
    return [parts[0], struct.pack(">BBI", WIRE_VERSION, parts[1][1], crc) + body, *parts[2:]]


def test_extra_payload_is_rejected() -> None:
    # The checksum is made consistent over the extra part: the payload count check must still catch it.
    parts = encode_packet(_packets()[-1])
    with pytest.raises(StreamError, match="payload parts"):
        decode_packet(_reheader([*parts, b"extra"], parts[1][6:]))


def test_wrong_topic_is_rejected() -> None:
    parts = encode_packet(_packets()[2])
    parts[0] = b"cam1/obj/face"
    with pytest.raises(StreamError, match="topic"):
        decode_packet(parts)


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1,2]", b'{"camera":"cam1","seq":"1","pts":0}', b'{"camera":"cam1","pts":0}', b"\xff\xfe"],
    ids=["bad-json", "not-object", "wrong-type", "missing-field", "not-utf8"],
)
def test_bad_signalling_with_valid_checksum(body: bytes) -> None:
    parts = _reheader(encode_packet(_packets()[-1]), body)
    with pytest.raises(StreamError):
        decode_packet(parts)


def test_nan_is_rejected_on_encode() -> None:
    with pytest.raises(StreamError, match="cannot encode"):
        encode_packet(StreamEnd(camera="cam1", seq=0, pts=float("nan")))
