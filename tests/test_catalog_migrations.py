"""The schema: Alembic up and down, and no drift between models and migrations."""
from __future__ import annotations

import json

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from catalog import migrate
from catalog.models import Base
from tests.conftest import create_database, database_url, drop_database


def test_upgrade_downgrade_upgrade_and_no_drift():
    name = create_database("arhiva_mig")
    engine = create_engine(database_url(name))
    try:
        migrate.upgrade(engine)
        tables = set(inspect(engine).get_table_names())
        assert {"sources", "records", "record_history", "assets", "record_assets", "collections",
                "collection_members", "crawl_runs", "training_runs", "colorization_runs", "model_versions",
                "training_examples", "colorizations"} <= tables
        assert inspect(engine).get_view_names() == ["record_revisions"]
        assert migrate.state(engine).up_to_date
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == []

        migrate.downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        assert inspect(engine).get_view_names() == []
        assert migrate.state(engine).current is None

        migrate.upgrade(engine)
        assert migrate.state(engine).up_to_date
    finally:
        engine.dispose()
        drop_database(name)


def test_the_search_vectors_of_stored_records_follow_the_fold_up_and_down():
    """0003 changes how words are folded: records stored before it are re-indexed by it."""
    from sqlalchemy import select

    from catalog.db import session_scope
    from catalog.ingest import RecordIn, get_or_create_source, upsert_records
    from catalog.models import Record
    from catalog.queries import text_condition

    name = create_database("arhiva_mig")
    engine = create_engine(database_url(name))

    def found(words):  # the search condition alone: today's ORM maps columns that 0002 lacks
        with session_scope(engine) as s:
            return list(s.execute(select(Record.source_key).where(text_condition(words))
                                  .order_by(Record.id)).scalars())

    try:
        migrate.upgrade(engine, "0002")
        with session_scope(engine) as s:
            sid = get_or_create_source(s, "m", "folder").id
            upsert_records(s, sid, [RecordIn("old", title="Старый мост, Bălți")])
        assert found("старая") == []  # the old fold made "старый" into "стары"
        migrate.upgrade(engine)
        assert found("старая") == found("старый") == found("balti") == ["old"]
        migrate.downgrade(engine, "0002")
        assert found("старая") == [] and found("старый") == found("balti") == ["old"]
    finally:
        engine.dispose()
        drop_database(name)


def _gara_records():
    """A record of the 1940s in the cell 47.02, 28.83; one there spanning six decades; one elsewhere."""
    from catalog.ingest import RecordIn

    return [RecordIn("one", title="Gara", year_lo=1945, year_hi=1945, lat=47.0245, lon=28.8323),
            RecordIn("wide", title="Gara veche", year_lo=1900, year_hi=1960, lat=47.0249, lon=28.8301),
            RecordIn("elsewhere", title="Gara", year_lo=1945, year_hi=1945, lat=47.1, lon=28.8323)]


def test_records_stored_before_0010_are_in_its_word_place_index_and_it_goes_down_cleanly():
    """0010 adds an index of word × 0.01° cell × decade tokens: a catalogue upgraded from 0009
    finds its records by them at once (a record spanning many decades by its ``w`` token), and
    downgrading drops the index and its function."""
    from sqlalchemy import text

    from catalog.db import session_scope
    from catalog.ingest import RecordIn, get_or_create_source, upsert_records

    name = create_database("arhiva_mig")
    engine = create_engine(database_url(name))

    def tokens():
        with engine.connect() as conn:
            if conn.execute(text("SELECT to_regproc('arhiva_word_places')")).scalar() is None:
                assert conn.execute(text("SELECT to_regclass('ix_records_word_places')")).scalar() is None
                return None
            return conn.execute(text("SELECT source_key FROM records WHERE arhiva_word_places(search, year_lo, "
                                     "year_hi, lat, lon) @@ '4702_2883_194_gar | 4702_2883_w_gar'::tsquery "
                                     "ORDER BY source_key")).scalars().all()

    try:
        migrate.upgrade(engine, "0009")
        with session_scope(engine) as s:
            upsert_records(s, get_or_create_source(s, "m", "folder").id, [*_gara_records(),
                # a word of 2,040 letters: with its place it would pass a token's 2,047 bytes
                RecordIn("long", title="Gara " + "b" * 2040, year_lo=1946, year_hi=1946, lat=47.0201, lon=28.8399)])
        assert tokens() is None
        migrate.upgrade(engine, "0010")
        assert tokens() == ["long", "one", "wide"]
        migrate.downgrade(engine, "0009")
        assert tokens() is None
    finally:
        engine.dispose()
        drop_database(name)


