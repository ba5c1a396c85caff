"""Writing files so that a crash at any moment leaves the old file or the new
one, never a torn one: temp file in the same directory, fsync, rename, fsync
the directory. Used by the label store, training and fine-tuning alike."""
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path


def fsync_directory(directory: str | os.PathLike) -> None:
    """Make a rename or unlink in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some file systems (FUSE mounts such as Cloud Storage) cannot fsync a
        # directory; the rename itself is still atomic there.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, mode: int = 0o644, sync: bool = True) -> None:
    """Write `data` to `path` so that `path` is always either absent/old or whole.

    The temp file is hidden (``.<name>.<random>.tmp``) in the same directory,
    so the rename never crosses file systems and sweepers can recognise it.
    `sync=False` skips the fsyncs, for bulk writers that sync the file system
    once for many files (os.sync()) before they rely on them.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # mkstemp makes it 0600
            handle.write(data)
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sync:
        fsync_directory(path.parent)
