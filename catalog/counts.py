"""How many records match, and facets beside them, without costing the query.

Up to ``exact_max`` matches (10,000 by default) the count is exact: the matches are counted
through a ``LIMIT exact_max + 1`` subquery, so a broad query stops after that many rows. Beyond,
the count is an estimate, marked as such: the same filter run on a block sample of the records
table (``TABLESAMPLE SYSTEM``, about ``sample_rows`` rows, the same blocks every time) and scaled
up. Its error is measured by ``bench/catalog_bench.py``.

Which comes first: a search that looks narrow (few matches among the records the page walked,
see catalog.seek) is counted exactly first; a broad one is sampled first, and counted exactly
only when the sample finds too few matches to trust (``MIN_HITS``) or fewer than ``exact_max``.

Facets (records per decade, per collection, colorized or not) come from the matches themselves
while the count is exact, and from the sample, scaled, when it is an estimate: from the same
pass as the count when the page's density expects few matches in the sample, else from a second
pass over fewer of its blocks (enough for the large groups).

A search within one collection is sampled from the collection's side instead: a block sample
of ``collection_members`` (narrow rows: many per block), of which the members of that
collection are tested against the rest of the search, one record probe each, or a hashed
share of them when the collection is large (see ``_member_tally``); the share that matches times
the collection's size (counted, or from the table's statistics when large: ``_collection_size``)
is the estimate. Sampling records instead
would probe the membership index once per sampled record, and find few matches for a small
collection.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    select,
    tablesample,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.util import ClauseAdapter

from catalog.count_labels import Count, Facets, approx  # noqa: F401 (approx: used from here too)
from catalog.db import local_settings
from catalog.models import Collection, CollectionMember, Record, RecordAsset
from catalog.seek import decade_of
from catalog.sizes import group_size, table_rows

COUNT_EXACT_MAX = 10_000
SAMPLE_ROWS = 40_000
MEMBER_SAMPLE_FACTOR = 2  # a collection's search samples this many times SAMPLE_ROWS membership rows
MEMBER_PROBES = 2_000  # members of the sample tested against the rest of the search (at most about)
# ... when those found too few matches to trust (one record probe each; 20,000 left a collection
# of 3 million with a 0.8% share matching to a bounded count of 0.4-0.5 s at 10 million records)
MEMBER_PROBES_MAX = 50_000
SAMPLE_SEED = 1  # the same blocks every time: paging through results keeps the same estimate
COUNT_MODES = ("auto", "exact")


def _decade():
    return decade_of(Record).label("decade")


def _faceted() -> tuple:
    """The columns a match is grouped by for facets: its id, decade and collections (the row's
    own list, migration 0017: no probe of the memberships)."""
    return Record.id, _decade(), Record.collections


def exact_count(session: Session, filtered: Select, limit: int | None = None) -> int:
    ids = filtered.with_only_columns(Record.id)
    if limit is not None:
        ids = ids.limit(limit)
    return session.scalar(select(func.count()).select_from(ids.subquery()))


def planned_rows(session: Session, filtered: Select) -> float:
    """The planner's estimate of the matches (EXPLAIN, nothing run): cheap, often far off."""
    stmt = filtered.with_only_columns(Record.id)
    compiled = stmt.compile(dialect=session.get_bind().dialect)
    plan = session.connection().exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params).scalar()
    return float(plan[0]["Plan"]["Plan Rows"])


def _sample_percent(session: Session, sample_rows: int, table: str = "records") -> float:
    """The share of a table (in %) that holds about ``sample_rows`` rows; 100 when the table is
    small or has never been analysed."""
    rows = table_rows(session, table)
    if rows <= 0:
        return 100.0
    return min(100.0, 100.0 * sample_rows / rows)


QUICK_SETTINGS = {"jit": "off", "max_parallel_workers_per_gather": "0"}
# work_mem (at least) of a bounded count through the indexes' bitmaps; see _planner
BITMAP_MEM = "32MB"


def quick_settings(session: Session):
    """JIT and parallel workers off for the statements inside, then as the caller had them. A
    search's statements are short, but their cost estimates (a sample with one index probe per
    row, a bounded count) often cross ``jit_above_cost``: compiling them took ~85 ms, more than
    running them; and starting workers on a busy 2-core machine made a bounded count of 10,000
    members 40-60 ms slower than running it in one process."""
    return local_settings(session, **QUICK_SETTINGS)


