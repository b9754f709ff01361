"""Searches at scale: exact counts while cheap then marked estimates, keyset cursors, the offset
bound, facets (against an exact GROUP BY after upserts and deletes), in the API, page and CLI.

Thresholds are set small (count_exact_max, count_sample_rows) so a few hundred records exercise
the paths a national catalogue takes."""
from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, text
from typer.testing import CliRunner

from catalog.assets import get_store, link_asset, register_image
from catalog.counts import approx
from catalog.db import session_scope
from catalog.ingest import RecordIn, add_to_collection, get_or_create_source, upsert_records
from catalog.models import Collection, CollectionMember, Record, RecordAsset
from catalog.queries import QueryError, RecordQuery, _filtered, decode_cursor, encode_cursor, search_records
from catalog.seek import Seen, page_ids
from catalog.settings import Settings
from catalog.web.app import create_app
from flows.cli import app
from tests.helpers import jpeg_bytes, statements_run

N = 300
SMALL = {"exact_max": 20, "sample_rows": 100}  # the table holds 300: a third is sampled


def rec(i: int, **kw) -> RecordIn:
    year = None if i % 5 == 0 else 1900 + i % 70
    return RecordIn(f"k{i:04d}", title=f"Strada {'veche' if i % 3 else 'nouă'} {i}", year_lo=year, year_hi=year,
                    lat=47.0 + (i % 10) / 100, lon=28.8, **kw)


@pytest.fixture()
def big(clean_db, arhiva_env):
    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "scale", "folder").id
        ids = upsert_records(s, sid, [rec(i) for i in range(N)], collection="all").ids
        add_to_collection(s, "thirds", [ids[f"k{i:04d}"] for i in range(0, N, 3)])
        store = get_store()
        col = register_image(s, store, jpeg_bytes(seed=3))
        for i in range(0, N, 7):
            link_asset(s, ids[f"k{i:04d}"], col.sha256, "colorized")
    with clean_db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE records"))
    return clean_db


def test_exact_while_cheap_then_a_marked_estimate(big):
    with session_scope(big) as s:
        narrow = search_records(s, RecordQuery(text="nouă", year_from=1900, year_to=1910), **SMALL)
        assert narrow.total_exact and narrow.total == len(narrow.items) <= 20
        broad = search_records(s, RecordQuery(), **SMALL)
        assert not broad.total_exact and broad.total > 20
        assert 0.5 * N <= broad.total <= 1.5 * N  # a third of the table, scaled up
        assert broad.total_label == f"about {approx(broad.total)}"
        exact = search_records(s, RecordQuery(), count="exact", **SMALL)
        assert exact.total_exact and exact.total == N and exact.total_label == "300"
        assert search_records(s, RecordQuery()).total_exact  # default threshold: 300 is cheap
        with pytest.raises(QueryError, match="count"):
            search_records(s, RecordQuery(), count="roughly")


def test_approx_words():
    assert [approx(n) for n in (7, 99, 1234, 34_567, 999_999, 1_234_567, 12_000_000)] == [
        "7", "99", "1,200", "35,000", "1 million", "1.2 million", "12 million"]


def _all_pages(fetch) -> list[int]:
    seen, after = [], None
    while True:
        ids, after = fetch(after)
        seen += ids
        if after is None:
            return seen


def test_cursor_visits_every_record_once_despite_inserts(big):
    with session_scope(big) as s:
        before_ids = set(s.scalars(select(Record.id)))
    sid = None
    inserted = 0

    def fetch(after):
        nonlocal sid, inserted
        with session_scope(big) as s:
            page = search_records(s, RecordQuery(limit=7, after=after), **SMALL)
            sid = sid or get_or_create_source(s, "scale", "folder").id
            # others write between pages: new records (higher ids) and changes to seen ones
            upsert_records(s, sid, [rec(10_000 + inserted), rec(inserted, description="changed")])
            inserted += 1
            return [r.id for r in page.items], page.next_after

    seen = _all_pages(fetch)
    assert len(seen) == len(set(seen)) and seen == sorted(seen)
    assert before_ids <= set(seen)  # every record there at the start, exactly once


def test_window_then_index_gives_the_same_pages(big):
    with statements_run(big, '"window"') as windows_sql:
        _same_pages_every_way(big)
    # a window carries the columns its search tests, never the payload (10M: 18-20 ms a window of
    # 16,000 records with every column, 11-15 with only those)
    assert windows_sql and not [sql for sql in windows_sql if "records.raw" in sql or "records.title" in sql]


