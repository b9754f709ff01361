"""Each record's collections on its row and as ``~k<id>`` tokens in its search vector (migration
0017): kept equal to ``collection_members`` whoever writes it, written with a new record's row by
the loader, and what a search within a collection and more finds through the search index."""
from __future__ import annotations

from sqlalchemy import create_engine, func, select, text

from catalog import migrate
from catalog.db import session_scope
from catalog.ingest import RecordIn, add_to_collection, bulk_upsert, get_or_create_source, upsert_records
from catalog.models import Collection, CollectionMember, Record
from catalog.queries import RecordQuery, search_records
from tests.conftest import create_database, database_url, drop_database


def _recs(prefix: str, n: int, **kw) -> list[RecordIn]:
    return [RecordIn(f"{prefix}{i:03d}", title=f"Strada {i} veche", year_lo=1890 + i % 30, year_hi=1890 + i % 30,
                     **kw) for i in range(n)]


def _drift(conn) -> list:
    """Records whose row's collections differ from their memberships, or whose vector's tokens do."""
    return conn.execute(text(
        "SELECT r.source_key, r.collections, arhiva_member_collections(r.id) FROM records r "
        "WHERE r.collections IS DISTINCT FROM arhiva_member_collections(r.id) "
        "OR NOT r.search @@ coalesce(nullif(array_to_string(ARRAY(SELECT '''~k' || c || '''' FROM unnest(r.collections) c), "
        "' & '), ''), '''~none''')::tsquery AND r.collections <> '{}' "
        "OR (SELECT count(*) FROM unnest(tsvector_to_array(r.search)) l WHERE l LIKE '~k%') <> cardinality(r.collections)"
    )).all()


def _ids(engine, name: str) -> dict[str, list[int]]:
    with engine.connect() as conn:
        cid = conn.execute(select(Collection.id).where(Collection.name == name)).scalar()
        return {k: c for k, c in conn.execute(select(Record.source_key, Record.collections)
                                               .where(Record.collections.contains([cid])).order_by(Record.source_key))}


def test_a_loaded_record_carries_its_collection_on_its_row_without_a_second_write(clean_db):
    counters = text("SELECT n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
                    "WHERE relid = 'records'::regclass")
    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "c", "folder").id
        # PostgreSQL 15 adds the connection's earlier transactions not yet reported to these
        # counters: what this load wrote is what they gained within its transaction
        before = s.execute(counters).one()
        upsert_records(s, sid, _recs("a", 40), collection="gara")
        # the records of this load were inserted, never updated (the trigger found them in it)
        written = tuple(b - a for a, b in zip(before, s.execute(counters).one()))
        assert written == (40, 0, 0), written
    report = bulk_upsert(clean_db, sid, _recs("b", 30), collection="gara", transaction_size=7, workers=2)
    assert report.new == 30
    with clean_db.connect() as conn:
        assert _drift(conn) == []
        assert conn.execute(text("SELECT count(*) FROM records WHERE collections = "
                                 "ARRAY[(SELECT id FROM collections WHERE name = 'gara')]")).scalar() == 70


