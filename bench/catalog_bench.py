"""Catalogue benchmark: upsert rates, and search at national scale (1M or 10M records).

    python bench/catalog_bench.py                      # 1,000,000 records (a few minutes to fill)
    python bench/catalog_bench.py --records 10000000 --db arhiva_bench_10m   # keep it, measure again
    python bench/catalog_bench.py --skip-upsert --db arhiva_bench_10m --repeats 100

The catalogue is synthetic but shaped like real ones: most records in a few decades and a few
towns, a few very common words, a fifth undated (see ``fill``). Prints tables: upsert rates;
p50/p95 of searches as the API runs them (a page of 50 and the count), with how often the count
was an estimate and its error against the exact count; facets; disk. Goals on a 2-core machine
at 10M records: every search p95 < 100 ms (page 2,000 too), facets < 150 ms, estimates within
±20%, batched upsert ≥ 20,000 records/s.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from bench._common import named_database, print_table, scratch_database  # noqa: E402
from catalog.counts import exact_count  # noqa: E402
from catalog.db import session_scope  # noqa: E402
from catalog.ingest import RecordIn, bulk_upsert, get_or_create_source, upsert_records  # noqa: E402
from catalog.models import Record  # noqa: E402
from catalog.queries import RecordQuery, _filtered, search_records  # noqa: E402

PLACES = ["Chișinău", "Bălți", "Soroca", "Orhei", "Tighina", "Cahul", "Ungheni", "Hîncești", "Edineț", "Comrat",
          "Кишинёв", "Бельцы", "Сороки", "Оргеев", "Бендеры"]
THINGS = ["strada", "biserica", "catedrala", "gara", "piața", "liceul", "parcul", "podul", "cetatea", "mănăstirea",
          "улица", "церковь", "вокзал", "площадь", "гимназия", "парк", "мост", "крепость", "вид", "панорама"]
CITIES = [(47.0245, 28.8323), (47.7615, 27.9291), (48.1566, 28.2975), (47.3831, 28.8231), (46.8310, 29.4711),
          (45.9043, 28.1946), (47.2110, 27.8007)]


def synthetic(i: int, rng: random.Random) -> RecordIn:
    place = rng.choice(PLACES)
    title = f"{rng.choice(THINGS).capitalize()} {rng.choice(THINGS)} din {place} #{i}"
    lo = rng.randint(1860, 1990)
    hi = lo + rng.choice([0, 0, 0, 1, 4, 9, 19])
    if rng.random() < 0.05:
        lo = hi = None
    lat0, lon0 = rng.choice(CITIES)
    return RecordIn(source_key=str(i), title=title, description=f"Fotografie: {rng.choice(THINGS)}, {place}.",
                    date_text=None if lo is None else (str(lo) if lo == hi else f"{lo}-{hi}"), year_lo=lo,
                    year_hi=hi, place=place, lat=round(lat0 + rng.gauss(0, 0.05), 6),
                    lon=round(lon0 + rng.gauss(0, 0.05), 6), author="Colecția X",
                    raw={"cid": i, "title": title, "y": lo, "geo": [lat0, lon0], "s": 5})


def bench_upsert(n_batched: int, n_single: int, rounds: int = 2) -> list[list]:
    """Each batched mode ``rounds`` times, each in a fresh database, the modes taking turns
    (the machine is noisy); then the one-at-a-time baseline. Best and mean of the rounds."""
    rng = random.Random(1)
    batch = [synthetic(i, rng) for i in range(n_batched)]
    single = [synthetic(10_000_000 + i, rng) for i in range(n_single)]
    times: dict[str, list[float]] = {"one": [], "bulk": [], "again": [], "collection": []}
    for _ in range(rounds):
        for mode in ("one", "bulk", "collection"):
            with scratch_database() as engine:
                with session_scope(engine) as s:
                    sid = get_or_create_source(s, "bench", "folder").id
                t0 = time.perf_counter()
                if mode == "one":  # one connection: upsert_records, 5,000 per statement and transaction
                    for start in range(0, n_batched, 5_000):
                        with session_scope(engine) as s:
                            upsert_records(s, sid, batch[start:start + 5_000], batch_size=5_000)
                else:  # into a collection: its token and list on each new row, and its members
                    report = bulk_upsert(engine, sid, batch, workers=2,
                                         collection="bench" if mode == "collection" else None)
                    assert report.new == n_batched, report.as_stats()
                times[mode].append(time.perf_counter() - t0)
                if mode == "bulk":  # the same records again: nothing changed
                    t0 = time.perf_counter()
                    report = bulk_upsert(engine, sid, batch, workers=2)
                    assert report.unchanged == n_batched, report.as_stats()
                    times["again"].append(time.perf_counter() - t0)
    with scratch_database() as engine:
        with session_scope(engine) as s:
            sid = get_or_create_source(s, "bench", "folder").id
        t0 = time.perf_counter()
        for rec in single:
            with session_scope(engine) as s:
                upsert_records(s, sid, [rec])
        rate_1 = n_single / (time.perf_counter() - t0)
    rows = []
    for mode, label in (("bulk", "batched, bulk_upsert over 2 connections (5,000/transaction), new"),
                        ("collection", "batched, bulk_upsert as above, new, into a collection"),
                        ("one", "batched, upsert_records on 1 connection (5,000/transaction), new"),
                        ("again", "batched, bulk_upsert, same records again (unchanged)")):
        best, mean = min(times[mode]), sum(times[mode]) / len(times[mode])
        rows.append([label, f"{n_batched:,}", f"{best:.1f} / {mean:.1f}", f"{n_batched / best:,.0f}",
                     f"{n_batched / mean:,.0f}", f"{n_batched / best / rate_1:.1f}×"])
    rows.append(["one record per call and transaction, new", f"{n_single:,}", f"{n_single / rate_1:.1f}",
                 f"{rate_1:,.0f}", "", "1.0×"])
    return rows


# Skew like real catalogues: most records in a few decades (1900s-1960s) and a few towns, a few
# very common words (Zipf-like), a fifth undated, a tenth without coordinates, 1% withdrawn.
# u(k) is a uniform number in [0, 1) drawn from the record number g.
WORDS = ["strada", "улица", "biserica", "vedere", "церковь", "piața", "вид", "gara", "площадь", "catedrala",
         "вокзал", "liceul", "гимназия", "parcul", "парк", "podul", "мост", "cetatea", "крепость", "mănăstirea"]
TOWNS = [("Chișinău", 47.0245, 28.8323), ("Bălți", 47.7615, 27.9291), ("Кишинёв", 47.0245, 28.8323),
         ("Soroca", 48.1566, 28.2975), ("Orhei", 47.3831, 28.8231), ("Tighina", 46.8310, 29.4711),
         ("Cahul", 45.9043, 28.1946), ("Ungheni", 47.2110, 27.8007), ("Edineț", 48.1710, 27.3000),
         ("Comrat", 46.3000, 28.6600)]
COLLECTIONS = [("moldova", 0.6), ("pastvu", 0.3), ("chisinau-vechi", 0.05), ("gazeta", 0.01), ("rare", 0.0005)]
FILL_SQL = """
INSERT INTO records (source_id, source_key, title, description, date_text, year_lo, year_hi, place, lat, lon,
                     raw, payload_hash, status{collections_column})
