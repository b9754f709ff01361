"""A local fake of the archive sites in ``tests/fixtures/archive`` (shared fixtures + awkward ones).

``ArchiveServer`` listens on 127.0.0.1 (a free port) and answers requests made
through ``crawlers.archive.middlewares.HostMapMiddleware``: the path is
``/{original host}{original path}``. Routes follow the fixtures' README
(URL → file), every other image URL gets a small generated JPEG, anything
else is a 404. Every request is kept in ``requests`` (host, path, raw query).
"""
from __future__ import annotations

import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from tests.helpers import jpeg_bytes

FIX = Path(__file__).parent / "fixtures" / "archive"
OMEKA = "colectii.memoria-chisinau.example"
BASA = "basarabica.example"
COMMONS = "commons.wikimedia.org"
UPLOAD = "upload.wikimedia.org"
ANA = "arhiva-nationala.example"
WILD = "wild.example"  # shapes of other platforms (tests/fixtures/archive/wild), with a stateful OAI list
HOSTS = (OMEKA, BASA, COMMONS, UPLOAD, ANA, WILD, "evil.example")
TOKEN = "oai_dc/cartipost/3/5+2026-11-26T10:15:02Z"
COMMONS_FILE = "/wiki/File:Soroca,_cetatea_v%C4%83zut%C4%83_de_pe_Nistru,_1936.jpg"
GONE_FILES = "a71b0c5d9e3f42018c6d7e8f9a0b1c2d3e4f5061"

# Start URLs of a full crawl of the shared set.
START_URLS = [
    f"https://{OMEKA}/s/fototeca/item",
    f"https://{OMEKA}/api/items?site_id=1&per_page=3&page=1",
    f"https://{OMEKA}/iiif/2/1201/manifest",
    f"https://{BASA}/oai/request?verb=ListRecords&metadataPrefix=oai_dc&set=cartipost",
    f"https://{BASA}/iiif/3/collection/cartipost",
    f"https://{COMMONS}{COMMONS_FILE}",
    f"https://{COMMONS}/w/api.php?action=query&titles=File:Soroca,_cetatea_v%C4%83zut%C4%83_de_pe_Nistru,_1936.jpg"
    "&prop=imageinfo&iiprop=timestamp|user|size|url|mime|extmetadata&format=json",
    f"https://{ANA}/sarbatori-de-iarna-in-fotografii-de-arhiva/",
]
ALLOW = [OMEKA, BASA, COMMONS, UPLOAD, ANA]

IDENTIFY = b"""<?xml version="1.0" encoding="UTF-8"?>
<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><responseDate>2026-12-01T10:00:00Z</responseDate>
<request verb="Identify">https://basarabica.example/oai/request</request>
<Identify><repositoryName>Basarabica</repositoryName><baseURL>https://basarabica.example/oai/request</baseURL>
<protocolVersion>2.0</protocolVersion><earliestDatestamp>2020-01-01</earliestDatestamp>
<deletedRecord>persistent</deletedRecord><granularity>YYYY-MM-DDThh:mm:ssZ</granularity></Identify></OAI-PMH>"""

CTYPES = {".json": "application/json", ".xml": "text/xml; charset=UTF-8", ".html": "text/html; charset=UTF-8"}


def _file(rel: str, ctype: str | None = None) -> tuple[int, dict[str, str], bytes]:
    path = FIX / rel
    headers = {"Content-Type": ctype or CTYPES[path.suffix]}
    extra = path.with_name(path.name + ".headers")
    if extra.exists():
        for line in extra.read_text().splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip()] = v.strip()
    return 200, headers, path.read_bytes()


def _not_found() -> tuple[int, dict[str, str], bytes]:
    return 404, {"Content-Type": "text/html; charset=UTF-8"}, b"<html><body>Not found</body></html>"


def _redirect(location: str, status: int = 302) -> tuple[int, dict[str, str], bytes]:
    return status, {"Location": location, "Content-Type": "text/html"}, b""


def _bomb_png(side: int = 12_000) -> bytes:
    """A valid greyscale PNG of side×side pixels that compresses to ~150 kB."""
    import struct

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = (b"\x00" + b"\x00" * side) * side
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


_BOMB: bytes | None = None


