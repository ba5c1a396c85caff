"""The rate limits' in-process storage: same counts as limits' memory storage,
no thread started per request, expired entries still dropped."""
from __future__ import annotations

import threading
import time

import limits
import limits.storage
import limits.strategies
import pytest

from flask_app import create_app
from flask_app import rate_limit_storage
from flask_app.rate_limit_storage import SweptMemoryStorage, storage_uri
from testing_support.bad_inputs import canvas_rgba_png, data_url
from tests.app_config import base_test_config


@pytest.fixture(scope="module")
def drawing() -> dict:
    return {"image": data_url(canvas_rgba_png())}


def test_memory_uri_gets_the_swept_storage_and_others_are_kept():
    assert storage_uri(None) == storage_uri("memory://") == storage_uri(" MEMORY:// ") == "swept-memory://"
    assert storage_uri("redis://cache:6379/0") == "redis://cache:6379/0"
    assert isinstance(limits.storage.storage_from_string(storage_uri("memory://")), SweptMemoryStorage)


@pytest.mark.parametrize("strategy", [limits.strategies.MovingWindowRateLimiter,
                                      limits.strategies.FixedWindowRateLimiter])
def test_counts_like_the_memory_storage(strategy):
    item = limits.parse("5 per minute")
    swept = strategy(SweptMemoryStorage())
    reference = strategy(limits.storage.MemoryStorage())
    for client in ("a", "a", "b", "a", "a", "a", "a", "b"):
        assert swept.hit(item, client) == reference.hit(item, client)
    assert swept.get_window_stats(item, "a").remaining == reference.get_window_stats(item, "a").remaining == 0


def _threads_started_during(action) -> int:
    started = []
    original = threading.Thread.start

    def counting_start(self, *args, **kwargs):
        started.append(self)
        return original(self, *args, **kwargs)

    threading.Thread.start = counting_start
    try:
        action()
    finally:
        threading.Thread.start = original
    return len(started)


def test_predictions_under_the_rate_limit_start_no_threads(tmp_path, drawing):
    app = create_app(base_test_config(tmp_path, PREDICT_RATE_LIMIT="1000 per minute"))
    client = app.test_client()
    assert client.post("/predict", json=drawing).status_code == 200  # first-call costs

    def predict_spaced():
        for _ in range(5):
            time.sleep(0.02)  # past limits' 10 ms timer, which starts a thread on the next hit
            assert client.post("/predict", json=drawing).status_code == 200

    assert _threads_started_during(predict_spaced) == 0
    # The stock memory storage would have: the reason this module exists.
    stock = limits.strategies.MovingWindowRateLimiter(limits.storage.MemoryStorage())
    item = limits.parse("1000 per minute")

    def hit_spaced():
        for _ in range(5):
            time.sleep(0.02)
            stock.hit(item, "client")

    assert _threads_started_during(hit_spaced) >= 1


def test_expired_entries_are_swept_without_a_timer(monkeypatch):
    monkeypatch.setattr(rate_limit_storage, "SWEEP_INTERVAL_S", 0.0)
    storage = SweptMemoryStorage()
    limiter = limits.strategies.MovingWindowRateLimiter(storage)
    item = limits.parse("3 per second")
    for _ in range(3):
        assert limiter.hit(item, "gone")
    assert not limiter.hit(item, "gone")
    time.sleep(1.1)
    assert limiter.hit(item, "other")  # a hit by anyone sweeps what has expired
    assert [entries for key, entries in storage.events.items() if "gone" in key] == [[]]
