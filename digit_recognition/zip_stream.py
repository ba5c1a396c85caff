"""A zip archive written front to back in flat memory, for streaming a large export.

Python's zipfile keeps one ZipInfo object per entry until it writes the
central directory at the end: about a kilobyte each, so 200,000 entries cost
~200 MiB of a web worker's memory. Here each entry's central-directory record
is packed as it is written and spilled to an anonymous temp file, then copied
out at the end: memory stays flat whatever the number of entries.

Each entry's size and CRC are known before its header is written (the data is
in hand), so no data descriptors are needed. Zip64 end records are written
when the entry count or an offset passes the classic format's limits, and a
zip64 extra field when an entry's offset does; readers (zipfile, unzip, 7-Zip)
read both.
"""
from __future__ import annotations

import struct
import tempfile
import zlib
from typing import BinaryIO, Iterator

CHUNK_BYTES = 64 * 1024
_UTF8_NAMES = 0x0800
_STORED, _DEFLATED = 0, 8
_MAX_16, _MAX_32 = 0xFFFF, 0xFFFFFFFF


def _dos_time(date_time: tuple) -> tuple[int, int]:
    year, month, day, hour, minute, second = date_time[:6]
    return (hour << 11) | (minute << 5) | (second // 2), ((max(year, 1980) - 1980) << 9) | (month << 5) | day


class ZipStreamWriter:
    """Builds a zip as a sequence of byte strings; `position` is the bytes produced so far."""

    def __init__(self):
        self.position = 0
        self.entries = 0
        self._central = tempfile.TemporaryFile()

    def close(self) -> None:
        self._central.close()

    def _header(self, name: str, method: int, crc: int, compressed: int, size: int,
                date_time: tuple) -> bytes:
        encoded = name.encode("utf-8")
        dos_time, dos_date = _dos_time(date_time)
        offset = self.position
        local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, _UTF8_NAMES, method, dos_time, dos_date,
                            crc, compressed, size, len(encoded), 0) + encoded
        extra = struct.pack("<HHQ", 0x0001, 8, offset) if offset > _MAX_32 else b""
        version = 45 if extra else 20
        self._central.write(struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, version, version, _UTF8_NAMES, method, dos_time, dos_date,
            crc, compressed, size, len(encoded), len(extra), 0, 0, 0, 0o644 << 16,
            min(offset, _MAX_32)) + encoded + extra)
        self.entries += 1
        return local

    def entry(self, name: str, data: bytes, date_time: tuple, compress: bool = False) -> bytes:
        """The bytes of one whole entry (header and data)."""
        crc = zlib.crc32(data)
        if compress:
            packer = zlib.compressobj(6, zlib.DEFLATED, -15)
            body = packer.compress(data) + packer.flush()
        else:
            body = data
        header = self._header(name, _DEFLATED if compress else _STORED, crc, len(body), len(data), date_time)
        self.position += len(header) + len(body)
        return header + body

    def entry_from_file(self, name: str, source: BinaryIO, date_time: tuple) -> Iterator[bytes]:
        """One deflated entry read from `source` (from its current position), in chunks."""
        packer = zlib.compressobj(6, zlib.DEFLATED, -15)
        crc = size = 0
        with tempfile.TemporaryFile() as packed:
            while chunk := source.read(CHUNK_BYTES):
                crc, size = zlib.crc32(chunk, crc), size + len(chunk)
                packed.write(packer.compress(chunk))
            packed.write(packer.flush())
            compressed = packed.tell()
            header = self._header(name, _DEFLATED, crc, compressed, size, date_time)
            self.position += len(header) + compressed
            yield header
            packed.seek(0)
            while chunk := packed.read(CHUNK_BYTES):
                yield chunk

    def finish(self) -> Iterator[bytes]:
        """The central directory and end records, in chunks."""
        start, length = self.position, self._central.tell()
        self._central.seek(0)
        while chunk := self._central.read(CHUNK_BYTES):
            yield chunk
        end = start + length
        records = b""
        if self.entries > _MAX_16 or start > _MAX_32 or length > _MAX_32:
            records += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, self.entries, self.entries,
                                   length, start)
            records += struct.pack("<IIQI", 0x07064B50, 0, end, 1)
        records += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, min(self.entries, _MAX_16),
                               min(self.entries, _MAX_16), min(length, _MAX_32), min(start, _MAX_32), 0)
        self.position = end + len(records)
        yield records
