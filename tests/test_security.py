"""Security (issue 7): cross-site refusal, security headers on every response,
the label-submission rate limit, and no stack traces to clients.

Most tests use the real app through Flask's test client; the rate limit and
the error page are also checked over HTTP against a real server on loopback.
"""
from __future__ import annotations

import pytest
import requests

from testing_support.bad_inputs import canvas_rgba_png, data_url
from testing_support.loopback_server import start_live_server
from tests.app_config import ADMIN_TOKEN, base_test_config
from flask_app import config as app_config
from flask_app import create_app
from flask_app.security_headers import CONTENT_SECURITY_POLICY

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
EXPECTED_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@pytest.fixture(scope="module")
def drawing() -> dict:
    return {"image": data_url(canvas_rgba_png())}


@pytest.fixture(scope="module")
def labelled() -> dict:
    return {"image": data_url(canvas_rgba_png()), "label": 7}


def make_app(tmp_path, **overrides):
    return create_app(base_test_config(tmp_path, **overrides))


def stored_samples(app) -> int:
    return sum(1 for _ in app.extensions["label_store"].open().iter_samples())


@pytest.fixture
def served(tmp_path):
    """A real server for apps a test builds itself: served(app) -> base URL."""
    servers = []

    def serve(app) -> str:
        server, thread = start_live_server(app)
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    for server, thread in servers:
        server.shutdown()
        thread.join(timeout=5)


# --- the policy itself -------------------------------------------------------

def test_content_security_policy_is_strict():
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert directives["default-src"] == "'self'"


# --- security headers on every response --------------------------------------

def _boom():
    raise RuntimeError("secret detail: /etc/shadow at 0xdeadbeef")


@pytest.fixture
def app_with_failing_route(tmp_path):
    app = make_app(tmp_path, TESTING=False)
    app.add_url_rule("/boom", "boom", _boom, methods=["GET", "POST"])
    return app


def _requests_of_every_kind(drawing):
    return [
        ("page /", "GET", "/", {}),
        ("page /labeling", "GET", "/labeling", {}),
        ("static file", "GET", "/static/css/app.css", {}),
        ("JSON 200 /predict", "POST", "/predict", {"json": drawing}),
        ("JSON 400", "POST", "/predict", {"json": {}}),
        ("JSON 401 admin API", "GET", "/labels", {}),
        ("404", "GET", "/no/such/page", {}),
        ("405", "GET", "/predict", {}),
        ("413", "POST", "/predict", {"data": b"x" * (3 * 1024 * 1024),
                                     "headers": {"Content-Type": "application/json"}}),
        ("403 cross-site", "POST", "/predict", {"json": drawing,
                                                "headers": {"Sec-Fetch-Site": "cross-site"}}),
        ("500", "GET", "/boom", {}),
        ("healthz", "GET", "/healthz", {}),
    ]


def test_every_response_carries_the_security_headers(app_with_failing_route, drawing):
    client = app_with_failing_route.test_client()
    for name, method, path, kwargs in _requests_of_every_kind(drawing):
        response = client.open(path, method=method, **kwargs)
        for header, value in EXPECTED_HEADERS.items():
            assert response.headers.get(header) == value, f"{name}: {header}"
        assert "camera=()" in response.headers.get("Permissions-Policy", ""), name
        assert "Strict-Transport-Security" not in response.headers, f"{name}: HSTS over plain HTTP"
        if response.mimetype == "application/json":
            assert response.headers.get("Cache-Control") == "no-store", name


def test_static_files_stay_cacheable(app):
    response = app.test_client().get("/static/css/app.css")
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")


def test_hsts_only_over_https_from_a_trusted_proxy(tmp_path):
    behind_proxy = make_app(tmp_path, TRUSTED_PROXIES=1).test_client()
    over_https = behind_proxy.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert over_https.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "Strict-Transport-Security" not in behind_proxy.get("/healthz").headers


def test_no_stack_trace_reaches_the_client(app_with_failing_route, served):
    url = served(app_with_failing_route)
    for method in ("GET", "POST"):
        response = requests.request(method, url + "/boom", timeout=10)
        assert response.status_code == 500
        assert response.json() == {"error": "internal error; the request was not processed"}
        for leak in ("Traceback", "secret detail", "RuntimeError", "File \"", ".py"):
            assert leak not in response.text
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


# --- cross-site request refusal ----------------------------------------------

