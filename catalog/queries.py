"""Find records: by collection, source, years, place, words, colorization; paginated.

Year ranges overlap: a record dated [lo, hi] matches the asked [a, b] when
lo <= b and hi >= a. A record with only one end (e.g. "before 1940") is open
on the other side. Undated records (no year at all) never match a year
filter unless ``include_undated`` is set.
"""
from __future__ import annotations

import base64
import binascii
import operator
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, Integer, Select, and_, cast, exists, false, func, literal_column, not_, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, selectinload

from catalog.counts import (
    COUNT_EXACT_MAX,
    COUNT_MODES,
    SAMPLE_ROWS,
    Count,
    Facets,
    count_and_facets,
    quick_settings,
)
from catalog.fields import MAPPED
from catalog.models import Asset, Collection, CollectionMember, Record, RecordAsset, Source
from catalog.names import collection_name, source_slug
from catalog.search_text import TextQueryError, check_words, parse_text, text_match
from catalog.search_tokens import (
    MAX_COMBINED_TOKENS,
    WORD_PLACE_KEYS,
    cell_tokens,
    decade_tokens,
    text_word_place_keys,
    token_query,
    year_tokens,
)
from catalog.seek import BITMAP_ONLY, WINDOWS, Seen, page_ids
from catalog.sizes import group_sizes, sizes_once

# what a record shown or exported comes with: its source, its asset links and their files (joining
# the source and the files to the records instead was no faster at 1M)
RECORD_LOADS = (selectinload(Record.source), selectinload(Record.assets).selectinload(RecordAsset.asset))
MAX_OFFSET = 10_000  # deeper pages: the ``next`` cursor (keyset pagination on id)
BOTH_INCLUSIVE = literal_column("'[]'")
YEAR_RANGE = func.int4range(Record.year_lo, Record.year_hi, BOTH_INCLUSIVE)
POINT = func.point(Record.lon, Record.lat)
PROBED_SAMPLE_SHARE = 4  # a colorization filter samples a quarter of SAMPLE_ROWS


def _in_box(w: float, s: float, e: float, n: float):
    return POINT.op("<@")(func.box(func.point(w, s), func.point(e, n)))


class QueryError(ValueError):
    """A filter value is wrong; the message names the filter."""