def _same_pages_every_way(big):
    with session_scope(big) as s:
        for q in (RecordQuery(text="nouă"), RecordQuery(year_from=1960, year_to=1961), RecordQuery(),
                  RecordQuery(collection="thirds", colorized=True),
                  RecordQuery(bbox=(28.7, 47.0, 28.9, 47.045), text="strada -veche", source="scale"),
                  RecordQuery(year_from=1950, year_to=1969, include_undated=True, colorized=False)):
            stmt = _filtered(q, s)
            want = list(s.scalars(stmt.with_only_columns(Record.id).order_by(Record.id)))
            for windows in ((), (5,), (3, 40), (2_000, 16_000)):
                def fetch(after, stmt=stmt, windows=windows):
                    ids = page_ids(s, stmt, after=after, before=None, offset=0, limit=4, windows=windows)
                    return ids, (ids[-1] if len(ids) == 4 else None)

                assert _all_pages(fetch) == want, (q, windows)
                back = page_ids(s, stmt, after=None, before=want[-1] + 1, offset=0, limit=6, windows=windows)
                assert back == list(reversed(want))[:6]
                for up_to in (len(want) - 1, len(want), 1000):  # counted on the way to the first page
                    seen = Seen()
                    assert page_ids(s, stmt, after=None, before=None, offset=0, limit=4, windows=windows,
                                    seen=seen, count_up_to=up_to) == want[:4]
                    # known when the index path or a walk of the whole table counted them, never wrong
                    assert seen.total in ((None, len(want)) if up_to >= len(want) else (None,)), (q, windows)
                    if not windows and up_to >= len(want):
                        assert seen.total == len(want)


def test_cursor_is_opaque_and_checked():
    assert decode_cursor(encode_cursor(12345)) == 12345
    for bad in ("nope", encode_cursor(1)[:-1] + "!", "aWQ6LTE"):
        with pytest.raises(QueryError, match="after"):
            decode_cursor(bad)


def test_offset_is_bounded_and_names_the_cursor(big):
    with session_scope(big) as s:
        with pytest.raises(QueryError, match=r"offset: at most 10,000; deeper pages follow a cursor.*after=.*--after"):
            search_records(s, RecordQuery(offset=10_001))
        assert search_records(s, RecordQuery(offset=10_000)).items == []


def _exact_facets(s) -> dict:
    active = select(Record).where(Record.status == "active").subquery()
    decade = func.div(func.coalesce(active.c.year_lo, active.c.year_hi), 10) * 10
    decades = dict(s.execute(select(decade, func.count()).group_by(decade)).all())
    cols = dict(s.execute(select(Collection.name, func.count()).join(CollectionMember)
                          .join(active, active.c.id == CollectionMember.record_id).group_by(Collection.name)).all())
    yes = s.scalar(select(func.count(func.distinct(RecordAsset.record_id))).join(active, active.c.id == RecordAsset.record_id)
                   .where(RecordAsset.role == "colorized"))
    total = s.scalar(select(func.count()).select_from(active))
    return {"decades": decades, "collections": cols, "colorized": {"yes": yes, "no": total - yes}}


def _facets_of(s, **kw) -> dict:
    f = search_records(s, RecordQuery(), with_facets=True, **kw).facets
    return {"decades": {d["decade"]: d["count"] for d in f.decades},
            "collections": {c["name"]: c["count"] for c in f.collections}, "colorized": f.colorized}


def test_facets_agree_with_group_by_after_upserts_and_deletes(big):
    with session_scope(big) as s:
        assert _facets_of(s) == _exact_facets(s)
        sid = get_or_create_source(s, "scale", "folder").id
        # years change, new records, a withdrawal, a deletion, a new colorization and membership
        upsert_records(s, sid, [RecordIn("k0001", title="moved", year_lo=1855, year_hi=1856),
                                RecordIn("k9999", title="new", year_lo=2001, year_hi=2001)], collection="late")
        s.execute(Record.__table__.update().where(Record.source_key == "k0002").values(status="withdrawn"))
        s.execute(delete(Record).where(Record.source_key.in_(["k0003", "k0004"])))
        new_id = s.scalar(select(Record.id).where(Record.source_key == "k9999"))
        link_asset(s, new_id, s.scalar(select(RecordAsset.asset_sha256).limit(1)), "colorized")
        s.flush()
        assert _facets_of(s) == _exact_facets(s)
        assert _facets_of(s)["decades"][1850] == 1 and _facets_of(s)["collections"]["late"] == 2
        # estimated: marked, from a sample, summing to the estimated total
        page = search_records(s, RecordQuery(), with_facets=True, **SMALL)
        assert not page.facets.exact and not page.total_exact
        assert abs(sum(d["count"] for d in page.facets.decades) - page.total) <= len(page.facets.decades)