def _planner(session: Session, *, bitmap_mem: bool = False, **off: bool):
    """Switch planner methods off (``hashjoin=True`` → enable_hashjoin off) for one statement;
    with ``bitmap_mem``, work_mem of at least BITMAP_MEM. With PostgreSQL's default 4 MB, the
    bitmap of a bounded count's candidates went lossy beyond ~80,000 records (every row of such a
    page tested again against the search vector): within a collection of 100,000, five years'
    83,000 candidates were read in 569 ms, in 240 ms with the bitmap exact (10M records). Only
    there: with more memory for every statement, the planner hashed all 300,000 colorized links
    to probe a sample's 4,000 records (the facets of one collection: p95 91 -> 198 ms)."""
    settings = {f"enable_{k}": "off" for k, v in off.items() if v}
    if bitmap_mem:
        settings["work_mem"] = BITMAP_MEM
    return local_settings(session, **settings)


def _ways(sampled: bool, limited: bool) -> dict[str, bool]:
    """How a count is made to run. On a sample, a collection or colorization filter is answered by
    one index probe per sampled record (the planner would rather hash every member of the
    collection, millions). A bounded exact count (few matches expected) goes through the indexes'
    bitmaps (with the memory to keep them exact): the planner, hoping to reach the bound early,
    would otherwise walk the whole table."""
    return {"hashjoin": sampled, "mergejoin": sampled, "seqscan": limited and not sampled,
            "indexscan": limited and not sampled, "bitmap_mem": limited and not sampled}


@dataclass
class _Tally:
    """Matches counted, grouped by decade and, from the matches picked for probing (all, or a
    hashed share of them), by colorized or not and by collection id; from all matches or a sample."""

    total: int
    by_decade: dict[int | None, int] = field(default_factory=dict)
    by_colorized: dict[bool, int] = field(default_factory=dict)
    by_collection: dict[int, int] = field(default_factory=dict)
    rows: int = 0  # records in the sample (matching or not)

    @property
    def picked(self) -> int:
        return sum(self.by_colorized.values())


def _tally(session: Session, filtered: Select, *, percent: float | None = None, limit: int | None = None,
           with_facets: bool = False) -> _Tally:
    """Count the matches (all, the first ``limit``, or those in a ``percent`` block sample) in one
    statement, with the facet groups when asked. With ``limit``, the facets probe nothing when the
    count reaches it (the matches are then more than counted: their facets come from a sample)."""
    ways = _ways(percent is not None, limit is not None)
    if percent is not None and not with_facets:
        # matches and all records of the sample in one scan: the estimate is their ratio times
        # the table's rows, free of how many rows the sampled blocks happen to hold
        sample = _records_sample(percent)
        where = filtered.whereclause if filtered.whereclause is not None else true()
        stmt = select(func.count().filter(where), func.count()).select_from(Record)
        with _planner(session, **ways):
            hits, rows = session.execute(ClauseAdapter(sample).traverse(stmt)).one()
        return _Tally(hits, rows=rows)
    cols = _faceted() if with_facets else [Record.id]
    stmt = filtered.with_only_columns(*cols)
    if percent is not None:
        stmt = ClauseAdapter(_records_sample(percent)).traverse(stmt)
    if limit is not None:
        stmt = stmt.limit(limit)
    if not with_facets:
        with _planner(session, **ways):
            return _Tally(session.scalar(select(func.count()).select_from(stmt.subquery("matches"))))
    return _grouped(session, stmt, ways, cap=limit)


def _grouped(session: Session, stmt: Select, ways: dict[str, bool], cap: int | None = None) -> _Tally:
    """The matches of ``stmt`` (the columns of ``_faceted``) grouped by decade, and the matches picked for
    probing grouped by colorized or not and by collection (see ``_facet_parts``; none picked when
    there are ``cap`` or more). One statement."""
    m = stmt.cte("matches").prefix_with("MATERIALIZED")
    capped = None if cap is None else select(func.count()).select_from(m).scalar_subquery() >= cap
    with _planner(session, **ways):
        rows = session.execute(union_all(*_facet_parts(m, capped))).all()
    return _read_groups(rows)


