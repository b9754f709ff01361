"""The HTML pages: search (form, small map, thumbnail grid) and record (images, metadata, provenance)."""
from __future__ import annotations

from pathlib import Path as FsPath
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape

from catalog.counts import approx
from catalog.licences import is_licence_uri
from catalog.names import collection_name
from catalog.provenance import record_provenance
from catalog.queries import MAX_OFFSET, QueryError, decode_cursor, search_records
from catalog.web.api import DB, RecordId, list_collections, list_sources, load_record
from catalog.web.deps import base_url, one_of_each, query_from_form, record_out, settings_of
from catalog.web.thumbs import THUMB_SIZES

PAGE_SIZE = 24
FORM_FIELDS = ("q", "collection", "source", "year_from", "year_to", "bbox", "colorized", "include_undated", "status")
# Places drawn on the search page's map (no tiles: it works offline).
PLACES = [("Chișinău", 28.83, 47.02), ("Bălți", 27.93, 47.76), ("Soroca", 28.30, 48.16), ("Orhei", 28.82, 47.38),
          ("Cahul", 28.19, 45.90), ("Tiraspol", 29.63, 46.84), ("Comrat", 28.66, 46.30),
          ("Edineț", 27.30, 48.17), ("Iași", 27.59, 47.16)]
MAP_EXTENT = (26.4, 45.2, 30.9, 48.7)  # W, S, E, N

router = APIRouter(include_in_schema=False)
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def make_templates() -> Jinja2Templates:
    env = Environment(loader=FileSystemLoader(FsPath(__file__).parent / "templates"),
                      autoescape=select_autoescape(["html"], default=True), trim_blocks=True, lstrip_blocks=True)
    env.globals.update(thumb_sizes=THUMB_SIZES, is_licence_uri=is_licence_uri, years=years_label)
    env.filters["short"] = lambda v, n=80: v if not isinstance(v, str) or len(v) <= n else v[: n - 1] + "…"
    env.filters["when"] = lambda d: d.strftime("%Y-%m-%d %H:%M") if d else ""
    return Jinja2Templates(env=env)


def years_label(lo: int | None, hi: int | None) -> str:
    if lo is None and hi is None:
        return "undated"
    if lo == hi:
        return str(lo)
    if lo is None:
        return f"before {hi + 1}" if hi is not None else ""
    if hi is None:
        return f"after {lo - 1}"
    return f"{lo}–{hi}"


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    response = request.app.state.templates.TemplateResponse(request, name, context, status_code=status)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def map_view(points: list[dict[str, Any]], bbox: str, width: int = 280) -> dict[str, Any]:
    """An offline map of the region: degree grid, towns, the page's records, the asked box."""
    import math

    w, s, e, n = MAP_EXTENT
    kx = width / (e - w)
    height = round((n - s) * kx / math.cos(math.radians((n + s) / 2)))
    ky = height / (n - s)

    def xy(lon: float, lat: float) -> tuple[float, float]:
        return round((lon - w) * kx, 1), round((n - lat) * ky, 1)

    def inside(lon: float, lat: float) -> bool:
        return w <= lon <= e and s <= lat <= n

    view: dict[str, Any] = {
        "width": width, "height": height, "extent": ",".join(map(str, MAP_EXTENT)),
        "lons": [(lon, xy(lon, n)[0]) for lon in range(math.ceil(w), math.floor(e) + 1)],
        "lats": [(lat, xy(w, lat)[1]) for lat in range(math.ceil(s), math.floor(n) + 1)],
        "places": [(name, *xy(lon, lat)) for name, lon, lat in PLACES if inside(lon, lat)],
        "points": [(p["id"], p["title"], *xy(p["lon"], p["lat"])) for p in points if inside(p["lon"], p["lat"])],
        "box": None,
    }
    try:
        bw, bs, be, bn = (float(v) for v in bbox.split(","))
        (x0, y0), (x1, y1) = xy(max(bw, w), min(bn, n)), xy(min(be, e), max(bs, s))
        if x1 > x0 and y1 > y0:
            view["box"] = (x0, y0, round(x1 - x0, 1), round(y1 - y0, 1))
    except ValueError:
        pass
    return view


