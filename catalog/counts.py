"""How many records match, and facets beside them, without costing the query.

Up to ``exact_max`` matches (10,000 by default) the count is exact: the matches are counted
through a ``LIMIT exact_max + 1`` subquery, so a broad query stops after that many rows. Beyond,
the count is an estimate, marked as such: the same filter run on a block sample of the records
table (``TABLESAMPLE SYSTEM``, about ``sample_rows`` rows, the same blocks every time) and scaled
up. Its error is measured by ``bench/catalog_bench.py``.

Facets (records per decade, per collection, colorized or not) come from the matches themselves
while the count is exact, and from the same sample, scaled, when it is an estimate.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, exists, func, literal, select, tablesample, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.util import ClauseAdapter

from catalog.models import Collection, CollectionMember, Record, RecordAsset

COUNT_EXACT_MAX = 10_000
SAMPLE_ROWS = 60_000
SAMPLE_SEED = 1  # the same blocks every time: paging through results keeps the same estimate
COUNT_MODES = ("auto", "exact")


@dataclass
class Count:
    value: int
    exact: bool

    def label(self) -> str:
        """'1,234' when exact; 'about 1.2 million', 'about 35,000' when estimated."""
        return f"{self.value:,}" if self.exact else f"about {approx(self.value)}"


@dataclass
class Facets:
    exact: bool
    decades: list[dict[str, Any]] = field(default_factory=list)  # {"decade": 1940 | None, "count": n}
    collections: list[dict[str, Any]] = field(default_factory=list)  # {"name": ..., "count": n}
    colorized: dict[str, int] = field(default_factory=dict)  # {"yes": n, "no": n}

    def as_dict(self) -> dict[str, Any]:
        return {"exact": self.exact, "decades": self.decades, "collections": self.collections,
                "colorized": self.colorized}


def approx(n: int) -> str:
    """Two significant figures in words: 1,234,567 → '1.2 million', 34,567 → '35,000'."""
    if n <= 0:
        return "0"
    digits = math.floor(math.log10(n)) + 1
    rounded = round(n, -(digits - 2)) if digits > 2 else n
    if rounded >= 1_000_000_000:
        return f"{rounded / 1e9:.1f}".rstrip("0").rstrip(".") + " billion"
    if rounded >= 1_000_000:
        return f"{rounded / 1e6:.1f}".rstrip("0").rstrip(".") + " million"
    return f"{rounded:,}"


def _decade():
    year = func.coalesce(Record.year_lo, Record.year_hi)
    return (func.div(year, 10) * 10).label("decade")


def _colorized():
    return exists().where(RecordAsset.record_id == Record.id, RecordAsset.role == "colorized").label("colorized")


def exact_count(session: Session, filtered: Select, limit: int | None = None) -> int:
    ids = filtered.with_only_columns(Record.id)
    if limit is not None:
        ids = ids.limit(limit)
    return session.scalar(select(func.count()).select_from(ids.subquery()))


def _sample_percent(session: Session, sample_rows: int) -> float:
    """The share of the records table (in %) that holds about ``sample_rows`` rows; 100 when the
    table is small or has never been analysed."""
    rows = session.scalar(text("SELECT reltuples FROM pg_class WHERE oid = 'records'::regclass"))
    if rows is None or rows <= 0:
        return 100.0
    return min(100.0, 100.0 * sample_rows / rows)


def count_matches(session: Session, filtered: Select, *, mode: str = "auto", exact_max: int = COUNT_EXACT_MAX,
                  sample_rows: int = SAMPLE_ROWS) -> Count:
    """Exact up to ``exact_max`` matches (or always, with mode 'exact'); an estimate beyond."""
    if mode == "exact":
        return Count(exact_count(session, filtered), True)
    n = exact_count(session, filtered, exact_max + 1)
    if n <= exact_max:
        return Count(n, True)
    percent = _sample_percent(session, sample_rows)
    if percent >= 100:
        return Count(exact_count(session, filtered), True)
    sampled = _sampled_groups(session, filtered, percent, [])
    return Count(max(exact_max + 1, round(sum(sampled.values()) * 100 / percent)), False)


def _sampled_groups(session: Session, filtered: Select, percent: float | None, columns: list) -> dict:
    """Counts of matches grouped by ``columns`` on the sample (percent) or on all rows (None)."""
    stmt = filtered.with_only_columns(*columns, func.count()).group_by(*columns) if columns else \
        filtered.with_only_columns(func.count())
    if percent is not None:
        sample = tablesample(Record, func.system(percent), name="records_sample", seed=literal(SAMPLE_SEED))
        stmt = ClauseAdapter(sample).traverse(stmt)
    rows = session.execute(stmt).all()
    return {tuple(r[:-1]): r[-1] for r in rows}


def facets(session: Session, filtered: Select, count: Count, *, sample_rows: int = SAMPLE_ROWS) -> Facets:
    """Per decade, per collection, colorized or not: exact when the count is, else from the sample."""
    percent = None if count.exact else _sample_percent(session, sample_rows)
    if percent is not None and percent >= 100:
        percent = None
    scale = 1.0 if percent is None else 100 / percent
    by_year = _sampled_groups(session, filtered, percent, [_decade(), _colorized()])
    member = filtered.join(CollectionMember, CollectionMember.record_id == Record.id)
    by_collection = _sampled_groups(session, member, percent, [CollectionMember.collection_id])
    names = dict(session.execute(select(Collection.id, Collection.name)
                                 .where(Collection.id.in_([k[0] for k in by_collection]))).all())
    decades: dict[int | None, int] = {}
    colorized = {"yes": 0, "no": 0}
    for (decade, col), n in by_year.items():
        decades[decade] = decades.get(decade, 0) + n
        colorized["yes" if col else "no"] += n
    out = Facets(exact=percent is None)
    out.decades = [{"decade": d, "count": round(n * scale)}
                   for d, n in sorted(decades.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))]
    out.collections = sorted(({"name": names[k[0]], "count": round(n * scale)} for k, n in by_collection.items()),
                             key=lambda c: (-c["count"], c["name"]))
    out.colorized = {k: round(v * scale) for k, v in colorized.items()}
    return out
