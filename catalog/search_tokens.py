"""The tokens a search looks records up by: decade, start/end-year and grid-cell tokens in the
search vector (migrations 0001, 0008, 0011), the collections' ``~k<id>`` tokens (0017), and the
word × place × decade keys of ix_records_word_place_keys (0013)."""
from __future__ import annotations

import math

from sqlalchemy import cast, func, or_
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.orm import Session

from catalog.models import Record
from catalog.search_text import parse_text

# Each word of a located, dated record with its 0.01° cell and decade, as one bigint (migration
# 0013; the expression of the index ix_records_word_place_keys, which the planner matches as
# written): the cell's row and column, a slot (the decade, WIDE_SLOT for a record spanning more
# decades, ALL_SLOT for a record of too many words) and the word's hashtext.
WORD_PLACE_KEYS = func.arhiva_word_place_keys(Record.search, Record.year_lo, Record.year_hi, Record.lat, Record.lon)
FINE_CELL = "~g001_"
WIDE_SLOT, ALL_SLOT, HASH_BITS = 30, 31, 27
# Decade and grid tokens in the search vector (see migrations 0001 and 0008).
DECADE_MIN, DECADE_MAX = 1800, 2039
MAX_CELL_TOKENS = 64
MAX_COMBINED_TOKENS = 512


def decade_tokens(year_from: int | None, year_to: int | None) -> list[str]:
    lo = min(max(year_from if year_from is not None else DECADE_MIN, DECADE_MIN), DECADE_MAX) // 10
    hi = min(max(year_to if year_to is not None else DECADE_MAX, DECADE_MIN), DECADE_MAX) // 10
    return [f"~d{d}" for d in range(lo, hi + 1)]


def year_tokens(year_from: int | None, year_to: int | None) -> list[str] | None:
    """The tokens of exactly the records whose years overlap a question spanning decades
    (migration 0011): those in its middle decades, those ending in its first decade from its
    start year on, those starting in its last decade up to its end year and, when those two
    decades meet, those crossing between them. None within one decade (its decade token then)."""
    a = min(max(year_from if year_from is not None else DECADE_MIN, DECADE_MIN), DECADE_MAX)
    b = min(max(year_to if year_to is not None else DECADE_MAX, DECADE_MIN), DECADE_MAX)
    first, last = a // 10, b // 10
    if first == last:
        return None
    return ([f"~d{d}" for d in range(first + 1, last)] + [f"~e{y}" for y in range(a, 10 * first + 10)]
            + [f"~s{y}" for y in range(10 * last, b + 1)] + ([f"~x{last}"] if last == first + 1 else []))


def cell_tokens(w: float, s: float, e: float, n: float) -> list[str] | None:
    """Grid-cell tokens covering a box (w <= e), or None when too many to help."""
    for prefix, scale in (("~g001", 100), ("~g01", 10), ("~g1", 1)):
        lats = range(math.floor(s * scale), math.floor(n * scale) + 1)
        lons = range(math.floor(w * scale), math.floor(e * scale) + 1)
        if len(lats) * len(lons) <= MAX_CELL_TOKENS:
            return [f"{prefix}_{la}_{lo}" for la in lats for lo in lons]
    return None


TOKEN_CHUNK = 20


def token_query(tokens: list[str]):
    """Records whose search vector carries any of the tokens. GIN tests every item of the tokens'
    posting lists against the whole query, so one query of 98 alternatives cost ~1.1 µs per item
    where five queries of 20, OR'ed, cost about half (measured at 10M records: 166,000 items,
    188 ms against 78 ms with a word)."""
    parts = [Record.search.op("@@")(cast(" | ".join(_quoted(t) for t in tokens[i:i + TOKEN_CHUNK]), TSQUERY))
             for i in range(0, len(tokens), TOKEN_CHUNK)]
    return parts[0] if len(parts) == 1 else or_(*parts)


def _quoted(token: str) -> str:
    """A token as one tsquery operand (quotes and backslashes doubled)."""
    return "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"


def word_place_keys(cells: list[str], decades: list[str], word_hash: int) -> list[int]:
    """The keys of ix_records_word_place_keys (migration 0013) for a word (its ``hashtext``) in
    each 0.01° cell (``FINE_CELL`` tokens) and decade (``~d`` tokens), with each cell's keys for
    records spanning more decades and for records with too many words to carry them."""
    word = word_hash & ((1 << HASH_BITS) - 1)
    keys = []
    for c in cells:
        lat, lon = (int(v) for v in c[len(FINE_CELL):].split("_"))
        spot = ((lat + 9000) << 48) | ((lon + 18000) << 32)
        keys += [spot | ((int(d[2:]) - 180) << HASH_BITS) | word for d in decades]
        keys += [spot | (WIDE_SLOT << HASH_BITS) | word, spot | (ALL_SLOT << HASH_BITS)]
    return keys


def text_word_place_keys(session: Session, text: str, cells: list[str], decades: list[str]) -> list[int] | None:
    """The word × place keys for the most telling word every match of ``text`` has (its longest
    single lexeme not starting with a digit); None when no word qualifies or the cells are
    coarser. The word's hash is the server's, as the index's is."""
    if not cells or not all(c.startswith(FINE_CELL) for c in cells):
        return None
    words = parse_text(text).required_words()
    if not words:
        return None
    rows = session.execute(sql_text(
        "SELECT lex, hashtext(lex[1]) FROM (SELECT tsvector_to_array(to_tsvector('arhiva'::regconfig, "
        "arhiva_fold(w))) AS lex FROM unnest(CAST(:words AS text[])) AS w) x"), {"words": words})
    single = [(lex[0], h) for lex, h in rows if len(lex) == 1 and not "0" <= lex[0][0] <= "9"]
    if not single:
        return None
    return word_place_keys(cells, decades, max(single, key=lambda lh: len(lh[0]))[1])
