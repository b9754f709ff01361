"""search vector: each word of a located, dated record also with its 0.01° cell and decade

A search for a word in a few streets over a decade (years + text + a small box) was looked up
by the place × decade tokens alone: in the benchmark's 10-million-record catalogue, where half
the records sit around one town, the cells of a 0.06° box over two decades list ~170,000
records, each walked by the search index (~0.5 µs apiece) to find the few thousand that also
carry the word (p95 ~260 ms on the 2-core machine). Each word of a record with coordinates and
years now also comes as ``~w<cell>_d<decade>_<word>`` (the 0.01° cell of migration 0008), so
such a search reads only the records that have all three. A record whose years span more than
two decades carries ``~w<cell>_wide_<word>`` instead (one token per word, not one per decade:
the exact year test decides), and a record with more than 1,000 distinct words carries only
``~w<cell>_all`` (its vector stays far below tsvector's 1 MB limit); a search asks for those
too.

The function is replaced and the search column dropped and added again (a table rewrite, as in
migrations 0003 and 0008) and its GIN index rebuilt. Downgrading puts 0008's function back the
same way.

Revision ID: 0010
Revises: 0009
"""
from __future__ import annotations

import importlib
from collections.abc import Sequence

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_COMBINED_WORDS = 1000  # distinct words of a record beyond which it carries only ~w<cell>_all
WIDE_DECADES = 2  # a record spanning more decades carries ~w<cell>_wide_<word>

SEARCH_VECTOR = f"""
CREATE OR REPLACE FUNCTION arhiva_search_vector(t text, y_lo integer, y_hi integer, lat double precision,
                                                lon double precision)
RETURNS tsvector LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    f text := arhiva_fold(left(coalesce(t, ''), 100000));
    words tsvector := to_tsvector('arhiva'::regconfig, f);
    tokens text[] := '{{}}';
    cells text[] := '{{}}';
    cell text;
    spot text;
    decades int[] := '{{}}';
    d int;
BEGIN
    IF lat IS NOT NULL AND lon IS NOT NULL THEN
        spot := floor(lat * 100)::int || '_' || floor(lon * 100)::int;
        cells := ARRAY['~g1_' || floor(lat)::int || '_' || floor(lon)::int,
                       '~g01_' || floor(lat * 10)::int || '_' || floor(lon * 10)::int,
                       '~g001_' || spot];
        tokens := cells;
    END IF;
    IF y_lo IS NOT NULL OR y_hi IS NOT NULL THEN
        FOR d IN (least(greatest(coalesce(y_lo, 1800), 1800), 2039) / 10)
                 .. (least(greatest(coalesce(y_hi, 2039), 1800), 2039) / 10) LOOP
            decades := decades || d;
            tokens := tokens || ('~d' || d);
            FOREACH cell IN ARRAY cells LOOP  -- place × decade: a map + years query hits short lists
                tokens := tokens || (cell || '_d' || d);
            END LOOP;
        END LOOP;
        IF spot IS NOT NULL THEN  -- word × place × decade: a word in a few streets over a decade
            IF length(words) > {MAX_COMBINED_WORDS} THEN
                tokens := tokens || ('~w' || spot || '_all');
            ELSE
                tokens := tokens || ARRAY(
                    SELECT '~w' || spot || '_' || CASE WHEN cardinality(decades) <= {WIDE_DECADES}
                                                       THEN 'd' || dd ELSE 'wide' END || '_' || w
                    FROM unnest(tsvector_to_array(words)) AS w,
                         unnest(CASE WHEN cardinality(decades) <= {WIDE_DECADES} THEN decades
                                     ELSE ARRAY[0] END) AS dd);
            END IF;
        END IF;
    END IF;
    RETURN words || array_to_tsvector(tokens);
END $$
"""


def upgrade() -> None:
    _rebuild_search(SEARCH_VECTOR)


def downgrade() -> None:
    _rebuild_search(importlib.import_module("migrations.versions.0008_fine_grid_cells").fine_cells_ddl())


def _rebuild_search(function_ddl: str) -> None:
    importlib.import_module("migrations.versions.0003_fold_with_unaccent")._rebuild_search(function_ddl)
