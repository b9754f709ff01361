"""Keyset (seek) pages in id order that stay quick whether a search is broad or narrow.

A page of a broad search is found fastest by walking the records in id order and keeping the
matches; a narrow one by its index (the search vector's GIN index), then sorting the few
matches. The planner cannot always tell which it is (years, words and places are correlated,
and it multiplies their selectivities), so a page is first looked for in the next few thousand
records in id order (first a small window, then a larger one); only when fewer than a page
match there does the search run through its index, from the end of the windows on: the search
is then selective (fewer than a page per window), so its matches are few. A small window with
no match at all, or too few to expect a page from the larger one, hands over to the index at
once (a narrow search pays little for the probe).
Either way at most about 18,000 rows are read before the index path, whatever the size of the
catalogue; when the windows nearly filled the page, the few matches still wanted are looked for
in one more window sized by the density seen (at most ``WALK_ON_MAX`` rows expected; should it
still leave the page short, the index path gives the rest as after the windows), since the
index path reads every match of the search; unless even the most matches that density can mean
in the whole table cost its index less than that walk (``INDEX_MATCH_COST``), as in a catalogue
of a million or so (at ten million, a density that leaves a page unfilled after the windows
always means too many matches for that). Matches are counted on the way to the page (up to
``count_up_to``) unless the density the windows saw expects more than that many even at the low
end of what the matches seen can mean (a few matches in a window say little); when there prove
to be more, how many in all comes in the same statement (the index path sorts every match before
its first row anyway) -- unless the sample with its own search index (catalog.sampled), asked
first when the windows' density says there may be more than ``count_up_to``, says surely more:
the count is then its estimate, and the page is walked for in id order at the density it says
(up to ``WALK_FAR`` records), the index path giving the rest only if that leaves it short. A
search marked ``BITMAP_ONLY`` takes its index path through its index's bitmap alone, never a
walk of the primary key.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Column, Select, func, literal, select, true, union_all
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session
from sqlalchemy.sql import visitors
from sqlalchemy.sql.util import ClauseAdapter

from catalog.db import local_settings
from catalog.models import Record
from catalog.sizes import table_rows

WINDOWS = (2_000, 16_000)
WALK_ON_MAX = 32_000  # rows walked on after the windows to fill a page they nearly filled
WALK_FAR = 96_000  # ... to fill the page of a search its sample says is past its count's bound
PAST_BOUND = 3  # counting on the way goes on to this many times its bound (see page_ids)
# a match read through the search index costs about this many records walked in id order (1M
# records: 2.4 µs a match of two words, counted through their index, against 0.75 µs a record
# walked and tested; rounded up, so that a search walks on when in doubt)
INDEX_MATCH_COST = 4
# execution option of a search whose index path must use its index's bitmap (catalog.queries)
BITMAP_ONLY = "arhiva_bitmap_only"


@dataclass
class Seen:
    """What the windows saw: how many records they held and how many of those matched (the
    density of matches, which tells a broad search from a narrow one better than the planner)."""

    rows: int = 0
    matches: int = 0
    total: int | None = None  # every match, when a search from the first record counted them on the way
    beyond: int | None = None  # counting on the way found more matches than this (the bound)
    past_bound: int | None = None  # then, every match all the same (the index path read them all)
    tally: Any = None  # with facets, the facet groups of every match the index path counted (catalog.counts)
    matched: list[int] | None = None  # when the windows walked the whole table: every match they saw
    sampled: Any = None  # the search's matches in the sample, when it was asked (catalog.sampled)

    @property
    def density(self) -> float | None:
        return self.matches / self.rows if self.rows else None


def page_ids(session: Session, filtered: Select, *, after: int | None, before: int | None, offset: int,
             limit: int, windows: tuple[int, ...] = WINDOWS, seen: Seen | None = None,
             count_up_to: int | None = None, walked: Select | None = None,
             facets: bool = False, sample_first: bool = True) -> list[int]:
    """Up to ``limit`` ids of matches: after ``after`` ascending, or before ``before`` descending.

    The records are walked in id order a window at a time (``windows``: their sizes); a window
    without a single match means the search is narrow, and its index takes over at once.
    ``seen`` is told what the windows saw; on a first page, a narrow search's index path also
    counts its matches up to ``count_up_to`` (one bitmap for the page and the count), and
    ``seen.total`` holds the count when it stayed within; with ``facets``, ``seen.tally`` holds the
    facet groups of the matches counted. ``walked``: the same search without the conditions that
    only help its index (tested on the records walked; default ``filtered``). ``sample_first``:
    a search the windows say may match more than ``count_up_to`` asks the sample's index first
    (catalog.sampled), whose matches ``seen.sampled`` then holds; when they say surely more
    (``seen.beyond``: the bound), the page is walked on for instead of read through the index."""
    seen = seen if seen is not None else Seen()
    from_start = after is None and before is None
    ids_stmt = filtered.with_only_columns(Record.id)
    backwards = before is not None and after is None
    edge = before if backwards else after
    if offset:
        return _planned(session, ids_stmt, edge, backwards, offset, limit)
    found: list[int] = []
    walked = filtered if walked is None else walked
    where = walked.whereclause if walked.whereclause is not None else true()
    columns = _tested_columns(where)

    every: list[int] = []

    def walk(size: int) -> tuple[bool, list[int]]:
        """Walk the next ``size`` records past ``edge``: whether that ended the walk (a full page,
        or the end of the table), and the window's matches."""
        nonlocal edge
        n, end, hits = _walk(session, where, columns, edge, backwards, size)
        seen.rows, seen.matches = seen.rows + n, seen.matches + len(hits)
        found.extend(hits[:limit - len(found)])
        every.extend(hits)
        if n < size and from_start and count_up_to is not None:  # the whole table walked: every match seen
            if seen.matches <= count_up_to:
                seen.total = seen.matches
            seen.matched = every
        edge = end
        return len(found) >= limit or n < size, hits

    for k, size in enumerate(windows):
        done, hits = walk(size)
        if done:
            return found
        if not hits:  # not one match in a window: a narrow search, for its index
            break
        following = windows[k + 1] if k + 1 < len(windows) else 0
        if len(hits) * following / size < limit - len(found):
            # at this density the next window would not fill the page either: its rows would be
            # read for a few matches, then the index asked anyway
            break
    if (sample_first and from_start and count_up_to is not None and seen.rows
            and not filtered.get_execution_options().get(BITMAP_ONLY, False)
            and _most_expected(session, seen) > count_up_to):
        from catalog.sampled import SAMPLE_SHARE, index_sample, surely_more, uses_search_index

        if uses_search_index(filtered):
            sample = seen.sampled = index_sample(session, filtered, with_facets=facets)
            if surely_more(sample, count_up_to):
                # more matches than counted exactly: the index path would read every one of them (its
                # posting lists, however long, then each match), where the density the sample says
                # fills the page within some tens of thousands of records walked in id order
                seen.beyond = count_up_to
                density = sample.total * SAMPLE_SHARE / max(seen.rows, table_rows(session))
                expected = density * seen.rows
                # unless the windows saw far fewer than that density means (the matches lie
                # together elsewhere in id order, as a harvest's records do): the index then
                far = 0 if seen.matches >= expected - 3 * expected**0.5 else WALK_FAR
                while far < WALK_FAR:
                    window = min(WALK_FAR - far, int(1.5 * (limit - len(found)) / density) + 100)
                    far += window
                    done, _ = walk(window)
                    if seen.matched is not None:  # the whole table walked: every match seen, counted
                        seen.sampled, seen.past_bound = None, seen.matches
                    if done:
                        return found
                rest = _planned(session, ids_stmt, edge, backwards, 0, limit - len(found), by_index=True)
                return (found + rest)[:limit]
    if seen.matches:
        # the matches still wanted lie within the next few thousand records at the density
        # seen: found by walking on, rather than by the index, which reads every match (unless
        # even the most matches the density can mean cost the index less than the walk: in a
        # catalogue of a million, two words that met 2 times in 2,000 records walked 64,000
        # records in 48 ms, where their index read all 3,247 matches and counted them in 8).
        # Should that window still leave the page short, the index gives the rest below, counting
        # on the way as after the windows (every match before the edge is in ``found``): at 10
        # million records the rest once came through the index uncounted, and then a sample and
        # a bounded count went through it again (200-350 ms for a search of 7,421 matches)
        need = (limit - len(found)) * seen.rows / seen.matches
        window = int(2 * need) + 100
        if need <= WALK_ON_MAX and _most_expected(session, seen) * INDEX_MATCH_COST >= window:
            done, _ = walk(window)
            if done:
                return found
    want = limit - len(found)
    # few matches expected (or too few seen to tell): counted on the way to the page; the index
    # path reads every match anyway, so the count costs only the rows sent back, and a count
    # that passes the bound is never made a second time
    counting = from_start and count_up_to is not None and _fewest_expected(session, seen) <= count_up_to
    if counting:
        # how many match in all comes in the same statement: the bitmap path reads and sorts every
        # match before the first row comes, so a count past the bound costs no more than one
        # within (up to PAST_BOUND times the bound: a walk of the primary key, which the planner
        # may choose, stops there); and so do the facets' groups (decades of every match, probes
        # of the picked ones): only the page and the groups come back, never every match
        cap = PAST_BOUND * count_up_to + 1
        stmt = filtered.with_only_columns(Record.id, decade_of(Record).label("decade"),
                                          *([Record.collections] if facets else []))
        if edge is not None:
            stmt = stmt.where(Record.id + 0 > edge)  # ``id + 0``: see _planned
        with _bitmap(session, stmt, True):
            rest, after, seen.tally = _page_and_tally(session, stmt, page=want, cap=cap, found=found,
                                                      with_facets=facets)
        if len(found) + after <= count_up_to:
            seen.total = len(found) + after
        else:
            seen.beyond = count_up_to
            if after < cap:
                seen.past_bound = len(found) + after
    else:
        rest = _planned(session, ids_stmt, edge, backwards, 0, want, by_index=True)
    return (found + rest)[:limit]