SELECT :sid, g::text,
       initcap(w1) || ' ' || w2 || ' din ' || t.name || ' #' || g,
       'Fotografie: ' || w3 || ', ' || t.name || '.',
       CASE WHEN dated THEN y::text END, CASE WHEN dated THEN y END,
       CASE WHEN dated THEN y + (ARRAY[0, 0, 0, 1, 4, 9])[1 + g % 6] END,
       t.name, CASE WHEN u6 >= 0.1 THEN t.lat + (u7 - 0.5) * 0.2 END, CASE WHEN u6 >= 0.1 THEN t.lon + (u8 - 0.5) * 0.2 END,
       jsonb_build_object('cid', g), md5(g::text) || md5(g::text), CASE WHEN g % 100 = 37 THEN 'withdrawn' ELSE 'active' END{collections}
FROM generate_series(CAST(:lo AS integer), CAST(:hi AS integer)) AS g
CROSS JOIN LATERAL (SELECT {u0} >= 0.2 AS dated,
    CASE WHEN {u1} < 0.5 THEN 1940 + floor({u2} * 30) WHEN {u1} < 0.8 THEN 1900 + floor({u2} * 40)
         ELSE 1860 + floor({u2} * 140) END::int AS y,
    (ARRAY[{words}])[1 + floor(power({u3}, 3) * {nw})::int] AS w1,
    (ARRAY[{words}])[1 + floor(power({u4}, 3) * {nw})::int] AS w2,
    (ARRAY[{words}])[1 + floor(power({u5}, 3) * {nw})::int] AS w3,
    1 + floor(power({u9}, 2.5) * {nt})::int AS town, {u6} AS u6, {u7} AS u7, {u8} AS u8) AS v