def route(host: str, path: str, query: str) -> tuple[int, dict[str, str], bytes]:
    global _BOMB
    q = parse_qsl(query, keep_blank_values=True)
    qd = dict(q)
    low = path.lower()
    if low.endswith((".jpg", ".jpeg", ".png", ".tif", ".webp")) and not path.startswith("/wiki/"):
        if GONE_FILES in path:
            return _not_found()
        if path.endswith("/broken.jpg"):
            return 200, {"Content-Type": "image/jpeg"}, jpeg_bytes(7, (200, 150))[:300]
        if path.endswith("/bomb.png"):
            _BOMB = _BOMB or _bomb_png()
            return 200, {"Content-Type": "image/png"}, _BOMB
        seed = zlib.crc32(f"{host}{path}".encode()) % 1000
        return 200, {"Content-Type": "image/jpeg"}, jpeg_bytes(seed, (64, 48), grey=seed % 2 == 0)
    if host == OMEKA:
        if path == "/s/fototeca/item" and qd.get("page", "1") == "1":
            return _file("omeka_s/browse_page1.html")
        if path == "/s/fototeca/item" and qd.get("page") == "2":
            return _file("omeka_s/browse_page2.html")
        for i in ("1201", "1187", "1176", "1163"):
            if path == f"/s/fototeca/item/{i}":
                return _file(f"omeka_s/item_{i}.html")
        if path == "/api/items" and q == [("site_id", "1"), ("per_page", "3"), ("page", "1")]:
            return _file("omeka_s/api_items_page1.json", "application/ld+json")
        if path == "/api/media/5012":
            return _file("omeka_s/api_media_5012.json", "application/ld+json")
        if path == "/iiif/2/1201/manifest":
            return _file("iiif/v2_manifest_1201.json", "application/ld+json")
        if path == "/s/fototeca/page/awkward":
            return _file("awkward/links.html")
        if path == "/go/elsewhere":
            return _redirect("https://evil.example/steal")
        if path == "/old/item/1163":
            return _redirect("/s/fototeca/item/1163", 301)
        if path == "/s/fototeca/item/9001":
            return _file("awkward/item_broken_image.html")
        if path == "/s/fototeca/item/9002":
            return _file("awkward/item_bomb.html")
    if host == BASA:
        if path == "/oai/request":
            if "resumptionToken" in qd:
                if set(qd) != {"verb", "resumptionToken"}:
                    return _file("oai/error_badArgument.xml")
                if qd["resumptionToken"] == TOKEN:
                    return _file("oai/listrecords_cartipost_page2.xml")
                return _file("oai/error_badResumptionToken.xml")
            if not q:  # a bare endpoint: this server answers Identify
                return 200, {"Content-Type": "text/xml; charset=UTF-8"}, IDENTIFY
            base = [("verb", "ListRecords"), ("metadataPrefix", "oai_dc"), ("set", "cartipost")]
            if q == base or q == base[:2]:
                return _file("oai/listrecords_cartipost_page1.xml")
            if q == base + [("from", "2030-01-01")]:
                return _file("oai/error_noRecordsMatch.xml")
            if q == base + [("from", "2026-01-01")]:
                return _file("awkward/oai_deleted.xml")
        if path == "/oai/bomb":
            return _file("awkward/oai_billion_laughs.xml")
        if path == "/oai/xxe":
            return _file("awkward/oai_xxe.xml")
        if path == "/iiif/3/cp-0457/manifest":
            return _file("iiif/v3_manifest_cp-0457.json", "application/ld+json")
        if path == "/iiif/3/collection/cartipost":
            return _file("iiif/v3_collection_cartipost.json", "application/ld+json")
        if path == "/iiif/3/collection/cartipost-chisinau":
            return _file("iiif/v3_collection_cartipost-chisinau.json", "application/ld+json")
    if host == COMMONS:
        if path == COMMONS_FILE and not query:
            return _file("commons/File_Soroca_cetatea_1936.html")
        if path == "/w/api.php" and qd.get("action") == "query" and qd.get("prop") == "imageinfo":
            return _file("commons/api_imageinfo_Soroca_cetatea_1936.json")
    if host == ANA and path == "/sarbatori-de-iarna-in-fotografii-de-arhiva/":
        return _file("wordpress/sarbatori_de_iarna.html")
    return _not_found()


WILD_PAGES = {"/items/show/42": "omeka_classic_item.html", "/photo/8841": "og_only_photo.html",
              "/digital/collection/photos/id/117": "contentdm7_item.html"}


