"""The ``pastvu`` spider: every public photo in an area, incrementally.

1. The area is cut into tiles; each is asked with ``photo.getByBounds``
   (``localWork``, z = 17, a counter-clockwise ring). A tile the server is too
   slow for (520/524, timeout) is split in four and asked again.
2. A photo seen in several tiles is handled once. A photo whose listing
   entry equals the stored one (and whose image is stored) is only marked
   seen. Others get one ``photo.giveForPage`` (it counts a view) and their
   image once (``Accept: image/jpeg``).
3. At the end, active records inside the tiles that answered, but absent
   from every listing, are withdrawn (not with ``limit``).
4. A tile's listing or a photo's page that the source did not give, after the
   retries, counts as ``arhiva/incomplete``: the crawl ends ``partial``, never
   plain succeeded (answers that will not change — not found, not public — do not count).
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import DownloadTimeoutError
from twisted.internet import defer, error

from catalog.dates import PHOTO_MIN_YEAR
from catalog.settings import get_settings
from crawlers.base import ArhivaSpider
from crawlers.items import RecordItem, SeenItem
from crawlers.middlewares import backoff_delay
from crawlers.pastvu import api
from crawlers.pastvu.mapping import (
    PUBLIC,
    SIZES,
    STRIP_HEIGHT_KEY,
    crop_box_rule,
    image_url,
    latlon,
    listing_entry,
    same_listing,
    to_record,
)
from crawlers.pastvu.tiles import MIN_TILE_SIZE, TILE_SIZE, BBox, grid, parse_bbox, polygon, region_bbox, split

IMAGES = ("none", "standard", "original")
# Answers that will not change if asked again (not found, not public, not allowed, our own bad
# question); anything else (UNHANDLED_ERROR, a bare {"error": …}, HTTP 5xx, HTML) is retried.
PERMANENT = frozenset({"NO_SUCH_PHOTO", "DENY", "BAD_PARAMS", "NO_SUCH_METHOD", "BAD_REQUEST"})
TIMEOUTS = (DownloadTimeoutError, TimeoutError, defer.TimeoutError, error.TimeoutError)
MAX_SPLIT_DEPTH = 5  # a tile is split at most this many times (4**5 = 1024 parts)


def parse_years(value: Any) -> tuple[int, int] | None:
    """The catalogue's FROM-TO (``catalog.queries.parse_years``: ``1920-1940``, ``1935``, ``1920-``)
    or a pair; an open end is the photographic era's first year (``catalog.dates.PHOTO_MIN_YEAR``)
    or this year, as PastVu wants both."""
    from datetime import date

    from catalog.queries import parse_years as catalogue_years

    if value in (None, "", []):
        return None
    lo, hi = catalogue_years(value) if isinstance(value, str) else (int(v) for v in value)
    lo, hi = (PHOTO_MIN_YEAR if lo is None else lo), (date.today().year if hi is None else hi)
    if lo > hi:
        raise ValueError(f"years {lo}-{hi}: FROM is after TO")
    return lo, hi


class PastvuSpider(ArhivaSpider):
    name = "pastvu"
    source_slug = "pastvu"
    source_kind = "pastvu"

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        p = dict(params)
        region = region_bbox(p["region"]) if p.get("region") else None
        if p.get("bbox"):
            area = parse_bbox(p["bbox"])
            if region is not None and area != region:
                raise ValueError("give --bbox or --region, not both")
        elif region is not None:
            area = region
        else:
            raise ValueError("give an area: --bbox W,S,E,N or --region moldova")
        p["bbox"] = area.as_list()
        years = parse_years(p.get("years"))
        p["years"] = list(years) if years else None
        p["images"] = p.get("images") or "standard"
        if p["images"] not in IMAGES:
            raise ValueError(f"images must be one of {', '.join(IMAGES)}, got {p['images']!r}")
        if p.get("limit") is not None:
            p["limit"] = int(p["limit"])
            if p["limit"] < 1:
                raise ValueError("limit must be at least 1")
        app = get_settings()
        p["api_url"] = (p.get("api_url") or app.pastvu_api_url).rstrip("/")
        p["base_url"] = (p.get("base_url") or _site_of(p["api_url"], app)).rstrip("/")
        p["tile_size"] = float(p.get("tile_size") or TILE_SIZE)
        p["min_tile_size"] = float(p.get("min_tile_size") or MIN_TILE_SIZE)
        return {k: v for k, v in p.items() if v is not None}

    @classmethod
    def scope_of(cls, params: dict[str, Any]) -> str:
        area = params.get("region") or ",".join(f"{v:g}" for v in parse_bbox(params["bbox"]).as_list())
        return f"{area}" + (f" years {params['years'][0]}-{params['years'][1]}" if params.get("years") else "")

    @classmethod
    def source_for(cls, params, app_settings=None):
        return {"slug": params.get("source") or "pastvu", "kind": "pastvu",
                "base_url": params.get("base_url"), "config": {"api_url": params.get("api_url")}}

    def __init__(self, *args, **kwargs):
        params = self.check_params(kwargs)
        super().__init__(*args, **{k: v for k, v in params.items() if k not in ("bbox", "years", "limit")})
        self.area = BBox(*params["bbox"])
        self.years = tuple(params["years"]) if params.get("years") else None
        self.images = params["images"]
        self.size = SIZES.get(self.images)
        self.limit = params.get("limit")
        self.api_url, self.base_url = params["api_url"], params["base_url"]
        # the URL gate (crawlers.urlgate) lets requests reach these two origins only
        self.allowed_domains = sorted({urlsplit(u).netloc.lower() for u in (self.api_url, self.base_url)})
        self.tile_size, self.min_tile_size = params["tile_size"], params["min_tile_size"]
        self.markers = {"listing": ["listing"]}
        if self.size:
            self.markers["strip_height"] = ["giveForPage", "photo", STRIP_HEIGHT_KEY[self.size]]
        self.seen: set[int] = set()       # cids already handled in this crawl
        self.listed: set[str] = set()      # keys present in some listing
        self.tiles_ok: list[BBox] = []
        self.tiles_failed: list[BBox] = []
        self.fetches = 0                   # giveForPage calls made (limit counts these)
        self.gone: set[str] = set()        # keys the API says are no longer public

    # -- listing --------------------------------------------------------------------------
    async def start(self):
        for tile in grid(self.area, self.tile_size):
            if self._limit_reached():
                return
            yield self.bounds_request(tile)

    def bounds_request(self, tile: BBox, depth: int = 0) -> Request:
        params = api.bounds_params(polygon(tile), years=self.years)
        return Request(api.call_url(self.api_url, "photo.getByBounds", params), callback=self.parse_bounds,
                       errback=self.bounds_failed, dont_filter=True, priority=-10,
                       meta={"tile": tile, "depth": depth, "handle_httpstatus_all": True,
                             "arhiva_kind": "getByBounds", "retry_skip_codes": sorted(api.TOO_BIG_STATUSES)})

    def _splittable(self, request) -> bool:
        tile: BBox = request.meta["tile"]
        half = max(tile.width, tile.height) / 2
        return half >= self.min_tile_size * (1 - 1e-6) and request.meta.get("depth", 0) < MAX_SPLIT_DEPTH

    def _split(self, request) -> list[Request]:
        self.runlog.count("tiles_split")
        depth = request.meta.get("depth", 0) + 1
        return [self.bounds_request(part, depth) for part in split(request.meta["tile"])]

    def parse_bounds(self, response):
        tile: BBox = response.meta["tile"]
        self.runlog.count("requests/getByBounds")
        try:
            result = api.parse(response.status, response.body)
        except api.PastvuError as exc:
            if exc.too_big and self._splittable(response.request):
                yield from self._split(response.request)
            elif not exc.too_big and (again := self._retry(response, exc)) is not None:
                yield again
            else:
                self.tiles_failed.append(tile)
                self.runlog.count("incomplete")  # a listing the source did not give: not all was harvested
                self.runlog.error("getByBounds", f"tile {tile.as_list()}: {exc}", url=response.url)
            return
        self.tiles_ok.append(tile)
        self.runlog.count("tiles")
        entries = []
        for photo in result.get("photos") or []:
            entry = listing_entry(photo) if isinstance(photo, dict) else None
            if entry is None:
                self.runlog.error("bad_listing_entry", f"photo without a valid cid: {photo!r}"[:300], url=response.url)
                continue
            point = latlon(entry.get("geo"))
            if point and not tile.contains(*point, tolerance=1e-4):
                self.runlog.count("listing/outside_tile")  # e.g. coordinates swapped by a mirror
            self.listed.add(str(entry["cid"]))
            if entry["cid"] in self.seen:
                self.runlog.count("listing/duplicates")
                continue
            self.seen.add(entry["cid"])
            entries.append(entry)
        yield from self._triage(entries)

    def request_failed(self, failure):
        """A request that got no answer after its retries (network, HTTP 5xx): the crawl is incomplete."""
        super().request_failed(failure)
        request = getattr(failure, "request", None)
        if request is None or not request.meta.get("arhiva_stopping"):
            self.runlog.count("incomplete")

    def bounds_failed(self, failure):
        request = failure.request
        if failure.check(*TIMEOUTS) and self._splittable(request):
            return self._split(request)  # too slow to answer: ask smaller questions
        self.tiles_failed.append(request.meta["tile"])
        self.request_failed(failure)
        return []

    def _triage(self, entries: list[dict[str, Any]]):
        known = self.store.known([str(e["cid"]) for e in entries], self.markers)
        unchanged: list[SeenItem] = []
        for entry in entries:
            key = str(entry["cid"])
            k = known.get(key)
            url = image_url(self.base_url, self.size, entry["file"]) if self.size and entry.get("file") else None
            if k is not None and same_listing(k.markers.get("listing"), entry):
                if url is None or url in k.asset_urls:
                    unchanged.append(SeenItem(key, k.id, [url] if url else []))
                    continue
                if not self._limit_reached():  # the record is current, its image is missing
                    self.fetches += 1
                    yield RecordItem(key, None, fetched_url=url, image_url=url,
                                     crop_box=crop_box_rule(k.markers.get("strip_height")))
                continue
            if self._limit_reached():
                continue
            self.fetches += 1
            yield Request(api.call_url(self.api_url, "photo.giveForPage", {"cid": entry["cid"]}),
                          callback=self.parse_photo, errback=self.request_failed, dont_filter=True,
                          meta={"listing": entry, "handle_httpstatus_all": True, "arhiva_kind": "giveForPage",
                                "arhiva_key": key, "asset_urls": sorted(k.asset_urls) if k else []})
        self.store.touch(unchanged)

    # -- one photo ------------------------------------------------------------------------
    def parse_photo(self, response):
        entry = response.meta["listing"]
        key = str(entry["cid"])
        self.runlog.count("requests/giveForPage")
        try:
            result = api.parse(response.status, response.body)
        except api.PastvuError as exc:
            if (again := self._retry(response, exc)) is not None:
                yield again
                return
            if exc.code == "NO_SUCH_PHOTO":
                self.gone.add(key)
            if exc.code not in PERMANENT:  # still an error after the retries: this photo was not harvested
                self.runlog.count("incomplete")
            self.runlog.error("giveForPage", str(exc), url=response.url, key=key)
            return
        photo = result.get("photo") if isinstance(result, dict) else None
        if not isinstance(photo, dict):
            self.runlog.count("incomplete")
            self.runlog.error("giveForPage", "answer has no photo", url=response.url, key=key)
            return
        if photo.get("s") != PUBLIC:
            self.gone.add(key)
            self.runlog.count("records/skipped")
            return
        record = to_record(result, entry, base_url=self.base_url, size=self.size)
        file = photo.get("file") or entry.get("file")
        url = image_url(self.base_url, self.size, file) if self.size and file else None
        yield RecordItem(key, record, fetched_url=response.url, image_url=url,
                         crop_box=crop_box_rule(photo.get(STRIP_HEIGHT_KEY[self.size])) if self.size else None,
                         image_current=url in response.meta.get("asset_urls", ()))

    def _retry(self, response, exc: api.PastvuError) -> Request | None:
        """The same call again, after the usual back-off, for an answer that may be transient."""
        if exc.code in PERMANENT:
            return None
        again = get_retry_request(response.request, spider=self, reason=f"pastvu/{exc.code}")
        if again is not None:
            s = self.crawler.settings
            again.meta["arhiva_delay"] = backoff_delay(again.meta.get("retry_times", 1),
                                                       s.getfloat("RETRY_BACKOFF_BASE"),
                                                       s.getfloat("RETRY_BACKOFF_MAX"))
        return again

    def _limit_reached(self) -> bool:
        return self.limit is not None and self.fetches >= self.limit

    # -- the end --------------------------------------------------------------------------
    def closed(self, reason):
        if not self.tiles_ok and (self.tiles_failed or reason == "finished"):
            self.crawler.stats.set_value("arhiva/failed", "no tile of the area could be listed")
        if reason != "finished" or self.limit is not None:
            return
        self._withdraw()

    def _withdraw(self) -> None:
        years = {"year_from": self.years[0], "year_to": self.years[1]} if self.years else {}
        candidates = self.store.active_in_bbox(*self.area.as_list(), **years)
        gone = {key for key, (lat, lon) in candidates.items()
                if key not in self.listed and any(t.contains(lat, lon, tolerance=0) for t in self.tiles_ok)
                and not any(t.contains(lat, lon, tolerance=1e-4) for t in self.tiles_failed)}
        self.store.withdraw(gone | (self.gone & set(candidates)))


def _site_of(api_url: str, app) -> str:
    """The site that serves images for an API endpoint: the configured one for the default API."""
    if api_url == app.pastvu_api_url.rstrip("/"):
        return app.pastvu_base_url
    return api_url.rsplit("/api2", 1)[0] if "/api2" in api_url else app.pastvu_base_url