CROSS JOIN LATERAL (SELECT (ARRAY[{names}])[town] AS name, (ARRAY[{lats}])[town] AS lat,
                           (ARRAY[{lons}])[town] AS lon) AS t
"""


def _u(k: int) -> str:
    return f"((hashint4(g * 31 + {k}) & 2147483647) / 2147483648.0)"


def _member(k: int, share: float, g: str = "g") -> str:
    """Whether record number ``g`` is in the ``k``-th collection (which holds ``share`` of them)."""
    return f"((hashint4({g}::int * 7 + {k}) & 2147483647) / 2147483648.0) < {share}"


def fill_sql(collection_ids: list[int] | None) -> str:
    """The fill statement; with ``collection_ids``, each record's collections on its row (migration
    0017), else none there (a catalogue at an older migration: bench/history_migration.py)."""
    def arr(values):
        return ", ".join(f"'{v}'" for v in values)

    collections = "" if collection_ids is None else ", array_remove(ARRAY[" + ", ".join(
        f"CASE WHEN {_member(k, share)} THEN {cid} END"
        for k, ((_, share), cid) in enumerate(zip(COLLECTIONS, collection_ids))) + "]::integer[], NULL)"
    return FILL_SQL.format(collections=collections, collections_column="" if collection_ids is None else ", collections",
                           **{f"u{k}": _u(k) for k in range(10)}, words=arr(WORDS), nw=len(WORDS),
                           names=arr(t[0] for t in TOWNS), lats=", ".join(str(t[1]) for t in TOWNS),
                           lons=", ".join(str(t[2]) for t in TOWNS), nt=len(TOWNS))


SEARCH_INDEXES = ("ix_records_search", "ix_records_word_place_keys", "ix_records_search_sample")


def fill(engine, n: int, step: int = 200_000) -> float:
    """n synthetic records, collections and colorized links; GIN index built after the rows."""
    t0 = time.perf_counter()
    with session_scope(engine) as s:
        sid = get_or_create_source(s, "bench", "folder").id
        cids = [s.execute(text("INSERT INTO collections (name) VALUES (:n) RETURNING id"), {"n": name}).scalar()
                for name, _ in COLLECTIONS]
        on_rows = s.execute(text("SELECT 1 FROM information_schema.columns WHERE table_name = 'records' "
                                 "AND column_name = 'collections'")).first() is not None
    sql = fill_sql(cids if on_rows else None)
    with engine.begin() as conn:  # the search indexes are built after the rows (far quicker)
        indexes = {name: conn.execute(text("SELECT pg_get_indexdef(to_regclass(:n))"), {"n": name}).scalar()
                   for name in SEARCH_INDEXES}
        for name, ddl in indexes.items():
            if ddl:
                conn.execute(text(f"DROP INDEX {name}"))
    for lo in range(1, n + 1, step):
        with engine.begin() as conn:
            conn.execute(text(sql), {"sid": sid, "lo": lo, "hi": min(n, lo + step - 1)})
        print(f"  {min(n, lo + step - 1):,} records, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    with engine.begin() as conn:
        if on_rows:
            # the memberships the rows already say (the triggers that keep the rows equal to them
            # would only check each of millions: off for this statement)
            conn.execute(text("ALTER TABLE collection_members DISABLE TRIGGER arhiva_members_inserted"))
            conn.execute(text("INSERT INTO collection_members (collection_id, record_id) "
                              "SELECT unnest(collections), id FROM records"))
            conn.execute(text("ALTER TABLE collection_members ENABLE TRIGGER arhiva_members_inserted"))
        else:  # the same memberships, by the record number (its source key)
            for k, ((_, share), cid) in enumerate(zip(COLLECTIONS, cids)):
                conn.execute(text(f"INSERT INTO collection_members (collection_id, record_id) SELECT :c, id "
                                  f"FROM records WHERE {_member(k, share, 'source_key')}"), {"c": cid})
        # 3% colorized: one result file shared by all (the links are what searches look at)
        conn.execute(text("INSERT INTO assets (sha256, media_type, bytes, blob_key) "
                          "VALUES (repeat('c', 64), 'image/jpeg', 1, 'bench')"))
        conn.execute(text("INSERT INTO record_assets (record_id, asset_sha256, role) "
                          "SELECT id, repeat('c', 64), 'colorized' FROM records WHERE id % 33 = 5"))
    print(f"  collections and colorized links, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    with engine.begin() as conn:
        conn.execute(text("SET maintenance_work_mem = '1GB'"))
        for name, ddl in indexes.items():
            if ddl:
                conn.execute(text(ddl))
                print(f"  {name}, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return time.perf_counter() - t0


def _pctl(times: list[float]) -> tuple[float, float]:
    times = sorted(times)
    return statistics.median(times), times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]


def _cursor_at(session, q: RecordQuery, skip: int) -> int | None:
    """The id after which page ``skip // limit + 1`` starts (what following ``next`` links gives)."""
    if skip == 0:
        return None
    ids = _filtered(q, session).with_only_columns(Record.id).order_by(Record.id).offset(skip - 1).limit(1)
    return session.scalar(ids)


