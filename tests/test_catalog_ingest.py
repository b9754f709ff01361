"""The ingestion API: idempotent upserts, revisions, rejections, withdrawal, concurrency."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from catalog.db import session_scope
from catalog.ingest import RecordIn, bulk_upsert, get_or_create_source, upsert_records, withdraw_records
from catalog.models import CollectionMember, Record, RecordRevision
from catalog.runs import activity


def _batch(n=5, title="Strada Armenească"):
    return [RecordIn(source_key=f"k{i}", title=f"{title} {i}", date_text="1935", year_lo=1935, year_hi=1935,
                     lat=47.02, lon=28.83, raw={"cid": i, "title": f"{title} {i}"}) for i in range(n)]


def _source(engine):
    with session_scope(engine) as s:
        return get_or_create_source(s, "test", "folder").id


def _count(engine, model):
    with session_scope(engine) as s:
        return s.scalar(select(func.count()).select_from(model))


def test_same_batch_twice_gives_same_rows_and_no_new_revision(clean_db):
    sid = _source(clean_db)
    with session_scope(clean_db) as s:
        first = upsert_records(s, sid, _batch(), collection="moldova")
    with session_scope(clean_db) as s:
        rows_before = {r.source_key: (r.id, r.payload_hash, r.first_seen_at)
                       for r in s.execute(select(Record)).scalars()}
    with session_scope(clean_db) as s:
        second = upsert_records(s, sid, _batch(), collection="moldova")
    assert (first.new, first.changed, first.unchanged) == (5, 0, 0)
    assert (second.new, second.changed, second.unchanged) == (0, 0, 5)
    assert second.ids == first.ids
    with session_scope(clean_db) as s:
        rows_after = {r.source_key: (r.id, r.payload_hash, r.first_seen_at)
                      for r in s.execute(select(Record)).scalars()}
    assert rows_after == rows_before
    assert _count(clean_db, RecordRevision) == 5
    assert _count(clean_db, CollectionMember) == 5


def test_changed_payload_adds_exactly_one_revision_and_keeps_the_old(clean_db):
    sid = _source(clean_db)
    with activity("crawl", "test", engine=clean_db, source_id=sid) as run1, session_scope(clean_db) as s:
        upsert_records(s, sid, _batch(), run_id=run1.id)
    batch = _batch()
    batch[2].title = "Strada Armenească (corectat)"
    batch[2].raw = {"cid": 2, "title": "corectat"}
    with activity("crawl", "test", engine=clean_db, source_id=sid) as run2, session_scope(clean_db) as s:
        report = upsert_records(s, sid, batch, run_id=run2.id)
    assert (report.new, report.changed, report.unchanged) == (0, 1, 4)
    assert report.changed_keys == ["k2"]
    with session_scope(clean_db) as s:
        rec = s.execute(select(Record).where(Record.source_key == "k2")).scalar_one()
        revs = s.execute(select(RecordRevision).where(RecordRevision.record_id == rec.id)
                         .order_by(RecordRevision.revision)).scalars().all()
        assert [r.revision for r in revs] == [1, 2]
        assert revs[0].raw == {"cid": 2, "title": "Strada Armenească 2"} and revs[0].run_id == run1.id
        assert revs[1].raw == {"cid": 2, "title": "corectat"} and revs[1].run_id == run2.id
        # each revision keeps the fields as mapped at the time, exactly as the harvester gave them
        assert revs[0].fields == _batch()[2].mapped() and revs[1].fields == batch[2].mapped()
        assert rec.title == "Strada Armenească (corectat)"
        assert rec.first_seen_run_id == run1.id and rec.last_seen_run_id == run2.id
        other = s.execute(select(Record).where(Record.source_key == "k0")).scalar_one()
        assert other.first_seen_run_id == run1.id and other.last_seen_run_id == run2.id
        assert other.last_seen_at >= other.first_seen_at
    assert _count(clean_db, RecordRevision) == 6


def test_history_keeps_each_replaced_payload_with_the_runs_that_saw_and_replaced_it(clean_db):
    """A new record writes no history (it is its own first revision); each change moves the
    payload it replaces into record_history, and the view record_revisions numbers them all, the
    current payload last, each with the run that first saw it. The awkward record's fields come
    back as the harvester gave them, from the history and from the record alike."""
    from catalog.models import RecordHistory

    sid = _source(clean_db)
    versions = [RecordIn(source_key="k\\1", title=f"Strada \"Mare\"\tș щ 😀 v{v}", year_lo=1940, year_hi=1949,
                         lat=47.0245, lon=-0.0, raw={"b": [1.5, None, True], "a": "x\\u0000y", "v": v},
                         extra={"q": "\\"}) for v in (1, 2, 3)]
    runs = []
    for rec in [versions[0], versions[0], versions[1], versions[1], versions[2]]:
        with activity("crawl", "test", engine=clean_db, source_id=sid) as run, session_scope(clean_db) as s:
            upsert_records(s, sid, [rec], run_id=run.id)
        runs.append(run.id)
        if rec is versions[0]:
            assert _count(clean_db, RecordHistory) == 0
    with session_scope(clean_db) as s:
        rec = s.execute(select(Record)).scalar_one()
        history = s.execute(select(RecordHistory).order_by(RecordHistory.revision)).scalars().all()
        revs = s.execute(select(RecordRevision).where(RecordRevision.record_id == rec.id)
                         .order_by(RecordRevision.revision)).scalars().all()
    assert [(h.revision, h.run_id, h.replaced_run_id) for h in history] == [(1, runs[0], runs[2]), (2, runs[2], runs[4])]
    assert history[0].replaced_at == history[1].seen_at
    assert [(r.revision, r.run_id) for r in revs] == [(1, runs[0]), (2, runs[2]), (3, runs[4])]
    assert [r.fields for r in revs] == [v.mapped() for v in versions]
    assert [r.raw for r in revs] == [v.raw for v in versions]
    assert [r.payload_hash for r in revs] == [v.payload_hash() for v in versions]
    assert revs[0].seen_at == rec.first_seen_at and revs[2].seen_at == history[1].replaced_at
    with session_scope(clean_db) as s:  # a record's history goes with it
        s.execute(text("DELETE FROM records"))
    assert _count(clean_db, RecordHistory) == 0 and _count(clean_db, RecordRevision) == 0


def test_bad_records_are_rejected_by_name_and_field_and_good_ones_stored(clean_db):
    sid = _source(clean_db)
    batch = _batch(3) + [
        RecordIn(source_key="", title="no key"),
        RecordIn(source_key="years", year_lo=1950, year_hi=1940),
        RecordIn(source_key="lat", lat=91.0, lon=28.0),
        RecordIn(source_key="lon", lat=47.0, lon=-180.5),
    ]
    with session_scope(clean_db) as s:
        report = upsert_records(s, sid, batch)
    assert report.new == 3
    msgs = sorted(str(r) for r in report.rejected)
    assert len(msgs) == 4
    assert any("source_key" in m and "missing" in m for m in msgs)
    assert any("'years'" in m and "year_lo" in m for m in msgs)
    assert any("'lat'" in m and "lat 91.0" in m for m in msgs)
    assert any("'lon'" in m and "lon -180.5" in m for m in msgs)
    assert _count(clean_db, Record) == 3


def test_withdrawn_records_are_kept_and_come_back_when_seen_again(clean_db):
    sid = _source(clean_db)
    with session_scope(clean_db) as s:
        upsert_records(s, sid, _batch())
    with session_scope(clean_db) as s:
        assert withdraw_records(s, sid, ["k1", "k3", "nope"]) == 2
        assert withdraw_records(s, sid, ["k1"]) == 0
    with session_scope(clean_db) as s:
        statuses = dict(s.execute(select(Record.source_key, Record.status)).all())
    assert statuses == {"k0": "active", "k1": "withdrawn", "k2": "active", "k3": "withdrawn", "k4": "active"}
    with session_scope(clean_db) as s:
        upsert_records(s, sid, _batch()[1:2])
        assert s.execute(select(Record.status).where(Record.source_key == "k1")).scalar_one() == "active"
    assert _count(clean_db, Record) == 5


def test_duplicate_key_in_one_batch_keeps_the_last(clean_db):
    sid = _source(clean_db)
    batch = _batch(2) + [RecordIn(source_key="k0", title="later", raw={"v": 2})]
    with session_scope(clean_db) as s:
        report = upsert_records(s, sid, batch)
        assert report.new == 2
        assert s.execute(select(Record.title).where(Record.source_key == "k0")).scalar_one() == "later"


def test_two_connections_upserting_the_same_keys_neither_fail_nor_duplicate(clean_db):
    sid = _source(clean_db)
    batch = _batch(400)
    errors: list[BaseException] = []
    reports = []
    barrier = threading.Barrier(2)

    def work():
        try:
            barrier.wait()
            with session_scope(clean_db) as s:
                reports.append(upsert_records(s, sid, batch, batch_size=50))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(r.new for r in reports) == [0, 400]
    assert sum(r.unchanged for r in reports) == 400
    assert _count(clean_db, Record) == 400
    assert _count(clean_db, RecordRevision) == 400


@pytest.mark.parametrize("other", ["same payload", "other payload", "rolled back"])
def test_a_key_another_writer_stores_during_the_upsert_is_merged_not_failed(clean_db, other):
    """New keys are COPYed straight in; one that another transaction inserts after the lookup
    makes the COPY wait and then fail, and the chunk is merged instead: no error, no duplicate."""
    sid = _source(clean_db)
    batch = _batch(5)
    theirs = _batch(5)[3] if other != "other payload" else RecordIn(source_key="k3", title="theirs", raw={"x": 1})
    with Session(clean_db) as holder:  # stores k3 and holds it uncommitted
        upsert_records(holder, sid, [theirs])
        outcome: list = []

        def ours():
            try:
                with session_scope(clean_db) as s:
                    outcome.append(upsert_records(s, sid, batch))
            except BaseException as exc:  # noqa: BLE001 - checked below
                outcome.append(exc)

        worker = threading.Thread(target=ours, daemon=True)
        worker.start()
        _wait_for_a_lock_wait(clean_db)
        holder.rollback() if other == "rolled back" else holder.commit()
        worker.join(30)
    assert len(outcome) == 1 and not isinstance(outcome[0], BaseException), outcome
    report = outcome[0]
    counts = {"same payload": (4, 0, 1), "other payload": (4, 1, 0), "rolled back": (5, 0, 0)}[other]
    assert (report.new, report.changed, report.unchanged) == counts
    assert _count(clean_db, Record) == 5
    with session_scope(clean_db) as s:
        rec = s.execute(select(Record).where(Record.source_key == "k3")).scalar_one()
        assert rec.title == batch[3].title and report.ids["k3"] == rec.id
        revisions = s.scalars(select(RecordRevision.revision).where(RecordRevision.record_id == rec.id)
                              .order_by(RecordRevision.revision)).all()
    assert revisions == ([1, 2] if other == "other payload" else [1])
    assert _count(clean_db, RecordRevision) == (6 if other == "other payload" else 5)


def _wait_for_a_lock_wait(engine, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                        "AND wait_event_type = 'Lock'")).scalar_one()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.05)
    raise AssertionError("the upsert never waited for the other writer's key")


def test_awkward_text_is_stored_exactly_and_unstorable_records_are_rejected_alone(clean_db):
    sid = _source(clean_db)
    tricky = "Tab\there, new\nline, back\\slash, \\N, CR\r and \"quotes\" — Кишинёв"
    batch = [
        RecordIn(source_key="tricky\tkey\\", title=tricky, description="\\.", raw={"note": tricky, "n": 1.5e-7}),
        RecordIn(source_key="huge-int", title="x", raw={"id": 2**70}),
        RecordIn(source_key="nul-raw", title="x", raw={"t": "a\x00b"}),
        RecordIn(source_key="surrogate", title="bad \ud800 text"),
        RecordIn(source_key="direction", direction="north-north-west-ish, roughly"),
        RecordIn(source_key="escaped-nul", title="ok", raw={"t": "literal \\u0000 text"}),
    ]
    with session_scope(clean_db) as s:
        report = upsert_records(s, sid, batch)
    assert report.new == 2
    rejected = {r.source_key: r.field for r in report.rejected}
    assert rejected == {"huge-int": "raw", "nul-raw": "raw", "surrogate": "title", "direction": "direction"}
    with session_scope(clean_db) as s:
        rec = s.execute(select(Record).where(Record.source_key == "tricky\tkey\\")).scalar_one()
        assert (rec.title, rec.description, rec.raw) == (tricky, "\\.", {"note": tricky, "n": 1.5e-7})
        assert s.execute(select(Record.raw).where(Record.source_key == "escaped-nul")).scalar_one() == \
            {"t": "literal \\u0000 text"}
    # the same records again: nothing changes (hashes are stable through the COPY escaping)
    with session_scope(clean_db) as s:
        again = upsert_records(s, sid, batch)
    assert (again.new, again.changed, again.unchanged) == (0, 0, 2)


def test_bulk_upsert_spreads_slices_over_connections_and_reruns_are_idempotent(clean_db):
    sid = _source(clean_db)
    batch = _batch(230) + [RecordIn(source_key="bad", year_lo=1990, year_hi=1980)]
    seen: list[int] = []
    report = bulk_upsert(clean_db, sid, batch, workers=3, transaction_size=40, batch_size=15,
                         collection="bulk", progress=seen.append)
    assert (report.new, report.changed, report.unchanged) == (230, 0, 0)
    assert [str(r) for r in report.rejected] == ["record 'bad': year_lo: year_lo 1990 is after year_hi 1980"]
    assert sum(seen) == 231 and len(seen) == 6
    assert len(report.ids) == 230 and len(set(report.ids.values())) == 230
    assert _count(clean_db, Record) == 230 and _count(clean_db, RecordRevision) == 230
    assert _count(clean_db, CollectionMember) == 230
    changed = _batch(230)
    changed[7].title = "schimbat"
    again = bulk_upsert(clean_db, sid, changed, workers=2, transaction_size=50)
    assert (again.new, again.changed, again.unchanged) == (0, 1, 229)
    assert again.ids == report.ids
    assert _count(clean_db, RecordRevision) == 231


def test_bulk_upsert_failure_keeps_committed_slices_and_a_rerun_finishes(clean_db, monkeypatch):
    import catalog.ingest as ingest

    sid = _source(clean_db)
    batch = _batch(100)
    real = ingest._store_prepared
    calls = {"n": 0}

    def flaky(session, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("connection lost")
        return real(session, *args, **kwargs)

    monkeypatch.setattr(ingest, "_store_prepared", flaky)
    try:
        bulk_upsert(clean_db, sid, batch, workers=1, transaction_size=20)
    except RuntimeError as exc:
        assert "connection lost" in str(exc)
    else:
        raise AssertionError("the failure must be raised")
    assert _count(clean_db, Record) == 40  # two slices committed, nothing half-written
    monkeypatch.setattr(ingest, "_store_prepared", real)
    rerun = bulk_upsert(clean_db, sid, batch, workers=2, transaction_size=20)
    assert (rerun.new, rerun.unchanged) == (60, 40)
    assert _count(clean_db, Record) == 100 and _count(clean_db, RecordRevision) == 100


def test_bulk_upsert_with_several_workers_stops_them_all_on_a_failure(clean_db, monkeypatch):
    import catalog.ingest as ingest

    sid = _source(clean_db)
    real = ingest._store_prepared
    calls = {"n": 0}
    lock = threading.Lock()

    def flaky(session, *args, **kwargs):
        with lock:
            calls["n"] += 1
            n = calls["n"]
        if n == 2:
            raise RuntimeError("disk full")
        return real(session, *args, **kwargs)

    monkeypatch.setattr(ingest, "_store_prepared", flaky)
    done = threading.Event()
    outcome: list[BaseException] = []

    def run():
        try:
            bulk_upsert(clean_db, sid, _batch(300), workers=3, transaction_size=10)
        except BaseException as exc:  # noqa: BLE001 - checked below
            outcome.append(exc)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(60), "bulk_upsert hung after a worker failed"
    assert len(outcome) == 1 and "disk full" in str(outcome[0])
    assert calls["n"] < 30  # the others stopped taking slices
    assert _count(clean_db, Record) % 10 == 0  # whole slices only


def test_payload_hash_and_copy_rows_are_byte_for_byte_those_of_earlier_versions():
    """A re-harvest must find a record unchanged whichever version of arhiva stored it: the
    payload hash (and the COPY rows) of an awkward record are pinned as the str-based
    serialisation of earlier versions made them (backslashes, tab, emoji, volatile path,
    escaped NUL text, -0.0)."""
    from catalog.records_in import copy_chunk

    rec = RecordIn(source_key="k\\1", title="Strada \"Mare\"\tș щ 😀", year_lo=1940, year_hi=1949, lat=47.0245,
                   lon=-0.0, raw={"b": [1.5, None, True], "a": "x\\u0000y", "n": {"views": 7}}, extra={"q": "\\"},
                   volatile=("n.views",))
    digest = "347d0079cf3d653290060a8963ad4e26a37edb498f3c411dcbc5262c36603b10"
    chunk = copy_chunk([rec])
    assert rec.payload_hash() == digest and chunk.hashes == {"k\\1": digest}
    assert chunk.lines == [
        b'k\\\\1\tStrada "Mare"\\t\xc8\x99 \xd1\x89 \xf0\x9f\x98\x80\t\\N\t\\N\t1940\t1949\t\\N\t47.0245\t-0.0'
        b'\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t{"q":"\\\\\\\\"}\t{"a":"x\\\\\\\\u0000y","b":[1.5,null,true],'
        b'"n":{"views":7}}\t' + digest.encode()]


def test_copy_rows_escape_any_text_as_postgresql_reads_it_back(clean_db):
    """The COPY line's fast path (no escaping when the text has nothing to escape) and its slow
    path give the cells PostgreSQL reads back as the very values given, for any text."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from catalog.records_in import _copy_line, _copy_value

    texts = st.one_of(st.none(), st.text(alphabet=st.characters(blacklist_characters="\x00",
                                                                blacklist_categories=("Cs",)), max_size=12))

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(key=st.text(min_size=1, max_size=8).filter(lambda k: "\x00" not in k and k.strip()
                                                       and all(not 0xD800 <= ord(c) <= 0xDFFF for c in k)),
           values=st.tuples(texts, texts, st.one_of(st.none(), st.integers(-9999, 9999)),
                            st.one_of(st.none(), st.floats(-90, 90, allow_nan=False))))
    def check(key, values):
        line = _copy_line(key, values)
        assert line == "\t".join(map(_copy_value, (key, *values))).encode("utf-8")
        with clean_db.connect() as conn:
            raw = conn.connection.driver_connection
            with raw.cursor() as cur:
                cur.execute("CREATE TEMP TABLE IF NOT EXISTS copy_back (k text, a text, b text, y int, f float8)")
                cur.execute("TRUNCATE copy_back")
                with cur.copy("COPY copy_back FROM STDIN") as copy:
                    copy.write(line + b"\n")
                assert cur.execute("SELECT * FROM copy_back").fetchone() == (key, *values)
            conn.rollback()

    check()


def test_bulk_upsert_runs_a_slice_again_when_postgresql_breaks_it_off_to_end_a_deadlock(clean_db, monkeypatch):
    """A slice broken off by a deadlock (another writer of the same records: the web API adding
    them to the collection) is one rolled-back transaction: it runs again, and the load stores all."""
    import psycopg

    import catalog.ingest as ingest

    sid = _source(clean_db)
    real = ingest._store_prepared
    calls = {"n": 0}

    def deadlocked_once(session, *args, **kwargs):
        calls["n"] += 1
        got = real(session, *args, **kwargs)  # written, then broken off before the commit
        if calls["n"] == 2:
            raise psycopg.errors.DeadlockDetected("deadlock detected")
        return got

    monkeypatch.setattr(ingest, "_store_prepared", deadlocked_once)
    report = bulk_upsert(clean_db, sid, _batch(100), workers=1, transaction_size=20, collection="gara")
    assert calls["n"] == 6 and report.new == 100 and not report.changed
    assert _count(clean_db, Record) == 100 and _count(clean_db, CollectionMember) == 100
