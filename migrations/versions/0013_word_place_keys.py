"""word × place index: 64-bit keys instead of text tokens

Migration 0010's index holds, for each word of a located, dated record, a text token
``<lat>_<lon>_<decade>_<word>`` (~20 bytes): ~10 a record, nearly all distinct, so each is a new
entry in the index's tree, and keeping that tree was the largest part of storing a new record
(bench/upsert_parts.py: a bulk load ran 1.3–1.7× as fast without the index). The same facts now
fit in one bigint a word::

    bits 48–62  floor(lat × 100) + 9,000   (0–18,000: the 0.01° cell's row)
    bits 32–47  floor(lon × 100) + 18,000  (0–36,000: its column)
    bits 27–31  decade − 180 (0–23 for the 1800s–2030s), 30 for a record spanning more than
                two decades (the exact year test decides), 31 for a record with more than
                1,000 words (it carries that one key, with no word)
    bits 0–26   the word's hashtext, its low 27 bits

An index of fixed 8-byte keys compares them as integers and packs more of them a page; a load of
new records ran 1.15× as fast with it (bench/upsert_parts.py, four rounds taking turns). Two
words may share a hash: a search then reads a few records more, which its text condition (always
tested row by row on this path) leaves out. The search computes the keys it asks for from the
same layout (``catalog.search_tokens.word_place_keys``) with the server's own ``hashtext``, so they match
what the index holds on any machine. Words that begin with a digit are still left out; words of
any length are in (a hash has no length).

Building the index reads every record once (a few minutes for ten million on a 2-core
machine); the table takes no writes meanwhile. Downgrading builds 0010's index again.

Revision ID: 0013
Revises: 0012
"""
from __future__ import annotations

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_WORDS = 1000  # lexemes of a record beyond which it carries only its cell's "all" key
WIDE_DECADES = 2  # a record spanning more decades carries its words with the "wide" slot
WIDE, ALL = 30, 31  # the slots that are not a decade
HASH_BITS = 27

# plpgsql of simple expressions only, as 0010's (each runs without a query plan).
KEYS = f"""
CREATE OR REPLACE FUNCTION arhiva_word_place_keys(v tsvector, y_lo integer, y_hi integer,
                                                  lat double precision, lon double precision)
RETURNS bigint[] LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    spot bigint := ((floor(lat * 100)::bigint + 9000) << 48) | ((floor(lon * 100)::bigint + 18000) << 32);
    lo int := least(greatest(coalesce(y_lo, 1800), 1800), 2039) / 10;
    hi int := least(greatest(coalesce(y_hi, 2039), 1800), 2039) / 10;
    keys bigint[] := '{{}}';
    w text;
    h bigint;
BEGIN
    IF v IS NULL OR lat IS NULL OR lon IS NULL OR (y_lo IS NULL AND y_hi IS NULL) THEN
        RETURN NULL;
    ELSIF length(v) > {MAX_WORDS} THEN
        RETURN ARRAY[spot | ({ALL}::bigint << {HASH_BITS})];
    END IF;
    FOREACH w IN ARRAY tsvector_to_array(v) LOOP
        -- words only: not the decade and cell tokens (~), not numbers
        CONTINUE WHEN ascii(w) BETWEEN 48 AND 57 OR ascii(w) = 126;
        h := spot | (hashtext(w)::bigint & {(1 << HASH_BITS) - 1});
        IF hi - lo >= {WIDE_DECADES} THEN
            keys := keys || (h | ({WIDE}::bigint << {HASH_BITS}));
        ELSE
            keys := keys || (h | ((lo - 180)::bigint << {HASH_BITS}));
            IF hi <> lo THEN
                keys := keys || (h | ((hi - 180)::bigint << {HASH_BITS}));
            END IF;
        END IF;
    END LOOP;
    RETURN keys;
END $$
"""
INDEX_EXPR = "arhiva_word_place_keys(search, year_lo, year_hi, lat, lon)"


def upgrade() -> None:
    op.execute(KEYS)
    op.execute("SET LOCAL maintenance_work_mem = '256MB'")
    op.execute("DROP INDEX ix_records_word_places")
    op.execute("DROP FUNCTION arhiva_word_places(tsvector, integer, integer, double precision, double precision)")
    op.execute(f"CREATE INDEX ix_records_word_place_keys ON records USING gin ({INDEX_EXPR})")
    op.execute("ANALYZE records")  # statistics of the new expression for the planner


def downgrade() -> None:
    old = importlib.import_module("migrations.versions.0010_word_place_index")
    op.execute(old.WORD_PLACES)
    op.execute("SET LOCAL maintenance_work_mem = '256MB'")
    op.execute("DROP INDEX ix_records_word_place_keys")
    op.execute("DROP FUNCTION arhiva_word_place_keys(tsvector, integer, integer, double precision, double precision)")
    op.execute(f"CREATE INDEX ix_records_word_places ON records USING gin ({old.INDEX_EXPR})")
    op.execute("ANALYZE records")
