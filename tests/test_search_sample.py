"""Counts estimated from the sample's own search index (migration 0018, catalog.sampled): a search
whose windows say it may pass its count's bound asks the sixteenth of the records whose id
hashes into the sample; surely past the bound, its count is sixteen times the matches there (marked
as an estimate), its facets the sample's scaled, and its page comes from walking on in id order.

A catalogue of 3,200 records with a small bound and small windows stands in for ten million."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import event, func, select, text

from catalog.db import session_scope
from catalog.ingest import RecordIn, get_or_create_source, upsert_records
from catalog.models import Record
from catalog.queries import RecordQuery, _filtered, search_records
from catalog.sampled import IN_SAMPLE, SAMPLE_SHARE
from tests.helpers import statements_run

N = 3_200
BOUND = 40


def rec(i: int) -> RecordIn:
    year = 1900 + i % 60
    title = f"Gara {i}" if i >= N - 400 else f"Strada {'veche' if i % 3 else 'nouă'} {i}"  # the last 400: a station
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


def test_a_search_surely_past_its_bound_is_counted_from_the_sample_and_paged_by_walking(catalogue):
    q = RecordQuery(text="nouă")  # every third record of the first 2,800
    with session_scope(catalogue) as s:
        stmt = _filtered(q, s)
        every = list(s.scalars(stmt.with_only_columns(Record.id).order_by(Record.id)))
        in_sample = s.scalar(select(func.count()).select_from(stmt.with_only_columns(Record.id).where(IN_SAMPLE).subquery()))
        assert len(every) == 934 and 40 < in_sample < 100
        with statements_run(catalogue) as sql:
            page = search_records(s, RecordQuery(text="nouă"), with_facets=True, exact_max=BOUND)
        assert [r.id for r in page.items] == every[:50] and page.next_after == every[49]
        assert not page.total_exact and page.total == SAMPLE_SHARE * in_sample
        assert page.total_label.startswith("about ") and abs(page.total - 934) / 934 < 0.35
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
        nxt = search_records(s, RecordQuery(text="nouă", after=page.next_after), exact_max=BOUND, sample_rows=400)
        assert [r.id for r in nxt.items] == every[50:100]
        # and says the same estimate: its block sample (400 records) holds too few matches to be
        # precise, so it asks the same sample as the first page did
        again = search_records(s, RecordQuery(text="nouă", offset=50), exact_max=BOUND, sample_rows=400)
        assert [r.id for r in again.items] == every[50:100]
        assert nxt.total == again.total == page.total and not nxt.total_exact


def test_the_exact_count_asked_for_is_never_the_sample(catalogue):
    with session_scope(catalogue) as s:
        page = search_records(s, RecordQuery(text="nouă"), count="exact", exact_max=BOUND)
        assert page.total_exact and page.total == 934


def test_a_search_the_sample_cannot_place_past_its_bound_is_counted_exactly(catalogue):
    """Years 1900-1901 match 108 records: the window's density (2 in 20) could mean a thousand,
    but the sample's few matches cannot say surely more than the bound of 150: counted exactly."""
    with session_scope(catalogue) as s:
        q = RecordQuery(year_from=1900, year_to=1901)
        want = s.scalar(select(func.count()).select_from(_filtered(q, s).subquery()))
        with statements_run(catalogue) as sql:
            page = search_records(s, q, exact_max=150)
        assert page.total_exact and page.total == want == 108
        assert any("hashint8" in x for x in sql), "the sample was not asked"


def test_the_sample_is_read_through_its_own_index(catalogue):
    """The estimate is cheap only through ix_records_search_sample (a sixteenth of the search
    index); through the whole index it would cost what counting every match costs."""
    from catalog.sampled import index_sample

    with session_scope(catalogue) as s:
        stmt = _filtered(RecordQuery(text="nouă", year_from=1900, year_to=1950, colorized=False), s)
        for facets in (False, True):
            ran: list[tuple[str, dict]] = []

            def explain(conn, cursor, statement, params, *args, ran=ran):
                if "hashint8" in statement:
                    ran.append((statement, params))
            event.listen(catalogue, "before_cursor_execute", explain)
            try:
                m = index_sample(s, stmt, with_facets=facets).total
                # the statement again, as EXPLAIN, under the settings it ran with (they are the
                # transaction's until index_sample puts them back: set them the same way)
                from catalog.counts import _planner
                from catalog.sampled import _WAYS
                with _planner(s, **_WAYS):
                    plan = "\n".join(s.connection().exec_driver_sql("EXPLAIN " + ran[0][0], ran[0][1]).scalars())
            finally:
                event.remove(catalogue, "before_cursor_execute", explain)
            assert 0 < m < 60 and "ix_records_search_sample" in plan, plan
            assert not re.search(r"(Hash|Merge) (Anti |Semi )?Join", plan), plan  # the links probed, not hashed


def test_a_walk_to_the_end_of_the_table_counts_every_match_exactly(catalogue):
    """The 400 stations are the last records: the sample says surely more than the bound, the walk
    for the page goes on to the end of the table, and there every match has been seen: the count
    is exact, and so are the facets (of the matches seen, by their ids)."""
    with session_scope(catalogue) as s:
        every = list(s.scalars(_filtered(RecordQuery(text="gara"), s).with_only_columns(Record.id).order_by(Record.id)))
        with statements_run(catalogue) as sql:
            page = search_records(s, RecordQuery(text="gara"), with_facets=True, exact_max=BOUND)
        assert any("hashint8" in x for x in sql), "the sample was not asked"
        assert [x for x in sql if "@@" in x and "hashint8" not in x and "array_agg" not in x] == []
        assert [r.id for r in page.items] == every[:50] and len(every) == 400
        assert page.total_exact and page.total == 400 and page.total_label == "400"
        assert sum(d["count"] for d in page.facets.decades) == 400 and page.facets.exact


def test_a_walk_that_runs_out_leaves_the_rest_of_the_page_to_the_index(catalogue, monkeypatch):
    """The walk for the page stops at WALK_FAR records; the index path gives the rest of the page
    (every match once, in id order), and the count is still the sample's."""
    import catalog.seek as seek

    monkeypatch.setattr(seek, "WALK_FAR", 60)  # a few matches walked, the rest from the index
    with session_scope(catalogue) as s:
        every = list(s.scalars(_filtered(RecordQuery(text="nouă"), s).with_only_columns(Record.id).order_by(Record.id)))
        page = search_records(s, RecordQuery(text="nouă"), exact_max=BOUND)
        assert [r.id for r in page.items] == every[:50] and not page.total_exact


def test_matches_that_lie_together_elsewhere_are_not_walked_for(catalogue, monkeypatch):
    """The stations are the last 400 records: the sample says one record in eight, so a window of
    the first 400 should have seen some 50; it saw none, so they lie together elsewhere in id
    order (as a harvest's records do), and the page comes through the index at once instead of a
    walk through thousands of records that hold none. The count is still the sample's."""
    import catalog.queries as queries

    monkeypatch.setattr(queries, "WINDOWS", (400,))
    with session_scope(catalogue) as s:
        every = list(s.scalars(_filtered(RecordQuery(text="gara"), s).with_only_columns(Record.id).order_by(Record.id)))
        with statements_run(catalogue) as sql:
            page = search_records(s, RecordQuery(text="gara"), exact_max=10)  # 16 could be there
        assert [r.id for r in page.items] == every[:50] and not page.total_exact
        assert len([x for x in sql if "array_agg" in x]) == 1, "walked on"
