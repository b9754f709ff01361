"""What the routes share: sessions, search parameters, the write token, URLs."""
from __future__ import annotations

import hmac
from collections.abc import Iterator, Mapping
from typing import Any

from fastapi import HTTPException, Request
from sqlalchemy import text
from sqlalchemy.orm import Session

from catalog.queries import MAX_OFFSET as SEARCH_MAX_OFFSET
from catalog.queries import QueryError, RecordQuery, parse_bbox, record_dict
from catalog.settings import Settings
from catalog.web.thumbs import THUMB_SIZES

MAX_TEXT = 500  # characters of a text search
MAX_OFFSET = 10_000_000
YEAR_MIN, YEAR_MAX = 0, 9999
STATUSES = ("active", "withdrawn", "any")


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def read_session(request: Request) -> Iterator[Session]:
    """A read-only transaction: nothing a reading route does can change the catalogue."""
    with request.app.state.sessions() as session:
        session.execute(text("SET TRANSACTION READ ONLY"))
        try:
            yield session
        finally:
            session.rollback()


def known_query(request: Request) -> None:
    """A JSON API route refuses query parameters it does not take: ``?years=1920-1940`` would
    otherwise answer the whole catalogue as if it were the search asked for. Parameters that
    begin with ``_`` (a client's cache buster) are let through; each other one is given once."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    taken: set[str] = set()
    todo = [dependant]
    while todo:  # the route's own query parameters and those of its dependencies
        d = todo.pop()
        taken.update(p.alias for p in d.query_params)
        todo += d.dependencies
    one_of_each(request.query_params)
    unknown = [k for k in dict.fromkeys(request.query_params.keys()) if k not in taken and not k.startswith("_")]
    if unknown:
        import difflib

        name = unknown[0]
        near = difflib.get_close_matches(name, sorted(taken), n=2, cutoff=0.5)
        hint = f" (did you mean {' or '.join(map(repr, near))}?)" if near else ""
        takes = ", ".join(sorted(taken)) or "none"
        raise QueryError(f"unknown query parameter {name!r}{hint}; this endpoint takes: {takes}")


def one_of_each(params, only: tuple[str, ...] | None = None) -> None:
    """A query parameter given twice (``?collection=a&collection=b``) is refused rather than one of
    them taken silently, and so are both cursors at once. Parameters beginning with ``_`` (cache
    busters) are the client's own; with ``only``, just those parameters are looked at."""
    keys = [k for k, _ in params.multi_items() if not k.startswith("_") and (only is None or k in only)]
    twice = next((k for k in dict.fromkeys(keys) if keys.count(k) > 1), None)
    if twice is not None:
        raise QueryError(f"{twice}: given {keys.count(twice)} times; give it once")
    if params.get("after") and params.get("before"):
        raise QueryError("after and before: give one cursor (after: the page after it; before: the page before it)")


def require_token(request: Request) -> None:
    """Writing routes: only with ARHIVA_WEB_TOKEN configured and sent as a Bearer token."""
    token = settings_of(request).web_token
    if not token:
        raise HTTPException(403, "writing is disabled: the server has no ARHIVA_WEB_TOKEN")
    # Header values arrive as Latin-1 text (HTTP's bytes); the token is compared as the UTF-8
    # bytes a client sends for it, in constant time, so a non-ASCII token matches too.
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    given_bytes = given.strip().encode("latin-1", "replace")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given_bytes, token.encode("utf-8")):
        raise HTTPException(401, "a valid 'Authorization: Bearer <token>' header is required",
                            headers={"WWW-Authenticate": "Bearer"})


def reject_nul(**values: Any) -> None:
    """PostgreSQL text cannot hold NUL: say so instead of failing in the database."""
    for name, value in values.items():
        if isinstance(value, str) and "\x00" in value:
            raise QueryError(f"{name}: must not contain a NUL character")


def clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _int(name: str, value: str | None, lo: int, hi: int) -> int | None:
    value = clean(value)
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        raise QueryError(f"{name}: expected a whole number, got {value!r}") from None
    if not lo <= n <= hi:
        raise QueryError(f"{name}: must be between {lo} and {hi}")
    return n