def _facet_parts(m, capped: Any = None) -> list[Select]:
    """The facet groups of the matches ``m`` (a CTE of the columns of ``_faceted``), as UNION ALL
    branches of (kind, key, n): 'd' decades of every match; of the matches picked for probing,
    'z' colorized or not and 'c' per collection. Picked: every match when there are at most
    ``FACET_EXACT_MAX``, else a hashed share of ``FACET_PROBES`` (the colorized probe, one
    index lookup a picked match, is most of a facet's cost; the decade and the collections are
    on the row already); none when ``capped``
    (an SQL condition) holds: a count that reached its cap, whose facets come from elsewhere."""
    n = select(func.greatest(func.count(), 1)).select_from(m).scalar_subquery()
    share = case((n <= FACET_EXACT_MAX, 1.0), else_=func.least(1.0, literal(float(FACET_PROBES)) / n))
    if capped is not None:
        share = case((capped, 0.0), else_=share)
    picked = (select(m.c.id, m.c.collections,
                     exists().where(RecordAsset.record_id == m.c.id, RecordAsset.role == "colorized").label("colorized"))
              .where(func.hashint8(m.c.id).op("&")(2147483647) < share * 2147483648.0)
              .cte("picked").prefix_with("MATERIALIZED"))
    decades = select(literal("d").label("kind"), cast(m.c.decade, BigInteger).label("key"),
                     func.count().label("n")).group_by(m.c.decade)
    colorized = select(literal("z"), cast(cast(picked.c.colorized, Integer), BigInteger), func.count()).group_by(picked.c.colorized)
    # each picked match's collections from its own row (migration 0017)
    cm = func.unnest(picked.c.collections).table_valued("collection_id").render_derived("cm")
    members = (select(literal("c"), cast(cm.c.collection_id, BigInteger), func.count())
               .select_from(picked.join(cm, true())).group_by(cm.c.collection_id))
    return [decades, colorized, members]


def _read_groups(rows) -> _Tally:
    """A tally from the (kind, key, n) rows of ``_facet_parts``; its total is the sum of the decades."""
    tally = _Tally(0)
    for kind, key, count in rows:
        if kind == "d":
            tally.by_decade[None if key is None else int(key)] = count
        elif kind == "z":
            tally.by_colorized[bool(key)] = count
        elif kind == "c":
            tally.by_collection[int(key)] = count
    tally.total = sum(tally.by_decade.values())
    return tally


def _records_sample(percent: float):
    return tablesample(Record, func.system(percent), name="records_sample", seed=literal(SAMPLE_SEED))


def _sample_size(session: Session, percent: float) -> int:
    """Records in the ``percent`` block sample (the same blocks as ``_tally``'s)."""
    return session.scalar(select(func.count()).select_from(_records_sample(percent)))


def _members_sample(percent: float):
    return tablesample(CollectionMember, func.system(percent), name="members_sample", seed=literal(SAMPLE_SEED))


def _picked(cms, collection_id: int, share: float):
    """The sampled members of the collection, or a share of them picked by a hash of the record
    id (the same ones every time)."""
    cond = cms.c.collection_id == collection_id
    if share < 1.0:
        cond = and_(cond, func.hashint8(cms.c.record_id).op("&")(2147483647) < int(share * 2**31))
    return cond


def _member_tally(session: Session, filtered: Select, collection_id: int, percent: float, share: float,
                  with_facets: bool = False, whole: bool = False) -> _Tally:
    """In a ``percent`` block sample of the memberships (``whole``: in all of them, through the
    collection's range of the primary key), the collection's members picked (a ``share`` of
    them, hashed) and which of those match the search: ``rows`` picked, ``total`` matching, and
    with ``with_facets`` the matches grouped."""
    # an alias of the whole table: the search's own membership condition (an EXISTS on the same
    # table) would otherwise correlate to it and lose its FROM
    cms = CollectionMember.__table__.alias("members_all") if whole else _members_sample(percent)
    picked = _picked(cms, collection_id, share)
    where = filtered.whereclause if filtered.whereclause is not None else true()
    ways = _ways(True, False)
    if with_facets:
        stmt = (select(*_faceted()).select_from(cms)
                .join(Record, Record.id == cms.c.record_id).where(picked, where))
        return _grouped(session, stmt, ways)
    # one probe of the records table per picked member, none for the others
    match = exists().where(Record.id == cms.c.record_id, where)
    with _planner(session, **ways):
        rows, hits = session.execute(select(func.count().filter(picked), func.count().filter(and_(picked, match)))
                                     .select_from(cms)).one()
    return _Tally(hits, rows=rows)


