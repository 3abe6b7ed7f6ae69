"""Recording files: the multipart packets of a stream, stored back to back.

Layout: the magic ``SURVREC1``, then records, each a big-endian u32 part count followed, per part, by a big-endian
u32 length and the part's bytes. Each record is written in one piece and flushed, so a crash leaves whole records
followed at most by a partial tail, which :class:`RecordingReader` reports through ``truncated``.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from surveil.errors import StreamError

logger = logging.getLogger(__name__)

MAGIC = b"SURVREC1"
MAX_PARTS = 1 << 16  # far above any real packet; a larger count means a corrupted length field
MAX_PART_BYTES = 256 << 20

_U32 = struct.Struct(">I")


class RecordingWriter:
    """Appends multipart packets to a new recording file (an existing file at ``path`` is replaced)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.records = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file: BinaryIO | None = open(self.path, "wb")  # noqa: SIM115 - closed by close()
            self._file.write(MAGIC)
            self._file.flush()
        except OSError as e:
            raise StreamError(f"cannot create recording {self.path}: {e.strerror or e}") from None

    def write(self, parts: Sequence[bytes]) -> None:
        """Append one packet's parts as a whole record."""
        if self._file is None:
            raise ValueError(f"recording {self.path} is closed")
        if len(parts) > MAX_PARTS:
            raise StreamError(f"packet has {len(parts)} parts, more than a recording allows ({MAX_PARTS})")
        chunks = [_U32.pack(len(parts))]
        for part in parts:
            if len(part) > MAX_PART_BYTES:
                raise StreamError(f"packet part of {len(part)} bytes exceeds the recording limit ({MAX_PART_BYTES})")
            chunks.append(_U32.pack(len(part)))
            chunks.append(part)
        try:
            # One write per record, so the OS never sees a record split across our own buffer flushes.
            self._file.write(b"".join(chunks))
            self._file.flush()
        except OSError as e:
            raise StreamError(f"cannot write recording {self.path}: {e.strerror or e}") from None
        self.records += 1

    def close(self) -> None:
        """Flush and close; closing twice is harmless."""
        if self._file is None:
            return
        file, self._file = self._file, None
        try:
            file.close()
        except OSError as e:
            raise StreamError(f"cannot close recording {self.path}: {e.strerror or e}") from None
        logger.debug("closed recording %s after %d records", self.path, self.records)

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class RecordingReader:
    """Iterates the records of a recording as lists of parts.

    A file that ends inside a record (the writer crashed, or a copy was cut) or holds an implausible length field
    ends iteration after the last whole record and leaves a message in ``truncated``; otherwise ``truncated`` is None.
    Each iteration starts again from the first record.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.truncated: str | None = None
        self.records = 0
        try:
            self._file: BinaryIO | None = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        except FileNotFoundError:
            raise StreamError(f"no recording at {self.path}") from None
        except OSError as e:
            raise StreamError(f"cannot open recording {self.path}: {e.strerror or e}") from None
        magic = self._file.read(len(MAGIC))
        if magic != MAGIC:
            self.close()
            raise StreamError(f"{self.path} is not a surveil recording (starts with {magic!r}, expected {MAGIC!r})")

    def __iter__(self) -> Iterator[list[bytes]]:
        if self._file is None:
            raise ValueError(f"recording {self.path} is closed")
        file = self._file
        file.seek(len(MAGIC))
        self.truncated = None
        self.records = 0
        while True:
            start = file.tell()
            record = self._read_record(file, start)
            if record is None:
                return
            self.records += 1
            yield record

    def _read_record(self, file: BinaryIO, start: int) -> list[bytes] | None:
        """The next whole record, or None at the end of the file (setting ``truncated`` if the end is not clean)."""
        head = file.read(_U32.size)
        if not head:
            return None
        if len(head) < _U32.size:
            return self._stop(start, "ends inside a record header")
        (n_parts,) = _U32.unpack(head)
        if n_parts > MAX_PARTS:
            return self._stop(start, f"is corrupt: record claims {n_parts} parts (limit {MAX_PARTS})")
        parts = []
        for i in range(n_parts):
            head = file.read(_U32.size)
            if len(head) < _U32.size:
                return self._stop(start, f"ends inside the length of part {i} of {n_parts}")
            (length,) = _U32.unpack(head)
            if length > MAX_PART_BYTES:
                return self._stop(start, f"is corrupt: part {i} claims {length} bytes (limit {MAX_PART_BYTES})")
            # Check against the file size first so a bad length cannot make read() allocate a huge buffer.
            remaining = os.fstat(file.fileno()).st_size - file.tell()
            if length > remaining:
                return self._stop(start, f"ends inside part {i} of {n_parts} ({remaining} of {length} bytes present)")
            data = file.read(length)
            if len(data) < length:
                return self._stop(start, f"ends inside part {i} of {n_parts} ({len(data)} of {length} bytes present)")
            parts.append(data)
        return parts

    def _stop(self, start: int, what: str) -> None:
        self.truncated = f"recording {self.path} {what} at byte {start}, after {self.records} whole records"
        logger.warning("%s", self.truncated)
        return None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
