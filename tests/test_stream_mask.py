import zlib

import numpy as np
import pytest

from surveil.errors import StreamError
from surveil.stream.mask import decode_mask, encode_mask


def _blob(height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width]
    return (yy - height / 2) ** 2 / (height / 2.5) ** 2 + (xx - width / 2) ** 2 / (width / 2.5) ** 2 < 1


@pytest.mark.parametrize(
    "mask",
    [
        np.zeros((0, 0), bool),
        np.zeros((0, 7), bool),
        np.zeros((5, 3), bool),
        np.ones((5, 3), bool),
        np.ones((1, 1), bool),
        _blob(37, 53),
        np.random.default_rng(0).random((13, 11)) > 0.5,
    ],
    ids=["0x0", "0x7", "empty", "full", "1x1", "blob", "random-odd"],
)
def test_round_trip(mask: np.ndarray) -> None:
    out = decode_mask(encode_mask(mask), mask.shape)
    assert out.dtype == bool
    assert out.shape == mask.shape
    np.testing.assert_array_equal(out, mask)


def test_non_contiguous_view_round_trips() -> None:
    mask = _blob(40, 60)[::3, 1::2]
    np.testing.assert_array_equal(decode_mask(encode_mask(mask), mask.shape), mask)


def test_blob_compresses_below_raw_bits() -> None:
    mask = _blob(240, 320)
    data = encode_mask(mask)
    assert len(data) < mask.size // 8 / 4  # well under the packed bits, let alone one byte per pixel


def test_rejects_non_2d() -> None:
    with pytest.raises(ValueError):
        encode_mask(np.zeros((2, 2, 2), bool))


@pytest.mark.parametrize(
    ("data", "shape", "match"),
    [
        (b"not zlib at all", (4, 4), "not valid zlib"),
        (encode_mask(np.ones((8, 8), bool))[:-3], (8, 8), "truncated"),
        (encode_mask(np.ones((8, 8), bool)), (8, 9), "holds 8 bytes, expected 9"),
        (encode_mask(np.ones((8, 8), bool)), (4, 4), "inflates past"),
        (encode_mask(np.ones((8, 8), bool)) + b"xx", (8, 8), "trailing"),
        (zlib.compress(b""), (-1, 4), "bad mask shape"),
    ],
    ids=["garbage", "cut", "too-short", "too-long", "trailing", "negative-shape"],
)
def test_bad_data_raises_stream_error(data: bytes, shape: tuple[int, int], match: str) -> None:
    with pytest.raises(StreamError, match=match):
        decode_mask(data, shape)
