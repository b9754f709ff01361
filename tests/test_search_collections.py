"""Searches within a collection: with more filters, the page, count and facets of the truth, counted
on the way through the search's index (the collection one more token there); alone, the facets
of a collection sampled whole keep the search's own membership condition."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

import catalog.counts as counts
import catalog.queries as queries
from catalog.db import session_scope
from catalog.models import Collection, CollectionMember, Record, RecordAsset
from catalog.queries import RecordQuery, _filtered, search_records
from tests.test_search_scale import big  # noqa: F401  (the fixture: 300 records, "all", "thirds", colorized)

pytestmark = pytest.mark.usefixtures("big")


def _truth(s, q: RecordQuery) -> dict:
    """Count and facets of ``q`` by GROUP BY over every match."""
    m = _filtered(q, s).with_only_columns(Record.id, Record.year_lo, Record.year_hi).subquery()
    decade = func.div(func.coalesce(m.c.year_lo, m.c.year_hi), 10) * 10
    cols = dict(s.execute(select(Collection.name, func.count()).join(CollectionMember)
                          .join(m, m.c.id == CollectionMember.record_id).group_by(Collection.name)).all())
    yes = s.scalar(select(func.count(func.distinct(RecordAsset.record_id))).join(m, m.c.id == RecordAsset.record_id)
                   .where(RecordAsset.role == "colorized"))
    total = s.scalar(select(func.count()).select_from(m))
    return {"total": total, "decades": dict(s.execute(select(decade, func.count()).group_by(decade)).all()),
            "collections": cols, "colorized": {"yes": yes, "no": total - yes}}


def _got(page) -> dict:
    f = page.facets
    return {"total": page.total, "decades": {d["decade"]: d["count"] for d in f.decades},
            "collections": {c["name"]: c["count"] for c in f.collections}, "colorized": f.colorized}


def _never(what: str):
    return lambda *a, **k: pytest.fail(f"{what}: the search was run again")


def test_a_small_collection_and_more_gives_the_page_count_and_facets_of_the_truth(big, monkeypatch):  # noqa: F811
    """'thirds' (100 members) with years or words, windows smaller than the table: the page, the
    exact count and the facets are those of the truth (GROUP BY over every match), past the
    count's bound too (the catalogue is smaller than a sample: counted whole)."""
    monkeypatch.setattr(queries, "WINDOWS", (80, 160))
    with session_scope(big) as s:
        for q in (RecordQuery(collection="thirds", year_from=1900, year_to=1950, limit=10),
                  RecordQuery(collection="thirds", text="nouă", limit=10),
                  RecordQuery(collection="thirds", text="nimic-de-gasit", limit=10)):
            want = _truth(s, q)
            page = search_records(s, q, with_facets=True, exact_max=1000)
            assert page.total_exact and page.facets.exact, q
            assert _got(page) == want, q
            assert [r.id for r in page.items] == list(s.scalars(
                _filtered(q, s).with_only_columns(Record.id).order_by(Record.id).limit(10))), q
            assert search_records(s, q, exact_max=1000).total == want["total"]
        # more matches than the bound: exact all the same
        q = RecordQuery(collection="thirds", year_from=1900, year_to=1950, limit=10)
        want = _truth(s, q)
        page = search_records(s, q, with_facets=True, exact_max=10)
        assert want["total"] > 10 and page.total_exact and _got(page) == want
        assert search_records(s, q, exact_max=10).total == want["total"]


def test_within_a_larger_collection_the_index_path_counts_on_the_way(big, monkeypatch):  # noqa: F811
    """Windows smaller than the collection ('all': 300) that see too few matches for a page: the
    search's index gives the rest of the page and counts every match in the same statement (it
    reads them all for the page anyway), so no count and no collection sample follow."""
    monkeypatch.setattr(queries, "WINDOWS", (20, 40))
    q = RecordQuery(collection="all", year_from=1960, year_to=1961, limit=10)
    with session_scope(big) as s:
        want = _truth(s, q)
        assert 0 < want["total"] < 20
        monkeypatch.setattr(counts, "_tally", _never("a count"))
        monkeypatch.setattr(counts, "_collection_count", _never("a collection count"))
        page = search_records(s, q, with_facets=True, exact_max=100)
        assert page.total_exact and _got(page) == want
        assert search_records(s, q, exact_max=100).total == want["total"]


def test_the_facets_of_a_collection_sampled_whole_keep_its_membership_condition(big):  # noqa: F811
    """A collection whose sampled blocks hold too few of its members is sampled whole (all its
    memberships): the search's own condition on the memberships table no longer lost its FROM
    (SQLAlchemy correlated it to the sampled table and refused the statement)."""
    with session_scope(big) as s:
        cid = s.scalar(select(Collection.id).where(Collection.name == "thirds"))
        q = RecordQuery(collection="thirds")
        tally = counts._member_tally(s, _filtered(q, s), cid, 100.0, 1.0, with_facets=True, whole=True)
        assert tally.total == _truth(s, q)["total"] > 0
