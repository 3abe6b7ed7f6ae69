import struct
from pathlib import Path

import pytest

from surveil.errors import StreamError
from surveil.stream.packet import decode_packet, encode_packet
from surveil.stream.recording import MAGIC, MAX_PART_BYTES, MAX_PARTS, RecordingReader, RecordingWriter
from surveil.types import BackgroundKey, FrameEnd, StreamEnd


def _records(n: int) -> list[list[bytes]]:
    out = []
    for i in range(n):
        if i % 3 == 0:
            packet = BackgroundKey("cam1", i, i / 25, i // 3, 64, 48, "libx264", bytes([i % 256]) * (i * 7))
        elif i % 3 == 1:
            packet = FrameEnd("cam1", i, i / 25, 64, 48, i // 3, {"person": i})
        else:
            packet = StreamEnd("cam1", i, i / 25)
        out.append(encode_packet(packet))
    out.append([])  # a record with no parts is legal in the container
    out.append([b"", b"x"])
    return out


def _write(path: Path, records: list[list[bytes]]) -> list[int]:
    """Write records; return the file offset at which each record ends."""
    ends = []
    with RecordingWriter(path) as writer:
        for parts in records:
            writer.write(parts)
            ends.append(path.stat().st_size)  # the writer flushes each record
    return ends


def _read(path: Path) -> tuple[list[list[bytes]], str | None]:
    with RecordingReader(path) as reader:
        records = list(reader)
        return records, reader.truncated


def test_round_trip(tmp_path: Path) -> None:
    records = _records(20)
    path = tmp_path / "sub" / "dir" / "rec.survrec"  # parent directories are created
    _write(path, records)
    assert path.read_bytes().startswith(MAGIC)
    got, truncated = _read(path)
    assert got == records
    assert truncated is None
    assert [type(decode_packet(p)) for p in got[:3]] == [BackgroundKey, FrameEnd, StreamEnd]


def test_iterating_twice_restarts(tmp_path: Path) -> None:
    records = _records(4)
    _write(tmp_path / "r", records)
    with RecordingReader(tmp_path / "r") as reader:
        assert list(reader) == records
        assert list(reader) == records
        assert reader.records == len(records)


def test_empty_recording(tmp_path: Path) -> None:
    _write(tmp_path / "r", [])
    assert _read(tmp_path / "r") == ([], None)


def test_truncated_at_every_offset(tmp_path: Path) -> None:
    records = _records(6)
    path = tmp_path / "full"
    ends = _write(path, records)
    data = path.read_bytes()
    cut_path = tmp_path / "cut"
    for cut in range(len(MAGIC), len(data)):
        cut_path.write_bytes(data[:cut])
        got, truncated = _read(cut_path)
        whole = sum(1 for end in ends if end <= cut)
        assert got == records[:whole], cut
        start = ends[whole - 1] if whole else len(MAGIC)
        if cut == start:
            assert truncated is None, cut  # cut exactly between records: nothing is missing that we can know of
        else:
            assert truncated is not None, cut
            assert f"at byte {start}" in truncated and f"after {whole} whole records" in truncated


def test_crash_leaves_whole_records(tmp_path: Path) -> None:
    # A writer that is never closed has still flushed every whole record.
    path = tmp_path / "r"
    writer = RecordingWriter(path)
    records = _records(5)
    for parts in records:
        writer.write(parts)
    got, truncated = _read(path)
    assert got == records and truncated is None
    writer.close()
    writer.close()


@pytest.mark.parametrize(
    "record",
    [struct.pack(">I", MAX_PARTS + 1), struct.pack(">II", 1, MAX_PART_BYTES + 1), struct.pack(">II", 1, 0xFFFFFFFF)],
    ids=["too-many-parts", "part-too-long", "max-u32"],
)
def test_corrupt_length_is_reported(tmp_path: Path, record: bytes) -> None:
    path = tmp_path / "r"
    _write(path, _records(2))
    good = path.read_bytes()
    path.write_bytes(good + record + b"\0" * 64)
    got, truncated = _read(path)
    assert len(got) == 4
    assert truncated is not None and f"at byte {len(good)}" in truncated and "after 4 whole records" in truncated


def test_length_past_end_of_file_is_truncation(tmp_path: Path) -> None:
    path = tmp_path / "r"
    path.write_bytes(MAGIC + struct.pack(">II", 1, 1 << 20) + b"abc")
    got, truncated = _read(path)
    assert got == [] and truncated is not None and "3 of 1048576 bytes" in truncated


@pytest.mark.parametrize("content", [b"", b"SURV", b"SURVREC2" + b"\0" * 8, b"RIFF....WAVEfmt "], ids=repr)
def test_not_a_recording(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "r"
    path.write_bytes(content)
    with pytest.raises(StreamError, match="not a surveil recording"):
        RecordingReader(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(StreamError, match="no recording"):
        RecordingReader(tmp_path / "nope")
    with pytest.raises(StreamError, match="cannot open"):
        RecordingReader(tmp_path)


def test_writer_cannot_create(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StreamError, match="cannot create"):
        RecordingWriter(tmp_path / "file" / "rec")