def _bigints(values: list[int]):
    return literal(values, ARRAY(BigInteger))


MIN_HITS = 200  # sampled matches below which a sample is not trusted for the count
FACET_HITS = 4_000  # sampled matches facets are counted from (a smaller sample of the same blocks)
# The colorized and collection facets count each match (colorized: an index probe; collections:
# its row, migration 0017) up to FACET_EXACT_MAX matches, beyond, a hashed share of FACET_PROBES,
# scaled: 1,000 put a share's 95% interval within ±3 points. Profiled at 10 million records, the
# two probes (then colorized and collections) took 25-33 ms for 2,500 matches, 15-16 for 1,000.
FACET_EXACT_MAX = 2_500
FACET_PROBES = 1_000


def count_and_facets(session: Session, filtered: Select, *, mode: str = "auto", with_facets: bool = False,
                     exact_max: int = COUNT_EXACT_MAX, sample_rows: int = SAMPLE_ROWS,
                     density: float | None = None, known: int | None = None, beyond: int | None = None,
                     known_tally: _Tally | None = None, members_of: int | None = None, sampled_filter: Select | None = None,
                     past_bound: int | None = None, known_ids: list[int] | None = None,
                     in_sample: _Tally | None = None) -> tuple[Count, Facets | None]:
    """How many match (exact up to ``exact_max``, or always with mode 'exact'; an estimate beyond)
    and, with ``with_facets``, the facets (exact when the count is, else from the sample).

    ``density``, the share of matches among records walked in id order (catalog.seek), tells a
    narrow search (counted exactly first) from a broad one (sampled first); without it the
    planner's estimate does, less reliably. ``known``: the exact count, already counted on the
    way to the page (catalog.seek), at most ``exact_max``. ``members_of``: the search is within
    this collection (its id), sampled from the collection's side. ``beyond``: counting on the way
    to the page already found more than ``exact_max`` matches, so none is counted again.
    ``known_tally``: the facet groups of the matches counted on the way (catalog.seek, which
    groups and probes them in the statement that counts them): the facets then come from there,
    instead of running the search again. ``sampled_filter``: the same search without the
    conditions that only help its index (catalog.queries), tested row by row on samples.
    ``past_bound``: the exact count of a search that counting on the way found past
    ``exact_max`` (catalog.seek): exact, with the facets of every one of those matches
    (``known_tally``), or, without it, scaled to the count from the sample. ``known_ids``: the
    ids of every match, when the windows walked the whole table to count them. ``in_sample``: the
    search's matches in the sample with its own search index (catalog.sampled), asked on the way
    to the page: when they say surely more than ``exact_max`` the estimate comes from there, as it
    does for any page of a search whose block sample holds too few matches to be precise (which
    asks the sample itself, or takes these)."""
    def done(tally: _Tally, exact: bool, scale: float = 1.0, total: int | None = None):
        count = Count(tally.total if total is None else total, exact)
        return count, (_facets(session, tally, exact, scale) if with_facets else None)

    from catalog.sampled import index_sample, sampled_count, surely_more, uses_search_index

    if in_sample is not None and mode != "exact" and surely_more(in_sample, exact_max):
        return sampled_count(session, in_sample, exact_max, with_facets)
    sf = filtered if sampled_filter is None else sampled_filter
    if past_bound is not None and not (mode == "exact" and with_facets):
        if not with_facets:
            return Count(past_bound, True), None
        if known_tally is not None and known_tally.total == past_bound and known_tally.picked:
            # every match grouped on the way: exact decades, colorized and collections probed for
            # all or a hashed share of them (exact only when all were)
            return done(known_tally, True)
        if known_ids is not None and len(known_ids) == past_bound:
            return done(_tally_of_ids(session, known_ids), True)
        percent = _sample_percent(session, sample_rows)
        if percent >= 100:
            return done(_tally(session, filtered, with_facets=True), True)
        few = _tally(session, sf, percent=percent, with_facets=True)
        return Count(past_bound, True), _facets(session, few, False, past_bound / max(1, few.total))
    if known is not None and not with_facets:
        return Count(known, True), None
    if known_tally is not None and known_tally.total == known and mode != "exact":
        return done(known_tally, True)
    if known is not None and known_ids is not None and len(known_ids) == known and with_facets:
        return done(_tally_of_ids(session, known_ids), True)
    if mode == "exact" or known is not None:
        return done(_tally(session, filtered, with_facets=with_facets), True)
    if members_of is not None:
        return _collection_count(session, filtered, members_of, with_facets=with_facets, exact_max=exact_max,
                                 sample_rows=sample_rows * MEMBER_SAMPLE_FACTOR, sampled_filter=sf,
                                 more=beyond is not None and beyond >= exact_max)
    counted, narrow = None, False
    if beyond is not None and beyond >= exact_max:
        counted = _Tally(beyond + 1)  # more than exact_max: an estimate, never a second count
    elif density is not None:
        narrow = density * table_rows(session) <= exact_max / 2
    else:
        narrow = planned_rows(session, filtered) <= exact_max / 10
    if narrow:  # count first
        counted = _tally(session, filtered, limit=exact_max + 1, with_facets=with_facets)
        if counted.total <= exact_max:
            return done(counted, True)
    percent = _sample_percent(session, sample_rows)
    if percent >= 100:
        return done(_tally(session, filtered, with_facets=with_facets), True)
    few = None
    if with_facets and density is not None and density * sample_rows <= FACET_HITS * 2:
        # the sample holds few matches (at the density the page saw): its facets come with the
        # count in one pass over it, instead of a second pass over fewer of its blocks
        few = sampled = _tally(session, sf, percent=percent, with_facets=True)
        sampled.rows = _sample_size(session, percent)
    else:
        sampled = _tally(session, sf, percent=percent)
    estimate = round(sampled.total / max(1, sampled.rows) * table_rows(session))
    # too few sampled matches to trust the estimate (unless even its low end is well past
    # exact_max: then it is surely an estimate, and no exact count is tried), or few expected
    low = (sampled.total - 4 * math.sqrt(sampled.total)) / max(1, sampled.rows) * table_rows(session)
    untrusted = sampled.total < MIN_HITS and low <= exact_max
    if counted is None and sampled.total < MIN_HITS and uses_search_index(filtered):
        # too few matches in the block sample for a precise estimate: the sample with its own
        # search index holds a sixteenth of every match (catalog.sampled; the same estimate as
        # the search's first page, when that asked it)
        if in_sample is None:  # not asked on the way to the page (asked there: the same matches)
            in_sample = index_sample(session, filtered, with_facets=with_facets)
        if surely_more(in_sample, exact_max):
            return sampled_count(session, in_sample, exact_max, with_facets)
    if counted is None and (untrusted or estimate <= exact_max):
        # facets on the way: should the bound be reached, they cost only the decades' GROUP BY
        # (nothing is probed: see _tally), and when it is not, no second pass is needed
        counted = _tally(session, filtered, limit=exact_max + 1, with_facets=with_facets)
        if counted.total <= exact_max:
            return done(counted, True)
    estimate = max(exact_max + 1, estimate)
    if not with_facets:
        return Count(estimate, False), None
    if few is None:  # facets from fewer blocks of the same sample (enough for the large groups)
        few = _tally(session, sf, percent=percent * min(1.0, FACET_HITS / max(1, sampled.total)), with_facets=True)
    return done(few, False, estimate / max(1, few.total), estimate)


