"""The streaming zip writer against Python's own zip reader: small archives,
compressed and stored entries, an entry from a file, and past the classic
format's 65,535-entry limit (zip64 end records)."""
from __future__ import annotations

import io
import zipfile

from digit_recognition.zip_stream import ZipStreamWriter

STAMP = (2026, 11, 29, 16, 41, 38)


def build(entries: list[tuple[str, bytes, bool]], file_entry: bytes | None = None) -> bytes:
    writer = ZipStreamWriter()
    parts = [writer.entry(name, data, STAMP, compress=compress) for name, data, compress in entries]
    if file_entry is not None:
        parts += list(writer.entry_from_file("from-file.json", io.BytesIO(file_entry), STAMP))
    parts += list(writer.finish())
    writer.close()
    archive = b"".join(parts)
    assert writer.position == len(archive)
    return archive


def test_entries_read_back_whole():
    payload = b'{"a": 1}\n' * 5000
    archive = build([("3/x.png", b"\x89PNG not really", False), ("3/x.json", b'{"label": 3}', True),
                     ("caf\u00e9/\u00fc.txt", b"", True)], file_entry=payload)
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        assert zipped.testzip() is None
        assert zipped.namelist() == ["3/x.png", "3/x.json", "caf\u00e9/\u00fc.txt", "from-file.json"]
        assert zipped.read("3/x.png") == b"\x89PNG not really" and zipped.read("3/x.json") == b'{"label": 3}'
        assert zipped.read("from-file.json") == payload
        info = zipped.getinfo("from-file.json")
        assert info.compress_type == zipfile.ZIP_DEFLATED and info.compress_size < len(payload) // 10
        assert zipped.getinfo("3/x.png").compress_type == zipfile.ZIP_STORED
        assert zipped.getinfo("3/x.png").date_time == (2026, 11, 29, 16, 41, 38)


def test_more_entries_than_the_classic_format_holds():
    count = 70_000
    archive = build([(f"{i % 10}/{i:08d}.json", str(i).encode(), False) for i in range(count)])
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        names = zipped.namelist()
        assert len(names) == count and names[-1] == f"9/{count - 1:08d}.json"
        assert zipped.read(names[65_536]) == b"65536"


def test_an_empty_archive_is_valid():
    with zipfile.ZipFile(io.BytesIO(build([]))) as zipped:
        assert zipped.namelist() == []
