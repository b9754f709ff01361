"""The URL gate: every request a crawler makes, and every URL it keeps in a record."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import text

from crawlers.urlgate import UnsafeURL, UrlGate, parse_origin, safe_url
from tests.archive_server import BASA, ArchiveServer
from tests.helpers import jpeg_bytes
from tests.test_archive_crawl import crawl, errors, records


@pytest.mark.parametrize("url, kind", [
    ("file:///etc/passwd", "unsafe_url"),
    ("file://basarabica.example/etc/passwd", "unsafe_url"),
    ("ftp://basarabica.example/x.jpg", "unsafe_url"),
    ("s3://bucket/x.jpg", "unsafe_url"),
    ("data:image/jpeg;base64,AAAA", "unsafe_url"),
    ("javascript:alert(1)", "unsafe_url"),
    ("https://user:pw@basarabica.example/x.jpg", "unsafe_url"),
    ("https://basarabica.example:22/x.jpg", "offsite"),
    ("http://basarabica.example:443/x.jpg", "offsite"),
    ("https://evil.example/x.jpg", "offsite"),
])
def test_schemes_credentials_hosts_and_ports_outside_the_origins_are_refused(url, kind):
    gate = UrlGate(["basarabica.example", "127.0.0.1:8765"])
    with pytest.raises(UnsafeURL) as exc:
        gate.check(url)
    assert exc.value.kind == kind


@pytest.mark.parametrize("host", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "100.64.0.1", "192.168.0.10",
                                  "[::1]", "[fe80::1]", "[::ffff:127.0.0.1]", "2130706433", "0x7f.1", "0.0.0.0"])
def test_literal_non_public_addresses_are_refused_unless_allowed(host):
    gate = UrlGate(None)
    with pytest.raises(UnsafeURL) as exc:
        gate.check(f"http://{host}/x.jpg")
    assert exc.value.kind == "private_address"
    assert safe_url(f"http://{host}/x.jpg") is None  # nor kept in a record
    allowed = UrlGate(None, [f"http://{host}:80"])
    assert allowed.check(f"http://{host}/x.jpg")[1] == host.strip("[]").lower()


def test_allowed_origins_subdomains_and_explicit_ports():
    gate = UrlGate(["basarabica.example", "archive.example:8080"], "http://127.0.0.1:8765")
    assert gate.check("https://basarabica.example/a")[2] == 443
    assert gate.check("http://img.basarabica.example/a")[1] == "img.basarabica.example"
    assert gate.check("http://archive.example:8080/a")[2] == 8080
    with pytest.raises(UnsafeURL):
        gate.check("http://archive.example/a")  # the port named is the only one
    with pytest.raises(UnsafeURL):  # allowed as a private origin, but not one of the crawl's domains
        gate.check("http://127.0.0.1:8765/a")
    assert UrlGate(["127.0.0.1:8765"], "http://127.0.0.1:8765").check("http://127.0.0.1:8765/a")
    with pytest.raises(UnsafeURL):  # the private allowance names a port too
        UrlGate(["127.0.0.1"], "http://127.0.0.1:8765").check("http://127.0.0.1/a")
    with pytest.raises(ValueError):
        parse_origin("ftp://x.example")


def test_scrapy_file_s3_ftp_and_data_handlers_are_off():
    from crawlers.settings import crawler_settings

    s = crawler_settings()
    handlers = s.getdict("DOWNLOAD_HANDLERS")
    assert all(handlers[k] is None for k in ("file", "s3", "ftp", "data"))
    mws = s.getdict("DOWNLOADER_MIDDLEWARES")
    assert mws["crawlers.urlgate.UrlGateMiddleware"] < 50  # before every other middleware
    assert s.getint("DOWNLOAD_MAXSIZE") <= 32 * 1024 * 1024


class _Secret:
    """A loopback server holding a 'secret' image: the crawl must never reach it."""

    def __init__(self):
        hits = self.hits = []

        class H(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                hits.append(self.path)
                body = jpeg_bytes(3, (32, 24))
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.port = self.httpd.server_address[1]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _manifest(n: int, image: str, homepage: str | None = None) -> str:
    mid = f"https://{BASA}/hostile/{n}/manifest"
    doc = {"@context": "http://iiif.io/api/presentation/3/context.json", "id": mid, "type": "Manifest",
           "label": {"ro": [f"Fotografie {n}"]},
           "items": [{"id": f"{mid}/c", "type": "Canvas", "width": 32, "height": 24, "items": [{
               "id": f"{mid}/p", "type": "AnnotationPage", "items": [{
                   "id": f"{mid}/a", "type": "Annotation", "motivation": "painting", "target": f"{mid}/c",
                   "body": {"id": image, "type": "Image", "format": "image/jpeg"}}]}]}]}
    if homepage:
        doc["homepage"] = [{"id": homepage, "type": "Text"}]
    return json.dumps(doc)


def test_a_hostile_manifest_reads_no_local_file_and_reaches_no_local_server(arhiva_env, clean_db, tmp_path):
    secret_file = tmp_path / "secret.jpg"
    secret_file.write_bytes(jpeg_bytes(5, (40, 30)))
    secret = _Secret()
    try:
        local = f"http://127.0.0.1:{secret.port}/secret.jpg"
        images = {
            1: f"file://{secret_file}",
            2: f"file://{BASA}{secret_file}",
            3: local,
            4: f"http://localhost:{secret.port}/secret.jpg",   # a name that resolves to loopback
            5: f"https://{BASA}:8443/files/x.jpg",              # an allowed host on another port
            6: f"https://{BASA}/go/local.jpg",                  # redirects to the local server
            7: f"https://{BASA}/files/ok.jpg",                  # the one good image
            8: f"https://archivist:s3cret@{BASA}/files/ok.jpg",  # credentials: were taken out and fetched
        }
        with ArchiveServer() as srv:
            for n, image in images.items():
                srv.add(BASA, f"/hostile/{n}/manifest",
                        _manifest(n, image, homepage="file:///etc/passwd" if n == 7 else None))
            srv.add(BASA, "/go/local.jpg", b"", "text/html", 302, {"Location": local})
            summary = crawl(srv, [f"https://{BASA}/hostile/{n}/manifest" for n in images],
                            allow_domains=[BASA, f"localhost:{secret.port}"])
    finally:
        secret.close()
    assert summary["status"] == "succeeded", summary
    assert secret.hits == []  # nothing reached the loopback server, directly, by name or by redirect
    recs = records(clean_db)
    assert len(recs) == 8
    with clean_db.connect() as c:
        stored = c.execute(text("SELECT source_url FROM record_assets")).scalars().all()
        sizes = c.execute(text("SELECT width FROM assets")).scalars().all()
    assert stored == [images[7]] and sizes == [64]  # the good image only; the secret (40×30) never
    for r in recs.values():
        assert not (r.url or "").startswith("file:")
        assert "file:" not in json.dumps(r.extra.get("image_url"))
    logged = {(e["kind"], e.get("url")) for e in errors(summary)}
    assert ("private_address", images[4]) in logged
    assert ("offsite", images[3]) in logged and ("offsite", images[5]) in logged
    assert ("offsite", local) in logged  # the redirect target
    # the URLs left out of the records are said too, each with its record and the reason
    left_out = {e["url"]: e for e in errors(summary) if e["kind"] == "url_refused"}
    assert "loopback, private" in left_out[images[3]]["message"], errors(summary)
    assert left_out[images[3]]["key"] == f"https://{BASA}/hostile/3/manifest", left_out
    with_password = [e for e in errors(summary) if e.get("key") == f"https://{BASA}/hostile/8/manifest"]
    assert [(e["kind"], e["url"]) for e in with_password] == [("url_refused", images[7])], with_password
    assert "user name or password" in with_password[0]["message"] and "s3cret" not in json.dumps(summary)


def test_a_crawl_of_a_loopback_server_needs_the_explicit_allowance(arhiva_env, clean_db):
    from crawlers.runner import run_crawl
    from tests.pastvu_server import CHISINAU, FakePastvu, fixture_photos
    from tests.test_pastvu_crawl import FAST

    with FakePastvu(fixture_photos()) as server:
        params = {"bbox": ",".join(map(str, CHISINAU)), "api_url": server.api_url, "tile_size": 0.03}
        refused = run_crawl("pastvu", params, settings_overrides=FAST)
        assert refused["records"]["new"] == 0 and server.counts.total() == 0
        assert "private_address" in {e["kind"] for e in errors(refused)}
        allowed = run_crawl("pastvu", params, settings_overrides=FAST | server.allow)
        assert allowed["records"]["new"] == 8


def test_oversized_pages_and_compression_bombs_are_refused_and_the_crawl_goes_on(arhiva_env, clean_db):
    import gzip

    bomb = gzip.compress(b" " * (64 * 1024 * 1024), 9)  # 64 MB of HTML once inflated, ~64 kB sent
    big = b"<html><body>" + b"<p>x</p>" * (20 * 1024 * 1024 // 8) + b"</body></html>"  # 20 MB
    with ArchiveServer() as srv:
        srv.add(BASA, "/bomb", bomb, "text/html", headers={"Content-Encoding": "gzip"})
        srv.add(BASA, "/big", big, "text/html")
        srv.add(BASA, "/ok/manifest", _manifest(1, f"https://{BASA}/files/ok.jpg"))
        summary = crawl(srv, [f"https://{BASA}/bomb", f"https://{BASA}/big", f"https://{BASA}/ok/manifest"])
    assert summary["status"] == "partial" and summary["records"]["new"] == 1  # pages refused: not all harvested
    failed = {e["url"] for e in errors(summary) if e["kind"].endswith("_failed")}
    assert {f"https://{BASA}/bomb", f"https://{BASA}/big"} <= failed
