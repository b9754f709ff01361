"""search vector: each dated record's start year, end year and the decade boundaries it crosses

A question spanning decades (1891–1900) was looked up by its decades' tokens, which cover 20
years: in the benchmark's 10-million-record catalogue a years + word search read 54,000 records
from the table to keep the 12,600 whose years overlap the question (the 1900s are far denser
than the 1890s), 150–200 ms. With ``~s<start year>``, ``~e<end year>`` and ``~x<decade>`` for
each decade boundary a record's years cross, such a question asks for exactly the records
whose years overlap it: those in its middle decades, those ending in its first decade's years
from its start on, those starting in its last decade's years up to its end, and (when the two
decades meet) those crossing between them. Years are clamped to 1800–2039 like the decades.

The function is replaced and the search column dropped and added again, so every record's
vector is recomputed (a table rewrite, as in migrations 0003 and 0008), and the search indexes
are built again. Downgrading puts 0008's function back the same way.

Revision ID: 0011
Revises: 0010
"""
from __future__ import annotations

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH_VECTOR = """
CREATE OR REPLACE FUNCTION arhiva_search_vector(t text, y_lo integer, y_hi integer, lat double precision,
                                                lon double precision)
RETURNS tsvector LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    f text := arhiva_fold(left(coalesce(t, ''), 100000));
    tokens text[] := '{}';
    cells text[] := '{}';
    cell text;
    d int;
    lo int;
    hi int;
BEGIN
    IF lat IS NOT NULL AND lon IS NOT NULL THEN
        cells := ARRAY['~g1_' || floor(lat)::int || '_' || floor(lon)::int,
                       '~g01_' || floor(lat * 10)::int || '_' || floor(lon * 10)::int,
                       '~g001_' || floor(lat * 100)::int || '_' || floor(lon * 100)::int];
        tokens := cells;
    END IF;
    IF y_lo IS NOT NULL OR y_hi IS NOT NULL THEN
        lo := least(greatest(coalesce(y_lo, 1800), 1800), 2039);
        hi := least(greatest(coalesce(y_hi, 2039), 1800), 2039);
        -- start and end years: a question spanning decades asks for exactly its overlaps
        tokens := tokens || ('~s' || lo) || ('~e' || hi);
        FOR d IN (lo / 10) .. (hi / 10) LOOP
            tokens := tokens || ('~d' || d);
            IF d > lo / 10 THEN
                tokens := tokens || ('~x' || d);  -- the years cross into decade d
            END IF;
            FOREACH cell IN ARRAY cells LOOP  -- place × decade: a map + years query hits short lists
                tokens := tokens || (cell || '_d' || d);
            END LOOP;
        END LOOP;
    END IF;
    RETURN to_tsvector('arhiva'::regconfig, f) || array_to_tsvector(tokens);
END $$
"""


def upgrade() -> None:
    op.execute("SET LOCAL maintenance_work_mem = '256MB'")
    _rebuild_search(SEARCH_VECTOR)
    op.execute("ANALYZE records")


def downgrade() -> None:
    op.execute("SET LOCAL maintenance_work_mem = '256MB'")
    _rebuild_search(importlib.import_module("migrations.versions.0008_fine_grid_cells").fine_cells_ddl())
    op.execute("ANALYZE records")


def _rebuild_search(function_ddl: str) -> None:
    importlib.import_module("migrations.versions.0003_fold_with_unaccent")._rebuild_search(function_ddl)
