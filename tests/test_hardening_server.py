"""Hardening, second round (issue 16), through the Dockerfile's command: what
only the real server shows. Slow clients do not hold up normal requests, a
request head that never completes is cut off, gunicorn's own error pages carry
the security headers, no response names the server, chunked bodies are
judged without a traceback, and logging out ends a session in both workers.

One server for the module (started the way tests/test_container_command.py
starts it; see testing_support/container_command.py); its log is checked at the end.
"""
from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import time
import urllib.parse

import numpy as np
import pytest

from testing_support.container_command import (
    parse_dockerfile, pen_drawing_pngs, predict_body, run_container_command, stage_image_files, wait_for_status,
)
from testing_support.slow_clients import SlowHeaderClients, timed_predicts
from flask_app.security_headers import SECURITY_HEADERS
from tests.test_hardening import chunked_request, raw_exchange, status_and_json

TOKEN = "a-long-enough-admin-token-for-tests"
# gunicorn.conf.py's keepalive: the deadline for a whole request head.
HEAD_DEADLINE_S = 5


@pytest.fixture(scope="module")
def server(pen_digits_path, tmp_path_factory):
    scratch = tmp_path_factory.mktemp("hardening-server")
    spec = parse_dockerfile()
    workdir = stage_image_files(scratch / "app", spec)
    with run_container_command(workdir, scratch / "server.log", spec=spec, LABELS_DIR=str(scratch / "labels"),
                               ADMIN_TOKEN=TOKEN, SECRET_KEY="shared-by-both-workers",
                               PREDICT_RATE_LIMIT="off") as container:  # the load here is the point
        try:
            wait_for_status(container.port, "/readyz", container.process, timeout=300)
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(f"{exc}; its log ends:\n" + "\n".join(container.log_lines()[-30:]))
        container.bodies = [predict_body(png) for _, png in pen_drawing_pngs(pen_digits_path, per_label=1)]
        yield container


def get(port: int, path: str, headers: dict | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    response.body = response.read()
    connection.close()
    return response


def assert_security_headers(headers) -> None:
    for name, value in SECURITY_HEADERS:
        assert headers.get(name) == value, (name, dict(headers))
    assert "server" not in {k.lower() for k in headers.keys()}, dict(headers)


# --- slow clients -----------------------------------------------------------

def test_normal_predicts_stay_fast_with_20_slow_header_clients(server):
    timed_predicts(server.port, server.bodies, 2, 1.0, 30.0)  # both workers warm
    with SlowHeaderClients(server.port, count=20, line_interval=2.0):
        time.sleep(1.0)  # they are connected and trickling
        latencies, failures = timed_predicts(server.port, server.bodies, clients=2, seconds=4.0,
                                             request_timeout=5.0)
    assert failures == 0
    p99 = float(np.percentile(latencies, 99))
    assert p99 <= 1.0, f"p99 {p99:.3f} s over {len(latencies)} requests"


def test_a_request_head_that_never_completes_is_cut_off(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=HEAD_DEADLINE_S + 5) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
        closed_after = None
        for n in range(3 * HEAD_DEADLINE_S):
            try:
                sock.sendall(f"X-{n}: a\r\n".encode())
                sock.settimeout(1.0)
                if sock.recv(4096) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue  # still open; one more line
            except OSError:  # reset: closed too
                closed_after = time.monotonic() - started
                break
    assert closed_after is not None, "the server kept a never-ending request head open"
    assert HEAD_DEADLINE_S - 1 <= closed_after <= HEAD_DEADLINE_S + 3


# --- what gunicorn answers itself -------------------------------------------

def test_curl_on_a_9000_character_path_shows_the_security_headers(server):
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl is not installed")
    result = subprocess.run([curl, "-sS", "-i", f"{server.url}/{'a' * 9000}"],
                            capture_output=True, text=True, timeout=30)
    head, _, body = result.stdout.replace("\r\n", "\n").partition("\n\n")
    status_line, *header_lines = head.splitlines()
    headers = dict(line.split(": ", 1) for line in header_lines)
    assert status_line.split()[1] == "414", result.stdout[:500]
    assert_security_headers(headers)
    assert headers["Content-Type"] == "application/json" and "error" in json.loads(body)


@pytest.mark.parametrize("request_bytes, status", [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(120)) + b"\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    (b"NOT A REQUEST LINE\r\n\r\n", 400),
], ids=["uri-too-long", "too-many-headers", "header-too-long", "bad-request-line"])
def test_gunicorns_own_error_pages_carry_the_security_headers(server, request_bytes, status):
    answer = raw_exchange(server.port, request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert int(lines[0].split()[1]) == status, answer[:300]
    assert_security_headers(headers)
    assert "error" in json.loads(body)


def test_the_apps_responses_name_no_server(server):
    for path in ("/", "/healthz", "/static/js/canvas.js", "/no-such-page"):
        response = get(server.port, path)
        assert_security_headers(response.headers)


# --- chunked bodies ---------------------------------------------------------

def test_a_malformed_chunked_body_is_400(server):
    answer = raw_exchange(server.port, chunked_request("/predict", [b'{"image": '],
                                                      raw_tail=b"zz\r\nabc\r\n0\r\n\r\n"))
    status, body = status_and_json(answer)
    assert answer.count(b"HTTP/1.1 ") == 1, answer  # one answer, not the app's and then gunicorn's
    assert status == 400 and "chunked" in body["error"]


def test_an_oversized_chunked_body_is_413(server):
    limit = 2 * 1024 * 1024  # MAX_CONTENT_LENGTH's default
    answer = raw_exchange(server.port, chunked_request("/predict", [b"a" * 65536] * (limit // 65536 + 1)))
    assert status_and_json(answer)[0] == 413


def test_a_chunked_predict_is_answered(server):
    payload = server.bodies[3]
    pieces = [payload[i:i + 4096] for i in range(0, len(payload), 4096)]
    status, body = status_and_json(raw_exchange(server.port, chunked_request("/predict", pieces)))
    assert status == 200 and body["digit"] == 3


# --- sessions across the two workers ----------------------------------------

def session_cookie_from_login(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/review/login", body=urllib.parse.urlencode({"token": TOKEN}),
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    response = connection.getresponse()
    response.read()
    connection.close()
    assert response.status == 303
    return response.getheader("Set-Cookie").split(";", 1)[0]


def test_a_logged_out_cookie_gets_401_from_every_worker(server):
    cookie = session_cookie_from_login(server.port)
    # New connections, so the requests spread over both workers.
    assert {get(server.port, "/labels", {"Cookie": cookie}).status for _ in range(12)} == {200}
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("POST", "/review/logout", headers={"Cookie": cookie})
    assert connection.getresponse().status == 303
    connection.close()
    assert {get(server.port, "/labels", {"Cookie": cookie}).status for _ in range(12)} == {401}


# --- last: what the server logged -------------------------------------------

def test_zz_the_log_has_no_error_and_no_traceback(server):
    lines = server.log_lines()
    assert not [line for line in lines if "Traceback" in line]
    # (Whether every line is JSON is test_container_command.py's concern: TensorFlow's
    # C++ start-up lines on stderr are not, and fail there.)
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    assert not [e for e in entries if e["severity"] in ("ERROR", "CRITICAL")], entries
    assert {e["pid"] for e in entries if e.get("path") == "/labels"}  # the app did log the requests
