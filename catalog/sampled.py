"""How many records a search matches, estimated from a fixed sixteenth of the catalogue that has a
search index of its own (migration 0018), and the facets of those matches.

The search index costs what the posting lists it intersects cost, not what it finds: at 10 million
records a word (558,000 records), a collection of 3 million and ten years (810,000) met in 13,687
records, and the index took 142 ms to find them, however few a page needed. The records whose id
hashes into one sixteenth (``hashint8(id) & 15 = 0``: blind to when, where and what a record is)
have a GIN index of their own, a sixteenth of the whole one: the same search there read 858
candidates in 11 ms, and sixteen times its 844 matches, 13,504, was the estimate. With ``m``
matches in the sample, the estimate's standard error is about ``1/√m`` of it: past a count's bound
of 10,000, ``m`` is some 600 or more (±4%). ``catalog.seek`` asks it when the density of matches
its windows saw says that a search may match more than the bound, before reading every match
through the whole index: when the sample says surely more, the count is its estimate, its
facets the sample's scaled, and the page comes from walking on in id order.
"""
from __future__ import annotations

import math

from sqlalchemy import Select, func, literal_column, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BinaryExpression

from catalog.counts import Count, Facets, _faceted, _facets, _grouped, _planner, _Tally, _ways
from catalog.models import Record

SAMPLE_SHARE = 16  # the sample holds one record in this many (the index's predicate below)
# the predicate of ix_records_search_sample, as the planner must see it to use that index
IN_SAMPLE = func.hashint8(Record.id).op("&")(literal_column("15")) == literal_column("0")


# how the sample is read: through its index's bitmap, never a walk of the table; no hash or merge
# join either (a colorized filter then probes its few hundred records' links instead of hashing
# every link)
_WAYS = {**_ways(False, True), "hashjoin": True, "mergejoin": True}


def uses_search_index(filtered: Select) -> bool:
    """Whether ``filtered`` asks the search index anything (``search @@ …``): only then can the
    sample's own index find its matches."""
    if filtered.whereclause is None:
        return False
    table = Record.__table__
    return any(isinstance(el, BinaryExpression) and isinstance(el.operator, operators.custom_op)
               and el.operator.opstring == "@@" and getattr(el.left, "table", None) is table
               and el.left.key == "search" for el in visitors.iterate(filtered.whereclause))


def index_sample(session: Session, filtered: Select, *, with_facets: bool = False) -> _Tally:
    """The matches of ``filtered`` (a search with conditions on the search vector) among the
    sample's records, through the sample's index: counted, and with ``with_facets`` grouped as the
    facets group them (``catalog.counts``)."""
    ways = _WAYS
    if with_facets:
        return _grouped(session, filtered.with_only_columns(*_faceted()).where(IN_SAMPLE), ways)
    ids = filtered.with_only_columns(Record.id).where(IN_SAMPLE).subquery("sampled")
    with _planner(session, **ways):
        return _Tally(session.scalar(select(func.count()).select_from(ids)))


def surely_more(sample: _Tally, bound: int) -> bool:
    """Whether the search matches more than ``bound`` records even at the low end of what the
    sample's matches can mean (three standard deviations below them: a search of exactly 10,000
    matches holds 625 ± 24 in the sample, and is taken for more only past 705, once in 2,000;
    the sample is fixed, so such a search would be estimated every time)."""
    m = sample.total
    return (m - 3 * math.sqrt(m)) * SAMPLE_SHARE > bound


def sampled_count(session: Session, sample: _Tally, bound: int, with_facets: bool) -> tuple[Count, Facets | None]:
    """The estimate (more than ``bound``: ``surely_more`` said so) and, with ``with_facets``, the
    sample's facets scaled to it."""
    estimate = max(bound + 1, round(sample.total * SAMPLE_SHARE))
    facets = _facets(session, sample, False, estimate / max(1, sample.total)) if with_facets else None
    return Count(estimate, False), facets