def _tested_columns(where: Any) -> list[Any]:
    """The records' id and the columns ``where`` reads: all a window needs to carry (carrying
    every column, the raw payload and the text fields among them, made a window of 16,000
    records at 10 million cost 18-20 ms instead of 11-15)."""
    table = Record.__table__
    used = {el.key: el for el in visitors.iterate(where) if isinstance(el, Column) and el.table is table}
    return [table.c.id, *(c for key, c in used.items() if key != "id")]


def _walk(session: Session, where: Any, columns: list[Any], edge: int | None, backwards: bool,
          size: int) -> tuple[int, Any, list[int]]:
    """One window: the next ``size`` records in id order past ``edge`` (only ``columns``), and in
    one row how many it held, where it ended, and those matching ``where`` in order."""
    scan = select(*columns)
    if edge is not None:
        scan = scan.where(Record.id < edge if backwards else Record.id > edge)
    w = scan.order_by(Record.id.desc() if backwards else Record.id).limit(size).subquery("window")
    hit = ClauseAdapter(w).traverse(where)
    n, end, hits = session.execute(select(
        func.count(), func.min(w.c.id) if backwards else func.max(w.c.id),
        func.array_agg(aggregate_order_by(w.c.id, w.c.id.desc() if backwards else w.c.id)).filter(hit))).one()
    return n, end, hits or []