def test_records_stored_before_0011_gain_start_and_end_years_and_lose_them_down():
    """0011 adds start-year, end-year and crossing tokens to the search vector: records stored
    before it carry them once it has run (their vectors are recomputed, and the word × place
    index is built again with the column), and downgrading takes them away."""
    from sqlalchemy import text

    from catalog.db import session_scope
    from catalog.ingest import RecordIn, get_or_create_source, upsert_records

    name = create_database("arhiva_mig")
    engine = create_engine(database_url(name))

    def found(tokens):
        with engine.connect() as conn:
            return conn.execute(text("SELECT source_key FROM records WHERE search @@ CAST(:q AS tsquery) "
                                     "ORDER BY source_key"), {"q": tokens}).scalars().all()

    try:
        migrate.upgrade(engine, "0010")
        with session_scope(engine) as s:
            upsert_records(s, get_or_create_source(s, "m", "folder").id, [
                RecordIn("crosses", title="Gara", year_lo=1895, year_hi=1905, lat=47.0245, lon=28.8323),
                RecordIn("open", title="Gara", year_lo=None, year_hi=1899)])
        assert found("~s1895 | ~e1899 | ~x190") == []
        migrate.upgrade(engine, "0011")
        assert found("~s1895 & ~e1905 & ~x190") == ["crosses"] and found("~s1800 & ~e1899") == ["open"]
        with engine.connect() as conn:  # the word × place index came back with the column
            assert conn.execute(text("SELECT to_regclass('ix_records_word_places')")).scalar() is not None
        migrate.downgrade(engine, "0010")
        assert found("~s1895 | ~e1899 | ~x190") == []
        assert found("~d189 & ~d190") == ["crosses"]
    finally:
        engine.dispose()
        drop_database(name)


def test_revisions_stored_before_0012_read_the_same_through_the_view_and_come_back_down():
    """0012 moves the revisions a record has moved on from into record_history and drops the
    rest (the records hold them): the view record_revisions shows every revision as the table
    did; a change after the upgrade numbers on; downgrading puts the table back as it was."""
    from sqlalchemy import text

    from catalog.db import session_scope
    from catalog.ingest import RecordIn, get_or_create_source, upsert_records
    from catalog.runs import activity

    name = create_database("arhiva_mig")
    engine = create_engine(database_url(name))
    cols = "record_id, revision, payload_hash, raw, fields, run_id, seen_at"

    def revisions():
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(f"SELECT {cols} FROM record_revisions "
                                                        "ORDER BY record_id, revision"))]

    def harvest(*recs):
        with session_scope(engine) as s:
            sid = get_or_create_source(s, "m", "folder").id
        with activity("crawl", "test", engine=engine, source_id=sid) as run, session_scope(engine) as s:
            upsert_records(s, sid, list(recs), run_id=run.id)

    def harvest_before_0012(key, title, raw):
        """What ingestion before 0012 wrote: the record, and each payload as a revision row."""
        with session_scope(engine) as s:
            sid = get_or_create_source(s, "m", "folder").id
        rec = RecordIn(key, title=title, raw=raw)
        fields = json.dumps(rec.mapped())
        with activity("crawl", "test", engine=engine, source_id=sid) as run, engine.begin() as conn:
            rid = conn.execute(text(
                "INSERT INTO records (source_id, source_key, title, raw, payload_hash, first_seen_run_id, "
                "last_seen_run_id) VALUES (:s, :k, :t, CAST(:raw AS jsonb), :h, :run, :run) "
                "ON CONFLICT (source_id, source_key) DO UPDATE SET title = excluded.title, raw = excluded.raw, "
                "payload_hash = excluded.payload_hash, last_seen_run_id = excluded.last_seen_run_id RETURNING id"),
                {"s": sid, "k": key, "t": title, "raw": json.dumps(raw), "h": rec.payload_hash(), "run": run.id}
            ).scalar_one()
            conn.execute(text(
                "INSERT INTO record_revisions (record_id, revision, payload_hash, raw, fields, run_id) "
                "SELECT :r, coalesce(max(revision), 0) + 1, :h, CAST(:raw AS jsonb), CAST(:f AS jsonb), :run "
                "FROM record_revisions WHERE record_id = :r"),
                {"r": rid, "h": rec.payload_hash(), "raw": json.dumps(raw), "f": fields, "run": run.id})

    try:
        migrate.upgrade(engine, "0011")
        harvest_before_0012("a", "Gara", {"v": 1})
        harvest_before_0012("b", "Piața", {})
        harvest_before_0012("a", "Gara veche", {"v": 2})
        harvest_before_0012("a", "Gara veche", {"v": 3})
        before = revisions()
        assert [(r[0], r[1]) for r in before] == [(1, 1), (1, 2), (1, 3), (2, 1)]
        migrate.upgrade(engine, "0012")
        assert revisions() == before
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM record_history")).scalar() == 2
        harvest(RecordIn("b", title="Piața Mare"))
        after = revisions()
        assert after[:4] == before and [(r[0], r[1]) for r in after[4:]] == [(2, 2)]
        assert after[4][4]["title"] == "Piața Mare" and after[4][5] > before[2][5]
        migrate.downgrade(engine, "0011")
        assert revisions() == after
        assert "record_revisions" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
        drop_database(name)


