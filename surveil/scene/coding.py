"""Background key pictures coded on their own with a conventional encoder (libx264 or libx265 through PyAV).

Each key is a complete intra-only bitstream (parameter sets + one IDR picture), so a station that joins late or
lost packets decodes the next key with nothing else. The encoders' informational SEI (x264's options string, x265's
per-picture info) carries nothing a decoder needs, so it is left out.
"""

from __future__ import annotations

import logging

import av
import numpy as np

from surveil.errors import StreamError

logger = logging.getLogger(__name__)

DECODER_FOR = {"libx264": "h264", "libx265": "hevc"}
_H264_SEI = 6


def encode_picture(image: np.ndarray, codec: str = "libx264", crf: int = 30, preset: str = "medium") -> bytes:
    """One RGB picture as a standalone H.264/HEVC bitstream (Annex B)."""
    if codec not in DECODER_FOR:
        raise ValueError(f"unsupported background codec '{codec}' (use one of {', '.join(DECODER_FOR)})")
    height, width = image.shape[:2]
    padded = np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")  # 4:2:0 needs even sides
    context = av.CodecContext.create(codec, "w")
    context.width, context.height = padded.shape[1], padded.shape[0]
    context.pix_fmt = "yuv420p"
    options = {"crf": str(crf), "preset": preset}
    if codec == "libx265":
        options["x265-params"] = "log-level=error:info=0:keyint=1"
    context.options = options
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(padded), format="rgb24")
    packets = [*context.encode(frame), *context.encode(None)]
    data = b"".join(bytes(p) for p in packets)
    if codec == "libx264":
        data = _drop_h264_sei(data)
    return data


def decode_picture(data: bytes, width: int, height: int, codec: str = "libx264") -> np.ndarray:
    """Decode a key made by ``encode_picture`` to RGB of the original size."""
    try:
        context = av.CodecContext.create(DECODER_FOR[codec], "r")
        frames = [*context.decode(av.Packet(data)), *context.decode(None)]
    except (av.FFmpegError, KeyError) as exc:
        raise StreamError(f"background key does not decode: {exc}") from exc
    if not frames:
        raise StreamError("background key holds no picture")
    return frames[0].to_ndarray(format="rgb24")[:height, :width]


def _drop_h264_sei(data: bytes) -> bytes:
    """Remove SEI NAL units from an Annex B H.264 stream."""
    starts = []
    i = data.find(b"\x00\x00\x01")
    while i != -1:
        starts.append(i + 3)
        i = data.find(b"\x00\x00\x01", i + 3)
    kept = []
    for index, start in enumerate(starts):
        end = starts[index + 1] - 3 if index + 1 < len(starts) else len(data)
        nal = data[start:end].rstrip(b"\x00") if index + 1 < len(starts) else data[start:end]
        if nal and (nal[0] & 0x1F) == _H264_SEI:
            continue
        kept.append(b"\x00\x00\x00\x01" + nal)
    return b"".join(kept)