@pytest.mark.parametrize("headers, expected", [
    ({}, 200),  # scripts and API clients send neither header
    ({"Sec-Fetch-Site": "same-origin"}, 200),
    ({"Sec-Fetch-Site": "none"}, 200),  # the user's own action (address bar, bookmark)
    ({"Sec-Fetch-Site": "cross-site"}, 403),
    ({"Sec-Fetch-Site": "same-site"}, 403),  # a sibling subdomain is not this site
    ({"Sec-Fetch-Site": "CROSS-SITE"}, 403),
    ({"Sec-Fetch-Site": "cross-site", "Origin": "http://localhost"}, 403),  # Sec-Fetch-Site decides
    ({"Origin": "http://localhost"}, 200),  # older browsers: Origin only, ours
    ({"Origin": "http://LOCALHOST:80"}, 200),  # same origin, spelled differently
    ({"Origin": "https://evil.example"}, 403),
    ({"Origin": "http://localhost.evil.example"}, 403),
    ({"Origin": "http://localhost:8080"}, 403),  # another port is another origin
    ({"Origin": "https://localhost"}, 403),  # another scheme is another origin
    ({"Origin": "null"}, 403),  # sandboxed frame, file:// page
    ({"Origin": "http://localhost:notaport"}, 403),
], ids=lambda v: repr(v) if isinstance(v, dict) else str(v))
def test_cross_site_post_is_refused(client, drawing, headers, expected):
    response = client.post("/predict", json=drawing, headers=headers)
    assert response.status_code == expected, response.get_json()
    if expected == 403:
        assert "cross-site" in response.get_json()["error"]


def test_cross_site_get_is_allowed(client):
    assert client.get("/healthz", headers={"Sec-Fetch-Site": "cross-site",
                                           "Origin": "https://evil.example"}).status_code == 200


def test_cross_site_writes_change_nothing(app, labelled):
    client = app.test_client()
    created = client.post("/labels", json=labelled)
    assert created.status_code == 201
    sample_id = created.get_json()["id"]
    cross_site = {"Sec-Fetch-Site": "cross-site", **ADMIN}
    assert client.post("/labels", json=labelled, headers=cross_site).status_code == 403
    assert client.patch(f"/labels/{sample_id}", json={"label": 1}, headers=cross_site).status_code == 403
    assert client.delete(f"/labels/{sample_id}", headers=cross_site).status_code == 403
    assert client.delete(f"/labels/{sample_id}",
                         headers={"Origin": "https://evil.example", **ADMIN}).status_code == 403
    assert stored_samples(app) == 1
    assert client.get(f"/labels/{sample_id}", headers=ADMIN).get_json()["label"] == 7


def test_origin_behind_a_trusted_https_proxy(tmp_path, drawing):
    client = make_app(tmp_path, TRUSTED_PROXIES=1).test_client()
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    host = {"Host": "digits.example.run.app"}
    ok = client.post("/predict", json=drawing,
                     headers={**proxied, **host, "Origin": "https://digits.example.run.app"})
    assert ok.status_code == 200
    downgraded = client.post("/predict", json=drawing,
                             headers={**proxied, **host, "Origin": "http://digits.example.run.app"})
    assert downgraded.status_code == 403


# --- rate limit on POST /labels ----------------------------------------------

def test_default_limit_is_60_per_minute():
    assert app_config.defaults()["LABELS_RATE_LIMIT"] == "60 per minute"


def test_61st_label_in_a_minute_gets_429_with_retry_after(tmp_path, served, labelled, monkeypatch):
    monkeypatch.delenv("LABELS_RATE_LIMIT", raising=False)
    config = base_test_config(tmp_path)
    del config["LABELS_RATE_LIMIT"]  # the shipped default
    app = create_app(config)
    url = served(app)
    with requests.Session() as session:
        statuses = [session.post(url + "/labels", json=labelled, timeout=30).status_code
                    for _ in range(60)]
        assert statuses == [201] * 60
        refused = session.post(url + "/labels", json=labelled, timeout=30)
        assert refused.status_code == 429
        assert refused.headers["Content-Type"].startswith("application/json")
        assert "too many" in refused.json()["error"]
        retry_after = int(refused.headers["Retry-After"])
        assert 1 <= retry_after <= 60
        # Only submissions are limited: predictions and health checks go on.
        assert session.post(url + "/predict", json={"image": labelled["image"]},
                            timeout=30).status_code == 200
        assert session.get(url + "/healthz", timeout=10).status_code == 200
    assert stored_samples(app) == 1  # the same drawing 60 times: accepted each time, stored once