def query_cases(rng: random.Random, collections: list[str]) -> dict:
    def box(size: float):
        _, lat, lon = rng.choice(TOWNS)
        return (lon - size, lat - size, lon + size, lat + size)

    broad = RecordQuery(year_from=1940, year_to=1969, limit=50)
    return {
        "narrow: years + text + bbox": lambda: RecordQuery(
            year_from=(y := rng.randint(1880, 1980)), year_to=y + 9, text=rng.choice(WORDS[5:]), bbox=box(0.03)),
        "years only (5 years)": lambda: RecordQuery(year_from=(y := rng.randint(1880, 1985)), year_to=y + 4),
        "one common word": lambda: RecordQuery(text=rng.choice(WORDS[:2])),
        "one collection": lambda: RecordQuery(collection=rng.choice(collections)),
        "bbox of a whole country": lambda: RecordQuery(bbox=(26.6 + rng.random() * 0.1, 45.4, 30.2, 48.5)),
        "everything (no filter)": lambda: RecordQuery(),
        "page 1 of a broad query (1940-1969)": lambda: broad,
        "page 10 of a broad query (cursor)": lambda: (broad, 9 * 50),
        "page 2,000 of a broad query (cursor)": lambda: (broad, 1999 * 50),
        # drawn last, so that adding them left the draws of the cases above as they were
        "one collection + years (5 years)": lambda: RecordQuery(
            collection=rng.choice(collections), year_from=(y := rng.randint(1880, 1985)), year_to=y + 4),
        "one collection + years + word": lambda: RecordQuery(
            collection=rng.choice(collections), year_from=(y := rng.randint(1880, 1980)), year_to=y + 9,
            text=rng.choice(WORDS[5:])),
    }


def facet_cases(rng: random.Random, collections: list[str]) -> dict:
    """The searches asked with facets: name → a function drawing one query."""
    return {"facets: everything": lambda: RecordQuery(),
            "facets: years only (5 years)": lambda: RecordQuery(year_from=(y := rng.randint(1880, 1985)), year_to=y + 4),
            "facets: one common word": lambda: RecordQuery(text=rng.choice(WORDS[:2])),
            "facets: narrow": lambda: RecordQuery(year_from=(y := rng.randint(1880, 1980)), year_to=y + 9,
                                                  text=rng.choice(WORDS[5:])),
            "facets: one collection": lambda: RecordQuery(collection=rng.choice(collections)),
            "facets: collection + years + word": lambda: RecordQuery(
                collection=rng.choice(collections), year_from=(y := rng.randint(1880, 1980)), year_to=y + 9,
                text=rng.choice(WORDS[5:]))}


