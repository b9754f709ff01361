"""A local server that answers like PastVu's ``/api2`` (its answers: ``tests/fixtures/pastvu/README.md``).

Built from the shared fixtures plus generated photos. It follows the traps of
the real API: errors with HTTP 200 and no ``result``, a 400 bare string for
unknown methods, ``{"error":"Bad Request"}`` for bad JSON, counter-clockwise
rings (a clockwise ring selects the complement), ``z`` must be a JSON number,
``giveForPage`` counts a view, images at ``/_p/<size>/<file>`` with a grey
watermark strip appended below. It counts every request and can inject faults.

    with FakePastvu(generate_photos(50)) as server:
        server.api_url  # http://127.0.0.1:<port>/api2
"""
from __future__ import annotations

import io
import json
import random
import socket
import string
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

FIXTURES = Path(__file__).parent / "fixtures" / "pastvu"
CHISINAU = (28.80, 47.00, 28.86, 47.04)  # W, S, E, N around the fixture photos


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def strip_height(h: int) -> int:
    return 14 if h <= 600 else round(14 * h / 600)


def _rid(rng: random.Random | None = None) -> str:
    rng = rng or random
    return "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(10))


def _file(rng: random.Random) -> str:
    name = "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(10))
    sig = "".join(rng.choice("0123456789abcdef") for _ in range(10))
    return f"{name[0]}/{name[1]}/{name[2]}/{name}.jpg" + (f"?s={sig}" if rng.random() < 0.8 else "")


def make_photo(cid: int, lat: float, lon: float, *, rng: random.Random, s: int = 5, w: int = 160, h: int = 100,
               year: int | None = None, span: int = 0) -> dict[str, Any]:
    """A giveForPage ``photo`` document (shape of the fixtures)."""
    year = year if year is not None else rng.randint(1860, 1990)
    year2 = min(2000, year + span)
    scale = min(1.0, 1050 / w, 700 / h)
    ws, hs = round(w * scale), round(h * scale)
    doc = {
        "cid": cid,
        "user": {"login": f"user{cid % 7}", "disp": f"Utilizator {cid % 7}", "ranks": []},
        "type": 1, "s": s,
        "stdate": "2020-01-01T00:00:00.000Z", "ldate": "2020-01-01T00:00:00.000Z",
        "adate": "2020-01-01T00:00:00.000Z", "cdate": "2021-01-01T00:00:00.000Z",
        "ucdate": "2021-01-01T00:00:00.000Z",
        "geo": [round(lat, 6), round(lon, 6)],
        "file": _file(rng), "mime": "image/jpeg", "size": 12345,
        "w": w, "h": h, "ws": ws, "hs": hs, "waterh": strip_height(h), "waterhs": strip_height(hs),
        "watersignText": f"uploaded by user{cid % 7}",
        "title": f"Fotografia {cid}", "year": year, "year2": year2,
        "y": str(year) if year2 == year else f"{year}—{year2}",
        "author": f"Autor &lt;{cid}&gt;<br>Studio", "source": f"<a href=\"https://example.org/{cid}\">Colecție</a>",
        "desc": f"Descriere {cid}.<br>Vezi <a target=\"_blank\" class=\"sharpPhoto\" href=\"/p/1\">#1</a>",
        "address": f"Strada {cid % 50}",
        "vdcount": 0, "vwcount": 0, "vcount": 0, "frags": [],
        "regions": [{"cid": 21, "title_en": "Moldova", "title_local": "Молдова", "phc": 1, "pac": 0, "cc": 0}],
    }
    if rng.random() < 0.8:
        doc["dir"] = rng.choice(["n", "ne", "e", "se", "s", "sw", "w", "nw", "aero"])
    return doc


def generate_photos(n: int, bbox: tuple[float, float, float, float] = CHISINAU, *, seed: int = 1,
                    start_cid: int = 2_000_000, non_public: float = 0.1, no_geo: float = 0.03,
                    w: int = 160, h: int = 100) -> dict[int, dict[str, Any]]:
    """``n`` photos spread over ``bbox`` (W,S,E,N); some not public (s 7/9/0), some without geo."""
    rng = random.Random(seed)
    west, south, east, north = bbox
    out = {}
    for i in range(n):
        cid = start_cid + i
        r = rng.random()
        s = rng.choice([0, 7, 9]) if r < non_public else 5
        doc = make_photo(cid, rng.uniform(south, north), rng.uniform(west, east), rng=rng, s=s, w=w, h=h,
                         span=rng.choice([0, 0, 0, 5, 10]))
        if rng.random() < no_geo:
            del doc["geo"]
        out[cid] = doc
    return out


