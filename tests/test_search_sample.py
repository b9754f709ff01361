"""Counts estimated from the sample's own search index (migration 0018, catalog.sampled): a search
whose windows say it may pass its count's bound asks the sixteenth of the records whose id
hashes into the sample; surely past the bound, its count is sixteen times the matches there (marked
as an estimate), its facets the sample's scaled, and its page comes from walking on in id order.

A catalogue of 3,200 records with a small bound and small windows stands in for ten million."""
from __future__ import annotations

import pytest
from sqlalchemy import event, func, select, text

from catalog.db import session_scope
from catalog.ingest import RecordIn, get_or_create_source, upsert_records
from catalog.models import Record
from catalog.queries import RecordQuery, _filtered, search_records
from catalog.sampled import IN_SAMPLE, SAMPLE_SHARE

N = 3_200
BOUND = 40


def rec(i: int) -> RecordIn:
    year = 1900 + i % 60
    title = f"Gara {i}" if i >= N - 200 else f"Strada {'veche' if i % 3 else 'nouă'} {i}"  # the last 200: a station
    return RecordIn(f"s{i:05d}", title=title, year_lo=year, year_hi=year)


@pytest.fixture()
def catalogue(clean_db, arhiva_env, monkeypatch):
    import catalog.queries as queries

    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "sampled", "folder").id
        upsert_records(s, sid, [rec(i) for i in range(N)], collection="toate")
    with clean_db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE records"))
    monkeypatch.setattr(queries, "WINDOWS", (20,))  # a first window that cannot fill a page of 50
    return clean_db


def _statements(engine, found: list[str]):
    def listener(conn, cursor, statement, *args):
        found.append(statement)
    event.listen(engine, "before_cursor_execute", listener)
    return lambda: event.remove(engine, "before_cursor_execute", listener)


def test_a_search_surely_past_its_bound_is_counted_from_the_sample_and_paged_by_walking(catalogue):
    q = RecordQuery(text="nouă")  # every third record of the first 3,000
    with session_scope(catalogue) as s:
        stmt = _filtered(q, s)
        every = list(s.scalars(stmt.with_only_columns(Record.id).order_by(Record.id)))
        in_sample = s.scalar(select(func.count()).select_from(stmt.with_only_columns(Record.id).where(IN_SAMPLE).subquery()))
        assert len(every) == 1000 and 40 < in_sample < 100
        sql: list[str] = []
        stop = _statements(catalogue, sql)
        try:
            page = search_records(s, RecordQuery(text="nouă"), with_facets=True, exact_max=BOUND)
        finally:
            stop()
        assert [r.id for r in page.items] == every[:50] and page.next_after == every[49]
        assert not page.total_exact and page.total == SAMPLE_SHARE * in_sample
        assert page.total_label.startswith("about ") and abs(page.total - 1000) / 1000 < 0.35
        # the words were looked up in the sample's index and tested on the records walked, never
        # through the whole index (which reads every match)
        assert [x for x in sql if "@@" in x and "hashint8" not in x and "array_agg" not in x] == []
        # the facets: the sample's, scaled to the estimate
        decade = func.coalesce(Record.year_lo, Record.year_hi) // 10 * 10
        groups = dict(s.execute(stmt.with_only_columns(decade, func.count()).where(IN_SAMPLE).group_by(decade)).all())
        assert {d["decade"]: d["count"] for d in page.facets.decades} == {
            k: round(v * page.total / in_sample) for k, v in groups.items()}
        assert not page.facets.exact and page.facets.collections == [{"name": "toate", "count": page.total}]
        # the next page follows the cursor: every match once, in id order
        nxt = search_records(s, RecordQuery(text="nouă", after=page.next_after), exact_max=BOUND)
        assert [r.id for r in nxt.items] == every[50:100]


def test_the_exact_count_asked_for_is_never_the_sample(catalogue):
    with session_scope(catalogue) as s:
        page = search_records(s, RecordQuery(text="nouă"), count="exact", exact_max=BOUND)
        assert page.total_exact and page.total == 1000


def test_a_search_the_sample_cannot_place_past_its_bound_is_counted_exactly(catalogue):
    """Years 1900-1901 match 108 records: the window's density (2 in 20) could mean a thousand,
    but the sample's few matches cannot say surely more than the bound of 150: counted exactly."""
    with session_scope(catalogue) as s:
        q = RecordQuery(year_from=1900, year_to=1901)
        want = s.scalar(select(func.count()).select_from(_filtered(q, s).subquery()))
        sql: list[str] = []
        stop = _statements(catalogue, sql)
        try:
            page = search_records(s, q, exact_max=150)
        finally:
            stop()
        assert page.total_exact and page.total == want == 108
        assert any("hashint8" in x for x in sql), "the sample was not asked"


def test_the_sample_is_read_through_its_own_index(catalogue):
    """The estimate is cheap only through ix_records_search_sample (a sixteenth of the search
    index); through the whole index it would cost what counting every match costs."""
    from catalog.counts import _planner, _ways

    with session_scope(catalogue) as s:
        stmt = _filtered(RecordQuery(text="nouă", year_from=1900, year_to=1950), s)
        compiled = stmt.with_only_columns(Record.id).where(IN_SAMPLE).compile(dialect=s.get_bind().dialect)
        with _planner(s, **_ways(False, True)):
            plan = "\n".join(s.connection().exec_driver_sql("EXPLAIN " + str(compiled), compiled.params).scalars())
        assert "ix_records_search_sample" in plan, plan


def test_a_walk_to_the_end_of_the_table_counts_every_match_exactly(catalogue):
    """The 200 stations are the last records: the sample says surely more than the bound, the walk
    for the page goes on to the end of the table, and there every match has been seen: the count
    is exact, and so are the facets (of the matches seen, by their ids)."""
    with session_scope(catalogue) as s:
        every = list(s.scalars(_filtered(RecordQuery(text="gara"), s).with_only_columns(Record.id).order_by(Record.id)))
        page = search_records(s, RecordQuery(text="gara"), with_facets=True, exact_max=BOUND)
        assert [r.id for r in page.items] == every[:50] and len(every) == 200
        assert page.total_exact and page.total == 200 and page.total_label == "200"
        assert sum(d["count"] for d in page.facets.decades) == 200 and page.facets.exact
