"""Compact lossless coding of boolean region masks (bit-packed, then zlib)."""

from __future__ import annotations

import logging
import zlib

import numpy as np

from surveil.errors import StreamError

logger = logging.getLogger(__name__)

ZLIB_LEVEL = 9


def encode_mask(mask: np.ndarray) -> bytes:
    """Pack a 2-D boolean mask row-major into bits and deflate it; the shape is not stored."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    bits = np.packbits(np.asarray(mask, dtype=bool), axis=None)
    return zlib.compress(bits.tobytes(), ZLIB_LEVEL)


def decode_mask(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    """Invert :func:`encode_mask` for a mask of ``shape`` (height, width); bad data raises StreamError."""
    if len(shape) != 2 or not all(isinstance(n, (int, np.integer)) and n >= 0 for n in shape):
        raise StreamError(f"bad mask shape {shape!r}: expected two non-negative integers")
    height, width = int(shape[0]), int(shape[1])
    n_bits = height * width
    n_bytes = (n_bits + 7) // 8
    # Cap the output so a forged stream cannot inflate into gigabytes before the length check.
    inflater = zlib.decompressobj()
    try:
        packed = inflater.decompress(data, n_bytes + 1)
    except zlib.error as e:
        raise StreamError(f"mask data for shape {height}x{width} is not valid zlib: {e}") from None
    if not inflater.eof:
        if len(packed) > n_bytes:
            raise StreamError(f"mask data for shape {height}x{width} inflates past the expected {n_bytes} bytes")
        raise StreamError(f"mask data for shape {height}x{width} is truncated ({len(data)} bytes)")
    if inflater.unused_data:
        raise StreamError(f"mask data for shape {height}x{width} has {len(inflater.unused_data)} trailing bytes")
    if len(packed) != n_bytes:
        raise StreamError(f"mask data holds {len(packed)} bytes, expected {n_bytes} for shape {height}x{width}")
    bits = np.unpackbits(np.frombuffer(packed, dtype=np.uint8), count=n_bits)
    return bits.astype(bool).reshape(height, width)
