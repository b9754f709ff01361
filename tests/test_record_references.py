"""A record names its source and the crawl runs that first and last saw it; since migration 0014
triggers, not foreign keys, keep those names true (checked once a statement). These tests hold
the triggers to what the foreign keys promised: nothing may name a row that does not exist, and
nothing named may go, also when two transactions race."""
from __future__ import annotations

import threading
import time

import psycopg
import pytest
from sqlalchemy import select, text

from catalog.db import session_scope
from catalog.ingest import RecordIn, bulk_upsert, get_or_create_source, upsert_records
from catalog.models import CrawlRun, Record
from catalog.runs import activity


def _driver_url(engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def test_records_naming_a_source_or_run_that_does_not_exist_are_rejected_by_name(clean_db):
    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "here", "folder").id
        report = upsert_records(s, sid + 100, [RecordIn("a", title="A"), RecordIn("b", title="B")])
    assert report.new == 0 and sorted(r.source_key for r in report.rejected) == ["a", "b"]
    assert all(f"id {sid + 100} is not in sources" in r.message for r in report.rejected)
    with session_scope(clean_db) as s:
        report = upsert_records(s, sid, [RecordIn("c", title="C")], run_id=424242)
    assert report.new == 0 and "id 424242 is not in crawl_runs" in report.rejected[0].message
    with session_scope(clean_db) as s:
        assert s.scalar(select(Record.id)) is None  # nothing half-stored

    with activity("crawl", "test", engine=clean_db, source_id=sid) as run:
        report = bulk_upsert(clean_db, sid, [RecordIn(f"k{i}", title="x") for i in range(30)], run_id=run.id,
                             transaction_size=10)
    assert report.new == 30 and not report.rejected
    with session_scope(clean_db) as s:
        assert {(r.first_seen_run_id, r.last_seen_run_id) for r in s.scalars(select(Record))} == {(run.id, run.id)}


def test_a_record_cannot_be_moved_to_a_source_or_run_that_does_not_exist(clean_db):
    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "here", "folder").id
        rid = upsert_records(s, sid, [RecordIn("a", title="A")]).ids["a"]
    for column, value, table in (("source_id", sid + 7, "sources"), ("last_seen_run_id", 99, "crawl_runs"),
                                 ("first_seen_run_id", 98, "crawl_runs")):
        with psycopg.connect(_driver_url(clean_db)) as conn:
            with pytest.raises(psycopg.errors.ForeignKeyViolation, match=f"id {value} is not in {table}"):
                conn.execute(f"UPDATE records SET {column} = %s WHERE id = %s", (value, rid))
    with psycopg.connect(_driver_url(clean_db), autocommit=True) as conn:
        conn.execute("UPDATE records SET title = 'changed', last_seen_run_id = NULL WHERE id = %s", (rid,))
        other = conn.execute("INSERT INTO sources (slug, kind, config) VALUES ('other', 'folder', '{}') "
                             "RETURNING id").fetchone()[0]
        conn.execute("UPDATE records SET source_id = %s WHERE id = %s", (other, rid))
        assert conn.execute("SELECT source_id, title FROM records").fetchall() == [(other, "changed")]


def test_a_source_or_run_that_records_name_cannot_be_deleted_renumbered_or_truncated(clean_db):
    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "here", "folder").id
        loose = get_or_create_source(s, "loose", "folder").id  # records, no crawl run
        spare = get_or_create_source(s, "spare", "folder").id
        upsert_records(s, loose, [RecordIn("b", title="B")])
    with activity("crawl", "test", engine=clean_db, source_id=sid) as run:
        with session_scope(clean_db) as s:
            upsert_records(s, sid, [RecordIn("a", title="A")], run_id=run.id)
    url = _driver_url(clean_db)
    for sql, name in ((f"DELETE FROM sources WHERE id = {loose}", f"sources {loose}"),
                      (f"UPDATE sources SET id = 1000 WHERE id = {loose}", f"sources {loose}"),
                      (f"DELETE FROM crawl_runs WHERE id = {run.id}", f"crawl_runs {run.id}"),
                      ("TRUNCATE sources CASCADE", "sources"), ("TRUNCATE crawl_runs CASCADE", "crawl_runs")):
        with psycopg.connect(url) as conn:
            with pytest.raises(psycopg.errors.ForeignKeyViolation, match=f"{name} is named by records"):
                conn.execute(sql)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM sources WHERE id = %s", (spare,))  # named by no record
        conn.execute("UPDATE sources SET base_url = 'https://example.org' WHERE id = %s", (loose,))
        assert conn.execute("SELECT count(*) FROM records").fetchone()[0] == 2
        conn.execute("TRUNCATE records, sources, crawl_runs CASCADE")  # all together: nothing dangles
    with session_scope(clean_db) as s:
        assert s.scalar(select(CrawlRun.id)) is None


def test_a_source_deleted_while_records_naming_it_are_stored_is_never_lost_from_under_them(clean_db):
    """Either side may go first: a delete waits for the store that named the source and then
    fails; a store that names a source being deleted waits, and fails once the delete commits."""
    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "here", "folder").id
    url = _driver_url(clean_db)
    insert = ("INSERT INTO records (source_id, source_key, payload_hash, raw, extra) "
              "VALUES (%s, %s, 'h', '{}', '{}')")
    outcome: dict[str, object] = {}

    def other(sql: str, key: str) -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("SET lock_timeout = '20s'")
                conn.execute(sql, (sid, key) if "%s" in sql else None)
            outcome[key] = "done"
        except psycopg.Error as exc:
            outcome[key] = exc

    # the store first: the delete waits for it, then sees the record
    with psycopg.connect(url) as store:
        store.execute(insert, (sid, "first"))
        t = threading.Thread(target=other, args=(f"DELETE FROM sources WHERE id = {sid}", "delete"))
        t.start()
        time.sleep(0.5)
        assert t.is_alive()  # waiting on the store's lock
        store.commit()
    t.join(20)
    assert isinstance(outcome["delete"], psycopg.errors.ForeignKeyViolation)

    # the delete first (of a source no record names yet): the store waits, then fails
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM records")
    with psycopg.connect(url) as delete:
        delete.execute("DELETE FROM sources WHERE id = %s", (sid,))
        t = threading.Thread(target=other, args=(insert, "second"))
        t.start()
        time.sleep(0.5)
        assert t.is_alive()
        delete.commit()
    t.join(20)
    assert isinstance(outcome["second"], psycopg.errors.ForeignKeyViolation)
    with clean_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM records")).scalar() == 0
