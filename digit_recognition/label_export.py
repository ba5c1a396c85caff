"""The label store as a zip, streamed as it is built.

Layout (unchanged from the folder store, so existing tools keep reading it)::

    <digit>/<id>.png     the stored drawing
    <digit>/<id>.json    its metadata (SampleRecord.metadata())
    manifest.json        {"count", "exported_at", "format", "samples": [{id, label, png, json, sha256}]}

`ExportStream` yields the archive in chunks while it walks the store a page at
a time: the first bytes leave before the second sample is read, and memory
stays flat whatever the store's size (`zip_stream` spills the central
directory to a temp file; the manifest's sample list goes to another as the
export runs and is copied into the last entry). A sample deleted while the export runs is left
out (and so is absent from the manifest too).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import tempfile
from typing import TYPE_CHECKING, BinaryIO, Iterator

from .label_records import EXPORT_FORMAT, utc_now_iso
from .zip_stream import CHUNK_BYTES, ZipStreamWriter

if TYPE_CHECKING:  # the store is passed in: exporting never opens one itself
    from .label_store import LabelStore


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
    writer = ZipStreamWriter()
    count = 0
    try:
        with tempfile.TemporaryFile() as manifest_samples:
            pending: list[bytes] = []
            pending_bytes = 0
            for record in store.iter_samples():
                try:
                    png = store.read_png(record)
                except FileNotFoundError:
                    continue  # deleted since the page was read
                stem = f"{record.label}/{record.id}"
                stamp = _zip_time(record.created_at)
                # PNGs are already compressed; storing them saves CPU for nothing lost.
                pending.append(writer.entry(f"{stem}.png", png, stamp))
                pending.append(writer.entry(f"{stem}.json", _sidecar(record.metadata()), stamp, compress=True))
                entry = {"id": record.id, "label": record.label, "png": f"{stem}.png",
                         "json": f"{stem}.json", "sha256": hashlib.sha256(png).hexdigest()}
                manifest_samples.write((",\n" if count else "\n").encode()
                                       + json.dumps(entry, sort_keys=True).encode())
                count += 1
                stream.count = count
                pending_bytes += len(pending[-2]) + len(pending[-1])
                if pending_bytes >= chunk_bytes or count == 1:  # the first sample leaves at once
                    yield b"".join(pending)
                    pending, pending_bytes = [], 0
            if pending:
                yield b"".join(pending)
            exported_at = utc_now_iso()
            head = json.dumps({"count": count, "exported_at": exported_at, "format": EXPORT_FORMAT})[:-1]
            with tempfile.TemporaryFile() as manifest:
                manifest.write(head.encode() + b', "samples": [')
                manifest_samples.seek(0)
                shutil.copyfileobj(manifest_samples, manifest, CHUNK_BYTES)
                manifest.write(b"\n]}\n")
                manifest.seek(0)
                yield from writer.entry_from_file("manifest.json", manifest, _zip_time(exported_at))
        yield from writer.finish()
    finally:
        writer.close()


def write_export(store: LabelStore, file: BinaryIO) -> int:
    """Write the export zip to `file`; returns how many samples it holds."""
    stream = ExportStream(store)
    for chunk in stream:
        file.write(chunk)
    return stream.count