def bench_query(engine, n: int, repeats: int, exact_checks: int, only: str | None = None) -> tuple[list[list], list[list]]:
    """Latency of search_records as the API calls it (page of 50 + count), facets, estimate error."""
    rng = random.Random(7)
    rows, facet_rows = [], []
    with session_scope(engine) as s:
        collections = [c for c, _ in COLLECTIONS]
        for name, make in query_cases(rng, collections).items():
            if only and only not in name:
                continue
            times, totals, estimated, errors = [], [], 0, []
            for _ in range(repeats):
                q = make()
                skip = 0
                if isinstance(q, tuple):
                    q, skip = q
                    q = RecordQuery(**{**q.__dict__, "after": _cursor_at(s, q, skip)})
                t0 = time.perf_counter()
                page = search_records(s, q)
                times.append((time.perf_counter() - t0) * 1000)
                totals.append(page.total)
                if not page.total_exact:
                    estimated += 1
                    if len(errors) < exact_checks:
                        exact = exact_count(s, _filtered(q, s))
                        errors.append((page.total - exact) / exact)
                s.expunge_all()
            p50, p95 = _pctl(times)
            err = f"{max(errors, key=abs):+.1%} / {statistics.mean(abs(e) for e in errors):.1%}" if errors else ""
            rows.append([name, f"{n:,}", repeats, f"{statistics.median(totals):,.0f}", f"{estimated}/{repeats}",
                         err, f"{p50:.1f}", f"{p95:.1f}"])
            print(f"  {name}: p95 {p95:.1f} ms", file=sys.stderr, flush=True)
        for name, make in facet_cases(rng, collections).items():
            if only and only not in name:
                continue
            times, exact_n, estimated, errors = [], 0, 0, []
            for _ in range(repeats):
                q = make()
                t0 = time.perf_counter()
                page = search_records(s, q, with_facets=True)
                times.append((time.perf_counter() - t0) * 1000)
                exact_n += page.facets.exact
                if not page.total_exact:
                    estimated += 1
                    if len(errors) < exact_checks:
                        exact = exact_count(s, _filtered(q, s))
                        errors.append((page.total - exact) / exact)
                s.expunge_all()
            p50, p95 = _pctl(times)
            err = f"{max(errors, key=abs):+.1%} / {statistics.mean(abs(e) for e in errors):.1%}" if errors else ""
            facet_rows.append([name, f"{n:,}", repeats, f"{estimated}/{repeats}", err, f"{exact_n}/{repeats}",
                               f"{p50:.1f}", f"{p95:.1f}"])
            print(f"  {name}: p95 {p95:.1f} ms", file=sys.stderr, flush=True)
    return rows, facet_rows


PREWARM = ("records", *SEARCH_INDEXES, "pk_records", "pk_collection_members", "ix_collection_members_record_collection",
           "uq_record_assets_link")