def test_the_rows_follow_every_change_of_membership(clean_db):
    """Records joining a second collection (a changed payload, an unchanged one, by hand), leaving
    one (the web API's removal), and a collection deleted: each record's row and search vector say
    exactly its memberships, its collections sorted."""
    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "c", "folder").id
        upsert_records(s, sid, _recs("a", 20), collection="zeta")
        changed = _recs("a", 10)
        changed[0] = RecordIn("a000", title="Alt titlu", year_lo=1901, year_hi=1901)
        upsert_records(s, sid, changed, collection="alfa")  # unchanged and changed records join 'alfa'
        ids = {r.source_key: r.id for r in s.scalars(select(Record))}
        add_to_collection(s, "beta", [ids["a015"], ids["a016"]])
    with clean_db.connect() as conn:
        assert _drift(conn) == []
    zeta, alfa, beta = (_ids(clean_db, n) for n in ("zeta", "alfa", "beta"))
    assert len(zeta) == 20 and sorted(alfa) == [f"a{i:03d}" for i in range(10)] and sorted(beta) == ["a015", "a016"]
    assert alfa["a003"] == sorted(alfa["a003"]) and len(alfa["a003"]) == 2
    with session_scope(clean_db) as s:
        s.execute(CollectionMember.__table__.delete().where(CollectionMember.record_id == ids["a003"],
                                                            CollectionMember.collection_id == select(Collection.id)
                                                            .where(Collection.name == "zeta").scalar_subquery()))
        s.execute(text("UPDATE collection_members SET collection_id = (SELECT id FROM collections WHERE name = 'beta') "
                       "WHERE record_id = :r AND collection_id = (SELECT id FROM collections WHERE name = 'zeta')"),
                  {"r": ids["a004"]})
    with clean_db.connect() as conn:
        assert _drift(conn) == []
    assert "a003" not in _ids(clean_db, "zeta") and "a004" in _ids(clean_db, "beta")
    with session_scope(clean_db) as s:
        s.execute(text("DELETE FROM collections WHERE name = 'alfa'"))  # its memberships go by cascade
    with clean_db.connect() as conn:
        assert _drift(conn) == []
        assert conn.execute(text("SELECT count(*) FROM records WHERE collections = '{}'")).scalar() == 1  # a003
    with session_scope(clean_db) as s:
        q = RecordQuery(collection="zeta", year_from=1890, year_to=1899, limit=100)
        got = search_records(s, q, count="exact")
        # 1890s: a000-a009, less a000 (now of 1901), a003 (left) and a004 (moved to 'beta')
        assert [r.source_key for r in got.items] == [f"a{i:03d}" for i in (1, 2, 5, 6, 7, 8, 9)]
        assert got.total == len(got.items) and got.total_exact


def test_a_search_within_a_collection_and_more_meets_it_in_the_search_index(clean_db):
    """A collection with years and words: through the search index (the collection's token beside
    theirs), tested on the row (never a probe of the memberships), the same records as the truth
    by the memberships, on every page."""
    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "c", "folder").id
        ids = upsert_records(s, sid, _recs("a", 300), collection="toate").ids
        add_to_collection(s, "unele", [i for k, i in ids.items() if int(k[1:]) % 4 == 0])
        from catalog.queries import _filtered
        q = RecordQuery(collection="unele", year_from=1895, year_to=1905, text="veche", limit=7)
        stmt = _filtered(q, s).compile(dialect=s.get_bind().dialect)
        assert "collection_members" not in str(stmt) and any("~k" in str(v) for v in stmt.params.values())
        truth = sorted(s.scalars(
            select(Record.id).join(CollectionMember, CollectionMember.record_id == Record.id)
            .join(Collection, Collection.id == CollectionMember.collection_id)
            .where(Collection.name == "unele", Record.year_lo.between(1895, 1905))))
        seen, after = [], None
        while True:
            page = search_records(s, RecordQuery(collection="unele", year_from=1895, year_to=1905, text="veche",
                                                 limit=7, after=after), exact_max=1000)
            assert page.total == len(truth) and page.total_exact
            seen += [r.id for r in page.items]
            after = page.next_after
            if after is None:
                break
        assert seen == truth and len(truth) == 25


