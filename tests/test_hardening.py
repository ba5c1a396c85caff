"""Hardening, second round (issue 16), on the real app: review sessions that
logging out really ends, the admin token's minimum length and the throttle on
wrong tokens, the /predict rate limit, and chunked request bodies.

What only the real server shows (slow clients, gunicorn's own error pages, the
Server header) is in tests/test_hardening_server.py, which runs the
Dockerfile's command.
"""
from __future__ import annotations

import json
import logging
import socket

import pytest

from testing_support.bad_inputs import canvas_rgba_png, data_url
from tests.app_config import ADMIN_TOKEN, base_test_config
from flask_app import create_app
from flask_app.admin_auth import MIN_ADMIN_TOKEN_LENGTH

TOKEN = ADMIN_TOKEN  # what base_test_config's apps accept


def make_app(tmp_path, **overrides):
    return create_app(base_test_config(tmp_path, **overrides))


def security_events(caplog, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "flask_app.security"
            and getattr(r, "fields", {}).get("security_event") == event]


# --- logout ends the session on the server ----------------------------------

def test_a_copied_session_cookie_stops_working_after_logout(app):
    browser = app.test_client()
    assert browser.post("/review/login", data={"token": TOKEN}).status_code == 303
    copy = app.test_client()  # someone who copied the cookie before logout
    copy.set_cookie("session", browser.get_cookie("session").value)
    assert copy.get("/labels").status_code == 200
    assert browser.post("/review/logout").status_code == 303
    assert copy.get("/labels").status_code == 401
    assert copy.get("/review").status_code == 200 and b'name="token"' in copy.get("/review").data  # login form


def test_sessions_are_shared_by_workers_and_logout_in_one_ends_them_in_all(tmp_path):
    # Two app instances on one labels directory stand for two gunicorn workers
    # (or two Cloud Run instances sharing the volume); the real 2-worker server
    # is in test_hardening_server.py.
    first, second = make_app(tmp_path), make_app(tmp_path)
    browser = first.test_client()
    assert browser.post("/review/login", data={"token": TOKEN}).status_code == 303
    other_worker = second.test_client()
    other_worker.set_cookie("session", browser.get_cookie("session").value)
    assert other_worker.get("/labels").status_code == 200
    kept = browser.get_cookie("session").value
    assert browser.post("/review/logout").status_code == 303
    other_worker.set_cookie("session", kept)
    assert other_worker.get("/labels").status_code == 401
    # A new login works, and logging out of one session leaves another alone.
    assert browser.post("/review/login", data={"token": TOKEN}).status_code == 303
    other_browser = second.test_client()
    assert other_browser.post("/review/login", data={"token": TOKEN}).status_code == 303
    assert browser.post("/review/logout").status_code == 303
    assert other_browser.get("/labels").status_code == 200


def test_the_session_record_holds_no_usable_session_id(app):
    browser = app.test_client()
    browser.post("/review/login", data={"token": TOKEN})
    sessions = app.extensions["admin_auth"].sessions
    with browser.session_transaction() as cookie_session:
        session_id = cookie_session["review_session"]
    assert sessions.is_live(session_id)
    records = [p.name for p in sessions.directory.iterdir()]
    assert len(records) == 1 and len(records[0]) == 64  # a SHA-256 of the id, not the id itself
    assert session_id not in records[0]
    assert not sessions.is_live(records[0][:43])


def test_forged_session_ids_are_refused_without_touching_the_disk(app):
    sessions = app.extensions["admin_auth"].sessions
    for forged in ("../../etc/passwd", "", None, 42, "a" * 43 + "/", "x" * 1000):
        assert sessions.is_live(forged) is False
        sessions.end(forged)  # nothing to end, and no error


# --- the admin token: minimum length, throttled guessing --------------------

def test_a_short_admin_token_disables_admin_and_says_why(tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="flask_app")
    app = make_app(tmp_path, ADMIN_TOKEN="abcd")
    refusals = [r.getMessage() for r in caplog.records if r.name == "flask_app"]
    assert any("admin is disabled" in m and "4 characters" in m and str(MIN_ADMIN_TOKEN_LENGTH) in m
               for m in refusals), refusals
    client = app.test_client()
    response = client.get("/labels", headers={"Authorization": "Bearer abcd"})
    assert response.status_code == 403
    assert "ADMIN_TOKEN" in response.get_json()["error"]
    assert client.post("/review/login", data={"token": "abcd"}).status_code == 403
    assert client.get("/review").status_code == 403


