"""The server's record of live review sessions, so that logging out ends one.

Flask's session is a signed cookie: the server keeps nothing, so a copy of the
cookie kept working after logout until it expired. Here each login gets a
random session id, which the signed cookie carries, and the server records it
as one empty file named by the id's SHA-256 in a folder on disk; logout
deletes that file, and a cookie whose file is gone is refused.

One file per session, not one file listing them all: creating and deleting a
file are each atomic, so two workers (or two Cloud Run instances sharing the
labels volume) logging people in and out at once never lose each other's
update, with no lock. The record is on disk, not in a worker's memory, so it
holds in every worker and survives restarts. The file is named by a hash, so
the folder's listing gives nobody a usable session id, and no path is ever
built from what a cookie says (the id must also look like one we issued).

A session also ends `max_age` seconds after login; files older than that are
removed at the next login.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import time
from pathlib import Path

from digit_recognition.atomic_files import atomic_write_bytes, fsync_directory

# secrets.token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")
_RECORD_NAME = re.compile(r"[0-9a-f]{64}")
# What atomic_write_bytes leaves behind if the process dies mid-write.
_LEFTOVER_NAME = re.compile(r"\.[0-9a-f]{64}\..*\.tmp")


class AdminSessions:
    """Live review sessions, one empty file each under `directory`."""

    def __init__(self, directory: str | os.PathLike, max_age: float):
        self.directory = Path(directory)
        self.max_age = max_age

    def _record(self, session_id: str) -> Path:
        return self.directory / hashlib.sha256(session_id.encode("ascii")).hexdigest()

    def start(self) -> str:
        """Record a new session; its id, for the signed session cookie."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.remove_expired()
        session_id = secrets.token_urlsafe(32)
        atomic_write_bytes(self._record(session_id), b"", mode=0o600)
        return session_id

    def is_live(self, session_id) -> bool:
        """Whether `session_id` was started here, not ended, and is not too old."""
        if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
            return False
        try:
            started = self._record(session_id).stat().st_mtime
        except OSError:
            return False
        return 0 <= time.time() - started < self.max_age

    def end(self, session_id) -> None:
        """Forget `session_id`: every copy of its cookie stops working."""
        if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
            return
        with contextlib.suppress(FileNotFoundError):
            self._record(session_id).unlink()
            fsync_directory(self.directory)

    def remove_expired(self) -> int:
        """Delete the records of sessions older than max_age; how many."""
        removed = 0
        now = time.time()
        for entry in os.scandir(self.directory):
            if not (_RECORD_NAME.fullmatch(entry.name) or _LEFTOVER_NAME.fullmatch(entry.name)):
                continue  # not ours
            with contextlib.suppress(FileNotFoundError):
                if now - entry.stat().st_mtime >= self.max_age:
                    os.unlink(entry.path)
                    removed += 1
        return removed