def prewarm(engine) -> None:
    """The catalogue's hot relations into shared buffers, as a server that has been answering
    searches for a while has them; says what it loaded and the server's buffer size."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_prewarm"))
        buffers = conn.execute(text("SHOW shared_buffers")).scalar()
        t0 = time.perf_counter()
        have = [r for r in PREWARM if conn.execute(text("SELECT to_regclass(:r)"), {"r": r}).scalar()]
        blocks = sum(conn.execute(text("SELECT pg_prewarm(:r)"), {"r": r}).scalar() for r in have)
    print(f"prewarmed {', '.join(have)}: {blocks * 8 / 1024 / 1024:.1f} GiB in {time.perf_counter() - t0:.0f} s "
          f"(shared_buffers {buffers})")


def yardstick(engine) -> str:
    """How fast this machine is right now, in two fixed measures that no code of ours changes:
    a pure-Python loop and PostgreSQL reading the first 16,000 records in id order (buffer hits
    once warm), medians of 15. Rows of runs on different days compare only through these."""
    loop = []
    for _ in range(15):
        t0 = time.perf_counter()
        sum(range(1_000_000))
        loop.append((time.perf_counter() - t0) * 1000)
    window = []
    with engine.connect() as conn:
        conn.execute(text("SET jit = off"))
        conn.execute(text("SET max_parallel_workers_per_gather = 0"))
        for _ in range(15):
            t0 = time.perf_counter()
            conn.execute(text("SELECT count(*), max(title) FROM (SELECT * FROM records ORDER BY id LIMIT 16000) w")).one()
            window.append((time.perf_counter() - t0) * 1000)
    return (f"machine yardstick: Python sum(range(1e6)) {statistics.median(loop):.1f} ms, "
            f"16,000 records in id order {statistics.median(window):.1f} ms")


def disk_rows(engine) -> list[list]:
    sql = ("SELECT pg_total_relation_size('records'), pg_relation_size('records'), "
           "pg_relation_size('ix_records_search'), "
           "coalesce(pg_relation_size(to_regclass('ix_records_word_place_keys')), 0), "
           "coalesce(pg_relation_size(to_regclass('ix_records_search_sample')), 0), pg_total_relation_size('collection_members'), "
           "pg_total_relation_size('record_assets'), pg_database_size(current_database())")
    with engine.connect() as conn:
        sizes = conn.execute(text(sql)).one()
    names = ["records (table + indexes + TOAST)", "records heap", "search index (GIN)",
             "word × place × decade index (GIN)", "search index of the sample (GIN, 1/16)", "collection_members",
             "record_assets", "whole database"]
    return [[k, f"{v / 2**30:.2f} GiB"] for k, v in zip(names, sizes)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000, help="catalogue size for the searches")
    ap.add_argument("--upsert-records", type=int, default=100_000)
    ap.add_argument("--single", type=int, default=5_000)
    ap.add_argument("--repeats", type=int, default=60, help="queries per search case")
    ap.add_argument("--exact-checks", type=int, default=10, help="estimated counts checked against the exact count")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of each batched upsert mode")
    ap.add_argument("--db", help="keep the filled catalogue in this database and reuse it (filled when empty)")
    ap.add_argument("--skip-upsert", action="store_true")
    ap.add_argument("--skip-query", action="store_true")
    ap.add_argument("--only", help="only the searches whose name contains this (e.g. narrow, facets)")
    ap.add_argument("--prewarm", action="store_true",
                    help="load the records table and the search indexes into PostgreSQL's buffers first "
                         "(pg_prewarm), as on a server that has been running: measures searches, not disk")
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at the start "
          "(other work on the machine slows every row alike)")
    if not args.skip_upsert:
        print_table(f"Upsert (best of {args.rounds} rounds and their mean; ratio: best against one record per call). "
                    "No roll-up table is maintained: counts and facets come from the matches or a sample, so "
                    "ingestion pays nothing for them",
                    ["mode", "records", "seconds best / mean", "records/s best", "records/s mean",
                     "vs one-at-a-time"],
                    bench_upsert(args.upsert_records, args.single, args.rounds))
    if args.skip_query:
        return
    with contextlib.ExitStack() as stack:
        engine = named_database(args.db) if args.db else stack.enter_context(scratch_database())
        with engine.connect() as conn:
            have = conn.execute(text("SELECT count(*) FROM records")).scalar()
        if have == 0:
            print(f"filled {args.records:,} records in {fill(engine, args.records):.0f} s", file=sys.stderr)
        n = args.records if have == 0 else have
        if args.prewarm:
            prewarm(engine)
        print(yardstick(engine) + " (before the searches)")
        rows, facet_rows = bench_query(engine, n, args.repeats, args.exact_checks, args.only)
        print_table("Search (search_records as the API calls it: a page of 50 in id order + the count), ms. "
                    "Estimated: queries whose count was an estimate; error: worst / mean against the exact count",
                    ["query", "catalogue", "queries", "median matches", "estimated", "estimate error worst / mean",
                     "p50 ms", "p95 ms"], rows)
        print_table("Facets (decade, collection, colorized) with the page and count, ms. Estimated and error: "
                    "of the count, as above",
                    ["query", "catalogue", "queries", "estimated", "estimate error worst / mean", "exact facets",
                     "p50 ms", "p95 ms"], facet_rows)
        print_table("Disk", ["relation", "size"], disk_rows(engine))
        print(f"\n{yardstick(engine)} (after the searches)")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