def wild_route(state: dict, path: str, query: str) -> tuple[int, dict[str, str], bytes]:
    """``wild.example``: item pages of other platforms, and an OAI list whose server can refuse
    its token (``state["refuse"]`` times), hand out a new token each time the list starts
    (``state["rotate"]``), or hand back the token it was asked (``state["loop"]``); with
    ``state["moved"]`` the site has moved its DSpace handles to new item pages (the OAI identifier
    stays); with ``state["cp1251"]`` the first page is in windows-1251 though it declares UTF-8."""
    qd = dict(parse_qsl(query, keep_blank_values=True))
    if path.lower().endswith((".jpg", ".jpeg", ".png")):
        return route(WILD, path, query)
    if path in WILD_PAGES:
        return _file(f"wild/{WILD_PAGES[path]}")
    if path == "/oai/mods-only":
        return _file("wild/oai_error_cannotDisseminateFormat.xml")
    if path != "/oai":
        return _not_found()
    xml = {"Content-Type": "text/xml; charset=UTF-8"}
    if qd.get("verb") == "ListRecords" and "resumptionToken" not in qd:
        state["starts"] += 1
        token = f"page2-{state['starts']}" if state["rotate"] else "page2"
        state["issued"].add(token)
        body = (FIX / "wild/oai_listrecords_page1.xml").read_bytes().replace(b"{token}", token.encode())
        if state["moved"]:
            body = body.replace(b"https://wild.example/handle/10.7/101", b"https://wild.example/items/10.7-101") \
                .replace(b"/bitstream/handle/10.7/101/", b"/files/10.7-101/")
        if state["cp1251"]:  # written in a Windows code page, still declared UTF-8; the server says which
            body = body.decode("utf-8").replace("Market day in the square", "Базарный день, Кишинёв").encode("cp1251")
            return 200, {"Content-Type": "text/xml; charset=windows-1251"}, body
        return 200, xml, body
    token = qd.get("resumptionToken")
    if token not in state["issued"] or state["refuse"] > 0:
        state["refuse"] = max(0, state["refuse"] - 1)
        return _file("wild/oai_error_badResumptionToken.xml")
    if state["loop"]:
        return 200, xml, (FIX / "wild/oai_listrecords_page1.xml").read_bytes().replace(b"{token}", token.encode())
    return 200, xml, (FIX / "wild/oai_listrecords_page2.xml").read_bytes().replace(b"{token}", token.encode())


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        parts = urlsplit(self.path)
        host, _, rest = parts.path.lstrip("/").partition("/")
        path = "/" + rest
        self.server.requests.append({"host": host, "path": path, "query": parts.query})
        try:
            extra = self.server.extra.get((host, path))
            if extra is not None:
                status, headers, body = extra
            elif host == WILD:
                status, headers, body = wild_route(self.server.wild, path, parts.query)
            else:
                status, headers, body = route(host, path, parts.query)
        except Exception as exc:  # pragma: no cover - a test server bug
            status, headers, body = 500, {"Content-Type": "text/plain"}, str(exc).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class ArchiveServer:
    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.requests = []
        self.httpd.wild = {"refuse": 0, "rotate": False, "loop": False, "moved": False, "cp1251": False, "starts": 0, "issued": set()}
        self.httpd.extra = {}  # (host, path) → (status, headers, body), answered before the fixtures
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def requests(self) -> list[dict[str, str]]:
        return self.httpd.requests

    @property
    def wild(self) -> dict:
        return self.httpd.wild

    def add(self, host: str, path: str, body: bytes | str, ctype: str = "application/ld+json",
            status: int = 200, headers: dict[str, str] | None = None) -> None:
        """Serve ``body`` at https://{host}{path} (a test's own hostile or oversized answer)."""
        data = body.encode() if isinstance(body, str) else body
        self.httpd.extra[(host, path)] = (status, {"Content-Type": ctype, **(headers or {})}, data)

    def host_map(self) -> dict[str, str]:
        return {h: self.url for h in HOSTS}

    def cli_settings(self) -> list[str]:
        """``arhiva crawl archive`` options that send the crawl here, fast and impolite."""
        import json

        return ["--setting", "ARHIVA_HOST_MAP=" + json.dumps(self.host_map()), "--setting", "ROBOTSTXT_OBEY=false",
                "--setting", "DOWNLOAD_DELAY=0", "--setting", "AUTOTHROTTLE_ENABLED=false"]

    def __enter__(self) -> ArchiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

