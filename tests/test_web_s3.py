"""``arhiva web`` serves blobs from S3 as it serves local files: same bytes, caching headers and ranges."""
from __future__ import annotations

import io
import urllib.request

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from catalog.assets import get_store, register_image
from catalog.db import session_scope
from catalog.settings import Settings
from catalog.web import create_app
from tests.helpers import jpeg_bytes

HEADERS = ("content-type", "content-length", "etag", "cache-control", "x-content-type-options",
           "access-control-allow-origin", "accept-ranges", "content-disposition")


def served(clean_db, settings: Settings) -> tuple[TestClient, str, bytes]:
    data = jpeg_bytes(7, size=(320, 240))
    with session_scope(clean_db) as s:
        sha = register_image(s, get_store(settings), data, settings=settings).sha256
    return TestClient(create_app(clean_db, settings)), sha, data


@pytest.fixture()
def both(clean_db, pg_url, s3_url, tmp_path):
    local = Settings(home=tmp_path / "local", database_url=pg_url)
    remote = Settings(home=tmp_path / "remote", database_url=pg_url, blobs=s3_url)
    return served(clean_db, local), served(clean_db, remote), remote


def test_s3_files_answer_as_local_files_do(both):
    (local, sha, data), (remote, sha2, _), settings = both
    assert sha == sha2
    a, b = local.get(f"/assets/{sha}"), remote.get(f"/assets/{sha}")
    assert a.status_code == b.status_code == 200 and a.content == b.content == data
    assert {h: a.headers.get(h) for h in HEADERS} == {h: b.headers.get(h) for h in HEADERS}
    assert b.headers["etag"] == f'"{sha}"' and "immutable" in b.headers["cache-control"]

    for asked, status, body in (("bytes=10-19", 206, data[10:20]), ("bytes=-5", 206, data[-5:]),
                                (f"bytes={len(data) - 3}-", 206, data[-3:]),
                                (f"bytes=5-{len(data) + 100}", 206, data[5:])):
        a, b = local.get(f"/assets/{sha}", headers={"Range": asked}), remote.get(f"/assets/{sha}",
                                                                               headers={"Range": asked})
        assert (a.status_code, a.content) == (b.status_code, b.content) == (status, body), asked
        assert a.headers["content-range"] == b.headers["content-range"]
    a = local.get(f"/assets/{sha}", headers={"Range": f"bytes={len(data) + 10}-"})
    b = remote.get(f"/assets/{sha}", headers={"Range": f"bytes={len(data) + 10}-"})
    assert a.status_code == b.status_code == 416 and a.headers["content-range"] == b.headers["content-range"]

    again = remote.get(f"/assets/{sha}", headers={"If-None-Match": f'"{sha}"'})
    assert again.status_code == 304 and again.content == b""
    assert not (settings.home / "blobs").exists()


def test_thumbnails_from_s3_are_stored_in_s3(both):
    _, (remote, sha, _), settings = both
    t = remote.get(f"/assets/{sha}/thumb/200")
    assert t.status_code == 200 and max(Image.open(io.BytesIO(t.content)).size) == 200
    stored = dict(get_store(settings).iter_blobs())
    assert len(stored) == 2 and any(size == len(t.content) for size in stored.values())
    assert remote.get(f"/assets/{sha}/thumb/200").content == t.content
    assert not (settings.home / "blobs").exists()


def test_redirects_to_presigned_urls_when_asked(clean_db, pg_url, s3_url, tmp_path):
    settings = Settings(home=tmp_path, database_url=pg_url, blobs=s3_url, web_blob_redirect_seconds=60)
    client, sha, data = served(clean_db, settings)
    r = client.get(f"/assets/{sha}", follow_redirects=False)
    assert r.status_code == 307 and r.headers["cache-control"] == "private, max-age=30"
    with urllib.request.urlopen(r.headers["location"], timeout=10) as f:  # the store itself answers
        assert f.read() == data


def test_a_store_that_cannot_be_reached_is_a_503_not_a_missing_file(clean_db, pg_url, s3_url, tmp_path, monkeypatch):
    """The S3 store away (here: its endpoint a closed port): files and thumbnails answer 503 with
    the reason and a Retry-After, never a 404 saying the file is missing, nor a 500."""
    import socket

    settings = Settings(home=tmp_path, database_url=pg_url, blobs=s3_url)
    _, sha, _ = served(clean_db, settings)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed}")
    client = TestClient(create_app(clean_db, settings))
    for path in (f"/assets/{sha}", f"/assets/{sha}/thumb/200"):
        r = client.get(path)
        assert r.status_code == 503 and r.headers["retry-after"] == "30", (path, r.status_code, r.text)
        assert "blob store cannot be read" in r.json()["detail"] and "connect" in r.json()["detail"], r.text
