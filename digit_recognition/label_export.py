"""The label store as a zip, streamed as it is built.

Layout (unchanged from the folder store, so existing tools keep reading it)::

    <digit>/<id>.png     the stored drawing
    <digit>/<id>.json    its metadata (SampleRecord.metadata())
    manifest.json        {"count", "exported_at", "format", "samples": [{id, label, png, json, sha256}]}

`ExportStream` yields the archive in chunks while it walks the store a page at
a time: the first bytes leave before the second sample is read, and memory
stays flat whatever the store's size. The zip is written to an unseekable
sink, so each entry carries a data descriptor instead of a patched header
(what every unzip reads). The manifest's sample list goes to an anonymous temp
file as the export runs and is copied into the last entry, so it does not
accumulate in memory either. A sample deleted while the export runs is left
out (and so is absent from the manifest too).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import shutil
import tempfile
import zipfile
from typing import BinaryIO, Iterator

from .label_store import EXPORT_FORMAT, LabelStore, utc_now_iso

CHUNK_BYTES = 64 * 1024


class _ChunkSink(io.RawIOBase):
    """A write-only, unseekable stream that hands out what was written so far."""

    def __init__(self):
        super().__init__()
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def _sidecar(metadata: dict) -> bytes:
    return (json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _zip_time(iso: str) -> tuple:
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        moment = dt.datetime.now(dt.timezone.utc)
    return (max(moment.year, 1980), moment.month, moment.day, moment.hour, moment.minute, moment.second)


class ExportStream:
    """The export zip as an iterable of chunks; `count` is the samples sent so far."""

    def __init__(self, store: LabelStore, chunk_bytes: int = CHUNK_BYTES):
        self.store = store
        self.chunk_bytes = chunk_bytes
        self.count = 0

    def __iter__(self) -> Iterator[bytes]:
        return _chunks(self)


def _chunks(stream: ExportStream) -> Iterator[bytes]:
    store, chunk_bytes = stream.store, stream.chunk_bytes
    sink = _ChunkSink()
    count = 0
    with tempfile.TemporaryFile() as manifest_samples, zipfile.ZipFile(sink, "w") as archive:
        pending = 0
        for record in store.iter_samples():
            try:
                png = store.read_png(record)
            except FileNotFoundError:
                continue  # deleted since the page was read
            stem = f"{record.label}/{record.id}"
            stamp = _zip_time(record.created_at)
            # PNGs are already compressed; storing them saves CPU for nothing lost.
            archive.writestr(zipfile.ZipInfo(f"{stem}.png", stamp), png, zipfile.ZIP_STORED)
            archive.writestr(zipfile.ZipInfo(f"{stem}.json", stamp), _sidecar(record.metadata()),
                             zipfile.ZIP_DEFLATED)
            entry = {"id": record.id, "label": record.label, "png": f"{stem}.png",
                     "json": f"{stem}.json", "sha256": hashlib.sha256(png).hexdigest()}
            manifest_samples.write((",\n" if count else "\n").encode() + json.dumps(entry, sort_keys=True).encode())
            count += 1
            stream.count = count
            pending += len(png)
            if pending >= chunk_bytes or count == 1:  # the first sample leaves at once
                yield sink.take()
                pending = 0
        exported_at = utc_now_iso()
        head = json.dumps({"count": count, "exported_at": exported_at, "format": EXPORT_FORMAT})[:-1]
        manifest_info = zipfile.ZipInfo("manifest.json", _zip_time(exported_at))
        manifest_info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(manifest_info, "w", force_zip64=True) as manifest:
            manifest.write(head.encode() + b', "samples": [')
            manifest_samples.seek(0)
            shutil.copyfileobj(manifest_samples, manifest, CHUNK_BYTES)
            manifest.write(b"\n]}\n")
            yield sink.take()
    yield sink.take()  # the central directory, written when the archive closed


def write_export(store: LabelStore, file: BinaryIO) -> int:
    """Write the export zip to `file`; returns how many samples it holds."""
    stream = ExportStream(store)
    for chunk in stream:
        file.write(chunk)
    return stream.count
