"""Where the per-client rate limits count, when they count in this process.

`RATELIMIT_STORAGE_URI` names the storage (the `limits` library's URIs:
memory://, redis://, memcached://...). Its in-process one, `memory://`, drops
expired entries from a `threading.Timer` that it starts 10 ms after any hit
when none is running, so under steady traffic it starts a new thread for
about every request that comes 10 ms after the last sweep: a thread start
(or, in a gevent worker, a greenlet and a timer), and with it a switch away
from the request, on the prediction path. SweptMemoryStorage is the same
storage, with the same counts and answers, whose expired entries are swept
from inside a hit at most once a second instead: no thread.

Expired entries never change a count (the moving window compares each
entry's time, the fixed window its expiry), so sweeping less often only
keeps a client's stale entries up to a second longer: at most one window's
worth per client, as before.
"""
from __future__ import annotations

import threading
import time

from limits.storage import MemoryStorage

SWEEP_INTERVAL_S = 1.0
SWEPT_MEMORY_SCHEME = "swept-memory"


class SweptMemoryStorage(MemoryStorage):
    """limits' MemoryStorage without its expiry thread: swept inline, once a second."""

    STORAGE_SCHEME = [SWEPT_MEMORY_SCHEME]  # registers the scheme with `limits`

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options):
        self._next_sweep = 0.0
        self._sweep_lock = threading.Lock()
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    # MemoryStorage calls `self.__schedule_expiry()` (name-mangled to this) on
    # every hit; its own starts a Timer thread when none is alive.
    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 - the mangled name it calls
        now = time.monotonic()
        if now < self._next_sweep or not self._sweep_lock.acquire(blocking=False):
            return  # swept recently, or another thread is sweeping now
        try:
            self._next_sweep = now + SWEEP_INTERVAL_S
            self._MemoryStorage__expire_events()
        finally:
            self._sweep_lock.release()


def storage_uri(configured: str | None) -> str:
    """The storage URI to use for RATELIMIT_STORAGE_URI: memory:// (the default)
    becomes the swept memory storage; any other is used as it is."""
    uri = (configured or "memory://").strip()
    if uri.split("://", 1)[0].lower() == "memory":
        return f"{SWEPT_MEMORY_SCHEME}://"
    return uri