class UnknownName(QueryError):
    """A collection or source that the catalogue does not hold (``kind``: which)."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


@dataclass
class RecordQuery:
    collection: str | None = None
    source: str | None = None
    year_from: int | None = None
    year_to: int | None = None
    include_undated: bool = False
    bbox: tuple[float, float, float, float] | None = None  # west, south, east, north
    text: str | None = None
    colorized: bool | None = None  # True: has a colorized asset; False: lacks one
    status: str | None = "active"  # None: any status
    ids: list[int] | None = None
    limit: int = 50
    offset: int = 0
    after: int | None = None  # the page after this record id (see encode_cursor)
    before: int | None = None  # the page before this record id

    def __post_init__(self) -> None:
        # every search, export and web page names its collection through here: as stored (NFC)
        if self.collection:
            self.collection = collection_name(self.collection)
        if self.source:
            self.source = source_slug(self.source)

    def check(self, max_limit: int = 1000) -> None:
        if self.year_from is not None and self.year_to is not None and self.year_from > self.year_to:
            raise QueryError(f"years: {self.year_from} is after {self.year_to}")
        if self.bbox is not None:
            w, s, e, n = self.bbox
            if not (-180 <= w <= 180 and -180 <= e <= 180):
                raise QueryError("bbox: longitudes must be within ±180")
            if not (-90 <= s <= 90 and -90 <= n <= 90) or s > n:
                raise QueryError("bbox: latitudes must be within ±90 and south <= north")
        if self.limit < 1 or self.limit > max_limit:
            raise QueryError(f"limit must be between 1 and {max_limit}")
        if self.offset < 0:
            raise QueryError("offset must not be negative")
        bad = next((i for i in self.ids or () if not 1 <= i < 2**63), None)
        if bad is not None:
            raise QueryError(f"id: {bad} is not a record id (1 to {2**63 - 1:,})")
        if self.text:
            with _text_errors():
                parse_text(self.text)
        if self.offset > MAX_OFFSET:
            raise QueryError(f"offset: at most {MAX_OFFSET:,}; deeper pages follow a cursor instead "
                             "(after=… in the 'next' link; --after in the CLI)")


@dataclass
class Page:
    items: list[Record]
    total: int
    limit: int
    offset: int
    extra: dict[str, Any] = field(default_factory=dict)
    total_exact: bool = True  # False: total is an estimate (see catalog.counts)
    next_after: int | None = None  # cursor of the next page (a record id); None on the last page
    prev_before: int | None = None  # cursor of the previous page; None on the first
    facets: Facets | None = None

    @property
    def total_label(self) -> str:
        return Count(self.total, self.total_exact).label()

    @property
    def next_cursor(self) -> str | None:
        return None if self.next_after is None else encode_cursor(self.next_after)

    @property
    def prev_cursor(self) -> str | None:
        return None if self.prev_before is None else encode_cursor(self.prev_before)


def encode_cursor(record_id: int) -> str:
    """An opaque cursor for the page after ``record_id`` (results are in id order)."""
    return base64.urlsafe_b64encode(f"id:{record_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        record_id = int(value)
        if kind != "id" or not 0 <= record_id < 2**63:
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise QueryError(f"cursor: {cursor[:40]!r} is not a cursor this catalogue made (take it from a "
                         "page's 'next' or 'previous' link: parameter 'after' or 'before')") from None
    return record_id


def parse_years(text: str) -> tuple[int | None, int | None]:
    """'1920-1940', '1935', '1920-', '-1940' → (from, to)."""
    m = re.fullmatch(r"\s*(\d{1,4})?\s*[-–]\s*(\d{1,4})?\s*|\s*(\d{1,4})\s*", text or "")
    if not m or (m.group(3) is None and m.group(1) is None and m.group(2) is None):
        raise QueryError(f"years: expected FROM-TO such as 1920-1940, got {text!r}")
    if m.group(3):
        y = int(m.group(3))
        return y, y
    lo = int(m.group(1)) if m.group(1) else None
    hi = int(m.group(2)) if m.group(2) else None
    if lo is not None and hi is not None and lo > hi:
        raise QueryError(f"years: {lo} is after {hi}")
    return lo, hi


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """'W,S,E,N' (longitude, latitude order) → tuple."""
    try:
        parts = [float(p) for p in text.split(",")]
    except (AttributeError, ValueError):
        parts = []
    if len(parts) != 4:
        raise QueryError(f"bbox: expected W,S,E,N (four numbers, longitude first), got {text!r}")
    return parts[0], parts[1], parts[2], parts[3]


def text_condition(query: str, unindexed: bool = False):
    """What the text asks (``catalog.search_text``: every word in any inflection, with or without
    diacritics, "phrases", OR, -exclusions), or None when it asks nothing; raises
    QueryError. ``unindexed``: tested on the rows only, where another index already brings few
    records (a common word's posting list is millions long: the planner would intersect it with
    those few)."""
    with _text_errors():
        return text_match(Record.search, parse_text(query), unindexed)


def check_inputs(session: Session, q: RecordQuery) -> None:
    """The words, and that the collection and source named exist: an unknown one is a typo far
    more often than a wish for nothing, so it is an error naming the ones there are (up to ten)."""
    if q.text:
        with _text_errors():
            check_words(session, q.text)
    for given, column, kind in ((q.collection, Collection.name, "collection"), (q.source, Source.slug, "source")):
        if given and session.scalar(select(column).where(column == given)) is None:
            known = session.scalars(select(column).order_by(column).limit(11)).all()
            there = ", ".join(known[:10]) + (", …" if len(known) > 10 else "") if known else "none yet"
            raise UnknownName(f"no {kind} named {given!r} (there are: {there})", kind)


@contextmanager
def _text_errors() -> Iterator[None]:
    """The search text's errors as the filters' (QueryError: the CLI's exit 2, the API's 422)."""
    try:
        yield
    except TextQueryError as exc:
        raise QueryError(str(exc)) from None


def _narrowed(q: RecordQuery) -> bool:
    """Whether the search asks more than its collection (and status)."""
    return bool(q.text or q.source or q.ids or q.bbox or q.colorized is not None
                or q.year_from is not None or q.year_to is not None)


def _collection_id(session: Session, q: RecordQuery) -> int | None:
    if not q.collection:
        return None
    return session.scalar(select(Collection.id).where(Collection.name == q.collection))


def _filtered(q: RecordQuery, session: Session | None = None) -> Select:
    """The matching records; with a session, the collection and source are looked up first, so
    the planner sees their ids (and their sizes in its statistics) instead of a subquery."""
    return _filters(q, session)[0]


def _filters(q: RecordQuery, session: Session | None = None) -> tuple[Select, Select]:
    """The matching records twice: with the decade and grid-cell token conditions that let the
    search index find them, and without (for walking records in id order and for samples, where
    those tokens would only be tested row by row: the exact year and box conditions imply them,
    and a tsvector test costs ~1 µs a row). Both select the same records."""
    stmt = select(Record)
    aids = []
    in_collection = None  # the collection's token, for the search index
    if q.status:
        stmt = stmt.where(Record.status == q.status)
    if q.ids:
        stmt = stmt.where(Record.id.in_(q.ids))
    if q.collection:
        cid = select(Collection.id).where(Collection.name == q.collection)
        cid = cid.scalar_subquery() if session is None else _collection_id(session, q)
        if cid is None:
            stmt = stmt.where(false())
        elif session is not None and _narrowed(q):
            # with more conditions: the collection's token in the search index beside the years and
            # words (migration 0017), and the record's own list of its collections on its row
            stmt = stmt.where(Record.collections.contains(cast([cid], ARRAY(Integer))))
            in_collection = f"~k{cid}"
        else:  # the collection alone: its members in id order, from the membership index
            stmt = stmt.where(exists().where(CollectionMember.record_id == Record.id,
                                             CollectionMember.collection_id == cid))
    if q.source:
        sid = select(Source.id).where(Source.slug == q.source)
        sid = sid.scalar_subquery() if session is None else session.scalar(sid)
        stmt = stmt.where(false()) if sid is None else stmt.where(Record.source_id == sid)
    years_asked = q.year_from is not None or q.year_to is not None
    boxes = []
    cells: list[str] | None = None
    if q.bbox is not None:
        w, s, e, n = q.bbox
        boxes = [(w, s, e, n)] if w <= e else [(w, s, 180.0, n), (-180.0, s, e, n)]  # antimeridian
        per_box = [cell_tokens(*b) for b in boxes]
        cells = None if any(c is None for c in per_box) else [t for c in per_box for t in c]
    # Undated records carry no decade token: with include_undated, only the exact test applies.
    decades = decade_tokens(q.year_from, q.year_to) if years_asked and not q.include_undated else []
    word_place = (text_word_place_keys(session, q.text, cells, decades)
                  if session is not None and q.text and decades and cells is not None
                  and len(cells) * (len(decades) + 2) <= MAX_COMBINED_TOKENS else None)
    if word_place is not None:
        # word × place × decade: only the records with all three (the words then need no lookup
        # in the search index, which would walk their whole posting lists; the collection, if
        # any, is tested on those few rows)
        aids.append(WORD_PLACE_KEYS.op("&&")(cast(word_place, ARRAY(BigInteger))))
    else:
        if in_collection is not None:
            aids.append(token_query([in_collection]))
        if decades and cells is not None and len(cells) * len(decades) <= MAX_COMBINED_TOKENS:
            # place × decade tokens: one short posting list per (cell, decade)
            aids.append(token_query([f"{c}_d{d[2:]}" for c in cells for d in decades]))
        else:
            if decades:
                aids.append(token_query(year_tokens(q.year_from, q.year_to) or decades))
            if cells is not None:
                aids.append(token_query(cells))
    if years_asked:
        # int4range with a NULL bound is open on that side: "before 1900" is (,1899].
        asked = func.int4range(q.year_from, q.year_to, BOTH_INCLUSIVE)
        dated = or_(Record.year_lo.is_not(None), Record.year_hi.is_not(None))
        cond = and_(dated, YEAR_RANGE.op("&&")(asked))
        if q.include_undated:
            cond = or_(cond, and_(Record.year_lo.is_(None), Record.year_hi.is_(None)))
        stmt = stmt.where(cond)
    if boxes:
        stmt = stmt.where(or_(*(_in_box(*b) for b in boxes)))
    if q.colorized is not None:
        has = exists().where(RecordAsset.record_id == Record.id, RecordAsset.role == "colorized")
        stmt = stmt.where(has if q.colorized else not_(has))
    plain = stmt
    if q.text and (cond := text_condition(q.text)) is not None:
        plain = stmt.where(cond)
        stmt = stmt.where(cond if word_place is None else text_condition(q.text, unindexed=True))
    if word_place is not None:  # its index path never walks the primary key (catalog.seek)
        stmt = stmt.execution_options(**{BITMAP_ONLY: True})
    return (stmt.where(*aids) if aids else stmt), plain


def search_records(session: Session, q: RecordQuery, *, with_total: bool = True, max_limit: int = 1000,
                   count: str = "auto", with_facets: bool = False, exact_max: int = COUNT_EXACT_MAX,
                   sample_rows: int = SAMPLE_ROWS) -> Page:
    """One page of matches in id order (after the cursor ``q.after``, then ``q.offset``), how many
    match in all (exact up to ``exact_max``, an estimate beyond unless ``count`` is 'exact'; see
    catalog.counts) and, with ``with_facets``, the facets."""
    q.check(max_limit)
    if count not in COUNT_MODES:
        raise QueryError(f"count: one of {', '.join(COUNT_MODES)}")
    if q.colorized is not None:
        # the sample then pays one index probe per sampled record: a quarter of the rows still
        # finds hundreds of matches wherever an estimate is made (fewer: counted exactly); within
        # a collection too, since the search then samples the records (the collection on the row)
        sample_rows = max(1, sample_rows // PROBED_SAMPLE_SHARE)
    check_inputs(session, q)
    with quick_settings(session), sizes_once(session):
        return _search(session, q, with_total=with_total, count=count, with_facets=with_facets,
                       exact_max=exact_max, sample_rows=sample_rows)


def _search(session: Session, q: RecordQuery, *, with_total: bool, count: str, with_facets: bool,
            exact_max: int, sample_rows: int) -> Page:
    stmt, plain = _filters(q, session)
    backwards = q.before is not None and q.after is None
    seen = Seen()
    # within a collection and nothing else, its first members are the page, from its membership
    # index at once, and the count is sampled from the collection's side (catalog.counts); with
    # more conditions the collection is one more token of the search (migration 0017), which runs
    # as any other: windows in id order, then its index (catalog.seek). Walking the collection's
    # members instead, each probed by its key, was slower at 10 million records (p50 / p95, taking
    # turns: collection + years 58.6 / 152.2 ms against 39.8 / 125.8)
    members_of = None if _narrowed(q) else _collection_id(session, q)
    ids = page_ids(session, stmt, after=q.after, before=q.before, offset=q.offset, limit=q.limit + 1, seen=seen,
                   walked=plain, windows=WINDOWS if members_of is None else (),
                   count_up_to=exact_max if (with_total or with_facets) and members_of is None else None,
                   facets=with_facets, sample_first=count != "exact")
    loaded = {r.id: r for r in session.execute(select(Record).where(Record.id.in_(ids)).options(*RECORD_LOADS)).scalars()}
    rows = [loaded[i] for i in ids if i in loaded]
    more = len(rows) > q.limit
    items = rows[:q.limit]
    page = Page(items=items, total=-1, limit=q.limit, offset=q.offset)
    if backwards:
        items.reverse()
        page.next_after = items[-1].id if items else None
        page.prev_before = items[0].id if more else None
    else:
        page.next_after = items[-1].id if more else None
        if items and (q.after is not None or q.offset > 0):
            page.prev_before = items[0].id
    if with_total or with_facets:
        n, page.facets = count_and_facets(session, stmt, mode=count, with_facets=with_facets, exact_max=exact_max,
                                          sample_rows=sample_rows, density=seen.density, known=seen.total,
                                          beyond=seen.beyond, past_bound=seen.past_bound, known_tally=seen.tally,
                                          members_of=members_of, sampled_filter=plain, known_ids=seen.matched,
                                          in_sample=seen.sampled)
        page.total, page.total_exact = n.value, n.exact
    return page


def iter_records(session: Session, q: RecordQuery, chunk: int = 500) -> Iterator[Record]:
    """Every matching record, in id order, a chunk at a time (exports)."""
    q.check(max_limit=10**9)
    check_inputs(session, q)
    last = 0
    while True:
        rows = list(session.execute(
            _filtered(q, session).where(Record.id > last)
            .options(*RECORD_LOADS)
            .order_by(Record.id).limit(chunk)).scalars())
        if not rows:
            return
        yield from rows
        last = rows[-1].id
        session.expunge_all()


_mapped = operator.attrgetter(*MAPPED)


def record_dict(rec: Record) -> dict[str, Any]:
    """The public JSON shape of a record (CLI, exports, web API)."""
    return {
        "id": rec.id, "source": rec.source.slug, "source_key": rec.source_key, **dict(zip(MAPPED, _mapped(rec))),
        "status": rec.status, "extra": rec.extra,
        "first_seen_at": rec.first_seen_at.isoformat() if rec.first_seen_at else None,
        "last_seen_at": rec.last_seen_at.isoformat() if rec.last_seen_at else None,
        "assets": [asset_dict(ra) for ra in rec.assets],
    }


def asset_dict(ra: RecordAsset) -> dict[str, Any]:
    a: Asset = ra.asset
    return {"sha256": ra.asset_sha256, "role": ra.role, "media_type": a.media_type if a else None,
            "width": a.width if a else None, "height": a.height if a else None,
            "is_colour": a.is_colour if a else None, "source_url": ra.source_url, "crop_box": ra.crop_box}


def list_collections(session: Session) -> list[dict[str, Any]]:
    """Every collection and how many records it holds: exact up to catalog.sizes.COUNT_MAX, an
    estimate beyond (``records_exact`` false, ``records_label`` "about 6 million")."""
    rows = session.execute(select(Collection).order_by(Collection.name)).scalars().all()
    sizes = group_sizes(session, CollectionMember.__table__.c.collection_id, [c.id for c in rows])
    return [{"name": c.name, "description": c.description, **_size_out(sizes[c.id])} for c in rows]


def list_sources(session: Session) -> list[dict[str, Any]]:
    """Every source and how many records it holds (as ``list_collections`` counts them)."""
    rows = session.execute(select(Source).order_by(Source.slug)).scalars().all()
    sizes = group_sizes(session, Record.__table__.c.source_id, [s.id for s in rows])
    return [{"slug": s.slug, "kind": s.kind, "base_url": s.base_url, **_size_out(sizes[s.id])} for s in rows]


def _size_out(size: tuple[int, bool]) -> dict[str, Any]:
    n, exact = size
    return {"records": n, "records_exact": exact, "records_label": Count(n, exact).label()}