def _page_and_tally(session: Session, stmt: Select, *, page: int, cap: int, found: list[int],
                    with_facets: bool) -> tuple[list[int], int, Any]:
    """For a search's index path (catalog.seek): the first ``page`` ids of ``stmt`` (columns id
    and decade, and collections with ``with_facets``) in id order, how many it matches up to
    ``cap``, and with ``with_facets`` the facet tally of those matches and of ``found`` (the
    matches the windows found before them, by id), in one statement: only the page and the groups
    come back, never every match (30,000 rows cost the client more than the groups cost the
    server). No match is picked for probing when the
    count reached ``cap`` (the facets then come from a sample)."""
    from catalog.counts import _bigints, _facet_parts, _faceted, _read_groups

    m = stmt.order_by(Record.id).limit(cap).cte("matches").prefix_with("MATERIALIZED")
    first = select(m.c.id).order_by(m.c.id).limit(page).subquery("first")
    parts = [select(literal("p").label("kind"), first.c.id.label("key"), literal(None, BigInteger).label("n")),
             select(literal("n"), literal(None, BigInteger), func.count()).select_from(m)]
    if with_facets:
        every = m
        if found:
            every = union_all(select(m.c.id, m.c.decade, m.c.collections),
                              select(*_faceted()).where(Record.id == func.any(_bigints(found))))
            every = every.cte("every_match").prefix_with("MATERIALIZED")
        parts += _facet_parts(every, capped=select(func.count()).select_from(m).scalar_subquery() >= cap)
    rows = session.execute(union_all(*parts)).all()
    ids = sorted(key for kind, key, _ in rows if kind == "p")
    count = next(n for kind, _, n in rows if kind == "n")
    tally = _read_groups(rows) if with_facets else None
    return ids, count, tally


