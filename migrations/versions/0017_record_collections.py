"""each record's collections on its row and in its search vector

A search within a collection that also asks for years or words had to meet two lists that
live in different places: the search's matches (the search index) and the collection's members
(``collection_members``). Counting five years within a collection of 100,000 read the years'
83,000 candidates and probed the membership of each (~0.4 s at 10 million records); a word and
years within it read the word's matches the same way. Now every record carries the ids of its
collections (``records.collections``, sorted) and a ``~k<id>`` token for each in its search
vector, so the search index meets the collection with the years and words in one lookup, and a
record walked or sampled is tested by its own row instead of a probe.

``collection_members`` stays the truth: statement triggers on it keep ``records.collections``
equal to the record's memberships whoever writes them (a record joining or leaving a
collection, a collection deleted, a record deleted). arhiva's loader writes a new record's
collection with its row, so a load pays no second write of the record.

The search column is dropped and added again in the same table rewrite that fills the new
column (as in migrations 0003, 0011 and 0016: a few minutes for ten million records on a 2-core
machine), and the search indexes are built again. Downgrading drops the triggers and the column
and puts the search vector back as 0016 left it, the same way.

Revision ID: 0017
Revises: 0016
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORDS_EXPR = (
    "arhiva_search_vector(coalesce(title, '') || ' ' || coalesce(description, '') || ' ' || coalesce(place, '') "
    "|| ' ' || coalesce(author, '') || ' ' || coalesce(date_text, ''), year_lo, year_hi, lat, lon)"
)
SEARCH_EXPR = f"{WORDS_EXPR} || arhiva_collection_tokens(collections)"

FUNCTIONS = """
CREATE OR REPLACE FUNCTION arhiva_collection_tokens(c integer[]) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT array_to_tsvector(ARRAY(SELECT '~k' || x FROM unnest(c) AS x WHERE x IS NOT NULL)) $$;

CREATE OR REPLACE FUNCTION arhiva_member_collections(rid bigint) RETURNS integer[]
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(array_agg(collection_id ORDER BY collection_id), '{}')
      FROM collection_members WHERE record_id = rid $$;

CREATE OR REPLACE FUNCTION arhiva_members_changed() RETURNS trigger LANGUAGE plpgsql AS $$
-- Each record's list changed from the row as it is (never recomputed from the memberships this
-- statement sees: two transactions adding a record to two collections at once would each write
-- a list without the other's; updating the row as it is, the second one waits for the first
-- and adds to what it wrote). A record's list: its collections' ids, sorted, once each. The
-- records to change are locked in id order first (locked in whatever order the update's plan
-- met them, two writers adding overlapping records to collections could deadlock), and a record
-- whose list would not change is not written.
-- The change is a statement over the transition tables: for each record the ids it joined (came)
-- and those it left without joining again (gone); the lock and the update are the same for all.
DECLARE
    delta text;
    n bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        delta := 'SELECT record_id, ''{}''::integer[] AS gone, array_agg(collection_id) AS came '
                 'FROM arhiva_new_members GROUP BY record_id';
    ELSIF TG_OP = 'DELETE' THEN
        delta := 'SELECT record_id, array_agg(collection_id) AS gone, ''{}''::integer[] AS came '
                 'FROM arhiva_old_members GROUP BY record_id';
    ELSE
        delta := 'SELECT record_id, ARRAY(SELECT unnest(gone) EXCEPT SELECT unnest(came)) AS gone, came FROM '
                 '(SELECT record_id, coalesce(array_agg(collection_id) FILTER (WHERE was), ''{}'') AS gone, '
                 'coalesce(array_agg(collection_id) FILTER (WHERE NOT was), ''{}'') AS came '
                 'FROM (SELECT record_id, collection_id, true AS was FROM arhiva_old_members UNION ALL '
                 'SELECT record_id, collection_id, false FROM arhiva_new_members) m GROUP BY record_id) c';
    END IF;
    -- a record changes when it lacks an id it joined or holds one it left (a new record's list
    -- already names its collection: nothing to lock or write)
    EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM records r JOIN (%s) d ON r.id = d.record_id '
                   'WHERE NOT r.collections @> d.came OR r.collections && d.gone '
                   'ORDER BY r.id FOR NO KEY UPDATE OF r) locked', delta) INTO n;
    IF n > 0 THEN
        EXECUTE format('UPDATE records r SET collections = arhiva_collections_changed(r.collections, d.gone, d.came) '
                       'FROM (%s) d WHERE r.id = d.record_id '
                       'AND (NOT r.collections @> d.came OR r.collections && d.gone)', delta);
    END IF;
    RETURN NULL;