def test_a_token_of_the_minimum_length_is_accepted(tmp_path):
    token = "t" * MIN_ADMIN_TOKEN_LENGTH
    client = make_app(tmp_path, ADMIN_TOKEN=token).test_client()
    assert client.get("/labels", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_the_21st_wrong_bearer_token_in_a_minute_gets_429(app, caplog):
    caplog.set_level(logging.WARNING, logger="flask_app.security")
    client = app.test_client()
    wrong = {"Authorization": "Bearer not-the-admin-token"}
    for attempt in range(20):
        assert client.get("/labels", headers=wrong).status_code == 401, attempt
    refused = client.get("/labels", headers=wrong)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 61  # the window, rounded up
    assert "too many wrong admin tokens" in refused.get_json()["error"]
    # Throttled means throttled: the right token is not even compared now.
    assert client.get("/labels", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 429
    assert len(security_events(caplog, "admin_token_wrong")) == 20
    throttled = security_events(caplog, "admin_client_throttled")
    assert len(throttled) == 1 and throttled[0].fields["client"] == "127.0.0.1"
    # Another client is not affected, nor requests that present no token.
    other = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/labels", headers={"Authorization": f"Bearer {TOKEN}"},
                      environ_base=other).status_code == 200
    assert client.get("/labels").status_code == 401


def test_wrong_tokens_on_the_login_form_are_throttled_too(app, caplog):
    caplog.set_level(logging.WARNING, logger="flask_app.security")
    client = app.test_client()
    for _ in range(10):
        client.get("/labels", headers={"Authorization": "Bearer wrong-token-number-one"})
    for attempt in range(10):
        response = client.post("/review/login", data={"token": "wrong"})
        assert response.status_code == 200 and b"not the admin token" in response.data, attempt
    refused = client.post("/review/login", data={"token": TOKEN})
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert b"Too many wrong tokens" in refused.data
    assert client.get("/labels").status_code == 401  # no session was started


def test_the_failure_limit_is_configurable_and_can_be_off(tmp_path):
    client = make_app(tmp_path, ADMIN_AUTH_FAILURE_LIMIT="2 per minute").test_client()
    wrong = {"Authorization": "Bearer not-the-admin-token"}
    assert [client.get("/labels", headers=wrong).status_code for _ in range(3)] == [401, 401, 429]
    client = make_app(tmp_path, ADMIN_AUTH_FAILURE_LIMIT="off").test_client()
    assert {client.get("/labels", headers=wrong).status_code for _ in range(40)} == {401}
    with pytest.raises(RuntimeError, match="ADMIN_AUTH_FAILURE_LIMIT"):
        make_app(tmp_path, ADMIN_AUTH_FAILURE_LIMIT="lots")


# --- the /predict rate limit ------------------------------------------------

@pytest.fixture(scope="module")
def drawing() -> dict:
    return {"image": data_url(canvas_rgba_png())}


def test_predict_is_rate_limited_per_client_with_retry_after(tmp_path, drawing):
    client = make_app(tmp_path, PREDICT_RATE_LIMIT="5 per minute").test_client()
    assert [client.post("/predict", json=drawing).status_code for _ in range(5)] == [200] * 5
    refused = client.post("/predict", json=drawing)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 61  # the window, rounded up
    assert "too many predictions" in refused.get_json()["error"]
    # Per client, and per endpoint: label submissions are counted apart.
    assert client.post("/predict", json=drawing, environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 200
    assert client.post("/labels", json={**drawing, "label": 3}).status_code == 201


def test_predict_rate_limit_off_disables_it(tmp_path, drawing):
    client = make_app(tmp_path, PREDICT_RATE_LIMIT="off").test_client()
    assert {client.post("/predict", json=drawing).status_code for _ in range(30)} == {200}


def test_the_default_predict_limit_is_generous():
    from flask_app import config as app_config
    import limits

    (limit,) = limits.parse_many(app_config.defaults()["PREDICT_RATE_LIMIT"])
    assert limit.amount / limit.get_expiry() >= 5  # per second, sustained: far above a person drawing


# --- chunked request bodies, over a real socket ------------------------------

def raw_exchange(port: int, request: bytes, timeout: float = 10.0) -> bytes:
    """Send `request` bytes as they are; everything the server answers before closing."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            # A server that answers before reading the whole request (an error
            # page) and closes with our bytes unread resets the connection.
            if not received:
                raise
    return received


def chunked_request(path: str, chunks: list[bytes], raw_tail: bytes | None = None) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)
    return head + body + (raw_tail if raw_tail is not None else b"0\r\n\r\n")


def status_and_json(answer: bytes) -> tuple[int, dict]:
    """The status and JSON body of the first response in `answer`."""
    head, _, rest = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), json.loads(rest[:int(headers["content-length"])])


def test_a_well_formed_chunked_predict_is_answered(live_server, drawing):
    port = int(live_server.url.rsplit(":", 1)[1])
    payload = json.dumps(drawing).encode()
    pieces = [payload[i:i + 1000] for i in range(0, len(payload), 1000)]
    status, body = status_and_json(raw_exchange(port, chunked_request("/predict", pieces)))
    assert status == 200 and body["digit"] in range(10)


def test_a_malformed_chunked_body_is_400_without_a_traceback(live_server, caplog):
    caplog.set_level(logging.INFO)
    port = int(live_server.url.rsplit(":", 1)[1])
    answer = raw_exchange(port, chunked_request("/predict", [b'{"image": '], raw_tail=b"zz\r\nabc\r\n0\r\n\r\n"))
    status, body = status_and_json(answer)
    assert status == 400 and "chunked" in body["error"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_an_oversized_chunked_body_is_413(tmp_path):
    from conftest import start_live_server

    app = make_app(tmp_path, MAX_CONTENT_LENGTH=10_000)
    server, thread = start_live_server(app)
    try:
        answer = raw_exchange(server.server_port, chunked_request("/predict", [b"a" * 4000] * 4))
        status, body = status_and_json(answer)
        assert status == 413 and "10000" in body["error"]
        # Exactly the limit is still allowed through (and then judged as JSON).
        answer = raw_exchange(server.server_port, chunked_request("/predict", [b" " * 5000] * 2))
        assert status_and_json(answer)[0] == 400
    finally:
        server.shutdown()
        thread.join(timeout=5)
