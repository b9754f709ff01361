"""How large a table is, and how many of its rows a group holds (a collection's members, a
source's records), without counting millions.

``table_rows``: the planner's reckoning of a table's rows now (read once per search within
``sizes_once``). ``group_size``: a group counted (an index-only range, up to ``COUNT_MAX`` rows)
or, when the table's statistics put it at ``COUNT_MAX / 2`` or more, its share there times the
table's size. The statistics are ANALYZE's row sample across the whole table (its most common
values: 5.8% standard error at a share of 1%), never a block sample: rows are stored group by
group, as harvests add them, so a group lies in a run of blocks that a sample of 1% of the blocks
catches a few times or not at all (+69% for a collection of 100,000 in 10,000,000 memberships).
``group_sizes``: every group of a column at once, as the lists of collections and sources show
them (the web search page's menus, ``/api/collections``, ``arhiva sources``): exact up to
``COUNT_MAX``, estimated (and marked so) beyond; at 10 million records counting them took 0.4-2 s
a list.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from sqlalchemy import BigInteger, Column, func, literal, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

COUNT_MAX = 200_000  # a group's rows counted exactly up to this many (an index-only range)

_SIZES = "arhiva_table_rows"  # session.info key: the sizes read within sizes_once (tables and groups)


def table_rows(session: Session, table: str = "records") -> float:
    """A table's size now, as the planner reckons it: rows per page when last analysed times the
    pages it has now (-1: never analysed). Read once per table within ``sizes_once``."""
    memo = session.info.get(_SIZES, {})
    if table not in memo:
        memo[table] = session.scalar(text(
            "SELECT CASE WHEN reltuples <= 0 OR relpages = 0 THEN reltuples ELSE reltuples / relpages * "
            "(pg_relation_size(oid) / current_setting('block_size')::int) END "
            "FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": table}) or -1.0
    return memo[table]


@contextmanager
def sizes_once(session: Session) -> Iterator[None]:
    """Each table's size read once within the block (one search), not in four or five statements."""
    mine = _SIZES not in session.info
    session.info.setdefault(_SIZES, {})
    try:
        yield
    finally:
        if mine:
            session.info.pop(_SIZES, None)


def common_shares(session: Session, column: Column) -> dict[int, float]:
    """The share of the table's rows holding each of the column's most common values, as ANALYZE
    last found them (empty when never analysed)."""
    stats = session.execute(text(
        "SELECT most_common_vals::text::bigint[], most_common_freqs FROM pg_stats WHERE schemaname = current_schema() "
        "AND tablename = :t AND attname = :c"), {"t": column.table.name, "c": column.name}).first()
    return dict(zip(stats[0] or [], stats[1] or [])) if stats else {}


def group_size(session: Session, column: Column, key: int) -> tuple[float, bool] | None:
    """How many rows have ``column`` = ``key``, and whether counted: from the statistics when
    they put it at ``COUNT_MAX / 2`` or more (their error grows as the share shrinks), else counted
    up to ``COUNT_MAX`` and, beyond, from the statistics; None when neither tells. Read once per
    group within ``sizes_once`` (a search within a collection asks for its page and its count)."""
    memo = session.info.get(_SIZES, {})
    name = (column.table.name, column.name, key)
    if name not in memo:
        memo[name] = _sizes(session, column, [key]).get(key)
    return memo[name]


def group_sizes(session: Session, column: Column, keys: Iterable[int]) -> dict[int, tuple[int, bool]]:
    """Every key's rows, as ``group_size``, one statement for the counted ones; a group that
    neither a bounded count nor the statistics tell (a table not yet analysed) is counted whole."""
    keys = list(keys)
    sizes = _sizes(session, column, keys)
    untold = [k for k in keys if k not in sizes]
    if untold:
        whole = select(column, func.count()).where(column.in_(untold)).group_by(column)
        sizes.update({k: (n, True) for k, n in session.execute(whole).all()})
    return {k: (round(sizes[k][0]), sizes[k][1]) if k in sizes else (0, True) for k in keys}


def _sizes(session: Session, column: Column, keys: list[int]) -> dict[int, tuple[float, bool]]:
    rows = table_rows(session, column.table.name)
    shares = common_shares(session, column)
    told = {k: (shares[k] * rows, False) for k in keys if k in shares and shares[k] * rows >= COUNT_MAX / 2}
    counted = [k for k in keys if k not in told]
    if counted:
        # one index-only range per key, none read past COUNT_MAX + 1
        keys_t = func.unnest(literal(counted, ARRAY(BigInteger))).table_valued("key").render_derived(name="keys")
        rows_of_key = select(column).where(column == keys_t.c.key).correlate(keys_t).limit(COUNT_MAX + 1)
        stmt = select(keys_t.c.key, select(func.count()).select_from(rows_of_key.subquery()).scalar_subquery())
        for k, n in session.execute(stmt).all():
            if n <= COUNT_MAX:
                told[k] = (n, True)
            elif k in shares and rows > 0:
                told[k] = (shares[k] * rows, False)
    return told
