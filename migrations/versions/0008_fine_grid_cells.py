"""search vector: grid cells of 0.01° (about 1 km) beside the 1° and 0.1° ones

A search for a small box in a dense town (a few streets of Chișinău, a decade, a word) was
answered by the 0.1° cells (about 11 × 8 km): in the benchmark's 10-million-record catalogue,
where half the records sit around one town, nine in ten of the records those cells gave the
search were then read from the table only to be dropped by the exact box test (p95 over a
second). Each record with coordinates now also carries its 0.01° cell, alone and with each of
its decades, and a box of up to 64 such cells (about 0.08° × 0.08°) is looked up by them.

The function is replaced and the search column dropped and added again, so every record's
vector is recomputed (a table rewrite, like migration 0003: about 20 s per million records on
a 2-core machine) and its GIN index rebuilt. The index grows by about a fifth. Downgrading puts
the old function back the same way.

Revision ID: 0008
Revises: 0007
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH_EXPR = (
    "arhiva_search_vector(coalesce(title, '') || ' ' || coalesce(description, '') || ' ' || coalesce(place, '') "
    "|| ' ' || coalesce(author, '') || ' ' || coalesce(date_text, ''), year_lo, year_hi, lat, lon)"
)
FUNCTION = r"""
CREATE OR REPLACE FUNCTION arhiva_search_vector(t text, y_lo int, y_hi int, lat float8, lon float8)
RETURNS tsvector LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    f text := arhiva_fold(coalesce(t, ''));
    tokens text[] := '{}';
    cells text[] := '{}';
    cell text;
    d int;
BEGIN
    IF lat IS NOT NULL AND lon IS NOT NULL THEN
        cells := ARRAY['~g1_' || floor(lat)::int || '_' || floor(lon)::int,
                       '~g01_' || floor(lat * 10)::int || '_' || floor(lon * 10)::int{fine}];
        tokens := cells;
    END IF;
    IF y_lo IS NOT NULL OR y_hi IS NOT NULL THEN
        FOR d IN (least(greatest(coalesce(y_lo, 1800), 1800), 2039) / 10)
                 .. (least(greatest(coalesce(y_hi, 2039), 1800), 2039) / 10) LOOP
            tokens := tokens || ('~d' || d);
            FOREACH cell IN ARRAY cells LOOP  -- place × decade: a map + years query hits short lists
                tokens := tokens || (cell || '_d' || d);
            END LOOP;
        END LOOP;
    END IF;
    RETURN to_tsvector('arhiva'::regconfig, f) || array_to_tsvector(tokens);
END $$
"""
FINE = ",\n                       '~g001_' || floor(lat * 100)::int || '_' || floor(lon * 100)::int"


def upgrade() -> None:
    _rebuild_search(FUNCTION.replace("{fine}", FINE))


def downgrade() -> None:
    _rebuild_search(FUNCTION.replace("{fine}", ""))


def _rebuild_search(function_ddl: str) -> None:
    op.execute("DROP INDEX IF EXISTS ix_records_search")
    op.execute("ALTER TABLE records DROP COLUMN search")
    op.execute(function_ddl)
    op.execute(f"ALTER TABLE records ADD COLUMN search tsvector GENERATED ALWAYS AS ({SEARCH_EXPR}) STORED")
    op.execute("CREATE INDEX ix_records_search ON records USING gin (search)")
