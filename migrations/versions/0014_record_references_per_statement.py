"""records' references to their source and crawl runs checked once a statement, not once a row

A foreign key checks each new row on its own: one lookup of the source (and, in a crawl, two of
the run) per record, which cost a tenth of storing a new record and more in a crawl
(bench/upsert_parts.py: "no source FK" 1.02–1.15×, "in a crawl run" 0.85–0.96× of the load
without a run). The three foreign keys of ``records`` (``source_id`` → ``sources``,
``first_seen_run_id`` and ``last_seen_run_id`` → ``crawl_runs``) become triggers that keep the
same promise:

- after each INSERT statement, the distinct sources and runs its rows name are looked up and
  locked (FOR KEY SHARE, as a foreign key's check locks them, so they cannot be deleted before
  the transaction ends): one lookup per distinct value instead of one per row. A name that does
  not exist fails the statement with SQLSTATE 23503 (foreign_key_violation) naming it; the
  ingestion then bisects its chunk and rejects only the records naming it, as it did;
- after each UPDATE statement, the same for the rows as updated (a row-level check written in
  plpgsql, only for rows whose values change, was slower than the foreign key's: an unchanged
  re-harvest in a new crawl run moves every record's last run);
- a source or crawl run that records name cannot be deleted, nor its id changed, nor its table
  truncated without ``records`` (23503).

Like the foreign keys, the checks hold for transactions at READ COMMITTED (arhiva's level). The
other tables' foreign keys are unchanged. Upgrading drops the constraints (no scan); downgrading
adds them back, which checks every record once.

Revision ID: 0014
Revises: 0013
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (constraint, column, referenced table) as migration 0001 made them
FOREIGN_KEYS = (("fk_records_source_id_sources", "source_id", "sources"),
                ("fk_records_first_seen_run_id_crawl_runs", "first_seen_run_id", "crawl_runs"),
                ("fk_records_last_seen_run_id_crawl_runs", "last_seen_run_id", "crawl_runs"))


def _missing(table: str, values: str) -> str:
    """plpgsql: lock the rows of ``table`` whose ids are among ``values`` (a query of one column,
    ``v``), then raise foreign_key_violation naming the first value that has no row."""
    return f"""
    PERFORM 1 FROM {table} WHERE id IN (SELECT v FROM ({values}) x) FOR KEY SHARE;
    SELECT v INTO missing FROM ({values}) x WHERE v IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM {table} t WHERE t.id = x.v) LIMIT 1;
    IF FOUND THEN
        RAISE foreign_key_violation USING TABLE = 'records',
            MESSAGE = format('records may only name a row of {table}: id %s is not in {table}', missing);
    END IF;"""


TRIGGERS = f"""
CREATE FUNCTION arhiva_records_check_names() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN
    {_missing("sources", "SELECT DISTINCT source_id AS v FROM new_rows")}
    {_missing("crawl_runs", "SELECT first_seen_run_id AS v FROM new_rows UNION SELECT last_seen_run_id FROM new_rows")}
    RETURN NULL;
END $$;

CREATE FUNCTION arhiva_records_name_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'sources' THEN
        PERFORM 1 FROM records WHERE source_id = OLD.id LIMIT 1;
    ELSE
        PERFORM 1 FROM records WHERE first_seen_run_id = OLD.id OR last_seen_run_id = OLD.id LIMIT 1;
    END IF;
    IF FOUND THEN
        RAISE foreign_key_violation USING TABLE = TG_TABLE_NAME,
            MESSAGE = format('%s %s is named by records: it cannot be deleted or renumbered', TG_TABLE_NAME, OLD.id);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION arhiva_records_name_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- after the whole TRUNCATE: one that empties records too (or records naming no run) is fine
    IF TG_TABLE_NAME = 'sources' THEN
        PERFORM 1 FROM records LIMIT 1;
    ELSE
        PERFORM 1 FROM records WHERE first_seen_run_id IS NOT NULL OR last_seen_run_id IS NOT NULL LIMIT 1;
    END IF;
    IF FOUND THEN
        RAISE foreign_key_violation USING TABLE = TG_TABLE_NAME,
            MESSAGE = format('%s is named by records: truncate records with it', TG_TABLE_NAME);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER records_named_new AFTER INSERT ON records REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION arhiva_records_check_names();
CREATE TRIGGER records_named_changed AFTER UPDATE ON records REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION arhiva_records_check_names();
CREATE TRIGGER sources_named_by_records AFTER DELETE OR UPDATE OF id ON sources
    FOR EACH ROW EXECUTE FUNCTION arhiva_records_name_kept();
CREATE TRIGGER crawl_runs_named_by_records AFTER DELETE OR UPDATE OF id ON crawl_runs
    FOR EACH ROW EXECUTE FUNCTION arhiva_records_name_kept();
CREATE TRIGGER sources_truncated_with_records AFTER TRUNCATE ON sources
    FOR EACH STATEMENT EXECUTE FUNCTION arhiva_records_name_truncated();
CREATE TRIGGER crawl_runs_truncated_with_records AFTER TRUNCATE ON crawl_runs
    FOR EACH STATEMENT EXECUTE FUNCTION arhiva_records_name_truncated();
"""


def upgrade() -> None:
    op.execute(TRIGGERS)
    for name, _, _ in FOREIGN_KEYS:
        op.drop_constraint(name, "records", type_="foreignkey")


def downgrade() -> None:
    for trigger, table in (("records_named_new", "records"), ("records_named_changed", "records"),
                           ("sources_named_by_records", "sources"), ("crawl_runs_named_by_records", "crawl_runs"),
                           ("sources_truncated_with_records", "sources"),
                           ("crawl_runs_truncated_with_records", "crawl_runs")):
        op.execute(f"DROP TRIGGER {trigger} ON {table}")
    for function in ("arhiva_records_check_names", "arhiva_records_name_kept", "arhiva_records_name_truncated"):
        op.execute(f"DROP FUNCTION {function}()")
    for name, column, table in FOREIGN_KEYS:
        op.create_foreign_key(name, "records", table, [column], ["id"])