def decade_of(record):
    """The decade a record is faceted under: of its earliest year (None when undated). Integer
    division (towards zero, as ``div``): an integer comes back, where ``div`` gave a numeric,
    which cost 13 ms instead of 5 to fetch for 30,000 matches."""
    return func.coalesce(record.year_lo, record.year_hi) // 10 * 10


def _fewest_expected(session: Session, seen: Seen) -> float:
    """Matches in the whole table at the low end of what the density the windows saw can mean
    (two standard deviations of a Poisson count below what they saw; 0 when they saw none): a
    window of 2,000 records that saw 3 matches of a search with 9,000 in 10 million expects
    15,000, but could as well have seen 1."""
    if not seen.matches:
        return 0.0
    return _in_table(session, seen, max(0.0, seen.matches - 2 * seen.matches**0.5))


def _most_expected(session: Session, seen: Seen) -> float:
    """Matches in the whole table at the high end of what the density the windows saw can mean
    (two standard deviations of a Poisson count above what they saw, and two more, as a window
    that saw 2 may well have met 6)."""
    return _in_table(session, seen, seen.matches + 2 * seen.matches**0.5 + 2)


def _in_table(session: Session, seen: Seen, matches: float) -> float:
    """``matches`` in the records the windows saw, scaled to the whole table."""
    return matches / seen.rows * max(seen.rows, table_rows(session))


def _planned(session: Session, ids_stmt: Select, edge: int | None, backwards: bool, offset: int,
             limit: int, by_index: bool = False) -> list[int]:
    """Ids of ``ids_stmt`` in order past ``edge``."""
    if edge is not None:
        # After the windows the search is narrow: ``id + 0`` keeps the planner from also reading
        # the primary key's range (most of the table) into a bitmap beside the search index.
        key = Record.id + 0 if by_index else Record.id
        ids_stmt = ids_stmt.where(key < edge if backwards else key > edge)
    order = Record.id.desc() if backwards else Record.id
    stmt = ids_stmt.order_by(order).offset(offset).limit(limit)
    with _bitmap(session, ids_stmt, by_index):
        return list(session.scalars(stmt))


def _bitmap(session: Session, stmt: Select, by_index: bool):
    """A search marked BITMAP_ONLY reads its matches through its index's bitmap: never a walk of
    the primary key filtering every record, which the planner may prefer when it misjudges how
    few match (it did for the word × place index: 3 s instead of 20 ms at 10 million records)."""
    if by_index and stmt.get_execution_options().get(BITMAP_ONLY, False):
        return local_settings(session, enable_indexscan="off", enable_seqscan="off")
    return nullcontext()