def _tally_of_ids(session: Session, ids: list[int]) -> _Tally:
    """The facet groups of the matches ``ids``: every match, seen by windows that walked the whole
    table, grouped by their ids rather than by running the search again."""
    stmt = select(*_faceted()).where(Record.id == func.any(_bigints(ids)))
    return _grouped(session, stmt, _ways(False, False))


def _collection_count(session: Session, filtered: Select, collection_id: int, *, with_facets: bool, exact_max: int,
                      sample_rows: int, sampled_filter: Select, more: bool = False) -> tuple[Count, Facets | None]:
    """Count and facets of a search within one collection (see the module's doc). ``more``:
    counting on the way already found more than ``exact_max`` matches (never counted again)."""
    def done(tally: _Tally, exact: bool, scale: float = 1.0, total: int | None = None):
        count = Count(tally.total if total is None else total, exact)
        return count, (_facets(session, tally, exact, scale) if with_facets else None)

    # a collection of at most exact_max members has at most that many matches: count them
    size = _collection_size(session, collection_id)
    percent = _sample_percent(session, sample_rows, "collection_members")
    if (size is not None and size <= exact_max) or percent >= 100:
        return done(_tally(session, filtered, with_facets=with_facets), True)
    cms = _members_sample(percent)
    in_sample, sample_size = session.execute(select(func.count().filter(cms.c.collection_id == collection_id),
                                                    func.count()).select_from(cms)).one()
    if size is None:  # neither counted nor in the statistics: scaled from the sampled blocks
        size = in_sample * table_rows(session, "collection_members") / max(1, sample_size)
    # the share of the collection that matches, from a hashed share of its sampled members
    # (picked from the whole collection when the sampled blocks caught too few of its members: a
    # collection of some thousands lies in a few blocks, which the sample may miss altogether)
    whole = in_sample < MIN_HITS
    pool = size if whole else in_sample
    probed = _member_tally(session, sampled_filter, collection_id, percent, min(1.0, MEMBER_PROBES / max(1, pool)),
                           whole=whole)
    estimate = round(size * probed.total / max(1, probed.rows))
    wanted = min(MEMBER_PROBES_MAX, probed.rows * 1.5 * MIN_HITS / max(1, probed.total))
    if MIN_HITS > probed.total > 0 and estimate > exact_max and wanted > probed.rows:
        # too few matches to trust among the members probed, but more than a bounded count would
        # stop at: as many members probed as MIN_HITS should need, from more sampled blocks when
        # those sampled hold too few (a bounded count of 10,001 matches within a collection took
        # 0.2-2 s at 10 million records)
        if not whole and wanted > pool:
            percent, pool = min(100.0, percent * wanted / max(1, pool)), wanted
        probed = _member_tally(session, sampled_filter, collection_id, percent, min(1.0, wanted / max(1, pool)),
                               whole=whole)
        estimate = round(size * probed.total / max(1, probed.rows))
    if not more and (probed.total < MIN_HITS or estimate <= exact_max):  # too few matches to trust: count
        counted = _tally(session, filtered, limit=exact_max + 1, with_facets=with_facets)
        if counted.total <= exact_max:
            return done(counted, True)
    estimate = max(exact_max + 1, estimate)
    if not with_facets:
        return Count(estimate, False), None
    few = _member_tally(session, sampled_filter, collection_id, percent, min(1.0, FACET_HITS / max(1, pool)),
                        with_facets=True, whole=whole)
    return done(few, False, estimate / max(1, few.total), estimate)


