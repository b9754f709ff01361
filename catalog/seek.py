"""Keyset (seek) pages in id order that stay quick whether a search is broad or narrow.

A page of a broad search is found fastest by walking the records in id order and keeping the
matches; a narrow one by its index (the search vector's GIN index), then sorting the few
matches. The planner cannot always tell which it is (years, words and places are correlated,
and it multiplies their selectivities), so a page is first looked for in the next ``WINDOW``
records in id order; only when fewer than a page match there does the search run through its
index, from the end of that window on: the search is then selective (fewer than a page per
``WINDOW`` records), so its matches are few. Either way at most about ``WINDOW`` rows are read
before the index path, whatever the size of the catalogue.
"""
from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.util import ClauseAdapter

from catalog.models import Record

WINDOW = 16_000


def page_ids(session: Session, filtered: Select, *, after: int | None, before: int | None, offset: int,
             limit: int, window: int = WINDOW) -> list[int]:
    """Up to ``limit`` ids of matches: after ``after`` ascending, or before ``before`` descending."""
    ids_stmt = filtered.with_only_columns(Record.id)
    backwards = before is not None and after is None
    if offset or window <= 0:
        return _planned(session, ids_stmt, after, before, backwards, offset, limit)
    scan = select(Record)
    if backwards:
        scan = scan.where(Record.id < before).order_by(Record.id.desc())
    else:
        scan = scan.where(Record.id > after) if after is not None else scan
        scan = scan.order_by(Record.id)
    w = scan.limit(window).subquery("window")
    in_window = ClauseAdapter(w).traverse(ids_stmt)
    found = list(session.scalars(in_window.order_by(w.c.id.desc() if backwards else w.c.id).limit(limit)))
    if len(found) >= limit:
        return found
    span = scan.with_only_columns(Record.id).limit(window).subquery("span")  # ids only: an index-only scan
    edge = session.execute(select(func.count(), func.min(span.c.id) if backwards else func.max(span.c.id))).one()
    if edge[0] < window:  # the window reached the end: nothing more to find
        return found
    if backwards:
        return found + _planned(session, ids_stmt, None, edge[1], True, 0, limit - len(found))
    return found + _planned(session, ids_stmt, edge[1], None, False, 0, limit - len(found))


def _planned(session: Session, ids_stmt: Select, after, before, backwards: bool, offset: int, limit: int) -> list[int]:
    if after is not None:
        ids_stmt = ids_stmt.where(Record.id > after)
    elif before is not None:
        ids_stmt = ids_stmt.where(Record.id < before)
    order = Record.id.desc() if backwards else Record.id
    return list(session.scalars(ids_stmt.order_by(order).offset(offset).limit(limit)))