@pytest.fixture()
def small_client(big):
    with TestClient(create_app(big, Settings(count_exact_max=20, count_sample_rows=100, page_size_max=50))) as c:
        yield c


def test_api_estimate_exact_cursor_and_facets(small_client):
    body = small_client.get("/api/records", params={"limit": 50, "facets": "true"}).json()
    assert not body["total_exact"] and body["total_label"].startswith("about ")
    assert body["facets"]["exact"] is False and body["facets"]["colorized"]["yes"] > 0
    exact = small_client.get("/api/records", params={"count": "exact"}).json()
    assert exact["total_exact"] and exact["total"] == N and exact["total_label"] == "300"
    assert exact["facets"] is None
    seen = [i["id"] for i in body["items"]]
    pages = [body]
    while body["next"]:
        assert "after=" in body["next"] and "offset" not in body["next"]
        body = small_client.get(body["next"]).json()
        seen += [i["id"] for i in body["items"]]
        pages.append(body)
    assert len(seen) == N == len(set(seen)) and seen == sorted(seen)
    back = small_client.get(pages[-1]["previous"]).json()  # previous goes back one page
    assert [i["id"] for i in back["items"]] == [i["id"] for i in pages[-2]["items"]]
    r = small_client.get("/api/records", params={"offset": 10_001})
    assert r.status_code == 422 and "offset: at most 10,000" in r.text and "after" in r.text
    bad = small_client.get("/api/records", params={"after": "xyz"})
    assert bad.status_code == 422 and "not a cursor" in bad.text


def test_search_page_says_about_and_links_the_next_page(small_client):
    html = small_client.get("/").text
    assert re.search(r"<strong>about [\d,]+</strong> records", html) and "(estimate)" in html
    assert 'id="facets"' in html and "Counts estimated from a sample" in html and "thirds" in html
    nxt = re.search(r'href="(\?after=[^"]+)" rel="next"', html).group(1).replace("&amp;", "&")
    second = small_client.get("/" + nxt).text
    assert 'rel="prev"' in second and second.count('class="card"') == 24
    narrow = small_client.get("/", params={"q": "nouă", "year_from": 1900, "year_to": 1905}).text
    assert re.search(r"<strong>\d+</strong> record", narrow) and "(estimate)" not in narrow
    assert "Counts estimated" not in narrow and "1900s" in narrow


