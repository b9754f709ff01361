"""Requests the crawl does not make: robots.txt's wish and the URL gate's refusals, against a local
site on 127.0.0.1 (allowed by ARHIVA_ALLOW_PRIVATE, as a user crawls an intranet archive)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from crawlers.runner import run_crawl
from crawlers.settings import LOCAL_PROFILE
from tests.helpers import jpeg_bytes

pytestmark = pytest.mark.slow  # the quick lane: pytest -m "not slow"

ITEM = '<html><head><meta property="og:title" content="{t}"><meta property="og:image" content="{i}"></head></html>'


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.server.requests.append(self.path)
        status, headers, body = self.server.routes.get(self.path, (404, {"Content-Type": "text/plain"}, b"not here"))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Site:
    """A small archive site: paths → answers, and the paths asked, in order."""

    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.routes, self.httpd.requests = {}, []
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def requests(self) -> list[str]:
        return self.httpd.requests

    def add(self, path: str, body: bytes | str, ctype: str = "text/html; charset=utf-8", status: int = 200,
            headers: dict[str, str] | None = None) -> None:
        self.httpd.routes[path] = (status, {"Content-Type": ctype, **(headers or {})},
                                   body.encode() if isinstance(body, str) else body)

    def item(self, n: int) -> str:
        self.add(f"/item/{n}.html", ITEM.format(t=f"Vedere {n}", i=f"{self.url}/img/{n}.jpg"))
        self.add(f"/img/{n}.jpg", jpeg_bytes(n), "image/jpeg")
        return f"/item/{n}.html"

    def listing(self, path: str, items: list[str], next_page: str | None = None) -> None:
        links = "".join(f'<li><a href="{p}">x</a></li>' for p in items)
        nxt = f'<a rel="next" href="{next_page}">next</a>' if next_page else ""
        self.add(path, f'<html><body><ul class="item-list">{links}</ul>{nxt}</body></html>')


@pytest.fixture()
def site(arhiva_env, monkeypatch):
    from catalog.settings import reset_settings_cache

    srv = Site()
    srv.thread.start()
    monkeypatch.setenv("ARHIVA_ALLOW_PRIVATE", srv.url)  # the loopback site may be crawled (README)
    reset_settings_cache()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        monkeypatch.delenv("ARHIVA_ALLOW_PRIVATE", raising=False)
        reset_settings_cache()


def crawl(site: Site, path: str, progress: list | None = None, **params: Any) -> dict[str, Any]:
    params = {"start_urls": [site.url + path], "collection": "web", **params}
    return run_crawl("archive", params, settings_overrides={**LOCAL_PROFILE, "ROBOTSTXT_OBEY": True,
                                                            "LOG_LEVEL": "WARNING"}, timeout=120,
                     progress=progress.append if progress is not None else None)


def robots_site(site: Site) -> None:
    """robots.txt disallows /private/; index.html → page2.html, which links /private/x.html."""
    site.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")
    site.listing("/index.html", [site.item(1)], next_page="/page2.html")
    site.listing("/page2.html", [site.item(2), "/private/x.html"])
    site.add("/private/x.html", ITEM.format(t="Secret", i=f"{site.url}/img/9.jpg"))


def test_a_page_robots_txt_disallows_is_skipped_not_a_failure(clean_db, site):
    """The site's wish: the page is not fetched, the run says so (robots_disallowed) and succeeds;
    no 'cannot reach' (the host answered every request), no item_failed, every crawl alike."""
    robots_site(site)
    for n in (1, 2):  # the first crawl and a re-crawl
        progress: list[dict[str, Any]] = []
        summary = crawl(site, "/index.html", progress)
        assert summary["status"] == "succeeded", summary
        assert summary["errors"]["by_kind"] == {"robots_disallowed": 1}, summary
        (err,) = summary["errors"]["examples"]
        assert err["url"] == f"{site.url}/private/x.html" and "robots.txt" in err["message"], err
        assert progress and not [p["network"] for p in progress if p.get("network")], progress  # no "cannot reach"
        assert "/private/x.html" not in site.requests
        assert summary["records"]["new" if n == 1 else "unchanged"] == 2, summary


def test_cli_crawl_of_a_site_with_a_robots_rule_succeeds(clean_db, site):
    """The user's path: ``arhiva crawl archive http://127.0.0.1:PORT/index.html --collection web``."""
    from typer.testing import CliRunner

    from flows.cli import app

    robots_site(site)
    args = ["crawl", "archive", f"{site.url}/index.html", "--collection", "web",
            "--setting", "DOWNLOAD_DELAY=0", "--setting", "AUTOTHROTTLE_ENABLED=false"]
    for _ in range(2):
        result = CliRunner().invoke(app, args)
        out = result.output + (result.stderr if result.stderr_bytes is not None else "")
        assert result.exit_code == 0, out
        assert "cannot reach" not in out and "item_failed" not in out and "partial" not in out, out
        assert "robots_disallowed" in out, out
    result = CliRunner().invoke(app, [*args, "--json"])
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["errors"]["by_kind"] == {"robots_disallowed": 1}, summary


def test_a_redirect_the_gate_refuses_is_one_error(clean_db, site):
    """An item page redirecting to the cloud metadata address: refused, not fetched, and said once
    (offsite), not again as item_failed; the page is still lost (partial), as before."""
    site.listing("/list.html", [site.item(1), "/moved.html"])
    site.add("/moved.html", b"", status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    summary = crawl(site, "/list.html")
    assert summary["errors"]["by_kind"] == {"offsite": 1}, summary
    (err,) = summary["errors"]["examples"]
    assert err["url"] == "http://169.254.169.254/latest/meta-data/" and "redirect target" in err["message"], err
    assert summary["status"] == "partial", summary
    assert summary["records"]["new"] == 1, summary
