"""a second search index: each word of a located, dated record with its 0.01° cell and decade

A search for a word in a few streets over a decade (years + text + a small box) was looked up
by the place × decade tokens of the search vector alone: in the benchmark's 10-million-record
catalogue, where half the records sit around one town, the cells of a 0.06° box over two
decades list ~170,000 records, each walked by the search index (~0.5 µs apiece) to find the few
thousand that also carry the word. This index holds, for each record with coordinates and
years, ``<cell>_<decade>_<word>`` for each of its words (taken from the search vector, so
nothing is stemmed twice), and such a search reads only the records that have all three:

- a record whose years span more than two decades carries ``<cell>_w_<word>`` instead (one
  token per word, not one per decade: the exact year test decides);
- a record with more than 1,000 distinct words carries only ``<cell>_all_*``;
- words that begin with a digit are left out (an inventory number is one record's alone: a key
  apiece would double the index for nothing a place search needs), and so are words over 2,000
  bytes (a token may not pass 2,047); a search for such a word alone uses the other index.

It is an index on an expression, not a column: the table does not grow (an earlier try stored
these tokens in the search vector: the table grew by a third and every broad search with it).
Building it reads every record once (a few minutes for ten million on a 2-core machine); the
table takes no writes meanwhile.

Revision ID: 0010
Revises: 0009
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_WORDS = 1000  # lexemes of a record beyond which it carries only <cell>_all_*
MAX_WORD_BYTES = 2000  # longer lexemes (a long URL) are left out: a token may not pass 2,047 bytes
WIDE_DECADES = 2  # a record spanning more decades carries <cell>_w_<word>

# plpgsql of simple expressions only (each runs without a query plan: 2.4 µs a record, where one
# SQL statement of unnest and ARRAY(SELECT ...) cost 6.5). A record spanning more than
# WIDE_DECADES decades gets the pseudo-decade 'w'; one with more than MAX_WORDS lexemes only the
# token <cell>_all_*.
WORD_PLACES = f"""
CREATE OR REPLACE FUNCTION arhiva_word_places(v tsvector, y_lo integer, y_hi integer, lat double precision,
                                              lon double precision)
RETURNS tsvector LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    spot text := floor(lat * 100)::int || '_' || floor(lon * 100)::int || '_';
    lo int := least(greatest(coalesce(y_lo, 1800), 1800), 2039) / 10;
    hi int := least(greatest(coalesce(y_hi, 2039), 1800), 2039) / 10;
    tokens text[] := '{{}}';
    w text;
BEGIN
    IF v IS NULL OR lat IS NULL OR lon IS NULL OR (y_lo IS NULL AND y_hi IS NULL) THEN
        RETURN NULL;
    ELSIF length(v) > {MAX_WORDS} THEN
        RETURN array_to_tsvector(ARRAY[spot || 'all_*']);
    END IF;
    FOREACH w IN ARRAY tsvector_to_array(v) LOOP
        -- words only: not the decade and cell tokens (~), not numbers, not overlong
        CONTINUE WHEN ascii(w) BETWEEN 48 AND 57 OR ascii(w) = 126 OR octet_length(w) > {MAX_WORD_BYTES};
        IF hi - lo >= {WIDE_DECADES} THEN
            tokens := tokens || (spot || 'w_' || w);
        ELSE
            tokens := tokens || (spot || lo || '_' || w);
            IF hi <> lo THEN
                tokens := tokens || (spot || hi || '_' || w);
            END IF;
        END IF;
    END LOOP;
    RETURN array_to_tsvector(tokens);
END $$
"""
INDEX_EXPR = "arhiva_word_places(search, year_lo, year_hi, lat, lon)"


def upgrade() -> None:
    op.execute(WORD_PLACES)
    op.execute("SET LOCAL maintenance_work_mem = '256MB'")
    op.execute(f"CREATE INDEX ix_records_word_places ON records USING gin ({INDEX_EXPR})")
    op.execute("ANALYZE records")  # statistics of the new expression for the planner (a row sample: seconds)


def downgrade() -> None:
    op.drop_index("ix_records_word_places", table_name="records")
    op.execute("DROP FUNCTION arhiva_word_places(tsvector, integer, integer, double precision, double precision)")
