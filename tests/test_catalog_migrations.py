"""The schema: Alembic up and down, and no drift between models and migrations."""
from __future__ import annotations

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
        assert {"sources", "records", "record_revisions", "assets", "record_assets", "collections",
                "collection_members", "crawl_runs", "training_runs", "colorization_runs", "model_versions",
                "training_examples", "colorizations"} <= tables
        assert migrate.state(engine).up_to_date
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == []

        migrate.downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
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