def fixture_photos() -> dict[int, dict[str, Any]]:
    """The 8 central-Chișinău photos of the fixtures (3 with their real giveForPage documents)."""
    rng = random.Random(0)
    out = {}
    listing = json.loads(fixture("getbybounds_photos.json"))["result"]["photos"]
    for entry in listing:
        lat, lon = entry["geo"]
        doc = make_photo(entry["cid"], lat, lon, rng=rng, year=entry["year"], span=entry["year2"] - entry["year"])
        doc.update({k: entry[k] for k in ("file", "title", "year", "year2")})
        doc.pop("dir", None)
        if "dir" in entry:
            doc["dir"] = entry["dir"]
        out[entry["cid"]] = doc
    for cid in (1438804, 1345288, 1402117):
        out[cid] = json.loads(fixture(f"giveforpage_{cid}.json"))["result"]["photo"]
    return out


# -- images ---------------------------------------------------------------------------------
def jpeg_with_strip(width: int, height: int, strip: int, *, seed: int = 0, quality: int = 82,
                    texture: float = 0.0) -> bytes:
    """A greyscale-ish photo of width×height with a grey strip of ``strip`` px appended below."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = (96 + 80 * np.sin(x / (7 + seed % 5)) * np.cos(y / 11)).astype(np.float32)
    if texture:
        base += rng.normal(0, texture, size=base.shape).astype(np.float32)
    photo = np.clip(np.stack([base, base * 0.95, base * 0.85], axis=-1), 0, 255).astype("uint8")
    band = np.full((strip, width, 3), 160, dtype="uint8")
    band[strip // 3: strip // 3 + 2, 4: max(5, width // 3)] = 60  # the "text"
    im = Image.fromarray(np.concatenate([photo, band], axis=0))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def with_comment(jpeg: bytes, text: str) -> bytes:
    """The same JPEG with a COM segment after SOI (unique bytes, same pixels)."""
    payload = text.encode()
    return jpeg[:2] + b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


def default_image(photo: dict[str, Any], size: str) -> bytes:
    if size == "a":
        return jpeg_with_strip(photo["w"], photo["h"], photo.get("waterh") or strip_height(photo["h"]),
                               seed=photo["cid"] % 97)
    return jpeg_with_strip(photo["ws"], photo["hs"], photo.get("waterhs") or strip_height(photo["hs"]),
                           seed=photo["cid"] % 97)




# -- faults ---------------------------------------------------------------------------------
@dataclass
class Fault:
    """Answer requests matching ``match`` with ``action`` (``times`` times; None = always).

    Actions: ``("status", code, body, headers)``, ``("fixture", name, http_status)``,
    ``("sleep", seconds)`` then answer normally, ``("truncate",)`` image cut in half,
    ``("html_image",)`` an HTML page labelled image/jpeg, ``("too_big",)`` Cloudflare 524.
    """

    match: Callable[[dict[str, Any]], bool]
    action: tuple
    times: int | None = 1
    hits: int = 0


def is_call(method: str, cid: int | None = None) -> Callable[[dict[str, Any]], bool]:
    def match(req):
        return req.get("method") == method and (cid is None or req.get("cid") == cid)
    return match


def is_image(cid: int | None = None) -> Callable[[dict[str, Any]], bool]:
    def match(req):
        return req.get("kind") == "image" and (cid is None or req.get("cid") == cid)
    return match


CLOUDFLARE_524 = (b"<!DOCTYPE html><html><head><title>pastvu.com | 524: A timeout occurred</title></head>"
                  b"<body><h1>A timeout occurred</h1><p>Cloudflare</p></body></html>")


class FakePastvu:
    def __init__(self, photos: dict[int, dict[str, Any]] | None = None, *, latency: float = 0.0,
                 max_tile_area: float | None = None,
                 image_maker: Callable[[dict[str, Any], str], bytes] = default_image):
        self.photos = photos if photos is not None else fixture_photos()
        self.latency = latency
        self.max_tile_area = max_tile_area
        self.image_maker = image_maker
        self.faults: list[Fault] = []
        self.counts: Counter = Counter()
        self.views: Counter = Counter()
        self.log: list[dict[str, Any]] = []
        self._images: dict[tuple[int, str], bytes] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- life cycle
    def start(self) -> FakePastvu:
        handler = type("Handler", (_Handler,), {"app": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.request_queue_size = 128
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.base_url + "/api2"

    @property
    def allow(self) -> dict[str, list[str]]:
        """The crawl setting that lets the URL gate fetch from this loopback server."""
        return {"ARHIVA_ALLOW_PRIVATE": [self.base_url]}

    def reset_counts(self) -> None:
        with self._lock:
            self.counts.clear()
            self.log.clear()

    def public_in(self, bbox, years=None) -> set[int]:
        west, south, east, north = bbox
        return {cid for cid, p in self.photos.items() if p.get("s") == 5 and "geo" in p
                and south <= p["geo"][0] <= north and west <= p["geo"][1] <= east
                and (years is None or years[0] <= p["year"] <= years[1])}

    def image(self, photo: dict[str, Any], size: str) -> bytes:
        key = (photo["cid"], photo["file"], size)
        if key not in self._images:
            self._images[key] = self.image_maker(photo, size)
        return self._images[key]

    def take_fault(self, req: dict[str, Any]) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if (f.times is None or f.hits < f.times) and f.match(req):
                    f.hits += 1
                    return f
        return None

    # -- the API
    def answer(self, req: dict[str, Any], raw_params: str | None) -> tuple[int, Any]:
        method = req["method"]
        if raw_params is None:
            params = {}
        else:
            try:
                params = json.loads(raw_params)
            except ValueError:
                return 400, {"error": "Bad Request"}
        if method == "photo.getByBounds":
            return self.get_by_bounds(params)
        if method == "photo.giveForPage":
            return self.give_for_page(params)
        return 400, "The requested method does not exist"

    def get_by_bounds(self, params: dict[str, Any]) -> tuple[int, Any]:
        z = params.get("z")
        if isinstance(z, bool) or not isinstance(z, (int, float)) or z < 1:
            return 200, json.loads(fixture("error_bad_params.json"))
        geometry = params.get("geometry")
        if geometry is None:
            return 200, json.loads(fixture("error_unhandled.json"))
        if not isinstance(geometry, dict) or geometry.get("type") != "Polygon":
            return 200, json.loads(fixture("error_bad_params.json"))
        ring = geometry["coordinates"][0]
        xs, ys = [p[0] for p in ring], [p[1] for p in ring]
        west, east, south, north = min(xs), max(xs), min(ys), max(ys)
        if self.max_tile_area is not None and (east - west) * (north - south) > self.max_tile_area + 1e-12:
            return 524, CLOUDFLARE_524
        ccw = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:])) > 0
        if not (params.get("localWork") and z >= 17):
            return 200, {"result": {"z": z, "photos": [], "clusters": []}, "rid": _rid()}
        y1, y2 = params.get("year"), params.get("year2")
        year_filter = (isinstance(y1, int) and isinstance(y2, int) and 1826 <= y1 <= y2 <= 2000 and y2 - y1 < 174)
        photos = []
        for p in list(self.photos.values()):
            if p.get("s") != 5 or "geo" not in p:
                continue
            lat, lon = p["geo"]
            inside = south <= lat <= north and west <= lon <= east
            if inside != ccw:
                continue
            if year_filter and not y1 <= p["year"] <= y2:
                continue
            entry = {"cid": p["cid"], "geo": p["geo"], "file": p["file"]}
            if "dir" in p:
                entry["dir"] = p["dir"]
            entry.update(title=p.get("title", ""), year=p["year"], year2=p["year2"])
            photos.append(entry)
        return 200, {"result": {"z": z, "photos": photos}, "rid": _rid()}

    def give_for_page(self, params: dict[str, Any]) -> tuple[int, Any]:
        try:
            cid = int(params.get("cid"))
        except (TypeError, ValueError):
            return 200, json.loads(fixture("error_bad_params.json"))
        if cid <= 0:
            return 200, json.loads(fixture("error_bad_params.json"))
        p = self.photos.get(cid)
        if p is None or p.get("s") not in (5, 7, 9):
            return 200, json.loads(fixture("error_no_such_photo.json"))
        with self._lock:
            self.views[cid] += 1
            p["vcount"] = p.get("vcount", 0) + 1
        can = {"download": "login"} if p["s"] == 5 else {"download": False, "protected": False}
        return 200, {"result": {"photo": json.loads(json.dumps(p)), "can": can, "forEdit": False}, "rid": _rid()}

    def find_file(self, file: str) -> dict[str, Any] | None:
        stem = file.split("?", 1)[0]
        for p in list(self.photos.values()):
            if p["file"].split("?", 1)[0] == stem:
                return p
        return None


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # clients that hang up are expected here
        pass


class _Handler(BaseHTTPRequestHandler):
    app: FakePastvu
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self):
        app = self.app
        if app.latency:
            time.sleep(app.latency)
        parts = urlsplit(self.path)
        req: dict[str, Any] = {"t": time.monotonic(), "path": parts.path, "ua": self.headers.get("User-Agent"),
                               "cookie": self.headers.get("Cookie"), "accept": self.headers.get("Accept")}
        if parts.path == "/robots.txt":
            req["kind"] = "robots"
            self._count(req)
            return self._send(200, b"User-agent: *\nAllow: /\n", "text/plain")
        if parts.path.startswith("/_p/"):
            return self._image(req, parts)
        if parts.path != "/api2":
            req["kind"] = "other"
            self._count(req)
            return self._send(404, b"not found", "text/plain")
        query = parse_qs(parts.query, keep_blank_values=True)
        req["kind"] = "api"
        req["method"] = (query.get("method") or [""])[0]
        raw_params = (query.get("params") or [None])[0]
        try:
            req["params"] = json.loads(raw_params) if raw_params else {}
            req["cid"] = req["params"].get("cid") if isinstance(req["params"], dict) else None
        except ValueError:
            req["params"] = None
        self._count(req)
        if not req["ua"]:
            return self._send(400, b"SESSION_NO_HEADERS", "text/plain")
        fault = app.take_fault(req)
        if fault is not None and self._fault(fault):
            return
        status, body = app.answer(req, raw_params)
        if isinstance(body, bytes):
            return self._send(status, body, "text/html")
        self._send(status, json.dumps(body, ensure_ascii=False).encode(), "application/json; charset=utf-8")

    def _image(self, req, parts):
        app = self.app
        _, _, size, rest = parts.path.split("/", 3)
        file = unquote(rest) + (f"?{parts.query}" if parts.query else "")
        photo = app.find_file(file)
        req.update(kind="image", size=size, cid=photo["cid"] if photo else None)
        self._count(req)
        fault = app.take_fault(req)
        if fault is not None and self._fault(fault, photo, size):
            return
        if photo is None:
            return self._send(404, b"<html>not found</html>", "text/html")
        if photo.get("s") != 5:  # /_p/ falls through to a blurred "covered" image, status 200
            return self._send(200, jpeg_with_strip(40, 30, 14), "image/jpeg")
        self._send(200, app.image(photo, size), "image/jpeg",
                   {"Cache-Control": "public, max-age=604800", "ETag": f'"{photo["cid"]}-{size}"'})

    def _fault(self, fault: Fault, photo=None, size=None) -> bool:
        kind = fault.action[0]
        if kind == "status":
            _, code, body, headers = fault.action
            self._send(code, body, "text/plain", headers)
        elif kind == "fixture":
            _, name, code = fault.action
            self._send(code, fixture(name), "application/json; charset=utf-8")
        elif kind == "sleep":
            time.sleep(fault.action[1])
            return False
        elif kind == "too_big":
            self._send(524, CLOUDFLARE_524, "text/html")
        elif kind == "html_image":
            self._send(200, b"<!DOCTYPE html><html><body>Checking your browser</body></html>", "image/jpeg")
        elif kind == "truncate":
            data = self.app.image(photo, size)
            self._send(200, data[: len(data) // 2], "image/jpeg")
        else:
            raise ValueError(kind)
        return True

    def _count(self, req):
        app = self.app
        with app._lock:
            app.counts["total"] += 1
            app.counts[req.get("method") or req["kind"]] += 1
            app.log.append(req)

    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if "past.sid" not in (self.headers.get("Cookie") or ""):
            self.send_header("Set-Cookie", f"past.sid={_rid()}; Path=/; HttpOnly")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        try:
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            self.close_connection = True