def test_cli_marks_estimates_and_counts_exactly_when_asked(big, monkeypatch):
    from catalog.settings import reset_settings_cache

    monkeypatch.setenv("ARHIVA_COUNT_EXACT_MAX", "20")
    monkeypatch.setenv("ARHIVA_COUNT_SAMPLE_ROWS", "100")
    reset_settings_cache()
    runner = CliRunner()
    r = runner.invoke(app, ["records", "--limit", "5"], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert re.search(r"about [\d,]+ record\(s\) \(estimate; --exact-count", r.output)
    cursor = re.search(r"next page: --after (\S+)", r.output).group(1)
    r = runner.invoke(app, ["records", "--exact-count", "--limit", "5", "--after", cursor], terminal_width=200)
    assert r.exit_code == 0 and "300 record(s), after" in r.output
    r = runner.invoke(app, ["records", "--page", "5000", "--limit", "50"])
    assert r.exit_code == 2 and "offset: at most 10,000" in r.output


def test_search_follows_the_cursor_it_prints(big):
    """`arhiva search` prints `next page: --after CURSOR` under a page, as `records` does: that
    cursor (and --page) work on `search` too, and give the next matches in order."""
    runner = CliRunner()
    ids = []
    r = runner.invoke(app, ["search", "veche", "--limit", "3"], terminal_width=200)
    for _ in range(2):
        assert r.exit_code == 0, r.output
        ids += [int(i) for i in re.findall(r"^│\s*(\d+)\s*│", r.output, re.M)]
        cursor = re.search(r"next page: --after (\S+)", r.output).group(1)
        r = runner.invoke(app, ["search", "veche", "--limit", "3", "--after", cursor], terminal_width=200)
    with session_scope(big) as s:
        want = list(s.scalars(_filtered(RecordQuery(text="veche"), s).with_only_columns(Record.id)
                              .order_by(Record.id).limit(6)))
    assert ids == want
    r = runner.invoke(app, ["search", "veche", "--limit", "3", "--page", "2"], terminal_width=200)
    assert r.exit_code == 0 and [int(i) for i in re.findall(r"^│\s*(\d+)\s*│", r.output, re.M)] == want[3:]


def test_within_a_collection_and_more_the_windows_walk_the_records_testing_their_collections(big):
    """With more than the collection asked, the collection is one more condition of the search
    (its token in the search index, the record's own list of collections on the row): pages in
    record id order both ways and backwards, as for any search, and no member probed."""
    with session_scope(big) as s:
        q = RecordQuery(collection="thirds", year_from=1900, year_to=1950)
        stmt = _filtered(q, s)
        want = list(s.scalars(select(Record.id).join(CollectionMember, CollectionMember.record_id == Record.id)
                              .join(Collection).where(Collection.name == "thirds", Record.status == "active",
                                                      Record.year_lo <= 1950, Record.year_hi >= 1900)
                              .order_by(Record.id)))
        assert 40 <= len(want) <= 100
        seen = Seen()
        first = page_ids(s, stmt, after=None, before=None, offset=0, limit=10, windows=(30, 60), seen=seen)
        assert first == want[:10] and 0 < seen.rows <= 90
        assert page_ids(s, stmt, after=first[-1], before=None, offset=0, limit=10, windows=(30, 60)) == want[10:20]
        assert page_ids(s, stmt, after=None, before=want[20], offset=0, limit=10, windows=(30, 60)) == want[10:20][::-1]
        # through the API's search: the same records, page after page, and the memberships never read
        with statements_run(big, "collection_members") as members:
            search_records(s, RecordQuery(collection="thirds", year_from=1900, year_to=1950, limit=15), **SMALL)
        assert members == []
        pages, after = [], None
        while True:
            page = search_records(s, RecordQuery(collection="thirds", year_from=1900, year_to=1950, limit=15,
                                                 after=after), **SMALL)
            pages += [r.id for r in page.items]
            if page.next_after is None:
                break
            after = page.next_after
        assert pages == want


def test_a_collection_search_with_few_matches_in_its_first_probes_probes_more_instead_of_counting(big, monkeypatch):
    """The withdrawn records of a collection (a search of the collection alone, sampled from its
    side): the probed members of the sample held too few matches to trust, yet more than a bounded
    count would stop at: more members are probed (more sampled blocks when needed), and the
    estimate comes from them, within a fifth of the truth, without counting the matches one by one."""
    import catalog.counts as counts
    import catalog.queries as queries
    import catalog.seek as seek

    monkeypatch.setattr(counts, "MIN_HITS", 40)
    monkeypatch.setattr(counts, "MEMBER_PROBES", 30)  # ~10 matches among 30 probed: too few
    # windows smaller than the collection (else one window walks all 300 members and counts them)
    monkeypatch.setattr(queries, "WINDOWS", (20, 40))
    monkeypatch.setattr(seek, "WALK_ON_MAX", 0)
    gone = RecordQuery(collection="all", status="withdrawn")
    with statements_run(big, "") as statements, session_scope(big) as s:
        s.execute(text("UPDATE records SET status = 'withdrawn' WHERE title LIKE '%nouă%'"))
        s.execute(text("ANALYZE collection_members"))
        truth = s.scalar(select(func.count()).select_from(_filtered(gone, s).with_only_columns(Record.id).subquery()))
        statements.clear()
        page = search_records(s, gone, exact_max=20, sample_rows=150)
    assert truth == N // 3
    assert not page.total_exact and 0.8 * truth <= page.total <= 1.2 * truth, page.total
    assert sum("members_sample" in st for st in statements) >= 3  # the sample's size, then two rounds of probes
    assert not [st for st in statements if "AS matches" in st or "WITH matches" in st]  # no count of the matches


def test_a_collection_is_paged_and_sampled_from_its_own_side(big, monkeypatch):
    """Within a collection the page comes from its membership index and the estimate from a sample
    of memberships (a hashed share of them probed when the collection is large)."""
    import catalog.counts as counts

    with session_scope(big) as s:
        s.execute(text("ANALYZE collection_members"))
        all_ids = list(s.scalars(select(CollectionMember.record_id).join(Collection)
                                 .where(Collection.name == "thirds").order_by(CollectionMember.record_id)))
        page = search_records(s, RecordQuery(collection="thirds", limit=10), **SMALL)
        assert [r.id for r in page.items] == all_ids[:10] and page.next_after == all_ids[9]
        later = search_records(s, RecordQuery(collection="thirds", limit=10, after=page.next_after), **SMALL)
        assert [r.id for r in later.items] == all_ids[10:20]
        # 100 members, more than exact_max (20): an estimate, marked, from the membership sample
        assert not page.total_exact and 50 <= page.total <= 150, page.total
        exact = search_records(s, RecordQuery(collection="thirds"), count="exact", **SMALL)
        assert exact.total_exact and exact.total == 100
        # a filter on top (a third of them are "nouă"): a search like any other, the collection on the row
        nova = search_records(s, RecordQuery(collection="all", text="nouă"), **SMALL)
        assert nova.total_exact or 50 <= nova.total <= 150, nova.total
        # only a hashed share of the sampled members probed: still an estimate near the truth
        monkeypatch.setattr(counts, "MEMBER_PROBES", 40)
        monkeypatch.setattr(counts, "MIN_HITS", 5)
        thinned = search_records(s, RecordQuery(collection="all", limit=5), with_facets=True, **SMALL)
        assert not thinned.total_exact and 150 <= thinned.total <= 450, thinned.total
        assert not thinned.facets.exact
        assert abs(sum(d["count"] for d in thinned.facets.decades) - thinned.total) <= len(thinned.facets.decades)
        # a collection no larger than exact_max is counted exactly, facets too
        add_to_collection(s, "few", all_ids[:7])
        few = search_records(s, RecordQuery(collection="few"), with_facets=True, **SMALL)
        assert few.total_exact and few.total == 7 and few.facets.exact
        assert {c["name"]: c["count"] for c in few.facets.collections} == {"few": 7, "thirds": 7, "all": 7}


def test_facets_probe_a_hashed_share_of_many_matches(big, monkeypatch):
    """Beyond FACET_EXACT_MAX matches the colorized and collection facets come from a hashed share
    of FACET_PROBES of them, scaled and marked as estimates; the count and the decades stay exact."""
    import catalog.counts as counts

    with session_scope(big) as s:
        truth = _exact_facets(s)
        monkeypatch.setattr(counts, "FACET_EXACT_MAX", 200)
        monkeypatch.setattr(counts, "FACET_PROBES", 120)
        page = search_records(s, RecordQuery(), with_facets=True)  # 300 matches, counted exactly
        assert page.total_exact and page.total == N and not page.facets.exact
        assert {d["decade"]: d["count"] for d in page.facets.decades} == truth["decades"]
        got = {c["name"]: c["count"] for c in page.facets.collections}
        assert got["all"] == N and 50 <= got["thirds"] <= 150, got
        yes = page.facets.colorized["yes"]
        assert 0.5 * truth["colorized"]["yes"] <= yes <= 1.5 * truth["colorized"]["yes"], page.facets.colorized
        assert yes + page.facets.colorized["no"] == N
        monkeypatch.setattr(counts, "FACET_EXACT_MAX", 300)  # all 300 probed again: exact
        assert search_records(s, RecordQuery(), with_facets=True).facets.exact


def test_facets_of_matches_counted_on_the_way_to_the_page(big, monkeypatch):
    """A narrow search counts its matches on the index path to its page, reading their decades
    there; its facets then probe those matches by id, equal to a GROUP BY of the same search."""
    import catalog.counts as counts
    import catalog.queries as queries

    monkeypatch.setattr(queries, "WINDOWS", (5,))  # 300 records: the first 5 hold no match
    q = dict(year_from=1960, year_to=1969)
    with session_scope(big) as s:
        stmt = _filtered(RecordQuery(**q), s)
        ids = list(s.scalars(stmt.with_only_columns(Record.id)))
        decade = func.div(func.coalesce(Record.year_lo, Record.year_hi), 10) * 10
        want_decades = dict(s.execute(stmt.with_only_columns(decade, func.count()).group_by(decade)).all())
        want_cols = dict(s.execute(select(Collection.name, func.count()).join(CollectionMember)
                                   .where(CollectionMember.record_id.in_(ids)).group_by(Collection.name)).all())
        want_yes = s.scalar(select(func.count(func.distinct(RecordAsset.record_id)))
                            .where(RecordAsset.record_id.in_(ids), RecordAsset.role == "colorized"))
        calls = []
        monkeypatch.setattr(counts, "_tally", lambda *a, **k: calls.append(k) or pytest.fail("searched again"))
        page = search_records(s, RecordQuery(**q), with_facets=True)
        assert page.total_exact and page.total == len(ids) == 32 and page.facets.exact
        assert {d["decade"]: d["count"] for d in page.facets.decades} == want_decades
        assert {c["name"]: c["count"] for c in page.facets.collections} == want_cols
        assert page.facets.colorized == {"yes": want_yes, "no": len(ids) - want_yes}
        monkeypatch.setattr(counts, "FACET_EXACT_MAX", 20)  # a hashed share of 8 probed, scaled; decades exact
        monkeypatch.setattr(counts, "FACET_PROBES", 8)
        thin = search_records(s, RecordQuery(**q), with_facets=True)
        assert thin.total == 32 and not thin.facets.exact
        assert {d["decade"]: d["count"] for d in thin.facets.decades} == want_decades
        assert {c["name"]: c["count"] for c in thin.facets.collections}["all"] == 32
        assert thin.facets.colorized["yes"] + thin.facets.colorized["no"] == 32


def test_a_few_matches_seen_are_counted_on_the_way_not_twice(big, monkeypatch):
    """The windows saw 8 matches in 70 records: at that density 34 are expected, more than the
    bound of 32, but 8 matches could as well mean 10. The index path to the page reads every
    match anyway, so it counts them there; the facets then need no second run of the search."""
    import catalog.counts as counts
    import catalog.queries as queries
    import catalog.seek as seek

    monkeypatch.setattr(queries, "WINDOWS", (70,))
    monkeypatch.setattr(seek, "WALK_ON_MAX", 0)  # the page from the index, not by walking on
    q = RecordQuery(year_from=1960, year_to=1969)
    with session_scope(big) as s:
        want = s.scalar(select(func.count()).select_from(_filtered(q, s).subquery()))
        seen = Seen()
        page_ids(s, _filtered(q, s), after=None, before=None, offset=0, limit=51, windows=(70,), seen=seen)
        assert (seen.rows, seen.matches) == (70, 8) and seen.density * N > 32  # the naive expectation
        monkeypatch.setattr(counts, "_tally", lambda *a, **k: pytest.fail("the search was run again"))
        page = search_records(s, q, with_facets=True, exact_max=32)
        assert page.total_exact and page.total == want == 32 and page.facets.exact
        assert sum(d["count"] for d in page.facets.decades) == 32


def test_a_sparse_search_takes_its_index_rather_than_walking_on_when_the_catalogue_is_small(big, monkeypatch):
    """A window of 70 records saw 1 match of 1960-1961 (4 in the 300): the 3 still wanted lie
    some 210 records on, a walk of 520. Even 5 matches in 70 mean at most ~21 in the table,
    which its index reads (and counts) for less than that walk; in a catalogue of ten million
    the same density could mean 700,000 matches, and the page walks on."""
    import catalog.counts as counts
    import catalog.seek as seek

    q = RecordQuery(year_from=1960, year_to=1961)
    with session_scope(big) as s:
        stmt = _filtered(q, s)
        want = list(s.scalars(stmt.with_only_columns(Record.id).order_by(Record.id)))
        assert len(want) == 4
        seen = Seen()
        assert page_ids(s, stmt, after=None, before=None, offset=0, limit=4, windows=(70,), seen=seen,
                        count_up_to=1000) == want
        assert (seen.rows, seen.matches, seen.total) == (70, 1, 4)  # by the index, counted on the way
        for module in (counts, seek):
            monkeypatch.setattr(module, "table_rows", lambda *a, **k: 10_000_000.0)
        seen = Seen()
        assert page_ids(s, stmt, after=None, before=None, offset=0, limit=4, windows=(70,), seen=seen,
                        count_up_to=1000) == want
        assert (seen.rows, seen.total) == (N, 4)  # walked on to the end of the table: every match seen


def test_a_walk_on_that_leaves_the_page_short_counts_on_the_way_through_the_index(big, monkeypatch):
    """Five matches among the first 20 records, two more far on: the walk on (140 records, at the
    density seen) leaves the page short, and the index gives the rest, counting on the way every
    match (those walked past included) with their facets: no sample, no second count after."""
    import catalog.counts as counts
    import catalog.seek as seek

    for module in (counts, seek):  # the density then asks a walk on
        monkeypatch.setattr(module, "table_rows", lambda *a, **k: 3_000.0)
    with session_scope(big) as s:
        every = list(s.scalars(select(Record.id).order_by(Record.id)))
        picked = every[:5] + [every[200], every[290]]
        stmt = _filtered(RecordQuery(ids=picked), s)
        seen = Seen()
        assert page_ids(s, stmt, after=None, before=None, offset=0, limit=10, windows=(20,), seen=seen,
                        count_up_to=1000, facets=True) == picked
        assert (seen.rows, seen.matches) == (160, 5)  # the window and the walk on
        assert seen.total == 7 and seen.tally.total == 7


def test_a_count_past_the_bound_on_the_way_is_exact_all_the_same(big, monkeypatch):
    """The index path to a page reads and sorts every match before its first row comes: when
    counting on the way finds more than the bound, how many match in all comes in the same
    statement. That count is exact (not scaled from a sample, which a few hundred sampled rows
    make rough); so are the facets, grouped and probed in that statement from every match it
    counted (no sample at all); beyond FACET_EXACT_MAX matches the colorized and collection
    facets are probed for a share, and only the decades stay exact. (Here the sample with its own
    search index, asked first, holds too few of the 300 records to say surely more than the bound;
    in a large catalogue it would, and give the estimate instead: tests/test_search_sample.py.)"""
    import catalog.counts as counts
    import catalog.queries as queries
    import catalog.seek as seek

    monkeypatch.setattr(queries, "WINDOWS", (70,))
    monkeypatch.setattr(seek, "WALK_ON_MAX", 0)  # the page from the index, not by walking on
    q = RecordQuery(text="nouă")  # every third record: 24 in the window, 61 at least expected
    real = counts._tally

    def sampled_only(*args, **kwargs):
        assert kwargs.get("percent") is not None, "the search was counted a second time"
        return real(*args, **kwargs)

    with session_scope(big) as s:
        assert s.scalar(select(func.count()).select_from(_filtered(q, s).subquery())) == 100
        monkeypatch.setattr(counts, "_tally", sampled_only)
        page = search_records(s, q, exact_max=64, sample_rows=100)
        assert page.total_exact and page.total == 100 and page.total_label == "100"
        monkeypatch.setattr(counts, "_tally", lambda *a, **k: pytest.fail("searched again, or sampled"))
        faceted = search_records(s, q, with_facets=True, exact_max=64, sample_rows=100)
        assert faceted.total_exact and faceted.total == 100 and faceted.facets.exact
        stmt = _filtered(q, s)
        decade = func.div(func.coalesce(Record.year_lo, Record.year_hi), 10) * 10
        assert {d["decade"]: d["count"] for d in faceted.facets.decades} == dict(
            s.execute(stmt.with_only_columns(decade, func.count()).group_by(decade)).all())
        ids = list(s.scalars(stmt.with_only_columns(Record.id)))
        yes = s.scalar(select(func.count(func.distinct(RecordAsset.record_id)))
                       .where(RecordAsset.record_id.in_(ids), RecordAsset.role == "colorized"))
        assert faceted.facets.colorized == {"yes": yes, "no": 100 - yes}
        monkeypatch.setattr(counts, "FACET_EXACT_MAX", 30)  # 100 matches: a hashed share of 20 probed, scaled
        monkeypatch.setattr(counts, "FACET_PROBES", 20)
        thin = search_records(s, q, with_facets=True, exact_max=64, sample_rows=100)
        assert thin.total_exact and thin.total == 100 and not thin.facets.exact
        assert thin.facets.decades == faceted.facets.decades
        assert thin.facets.colorized["yes"] + thin.facets.colorized["no"] == 100


def test_the_count_past_the_bound_goes_no_further_than_three_times_it(big):
    """Windows that saw no match (the matches come later in id order) say nothing of how many
    there are: counting on the way then goes on to three times its bound and no further (a walk
    of the primary key would otherwise read every match), and beyond that it is an estimate."""
    q = RecordQuery(year_from=1960, year_to=1969)  # 32 matches, none among the first 50 records
    with session_scope(big) as s:
        for bound, exact in ((10, None), (11, 32)):
            seen = Seen()
            ids = page_ids(s, _filtered(q, s), after=None, before=None, offset=0, limit=5, windows=(50,), seen=seen,
                           count_up_to=bound)
            assert (seen.matches, seen.beyond, seen.past_bound, len(ids)) == (0, bound, exact, 5)


@pytest.mark.parametrize("counted_up_to", [200_000, 50])
def test_a_collection_stored_in_a_run_of_blocks_is_estimated_within_a_fifth(big, monkeypatch, counted_up_to):
    """Memberships are stored collection by collection, as harvests add them: a block sample of
    them catches a collection's run of blocks a few times or not at all. Its size is counted
    instead (up to catalog.sizes.COUNT_MAX members) or, when larger, read from the table's statistics;
    the estimate of a search within it is that size times the share of sampled members matching."""
    import catalog.sizes as sizes

    monkeypatch.setattr(sizes, "COUNT_MAX", counted_up_to)
    with session_scope(big) as s:
        ids = list(s.scalars(select(Record.id).order_by(Record.id)))
        add_to_collection(s, "tail", ids[:250])
        s.execute(text("ANALYZE collection_members"))
        for name, truth in (("all", N), ("thirds", 100), ("tail", 250)):
            page = search_records(s, RecordQuery(collection=name), exact_max=20, sample_rows=50)
            assert not page.total_exact and 0.8 * truth <= page.total <= 1.2 * truth, (name, page.total)


def test_collections_and_sources_are_counted_while_cheap_and_estimated_beyond(big, monkeypatch):
    """The lists of collections and sources (the web page's menus, /api/collections, ``arhiva
    sources``) count a group up to catalog.sizes.COUNT_MAX rows and read a larger one from the
    table's statistics, marked as an estimate; a large group the statistics do not know yet (the
    table not analysed since) is counted whole rather than guessed."""
    import catalog.sizes as sizes
    from catalog.queries import list_collections, list_sources

    monkeypatch.setattr(sizes, "COUNT_MAX", 150)
    with session_scope(big) as s:
        add_to_collection(s, "few", list(s.scalars(select(Record.id).order_by(Record.id).limit(40))))
        before = {c["name"]: c for c in list_collections(s)}  # collection_members never analysed
        assert {n: (c["records"], c["records_exact"]) for n, c in before.items()} == {
            "all": (N, True), "thirds": (100, True), "few": (40, True)}
        s.execute(text("ANALYZE collection_members"))
        after = {c["name"]: c for c in list_collections(s)}
        assert after["few"]["records_label"] == "40" and after["few"]["records_exact"]  # 40 < 150 / 2: counted
        assert after["thirds"]["records"] == 100 and not after["thirds"]["records_exact"]  # ANALYZE read every row
        assert not after["all"]["records_exact"] and 0.8 * N <= after["all"]["records"] <= 1.2 * N
        assert after["all"]["records_label"] == f"about {approx(after['all']['records'])}"
        (source,) = list_sources(s)
        assert source["slug"] == "scale" and not source["records_exact"]
        assert 0.8 * N <= source["records"] <= 1.2 * N
        monkeypatch.setattr(sizes, "COUNT_MAX", 1000)
        assert [(c["records"], c["records_exact"]) for c in list_collections(s)] == [(N, True), (40, True), (100, True)]
        assert [(x["records"], x["records_exact"]) for x in list_sources(s)] == [(N, True)]


def test_a_bounded_count_groups_its_facets_and_probes_only_when_within_the_bound(big):
    """A count up to a bound brings its facet groups in the same statement, so a count that
    stays within needs no second pass; when the bound is reached the matches are more than were
    counted, so nothing is probed (the facets then come from a sample), only the decades grouped."""
    from catalog.counts import _tally

    q = RecordQuery(text="veche")  # two records in three: 200 of the 300
    with session_scope(big) as s:
        stmt = _filtered(q, s)
        within = _tally(s, stmt, limit=201, with_facets=True)
        assert within.total == 200 and within.picked == 200
        assert within.by_collection[s.scalar(select(Collection.id).where(Collection.name == "all"))] == 200
        reached = _tally(s, stmt, limit=150, with_facets=True)
        assert reached.total == 150 and sum(reached.by_decade.values()) == 150
        assert reached.picked == 0 and reached.by_collection == {}


def test_a_search_reads_the_tables_size_once_and_the_next_search_anew(big):
    """The sampled count and facets ask how large the records table is in several places (which
    path, the sample's share, the estimate, its low end): one statement per search; a later search
    in the same session sees the table as it is then."""
    with statements_run(big, "FROM pg_class WHERE oid") as sizes, session_scope(big) as s:
        first = search_records(s, RecordQuery(), with_facets=True, **SMALL)
        assert not first.total_exact and 0.5 * N <= first.total <= 1.5 * N
        assert len(sizes) == 1, sizes
        sid = get_or_create_source(s, "scale", "folder").id
        upsert_records(s, sid, [rec(i) for i in range(N, 3 * N)])  # the table triples
        s.flush()
        later = search_records(s, RecordQuery(), with_facets=True, **SMALL)
        assert not later.total_exact and 1.5 * N <= later.total <= 4.5 * N, later.total
        assert len(sizes) == 2


def test_a_bounded_count_gets_memory_for_exact_bitmaps_but_never_less_than_the_server_gives(clean_db):
    """A bounded count through the bitmaps runs with work_mem of at least 32 MB (with 4 MB its
    candidates' bitmap went lossy at ~80,000 records, every row of a page tested again), then as
    before; a server or session that gives more keeps it; other statements keep the default."""
    from catalog.counts import _planner, _ways, quick_settings

    with session_scope(clean_db) as s:
        s.execute(text("SET LOCAL work_mem = '4MB'"))
        with quick_settings(s), _planner(s, **_ways(sampled=False, limited=True)):
            assert s.scalar(text("SHOW work_mem")) == "32MB" and s.scalar(text("SHOW enable_seqscan")) == "off"
        assert s.scalar(text("SHOW work_mem")) == "4MB" and s.scalar(text("SHOW enable_seqscan")) == "on"
        with quick_settings(s), _planner(s, **_ways(sampled=True, limited=False)):
            assert s.scalar(text("SHOW work_mem")) == "4MB"  # more would let the planner hash every link
        s.execute(text("SET LOCAL work_mem = '256MB'"))
        with _planner(s, **_ways(sampled=False, limited=True)):
            assert s.scalar(text("SHOW work_mem")) == "256MB"
        assert s.scalar(text("SHOW work_mem")) == "256MB"