def test_refused_requests_do_not_spend_the_budget(tmp_path, labelled):
    app = make_app(tmp_path, LABELS_RATE_LIMIT="2 per minute")
    client = app.test_client()
    for _ in range(5):
        assert client.post("/labels", json=labelled,
                           headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert [client.post("/labels", json=labelled).status_code for _ in range(3)] == [201, 201, 429]


def test_rate_limit_off_disables_it(tmp_path):
    client = make_app(tmp_path, LABELS_RATE_LIMIT="off").test_client()
    bad_label = {"image": "", "label": -1}  # cheap: refused before any decoding
    statuses = {client.post("/labels", json=bad_label).status_code for _ in range(70)}
    assert statuses == {400}


def test_spoofed_forwarded_for_does_not_escape_the_limit(tmp_path, labelled):
    client = make_app(tmp_path, LABELS_RATE_LIMIT="2 per minute").test_client()
    statuses = [client.post("/labels", json=labelled,
                            headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
                for i in range(3)]
    assert statuses == [201, 201, 429]


def test_behind_a_trusted_proxy_each_client_has_its_own_budget(tmp_path, labelled):
    client = make_app(tmp_path, LABELS_RATE_LIMIT="2 per minute", TRUSTED_PROXIES=1).test_client()

    def submit(client_ip):
        # What Cloud Run's front end sends: whatever the client claimed, then the real address.
        return client.post("/labels", json=labelled,
                           headers={"X-Forwarded-For": f"10.0.0.1, {client_ip}"}).status_code

    assert [submit("203.0.113.1") for _ in range(3)] == [201, 201, 429]
    assert submit("203.0.113.2") == 201


def test_several_limits_in_one_setting_all_apply(tmp_path, labelled):
    client = make_app(tmp_path, LABELS_RATE_LIMIT="3 per minute;2 per hour").test_client()
    answers = [client.post("/labels", json=labelled) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [201, 201, 429]
    assert "2 per 1 hour" in answers[2].get_json()["error"]  # the minute's limit is not reached
    assert 60 < int(answers[2].headers["Retry-After"]) <= 3600


def test_a_malformed_limit_fails_at_start_up(tmp_path):
    with pytest.raises(RuntimeError, match="LABELS_RATE_LIMIT"):
        make_app(tmp_path, LABELS_RATE_LIMIT="sixty a minute")


# --- in a real browser -------------------------------------------------------

def _attacker_app():
    """Another site's page (a different host, so a different site) whose form
    posts to the app, as a cross-site request forgery would."""
    from flask import Flask

    attacker = Flask("attacker")

    @attacker.get("/")
    def page():
        target = attacker.config["TARGET"]
        return (f'<form method="post" action="{target}/predict" enctype="text/plain">'
                f'<input name="x" value="y"><button id="go">go</button></form>')

    return attacker


def test_in_a_browser_pages_obey_the_policy_and_cross_site_forms_are_refused(live_server):
    from playwright.sync_api import sync_playwright

    from testing_support.browser import PageProblems, launch_chromium

    attacker = _attacker_app()
    attacker.config["TARGET"] = live_server.url  # http://127.0.0.1:<port>
    attacker_server, attacker_thread = start_live_server(attacker)
    try:
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                page = browser.new_page()
                problems = PageProblems()
                problems.attach(page)
                for path in ("/", "/labeling", "/review"):
                    response = page.goto(live_server.url + path)
                    assert response.status == 200, path
                    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
                    page.wait_for_load_state("networkidle")
                    assert problems.check(page) == [], path

                # Our own form (same origin) goes through the cross-site gate.
                page.fill('[data-testid="token"]', "wrong-token")
                with page.expect_response(lambda r: r.request.method == "POST") as login:
                    page.click('[data-testid="login"]')
                assert login.value.status != 403
                assert login.value.request.header_value("sec-fetch-site") in (None, "same-origin")

                # Another site's form is refused before the app reads it.
                page.goto(f"http://localhost:{attacker_server.server_port}/")
                with page.expect_response(lambda r: r.request.method == "POST") as forged:
                    page.click("#go")
                assert forged.value.status == 403
                assert "cross-site" in forged.value.json()["error"]
            finally:
                browser.close()
    finally:
        attacker_server.shutdown()
        attacker_thread.join(timeout=5)