def build_query(*, collection: str | None = None, source: str | None = None, year_from: int | None = None,
                year_to: int | None = None, include_undated: bool = False, bbox: str | None = None,
                q: str | None = None, colorized: bool | None = None, status: str = "active",
                limit: int = 24, offset: int = 0, max_limit: int = 1000) -> RecordQuery:
    """A checked RecordQuery; raises QueryError naming the bad parameter."""
    collection, source, bbox, q = clean(collection), clean(source), clean(bbox), clean(q)
    reject_nul(collection=collection, source=source, bbox=bbox, q=q)
    if q is not None and len(q) > MAX_TEXT:
        raise QueryError(f"q: at most {MAX_TEXT} characters")
    if status not in STATUSES:
        raise QueryError(f"status: one of {', '.join(STATUSES)}")
    query = RecordQuery(collection=collection, source=source, year_from=year_from, year_to=year_to,
                        include_undated=include_undated, bbox=parse_bbox(bbox) if bbox else None, text=q,
                        colorized=colorized, status=None if status == "any" else status,
                        limit=max(1, min(limit, max_limit)), offset=offset)
    query.check(max_limit)
    return query


def query_from_form(params: Mapping[str, str], page_size: int, max_limit: int) -> RecordQuery:
    """The search page's form (strings, empty fields allowed) → RecordQuery."""
    colorized = {"yes": True, "no": False, "": None, None: None}.get(clean(params.get("colorized")))
    if colorized is None and clean(params.get("colorized")) not in (None, "any"):
        raise QueryError("colorized: one of any, yes, no")
    # the last page the search's offset reaches (SEARCH_MAX_OFFSET); deeper: the next link's cursor
    last = SEARCH_MAX_OFFSET // page_size + 1
    try:
        page = _int("page", params.get("page"), 1, last) or 1
    except QueryError as exc:
        raise QueryError(f"{exc} (deeper results: follow the next → link from page {last})") from None
    return build_query(
        collection=params.get("collection"), source=params.get("source"),
        year_from=_int("year_from", params.get("year_from"), YEAR_MIN, YEAR_MAX),
        year_to=_int("year_to", params.get("year_to"), YEAR_MIN, YEAR_MAX),
        include_undated=params.get("include_undated") in ("1", "on", "true", "yes"),
        bbox=params.get("bbox"), q=params.get("q"), colorized=colorized,
        status=clean(params.get("status")) or "active",
        limit=page_size, offset=(page - 1) * page_size, max_limit=max_limit)


def base_url(request: Request) -> str:
    """The root of absolute links: ARHIVA_PUBLIC_URL when set, else the URL the request came to
    (its Host header: set ARHIVA_PUBLIC_URL on a server that others reach)."""
    public = settings_of(request).public_url
    if public:
        return public.rstrip("/") + "/"
    return str(request.base_url)


def has_image(rec) -> bool:
    """Whether a record has an original image (and so a IIIF manifest)."""
    return any(ra.role == "original" and ra.asset.media_type.startswith("image/") for ra in rec.assets)


def asset_urls(base: str, sha256: str) -> dict[str, str]:
    return {"url": f"{base}assets/{sha256}", "thumbnail_url": f"{base}assets/{sha256}/thumb/{THUMB_SIZES[1]}"}


def record_out(rec, base: str) -> dict[str, Any]:
    """record_dict plus file URLs and links (the API's RecordOut)."""
    out = record_dict(rec)
    for a in out["assets"]:
        a.update(asset_urls(base, a["sha256"]))
    out["colorized"] = any(a["role"] == "colorized" for a in out["assets"])
    out["links"] = {"self": f"{base}api/records/{rec.id}", "page": f"{base}records/{rec.id}"}
    if has_image(rec):  # a record without an image has no manifest to advertise
        out["links"]["manifest"] = f"{base}iiif/records/{rec.id}/manifest"
    return out
