"""The bad-input battery against a real server on loopback (issue 7).

One server takes every case in turn, so "it still answers" means after all of
the abuse before it too. For each case: the status, a JSON {"error": ...} body,
the label store byte-for-byte unchanged (no sample, no temp file, no directory)
unless the case is a valid submission, and /healthz still 200. The table of
cases, statuses and times is printed at the end of the module.
"""
from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest
import requests

from testing_support.bad_inputs import battery, data_url, image_payload, png_bomb
from testing_support.loopback_server import start_live_server
from tests.app_config import base_test_config
from flask_app import create_app

CASES = battery()
_results: list[tuple[str, str, int, int | str, float, str]] = []


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    app = create_app(base_test_config(tmp_path_factory.mktemp("battery")))
    assert app.config["LABELS_RATE_LIMIT"] == "off"
    # Open the store (its database files appear) as a worker's first label would:
    # each case checks what its own request adds to the labels folder.
    app.extensions["label_store"].open()
    http_server, thread = start_live_server(app)
    try:
        yield f"http://127.0.0.1:{http_server.server_port}", Path(app.config["LABELS_DIR"])
    finally:
        http_server.shutdown()
        thread.join(timeout=5)


@pytest.fixture(scope="module", autouse=True)
def print_table(request):
    """Print the battery's table after the module, even under -q and output capture."""
    yield
    if not _results:
        return
    lines = ["", "bad-input battery (real server on loopback)",
             f"{'endpoint':9} {'case':38} {'want':>4} {'got':>4} {'ms':>8}  store"]
    for endpoint, name, expected, got, ms, store in _results:
        mark = "" if got == expected else "   <-- MISMATCH"
        lines.append(f"{endpoint:9} {name[:38]:38} {expected:>4} {got!s:>4} {ms:8.1f}  {store}{mark}")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n".join(lines))


def snapshot(root: Path) -> dict[str, int | None]:
    """Every path under the store (files with their sizes, directories as None),
    hidden and temporary files included."""
    return {str(p.relative_to(root)): (p.stat().st_size if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case, server):
    url, labels_dir = server
    payload = case.payload()
    before = snapshot(labels_dir)
    started = time.perf_counter()
    try:
        response = requests.post(url + case.endpoint, data=payload.body,
                                 headers={"Content-Type": payload.content_type}, timeout=60)
    except requests.ConnectionError as exc:  # recorded, then reported as the failure
        _results.append((case.endpoint, case.name, case.expected, "conn", 0.0, "?"))
        pytest.fail(f"connection failed: {exc}")
    elapsed_ms = (time.perf_counter() - started) * 1000
    after = snapshot(labels_dir)
    added = sorted(set(after) - set(before))
    changed = added or [p for p in before if after.get(p, -1) != before[p]]
    _results.append((case.endpoint, case.name, case.expected, response.status_code, elapsed_ms,
                     f"+{len(added)} paths" if changed else "unchanged"))

    assert response.status_code == case.expected, response.text[:300]
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    if case.expected >= 400:
        assert isinstance(body.get("error"), str) and body["error"].strip()
        assert "Traceback" not in response.text
        assert after == before, f"the store changed: {changed}"
    elif case.stores_sample:
        sample_id = body["id"]
        images = {p: size for p, size in after.items() if p.startswith("images/")}
        new_files = {p for p in added if p in images and images[p] is not None}
        # The same drawing and label sent again is answered with the stored sample.
        expected = set() if body["duplicate"] else {f"images/{sample_id[:2]}/{sample_id}.png"}
        assert new_files == expected
        assert set(added) - new_files <= {"images", f"images/{sample_id[:2]}"}  # at most its directories
        assert all(after[p] == before[p] for p in before if p.startswith("images/")), "an image changed"
    else:
        assert after == before, f"the store changed: {changed}"

    health = requests.get(url + "/healthz", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_png_bomb_is_refused_without_decoding_it(server):
    """The bomb would take 400 MB to decode; refusing it must not come near that.

    The server runs in this process, so its peak RSS is ours.
    """
    url, _ = server
    body = image_payload("/predict", data_url(png_bomb())).body
    peak_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    response = requests.post(url + "/predict", data=body,
                             headers={"Content-Type": "application/json"}, timeout=60)
    growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before_kb) / 1024
    assert response.status_code == 413
    assert "pixels" in response.json()["error"]
    assert growth_mb < 100, f"peak RSS grew {growth_mb:.0f} MB"