def test_0017_fills_the_rows_of_a_catalogue_stored_before_it_and_goes_down_cleanly():
    name = create_database("arhiva_mig")
    engine = create_engine(database_url(name))

    def tokens(conn) -> int:
        return conn.execute(text("SELECT count(*) FROM records r, unnest(tsvector_to_array(r.search)) l "
                                 "WHERE l LIKE '~k%'")).scalar()

    try:
        migrate.upgrade(engine, "0016")
        with session_scope(engine) as s:
            sid = get_or_create_source(s, "m", "folder").id
            ids = upsert_records(s, sid, _recs("a", 12)).ids
            for n, picked in (("una", [0, 1, 2, 3]), ("alta", [2, 3, 4])):
                cid = s.execute(text("INSERT INTO collections (name) VALUES (:n) RETURNING id"), {"n": n}).scalar()
                s.execute(text("INSERT INTO collection_members (collection_id, record_id) SELECT :c, unnest(CAST(:r AS bigint[]))"),
                          {"c": cid, "r": [ids[f"a{i:03d}"] for i in picked]})
        migrate.upgrade(engine, "0017")
        with engine.connect() as conn:
            assert _drift(conn) == [] and tokens(conn) == 7
            assert conn.execute(text("SELECT count(*) FROM records WHERE cardinality(collections) = 2")).scalar() == 2
            assert conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_records_word_place_keys'")).scalar()
        migrate.downgrade(engine, "0016")
        with engine.begin() as conn:
            assert tokens(conn) == 0
            assert conn.execute(text("SELECT count(*) FROM information_schema.columns WHERE table_name = 'records' "
                                     "AND column_name = 'collections'")).scalar() == 0
            assert conn.execute(text("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'arhiva_members_%'")).scalar() == 0
            assert conn.execute(text("SELECT to_regclass('ix_records_search')")).scalar() is not None
            conn.execute(text("INSERT INTO collection_members SELECT (SELECT id FROM collections WHERE name = 'una'), "
                              "max(id) FROM records"))  # no trigger left behind
        migrate.upgrade(engine)
        with engine.connect() as conn:
            assert _drift(conn) == [] and tokens(conn) == 8
            assert conn.execute(select(func.count()).select_from(Record)).scalar() == 12
    finally:
        engine.dispose()
        drop_database(name)


def test_two_writers_adding_a_record_to_two_collections_at_once_both_stay(clean_db):
    """The second writer waits for the first's row and adds to what it wrote (a list recomputed
    from what each statement saw would lose the other's collection)."""
    import threading

    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "c", "folder").id
        rid = upsert_records(s, sid, _recs("a", 1)).ids["a000"]
        for name in ("una", "alta"):
            s.add(Collection(name=name))
    with clean_db.connect() as conn:
        cids = dict(conn.execute(select(Collection.name, Collection.id)).all())
    first, second = clean_db.connect(), clean_db.connect()
    try:
        first.execute(CollectionMember.__table__.insert().values(collection_id=cids["una"], record_id=rid))
        done = threading.Event()

        def other() -> None:
            second.execute(CollectionMember.__table__.insert().values(collection_id=cids["alta"], record_id=rid))
            second.commit()
            done.set()

        t = threading.Thread(target=other)
        t.start()
        assert not done.wait(1.0)  # waiting for the first writer's row
        first.commit()
        t.join(20)
        assert done.is_set()
    finally:
        first.close()
        second.close()
    with clean_db.connect() as conn:
        assert conn.execute(select(Record.collections).where(Record.id == rid)).scalar() == sorted(cids.values())
        assert _drift(conn) == []


def test_a_membership_rewritten_unchanged_leaves_the_record_alone_and_a_truncate_empties_the_lists(clean_db):
    """An UPDATE of the memberships that changes no record's list writes no record (its row, its
    search vector and both GIN indexes would be written again for nothing); TRUNCATE, which fires
    no delete trigger, still empties every record's list."""
    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "c", "folder").id
        upsert_records(s, sid, _recs("a", 5), collection="una")
    with clean_db.connect() as conn:
        before = conn.execute(text("SELECT id, xmin::text FROM records ORDER BY id")).all()
    with session_scope(clean_db) as s:
        s.execute(text("UPDATE collection_members SET collection_id = collection_id"))
        s.execute(text("INSERT INTO collection_members SELECT collection_id, record_id FROM collection_members "
                       "ON CONFLICT (collection_id, record_id) DO UPDATE SET record_id = excluded.record_id"))
    with clean_db.connect() as conn:
        assert conn.execute(text("SELECT id, xmin::text FROM records ORDER BY id")).all() == before
    with session_scope(clean_db) as s:
        s.execute(text("TRUNCATE collection_members"))
    with clean_db.connect() as conn:
        assert _drift(conn) == []
        assert conn.execute(text("SELECT count(*) FROM records WHERE collections = '{}'")).scalar() == 5