END $$;

-- a list less the ids gone, with the ids come: sorted, once each
CREATE OR REPLACE FUNCTION arhiva_collections_changed(c integer[], gone integer[], came integer[]) RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ARRAY(SELECT x FROM unnest(c) x WHERE x <> ALL (gone) UNION SELECT unnest(came) ORDER BY 1) $$;

-- TRUNCATE (of the memberships, or of the collections with them) fires no delete trigger
CREATE OR REPLACE FUNCTION arhiva_members_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE records SET collections = '{}' WHERE collections <> '{}';
    RETURN NULL;
END $$;

CREATE TRIGGER arhiva_members_inserted AFTER INSERT ON collection_members
    REFERENCING NEW TABLE AS arhiva_new_members FOR EACH STATEMENT EXECUTE FUNCTION arhiva_members_changed();
CREATE TRIGGER arhiva_members_deleted AFTER DELETE ON collection_members
    REFERENCING OLD TABLE AS arhiva_old_members FOR EACH STATEMENT EXECUTE FUNCTION arhiva_members_changed();
CREATE TRIGGER arhiva_members_updated AFTER UPDATE ON collection_members
    REFERENCING OLD TABLE AS arhiva_old_members NEW TABLE AS arhiva_new_members
    FOR EACH STATEMENT EXECUTE FUNCTION arhiva_members_changed();
CREATE TRIGGER arhiva_members_truncated AFTER TRUNCATE ON collection_members
    FOR EACH STATEMENT EXECUTE FUNCTION arhiva_members_truncated();
"""


def _rebuilt(alter: str) -> None:
    """Run ``alter`` (one ALTER TABLE: one rewrite of the table) without the search index and the
    indexes on expressions of the search column (they go with the column), then build them again."""
    op.execute("SET LOCAL maintenance_work_mem = '256MB'")
    kept = op.get_bind().execute(text(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = 'records'::regclass AND (c.relname = 'ix_records_search' OR "
        "(i.indexprs IS NOT NULL AND pg_get_indexdef(i.indexrelid) LIKE '%search%'))")).all()
    for name, _ in kept:
        op.execute(f'DROP INDEX "{name}"')
    op.execute(alter)
    for _, ddl in kept:
        op.execute(ddl)
    op.execute("ANALYZE records")


def upgrade() -> None:
    op.execute(FUNCTIONS)
    op.execute("ALTER TABLE records ADD COLUMN collections integer[] NOT NULL DEFAULT '{}'")
    # the column filled and the search vector made anew in the same pass over the table
    _rebuilt("ALTER TABLE records DROP COLUMN search, "
             "ALTER COLUMN collections TYPE integer[] USING arhiva_member_collections(id), "
             f"ADD COLUMN search tsvector GENERATED ALWAYS AS ({SEARCH_EXPR}) STORED")


def downgrade() -> None:
    for name in ("inserted", "deleted", "updated", "truncated"):
        op.execute(f"DROP TRIGGER IF EXISTS arhiva_members_{name} ON collection_members")
    _rebuilt("ALTER TABLE records DROP COLUMN search, DROP COLUMN collections, "
             f"ADD COLUMN search tsvector GENERATED ALWAYS AS ({WORDS_EXPR}) STORED")
    op.execute("DROP FUNCTION IF EXISTS arhiva_members_changed()")
    op.execute("DROP FUNCTION IF EXISTS arhiva_members_truncated()")
    op.execute("DROP FUNCTION IF EXISTS arhiva_collections_changed(integer[], integer[], integer[])")
    op.execute("DROP FUNCTION IF EXISTS arhiva_member_collections(bigint)")
    op.execute("DROP FUNCTION IF EXISTS arhiva_collection_tokens(integer[])")