def _collection_size(session: Session, collection_id: int) -> float | None:
    """How many members the collection has (catalog.sizes: counted while cheap, else from the
    table's statistics, never from the block sample); None when neither tells."""
    size = group_size(session, CollectionMember.__table__.c.collection_id, collection_id)
    return None if size is None else size[0]


def _facets(session: Session, tally: _Tally, exact: bool, scale: float) -> Facets:
    """Facets from a tally, scaled (``scale``: to the estimated total when the tally is of a
    sample); colorized and collection counts also scaled from the matches picked for probing.
    Exact only when every match was counted and probed."""
    names = dict(session.execute(select(Collection.id, Collection.name)
                                 .where(Collection.id.in_(list(tally.by_collection)))).all())
    probed = scale * tally.total / max(1, tally.picked)
    out = Facets(exact=exact and tally.picked == tally.total)
    out.decades = [{"decade": d, "count": round(n * scale)}
                   for d, n in sorted(tally.by_decade.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))]
    out.collections = sorted(({"name": names[k], "count": round(n * probed)} for k, n in tally.by_collection.items()),
                             key=lambda c: (-c["count"], c["name"]))
    yes = round(tally.by_colorized.get(True, 0) * probed)
    out.colorized = {"yes": yes, "no": max(0, round(tally.total * scale) - yes)}
    return out