def test_a_load_that_stores_nothing_leaves_no_collection_behind(clean_db):
    """The collection is made before the records (their rows name it), and goes again when every
    record was refused, in one transaction or over several connections; one that stored records
    stays, as does one that was there before."""
    bad = [RecordIn(f"x{i}", title="t", year_lo=1950, year_hi=1900) for i in range(3)]  # years the wrong way round
    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "c", "folder").id
        assert upsert_records(s, sid, bad, collection="nimic").rejected
        s.add(Collection(name="veche"))
    assert bulk_upsert(clean_db, sid, bad, collection="tot-nimic").rejected
    assert bulk_upsert(clean_db, sid, bad, collection="veche").rejected
    assert bulk_upsert(clean_db, sid, _recs("a", 3), collection="ceva").new == 3
    with clean_db.connect() as conn:
        assert conn.execute(select(Collection.name).order_by(Collection.name)).scalars().all() == ["ceva", "veche"]


def test_the_web_api_adding_members_runs_again_when_a_writer_of_the_same_records_deadlocks_it(clean_db):
    """A writer holding a record the API's new members name, then adding one of those members
    itself (as a load into the same collection does), deadlocks with the API's request; PostgreSQL
    breaks the request's transaction off, and the request runs again once the writer is done: 200
    and both members, never a 500."""
    import threading
    import time

    import psycopg
    from fastapi.testclient import TestClient

    from catalog.settings import Settings
    from catalog.web import create_app

    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "c", "folder").id
        ids = sorted(upsert_records(s, sid, _recs("a", 2), collection="fav").ids.values())
        s.execute(CollectionMember.__table__.delete())
    r1, r2 = ids
    url = clean_db.url.render_as_string(hide_password=False).replace("+psycopg", "")
    with psycopg.connect(url) as writer, TestClient(create_app(clean_db, Settings(web_token="tok"))) as client:
        writer.execute("SET deadlock_timeout = '30s'")  # the request is the one PostgreSQL breaks off
        writer.execute("SELECT 1 FROM records WHERE id = %s FOR UPDATE", (r2,))
        answer = {}
        request = threading.Thread(target=lambda: answer.update(r=client.post(
            "/api/collections/fav/records", json={"record_ids": [r1, r2]}, headers={"Authorization": "Bearer tok"})))
        request.start()
        with psycopg.connect(url, autocommit=True) as watch:
            for _ in range(200):
                if watch.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                 "AND datname = current_database()").fetchone()[0]:
                    break
                time.sleep(0.05)
        writer.execute("INSERT INTO collection_members (collection_id, record_id) "
                       "SELECT id, %s FROM collections WHERE name = 'fav'", (r1,))  # waits: the deadlock
        writer.commit()
        request.join(30)
    assert answer["r"].status_code == 200, answer["r"].text
    with clean_db.connect() as conn:
        assert sorted(conn.execute(select(CollectionMember.record_id)).scalars()) == [r1, r2]
        assert _drift(conn) == []


def test_a_crawl_batch_broken_off_by_a_deadlock_is_written_again_and_its_refusals_logged_once(clean_db, monkeypatch):
    """A crawl's batch is one transaction: broken off to end a deadlock, it is written again (it
    was lost until the next crawl), and a record it refuses is logged once, not once an attempt."""
    import psycopg

    import crawlers.store as store
    from catalog.runs import activity
    from crawlers.items import RecordItem
    from crawlers.runlog import RunLog

    class Stats(dict):  # what the run log needs of Scrapy's stats collector
        def inc_value(self, key, n=1):
            self[key] = self.get(key, 0) + n

    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "c", "folder").id
    real, calls = store.upsert_records, []

    def deadlocked_once(*args, **kwargs):
        calls.append(1)
        got = real(*args, **kwargs)
        if len(calls) == 1:
            raise psycopg.errors.DeadlockDetected("deadlock detected")
        return got

    monkeypatch.setattr(store, "upsert_records", deadlocked_once)
    stats = Stats()
    with activity("crawl", "test", engine=clean_db, source_id=sid) as run:
        crawl = store.CrawlStore(clean_db, sid, run.id, collection="c", runlog=RunLog(stats))
        counts = crawl.write([RecordItem("k1", record=RecordIn("k1", title="Gara")),
                              RecordItem("k2", record=RecordIn("k2", title="Rău", year_lo=1950, year_hi=1900))])
    assert len(calls) == 2 and counts["records/new"] == 1 and counts["records/rejected"] == 1
    assert stats.get("arhiva/errors/record_rejected") == 1 and not stats.get("arhiva/errors/catalogue_write")
    assert list(_ids(clean_db, "c")) == ["k1"]
