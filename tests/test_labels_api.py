"""The labels API and review page through Flask's test client, with the real
model and real files: submissions, bad input leaving nothing behind, storage
failures, and the admin token guarding everything but submitting."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import subprocess
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image

from flask_app import create_app
from tests.app_config import ADMIN_TOKEN, base_test_config
from testing_support.drawings import data_url, digit_png
from tests.store_files import image_files, sample_files, snapshot

TOKEN = ADMIN_TOKEN  # what base_test_config's apps accept
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def labels_dir(app) -> Path:
    return Path(app.config["LABELS_DIR"])


def stored(app) -> tuple[dict, list]:
    """What the store holds: its image files and every row (what a refused request must not change)."""
    return image_files(labels_dir(app)), app.extensions["label_store"].open().list()[1]


def submit(client, label=3, image=None, **extra):
    body = {"image": data_url(digit_png(3)) if image is None else image, "label": label, **extra}
    return client.post("/labels", json=body)


def _png(image: Image.Image, **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **save_args)
    return buffer.getvalue()


# -- submitting ----------------------------------------------------------------

def test_submit_stores_the_drawing_and_answers_201(client, app):
    drawing = digit_png(7, seed=11)
    response = submit(client, 7, data_url(drawing))
    assert response.status_code == 201
    body = response.get_json()
    assert body["label"] == 7 and re.fullmatch(r"[0-9a-f]{32}", body["id"])
    assert body["prediction"] in range(10) and 0.0 <= body["confidence"] <= 1.0
    assert body["model_version"] == app.extensions["recognizer"].model_version
    assert response.headers["Location"] == f"/labels/{body['id']}"
    assert body["duplicate"] is False
    record = app.extensions["label_store"].open().get(body["id"])
    assert {k: getattr(record, k) for k in ("id", "label", "prediction", "confidence", "model_version")} == {
        k: body[k] for k in ("id", "label", "prediction", "confidence", "model_version")}
    png = record.png_path.read_bytes()
    assert hashlib.sha256(png).hexdigest() == record.sha256
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (record.width, record.height) == Image.open(io.BytesIO(drawing)).size


def test_the_same_drawing_sent_again_answers_the_stored_sample(client, app):
    first = submit(client, 3).get_json()
    again = submit(client, 3)
    assert again.status_code == 201 and again.get_json()["id"] == first["id"]
    assert again.get_json()["duplicate"] is True
    assert app.extensions["label_store"].open().count() == 1
    assert submit(client, 8).get_json()["id"] != first["id"]  # another label: another sample


def test_a_full_store_answers_507_with_the_reason(tmp_path):
    app = create_app(base_test_config(tmp_path, LABELS_MAX_SAMPLES=1))
    client = app.test_client()
    assert submit(client, 3).status_code == 201
    before = stored(app)
    refused = submit(client, 4, data_url(digit_png(4)))
    assert refused.status_code == 507
    assert "LABELS_MAX_SAMPLES" in refused.get_json()["error"] and "not saved" in refused.get_json()["error"]
    assert stored(app) == before


@pytest.mark.parametrize("label, stored_as", [(0, 0), (9, 9), ("0", 0), ("5", 5)])
def test_integer_and_one_character_labels_are_accepted(client, app, label, stored_as):
    response = submit(client, label)
    assert response.status_code == 201 and response.get_json()["label"] == stored_as
    assert app.extensions["label_store"].open().get(response.get_json()["id"]).label == stored_as


def test_bare_base64_is_accepted(client):
    response = submit(client, 3, base64.b64encode(digit_png(3)).decode())
    assert response.status_code == 201


BAD_LABELS = [-1, 10, 3.5, 7.0, "seven", "7 ", " 7", "", "07", "\u0663", None, True, False,
              [7], {"digit": 7}, "../../etc/passwd", "1e0", 2 ** 70]


@pytest.mark.parametrize("label", BAD_LABELS, ids=repr)
def test_bad_label_is_400_and_writes_nothing(client, app, label):
    before = stored(app)
    response = submit(client, label)
    assert response.status_code == 400
    assert "label" in response.get_json()["error"]
    assert stored(app) == before


def _blank_png():
    return _png(Image.new("RGBA", (280, 280), (255, 255, 255, 255)))


BAD_REQUESTS = {
    "missing label": ({"image": data_url(digit_png(3))}, 400),
    "missing image": ({"label": 3}, 400),
    "image not a string": ({"image": 12345, "label": 3}, 400),
    "invalid base64": ({"image": "data:image/png;base64,@@@not base64@@@", "label": 3}, 400),
    "base64 of text": ({"image": base64.b64encode(b"just some text").decode(), "label": 3}, 400),
    "zero-byte image": ({"image": "data:image/png;base64,", "label": 3}, 400),
    "truncated png": ({"image": data_url(digit_png(3)[:150]), "label": 3}, 400),
    "one pixel": ({"image": data_url(_png(Image.new("RGBA", (1, 1), (0, 0, 0, 255)))), "label": 3}, 400),
    "gif": ({"image": base64.b64encode(b"GIF89a" + b"\0" * 64).decode(), "label": 3}, 415),
    "jpeg data url": ({"image": "data:image/jpeg;base64,/9j/4AAQ", "label": 3}, 415),
    "blank canvas": ({"image": data_url(_blank_png()), "label": 3}, 422),
    "transparent canvas": ({"image": data_url(_png(Image.new("RGBA", (200, 200), (0, 0, 0, 0)))),
                            "label": 3}, 422),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_image_answers_its_status_and_writes_nothing(client, app, case):
    body, status = BAD_REQUESTS[case]
    before = stored(app)
    response = client.post("/labels", json=body)
    assert response.status_code == status, response.get_json()
    assert isinstance(response.get_json()["error"], str)
    assert stored(app) == before


@pytest.mark.parametrize("data, content_type, status", [
    ('{"image": "x", "label": 3', "application/json", 400),
    ("[1, 2, 3]", "application/json", 400),
    ("label=3", "application/x-www-form-urlencoded", 415),
    ("", "text/plain", 415),
])
def test_bodies_that_are_not_a_json_object_are_refused(client, app, data, content_type, status):
    before = stored(app)
    response = client.post("/labels", data=data, content_type=content_type)
    assert response.status_code == status
    assert stored(app) == before


def test_a_bomb_declaring_huge_dimensions_is_413_and_writes_nothing(client, app):
    # A valid PNG header that declares 20000x20000 pixels; the data never gets decoded.
    small = _png(Image.new("L", (8, 8)))
    ihdr_at = small.index(b"IHDR")
    header = small[ihdr_at:ihdr_at + 4] + (20000).to_bytes(4, "big") * 2 + small[ihdr_at + 12:ihdr_at + 17]
    bomb = small[:ihdr_at] + header + zlib.crc32(header).to_bytes(4, "big") + small[ihdr_at + 21:]
    before = stored(app)
    response = submit(client, 3, data_url(bomb))
    assert response.status_code == 413
    assert stored(app) == before


# -- storage failures ----------------------------------------------------------

def _mount_tmpfs(path: Path, options: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")


@pytest.fixture
def read_only_labels_dir(tmp_path):
    path = tmp_path / "read-only-labels"
    path.mkdir()
    if os.geteuid() == 0:  # root ignores permission bits: a read-only file system it is
        _mount_tmpfs(path, "ro,size=64k")
    else:
        path.chmod(0o555)
    yield path
    if os.geteuid() == 0:
        subprocess.run(["umount", "-l", str(path)], check=False)
    else:
        path.chmod(0o755)


def test_a_read_only_store_answers_503_and_writes_nothing(tmp_path, read_only_labels_dir):
    app = create_app(base_test_config(tmp_path, LABELS_DIR=str(read_only_labels_dir)))
    response = submit(app.test_client(), 3)
    assert response.status_code == 503
    assert "not saved" in response.get_json()["error"]
    assert snapshot(read_only_labels_dir) == {}
    assert app.test_client().get("/healthz").status_code == 200


@pytest.fixture
def full_labels_dir(tmp_path):
    path = tmp_path / "full-labels"
    path.mkdir()
    _mount_tmpfs(path, "size=128k")
    stats = os.statvfs(path)
    (path / "filler").write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize))
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_answers_507_and_leaves_nothing(tmp_path, full_labels_dir):
    app = create_app(base_test_config(tmp_path, LABELS_DIR=str(full_labels_dir)))
    before = image_files(full_labels_dir)
    response = submit(app.test_client(), 3)
    assert response.status_code == 507
    assert "full" in response.get_json()["error"]
    assert image_files(full_labels_dir) == before


# -- the admin token -------------------------------------------------------------

def _admin_requests(sample_id: str):
    return [
        ("GET", "/labels", None),
        ("GET", f"/labels/{sample_id}", None),
        ("GET", f"/labels/{sample_id}.png", None),
        ("PATCH", f"/labels/{sample_id}", {"label": 4}),
        ("DELETE", f"/labels/{sample_id}", None),
        ("GET", "/labels/export", None),
    ]


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Basic {base64.b64encode(f'admin:{TOKEN}'.encode()).decode()}"},
    {"Authorization": TOKEN},
    {"Authorization": "Bearer "},
], ids=["none", "wrong", "longer", "basic", "no-scheme", "empty"])
def test_admin_api_refuses_a_missing_or_wrong_token(client, app, headers):
    sample_id = submit(client, 3).get_json()["id"]
    before = stored(app)
    for method, url, body in _admin_requests(sample_id):
        response = client.open(url, method=method, json=body, headers=headers)
        assert response.status_code == 401, (method, url)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "token" in response.get_json()["error"]
    assert stored(app) == before


def test_admin_api_is_refused_when_no_token_is_configured(tmp_path):
    app = create_app(base_test_config(tmp_path, ADMIN_TOKEN=None))
    client = app.test_client()
    sample_id = submit(client, 3).get_json()["id"]
    before = stored(app)
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer None"}, AUTH):
        for method, url, body in _admin_requests(sample_id):
            response = client.open(url, method=method, json=body, headers=headers)
            assert response.status_code == 403, (method, url)
            assert "ADMIN_TOKEN" in response.get_json()["error"]
    assert stored(app) == before
    assert client.get("/review").status_code == 403
    assert client.post("/review/login", data={"token": ""}).status_code == 403


def test_admin_api_works_with_the_token(client, app):
    first = submit(client, 2, data_url(digit_png(2, seed=1))).get_json()
    second = submit(client, 8, data_url(digit_png(8, seed=2))).get_json()

    listing = client.get("/labels", headers=AUTH)
    assert listing.status_code == 200
    body = listing.get_json()
    assert body["total"] == 2 and [i["id"] for i in body["items"]] == [second["id"], first["id"]]
    assert set(body["items"][0]) >= {"id", "label", "created_at", "prediction", "confidence",
                                     "model_version", "width", "height"}

    one = client.get(f"/labels/{first['id']}", headers=AUTH).get_json()
    assert one["label"] == 2 and one["prediction"] == first["prediction"]

    png = client.get(f"/labels/{first['id']}.png", headers=AUTH)
    assert png.status_code == 200 and png.mimetype == "image/png"
    store = app.extensions["label_store"].open()
    assert png.data == store.get(first["id"]).png_path.read_bytes()

    relabelled = client.patch(f"/labels/{first['id']}", json={"label": "5"}, headers=AUTH)
    assert relabelled.status_code == 200 and relabelled.get_json()["label"] == 5
    assert store.get(first["id"]).label == 5 and store.get(first["id"]).previous_label == 2
    assert client.get("/labels?label=5", headers=AUTH).get_json()["total"] == 1
    assert client.get("/labels?label=2", headers=AUTH).get_json()["total"] == 0

    assert client.delete(f"/labels/{second['id']}", headers=AUTH).status_code == 204
    assert client.get(f"/labels/{second['id']}.png", headers=AUTH).status_code == 404
    assert client.delete(f"/labels/{second['id']}", headers=AUTH).status_code == 404
    files = sample_files(labels_dir(app))
    assert [Path(p).name for p in files["png"]] == [f"{first['id']}.png"] and files["temp"] == []
    assert [r.id for r in store.list()[1]] == [first["id"]]


def test_list_filters_and_pages(client):
    ids = {}
    for label, seed in ((1, 1), (1, 2), (4, 3), (6, 4), (6, 5)):
        ids[submit(client, label, data_url(digit_png(label, seed=seed))).get_json()["id"]] = label
    everything = client.get("/labels?limit=1000", headers=AUTH).get_json()
    assert everything["total"] == 5 and {i["id"] for i in everything["items"]} == set(ids)
    pages = [client.get(f"/labels?limit=2&offset={o}", headers=AUTH).get_json() for o in (0, 2, 4)]
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    assert [i["id"] for p in pages for i in p["items"]] == [i["id"] for i in everything["items"]]
    sixes = client.get("/labels?label=6", headers=AUTH).get_json()
    assert sixes["total"] == 2 and all(i["label"] == 6 for i in sixes["items"])
    disagreed = client.get("/labels?disagreed=true", headers=AUTH).get_json()
    agreed = client.get("/labels?disagreed=false", headers=AUTH).get_json()
    assert disagreed["total"] + agreed["total"] == 5
    assert all(i["prediction"] != i["label"] for i in disagreed["items"])
    assert all(i["prediction"] == i["label"] for i in agreed["items"])


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=ten", "limit=-1", "offset=-1",
                                   "label=10", "label=x", "disagreed=maybe", "limit=%D9%A3"])
def test_bad_list_parameters_are_400(client, query):
    response = client.get(f"/labels?{query}", headers=AUTH)
    assert response.status_code == 400 and response.get_json()["error"]


@pytest.mark.parametrize("bad_id", ["..%2F..%2Fetc%2Fpasswd", "..", "ABCDEF0123456789ABCDEF0123456789",
                                    "12345678-1234-1234-1234-123456789012", "0" * 31, "0" * 33, "export.png"])
def test_malformed_ids_are_404_and_touch_nothing(client, app, bad_id):
    submit(client, 3)
    before = stored(app)
    for method, url in (("GET", f"/labels/{bad_id}"), ("GET", f"/labels/{bad_id}.png"),
                        ("DELETE", f"/labels/{bad_id}"), ("PATCH", f"/labels/{bad_id}")):
        response = client.open(url, method=method, json={"label": 1}, headers=AUTH)
        assert response.status_code == 404, (method, url)
    assert stored(app) == before


@pytest.mark.parametrize("label", [10, -1, True, None, "x", 2.5])
def test_relabel_with_a_bad_label_is_400_and_changes_nothing(client, app, label):
    sample_id = submit(client, 3).get_json()["id"]
    before = stored(app)
    response = client.patch(f"/labels/{sample_id}", json={"label": label}, headers=AUTH)
    assert response.status_code == 400
    assert stored(app) == before


def test_export_is_a_zip_of_the_whole_store(client, app):
    submitted = [submit(client, d, data_url(digit_png(d, seed=i))).get_json() for i, d in enumerate((0, 1, 1, 9))]
    response = client.get("/labels/export", headers=AUTH)
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert re.fullmatch(r'attachment; filename=labels-\d{8}T\d{6}Z\.zip',
                        response.headers["Content-Disposition"])
    assert response.is_streamed and "Content-Length" not in response.headers
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert archive.testzip() is None
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["count"] == 4
        for sample in submitted:
            stem = f"{sample['label']}/{sample['id']}"
            png = archive.read(f"{stem}.png")
            assert png == app.extensions["label_store"].open().get(sample["id"]).png_path.read_bytes()
            assert json.loads(archive.read(f"{stem}.json"))["label"] == sample["label"]
            Image.open(io.BytesIO(png)).load()


def test_head_export_answers_the_headers_without_building_the_zip(client, app, monkeypatch):
    submit(client, 3)
    built = []
    monkeypatch.setattr(type(app.extensions["label_store"].open()), "iter_samples",
                        lambda self, *a, **k: built.append(1) or iter(()))
    response = client.head("/labels/export", headers=AUTH)
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=labels-")
    assert response.data == b"" and built == []
    assert client.head("/labels/export").status_code == 401


def test_list_filters_by_date(client, app):
    first = submit(client, 1, data_url(digit_png(1, seed=1))).get_json()
    second = submit(client, 2, data_url(digit_png(2, seed=2))).get_json()
    created = app.extensions["label_store"].open().get(second["id"]).created_at
    since = client.get("/labels", query_string={"since": created}, headers=AUTH).get_json()
    until = client.get("/labels", query_string={"until": created}, headers=AUTH).get_json()
    assert [i["id"] for i in since["items"]] == [second["id"]] and since["total"] == 1
    assert [i["id"] for i in until["items"]] == [first["id"]]
    assert client.get("/labels?since=2000-01-01", headers=AUTH).get_json()["total"] == 2
    assert client.get("/labels?until=2000-01-01T00:00:00Z", headers=AUTH).get_json()["total"] == 0
    for bad in ("yesterday", "2026-13-01", "%D9%A3"):
        response = client.get(f"/labels?since={bad}", headers=AUTH)
        assert response.status_code == 400 and "since" in response.get_json()["error"]


def test_relabel_onto_an_exact_copy_is_409(client, app):
    drawing = data_url(digit_png(5, seed=4))
    five, six = submit(client, 5, drawing).get_json(), submit(client, 6, drawing).get_json()
    response = client.patch(f"/labels/{six['id']}", json={"label": 5}, headers=AUTH)
    assert response.status_code == 409 and five["id"] in response.get_json()["error"]
    assert app.extensions["label_store"].open().get(six["id"]).label == 6


# -- the review page ---------------------------------------------------------------

def _session_cookie(response) -> str:
    return next(v for v in response.headers.getlist("Set-Cookie") if v.startswith("session="))


def test_review_page_asks_for_the_token_and_keeps_it_in_a_strict_cookie(client, app):
    page = client.get("/review")
    assert page.status_code == 200 and b'data-testid="login-form"' in page.data
    assert b'data-testid="samples"' not in page.data

    refused = client.post("/review/login", data={"token": "nope"})
    assert refused.status_code == 200 and b'data-testid="login-error"' in refused.data
    assert not refused.headers.getlist("Set-Cookie")
    assert client.get("/labels").status_code == 401

    accepted = client.post("/review/login", data={"token": TOKEN})
    assert accepted.status_code == 303 and accepted.headers["Location"].endswith("/review")
    cookie = _session_cookie(accepted)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" in cookie
    session = app.session_interface.get_signing_serializer(app).loads(client.get_cookie("session").value)
    assert TOKEN not in cookie and TOKEN not in json.dumps(session)  # a proof of it, not the token
    # The session now authorises the API (what the page's script calls).
    assert client.get("/labels").status_code == 200

    client.post("/review/logout")
    assert client.get("/labels").status_code == 401
    assert b'data-testid="login-form"' in client.get("/review").data


def test_a_session_ends_when_the_admin_token_changes(tmp_path):
    first = create_app(base_test_config(tmp_path))
    client = first.test_client()
    assert client.post("/review/login", data={"token": TOKEN}).status_code == 303
    assert client.get("/labels").status_code == 200
    rotated = create_app(base_test_config(tmp_path, ADMIN_TOKEN="a-new-admin-token-after-rotation"))
    rotated_client = rotated.test_client()
    rotated_client.set_cookie("session", client.get_cookie("session").value)
    assert rotated_client.get("/labels").status_code == 401


def test_review_page_lists_filters_and_pages_samples(client, app):
    store = app.extensions["label_store"].open()
    for i in range(50):  # straight into the store: the page is under test here, not POST /labels
        store.save(digit_png(i % 10, seed=i), i % 10, prediction=(i % 10) if i % 7 else (i + 1) % 10, confidence=0.5)
    client.post("/review/login", data={"token": TOKEN})

    page = client.get("/review").data.decode()
    assert page.count('data-testid="sample"') == 48
    assert '<span data-testid="total">50</span>' in page and 'data-testid="next-page"' in page
    assert ">Page 1 of 2<" in page
    for sample_id in re.findall(r'data-id="([0-9a-f]{32})"', page):
        assert f'src="/labels/{sample_id}.png"' in page
    second = client.get("/review?page=2").data.decode()
    assert second.count('data-testid="sample"') == 2 and 'data-testid="prev-page"' in second
    assert ">Page 2 of 2<" in second and 'data-testid="next-page"' not in second

    threes = client.get("/review?label=3").data.decode()
    shown = re.findall(r'data-id="([0-9a-f]{32})" data-label="(\d)"', threes)
    assert len(shown) == 5 and {label for _, label in shown} == {"3"}

    disagreed = client.get("/review?disagreed=1").data.decode()
    expected = len(range(0, 50, 7))
    assert f'<span data-testid="total">{expected}</span>' in disagreed
    cards = re.findall(r'data-label="(\d)"\s+data-prediction="(\d)"', disagreed)
    assert len(cards) == min(expected, 48) and all(label != guess for label, guess in cards)
    assert client.get("/review?page=99").status_code == 303


def test_review_page_has_no_inline_script_style_or_handlers(client):
    submit(client, 3)
    client.post("/review/login", data={"token": TOKEN})
    for html in (client.get("/review").data.decode(),
                 client.post("/review/login", data={"token": "x"}).data.decode()):
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
        assert not re.search(r"\sstyle\s*=", html) and "<style" not in html
        assert not re.search(r"\son[a-z]+\s*=", html)
    assert 'type="module"' in client.get("/review").data.decode()


def test_the_models_verdict_is_kept_with_the_sample(client):
    """A drawing the model calls not a digit can still be labelled; the store keeps what the model said."""
    from testing_support.drawings import png_of
    from PIL import ImageDraw

    image = Image.new("RGBA", (280, 280))
    ImageDraw.Draw(image).ellipse((130, 130, 148, 148), fill=(0, 0, 0, 255))  # a click: not a digit
    response = client.post("/labels", json={"image": data_url(png_of(image)), "label": 1})
    assert response.status_code == 201, response.get_data(as_text=True)
    sample_id = response.get_json()["id"]
    listed = client.get("/labels", headers=AUTH).get_json()["items"]
    [item] = [i for i in listed if i["id"] == sample_id]
    assert item["model_verdict"] == "not_a_digit"
    assert item["label"] == 1