def test_records_stored_before_0013_are_found_by_its_word_place_keys_and_it_goes_down_cleanly():
    """0013 turns the word × place tokens into 64-bit keys: a catalogue upgraded from 0012 finds
    a word in a few streets over a decade through them at once (a record of that decade, one
    spanning many decades, one of over 1,000 words, one whose other word is 2,040 letters long),
    and downgrading puts 0010's tokens back."""
    from sqlalchemy import text

    from catalog.db import session_scope
    from catalog.ingest import RecordIn, get_or_create_source, upsert_records
    from catalog.models import Record
    from catalog.queries import RecordQuery, _filters, search_records

    name = create_database("arhiva_mig")
    engine = create_engine(database_url(name))
    many = " ".join(f"cuvânt{i}" for i in range(1_100))

    def tokens():
        with engine.connect() as conn:
            return conn.execute(text("SELECT source_key FROM records WHERE arhiva_word_places(search, year_lo, "
                                     "year_hi, lat, lon) @@ '4702_2883_194_gar | 4702_2883_w_gar'::tsquery "
                                     "ORDER BY source_key")).scalars().all()

    def found(words):
        q = RecordQuery(text=words, year_from=1940, year_to=1949, bbox=(28.83, 47.02, 28.84, 47.03), limit=100)
        with session_scope(engine) as s:
            by_index = _filters(q, s)[0]
            assert "arhiva_word_place_keys" in str(by_index.compile())  # the keys' path
            got = sorted(s.scalars(by_index.with_only_columns(Record.source_key)))
            assert got == sorted(r.source_key for r in search_records(s, q).items)
            return got

    try:
        migrate.upgrade(engine, "0012")
        with session_scope(engine) as s:
            upsert_records(s, get_or_create_source(s, "m", "folder").id, [*_gara_records(),
                RecordIn("later", title="Gara", year_lo=1955, year_hi=1955, lat=47.0245, lon=28.8323),
                RecordIn("many", title="Gara", description=many, year_lo=1941, year_hi=1941, lat=47.025, lon=28.835),
                RecordIn("long", title="Gara " + "b" * 2040, year_lo=1946, year_hi=1946, lat=47.0201, lon=28.8399)])
        assert tokens() == ["long", "one", "wide"]
        migrate.upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT to_regclass('ix_records_word_places')")).scalar() is None
        assert found("gări") == ["long", "many", "one", "wide"]
        assert found("veche gara") == ["wide"]
        assert found("b" * 2040) == ["long"]  # in the keys now: a hash has no length
        migrate.downgrade(engine, "0012")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT to_regproc('arhiva_word_place_keys')")).scalar() is None
        assert tokens() == ["long", "one", "wide"]
        migrate.upgrade(engine)
        assert found("gara") == ["long", "many", "one", "wide"]
    finally:
        engine.dispose()
        drop_database(name)