def _page_links(form: dict[str, str], total: int, page: int, size: int) -> list[dict[str, Any]]:
    """Numbered pages around this one, within the offset bound (deeper: the next link's cursor)."""
    pages = max(1, min(-(-total // size), MAX_OFFSET // size + 1))
    keep = {k: v for k, v in form.items() if v}
    wanted = sorted({1, pages, *range(max(1, page - 2), min(pages, page + 2) + 1)})
    out, last = [], 0
    for p in wanted:
        if p - last > 1:
            out.append({"gap": True})
        out.append({"page": p, "href": "?" + urlencode(keep | {"page": p}), "current": p == page})
        last = p
    return out


def _facet_links(form: dict[str, str], facets) -> dict[str, Any]:
    """Each facet value with its count (words when estimated) and the search narrowed to it."""
    keep = {k: v for k, v in form.items() if v}

    def entry(label: str, n: int, **narrow: Any) -> dict[str, Any]:
        href = None
        if narrow:
            href = "?" + urlencode({k: v for k, v in (keep | narrow).items() if v not in (None, "")})
        return {"label": label, "count": f"{n:,}" if facets.exact else f"~{approx(n)}", "href": href}

    decades = [entry(f"{d['decade']}s", d["count"], year_from=d["decade"], year_to=d["decade"] + 9)
               if d["decade"] is not None else entry("undated", d["count"]) for d in facets.decades]
    return {"exact": facets.exact,
            "decades": decades,
            "collections": [entry(c["name"], c["count"], collection=c["name"]) for c in facets.collections],
            "colorized": [entry(label, facets.colorized.get(key, 0), colorized=key)
                          for key, label in (("yes", "colorized"), ("no", "not yet"))]}


@router.get("/", response_class=HTMLResponse)
def search_page(request: Request, session: DB) -> HTMLResponse:
    params = request.query_params
    form = {k: (params.get(k) or "").strip() for k in FORM_FIELDS}
    # as the list's options spell it (NFC, from the catalogue): a name sent decomposed keeps its
    # option selected, else the browser shows the first and the next search drops the filter
    form["collection"] = collection_name(form["collection"])
    settings = settings_of(request)
    ctx: dict[str, Any] = {"form": form, "collections": list_collections(session), "sources": list_sources(session),
                           "error": None, "items": [], "total": 0, "total_label": "0", "facets": None,
                           "pages": [], "prev": None, "next": None}
    try:
        one_of_each(params, only=(*FORM_FIELDS, "page", "after", "before"))  # others: tracking, left alone
        query = query_from_form(params, PAGE_SIZE, settings.page_size_max)
        if params.get("after"):
            query.after, query.offset = decode_cursor(params["after"]), 0
        elif params.get("before"):
            query.before, query.offset = decode_cursor(params["before"]), 0
        page = search_records(session, query, max_limit=settings.page_size_max, with_facets=True,
                              exact_max=settings.count_exact_max,
                              sample_rows=settings.count_sample_rows)
    except QueryError as exc:
        ctx["error"] = str(exc)
        ctx["map"] = map_view([], form["bbox"])
        return render(request, "search.html", ctx, status=422)
    base = base_url(request)
    keep = {k: v for k, v in form.items() if v}
    cursor_mode = query.after is not None or query.before is not None
    number = page.offset // PAGE_SIZE + 1
    ctx.update(items=[record_out(r, base) for r in page.items], total=page.total, total_label=page.total_label,
               total_exact=page.total_exact, page=number, cursor_mode=cursor_mode,
               pages=[] if cursor_mode else _page_links(form, page.total, number, PAGE_SIZE),
               first=page.offset + 1, last=page.offset + len(page.items),
               facets=_facet_links(form, page.facets),
               next="?" + urlencode(keep | {"after": page.next_cursor}) if page.next_cursor else None,
               prev="?" + urlencode(keep | {"before": page.prev_cursor}) if page.prev_cursor else None)
    ctx["map"] = map_view([{"id": r["id"], "lat": r["lat"], "lon": r["lon"], "title": r["title"] or r["source_key"]}
                           for r in ctx["items"] if r["lat"] is not None], form["bbox"])
    return render(request, "search.html", ctx)


def _versions(out: dict[str, Any], prov: dict[str, Any]) -> tuple[dict | None, list[dict[str, Any]]]:
    """The original shown first, and each colorized version with what it came from."""
    originals = [a for a in out["assets"] if a["role"] == "original"]
    by_result = {c["result_sha256"]: c for c in prov["colorizations"] if c["result_sha256"]}
    versions = []
    for a in out["assets"]:
        if a["role"] != "colorized":
            continue
        made = by_result.get(a["sha256"])
        before = next((o for o in originals if made and o["sha256"] == made["source_sha256"]),
                      originals[0] if originals else None)
        versions.append({"asset": a, "before": before, "colorization": made})
    return (originals[0] if originals else None), versions


@router.get("/records/{record_id}", response_class=HTMLResponse)
def record_page(request: Request, session: DB, record_id: RecordId) -> HTMLResponse:
    rec = load_record(session, record_id)
    out = record_out(rec, base_url(request))
    prov = record_provenance(session, rec)
    original, versions = _versions(out, prov)
    others = [a for a in out["assets"] if a["role"] not in ("original", "colorized", "thumbnail")]
    return render(request, "record.html", {"r": out, "prov": prov, "original": original, "versions": versions,
                                           "others": others, "licence_uri": is_licence_uri(rec.licence)})
