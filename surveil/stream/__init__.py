"""Wire format, recordings and transport of region streams.

``transport`` needs pyzmq and is not imported here, so the wire format and recordings stay usable without it.
"""

from surveil.stream.mask import decode_mask, encode_mask
from surveil.stream.packet import WIRE_VERSION, camera_topic, decode_packet, encode_packet, region_topic, topic_of
from surveil.stream.recording import RecordingReader, RecordingWriter

__all__ = [
    "WIRE_VERSION",
    "RecordingReader",
    "RecordingWriter",
    "camera_topic",
    "decode_mask",
    "decode_packet",
    "encode_mask",
    "encode_packet",
    "region_topic",
    "topic_of",
]
