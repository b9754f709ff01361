"""Catalogue benchmark: batched vs one-at-a-time upsert, and search latency at 1M records.

    python bench/catalog_bench.py [--records 100000] [--single 5000] [--rounds 2] [--query-records 1000000]

Prints two tables. Targets on a 2-core machine: ≥ 20,000 records/s batched;
year-range + text + bbox p95 < 50 ms at 1M records.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from bench._common import print_table, scratch_database  # noqa: E402
from catalog.db import session_scope  # noqa: E402
from catalog.ingest import RecordIn, bulk_upsert, get_or_create_source, upsert_records  # noqa: E402
from catalog.queries import RecordQuery, search_records  # noqa: E402

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
    times: dict[str, list[float]] = {"one": [], "bulk": [], "again": []}
    for _ in range(rounds):
        for mode in ("one", "bulk"):
            with scratch_database() as engine:
                with session_scope(engine) as s:
                    sid = get_or_create_source(s, "bench", "folder").id
                t0 = time.perf_counter()
                if mode == "one":  # one connection: upsert_records, 5,000 per statement and transaction
                    for start in range(0, n_batched, 5_000):
                        with session_scope(engine) as s:
                            upsert_records(s, sid, batch[start:start + 5_000], batch_size=5_000)
                else:
                    report = bulk_upsert(engine, sid, batch, workers=2)
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
                     raw, payload_hash, status)
SELECT :sid, g::text,
       initcap(w1) || ' ' || w2 || ' din ' || t.name || ' #' || g,
       'Fotografie: ' || w3 || ', ' || t.name || '.',
       CASE WHEN dated THEN y::text END, CASE WHEN dated THEN y END,
       CASE WHEN dated THEN y + (ARRAY[0, 0, 0, 1, 4, 9])[1 + g % 6] END,
       t.name, CASE WHEN u6 >= 0.1 THEN t.lat + (u7 - 0.5) * 0.2 END, CASE WHEN u6 >= 0.1 THEN t.lon + (u8 - 0.5) * 0.2 END,
       jsonb_build_object('cid', g), md5(g::text) || md5(g::text), CASE WHEN g % 100 = 37 THEN 'withdrawn' ELSE 'active' END
FROM generate_series(:lo, :hi) AS g
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


def fill_sql() -> str:
    def arr(values):
        return ", ".join(f"'{v}'" for v in values)

    return FILL_SQL.format(**{f"u{k}": _u(k) for k in range(10)}, words=arr(WORDS), nw=len(WORDS),
                           names=arr(t[0] for t in TOWNS), lats=", ".join(str(t[1]) for t in TOWNS),
                           lons=", ".join(str(t[2]) for t in TOWNS), nt=len(TOWNS))


def fill(engine, n: int, step: int = 200_000) -> float:
    """n synthetic records, collections and colorized links; GIN index built after the rows."""
    t0 = time.perf_counter()
    with session_scope(engine) as s:
        sid = get_or_create_source(s, "bench", "folder").id
    sql = fill_sql()
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_records_search"))
    for lo in range(1, n + 1, step):
        with engine.begin() as conn:
            conn.execute(text(sql), {"sid": sid, "lo": lo, "hi": min(n, lo + step - 1)})
        print(f"  {min(n, lo + step - 1):,} records, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    with engine.begin() as conn:
        for k, (name, share) in enumerate(COLLECTIONS):
            cid = conn.execute(text("INSERT INTO collections (name) VALUES (:n) RETURNING id"), {"n": name}).scalar()
            conn.execute(text(f"INSERT INTO collection_members (collection_id, record_id) SELECT :c, id FROM records "
                              f"WHERE ((hashint4(id::int * 7 + {k}) & 2147483647) / 2147483648.0) < :p"),
                         {"c": cid, "p": share})
        # 3% colorized: one result file shared by all (the links are what searches look at)
        conn.execute(text("INSERT INTO assets (sha256, media_type, bytes, blob_key) "
                          "VALUES (repeat('c', 64), 'image/jpeg', 1, 'bench')"))
        conn.execute(text("INSERT INTO record_assets (record_id, asset_sha256, role) "
                          "SELECT id, repeat('c', 64), 'colorized' FROM records WHERE id % 33 = 5"))
    print(f"  collections and colorized links, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    with engine.begin() as conn:
        conn.execute(text("SET maintenance_work_mem = '1GB'"))
        conn.execute(text("CREATE INDEX ix_records_search ON records USING gin (search)"))
    print(f"  search index, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return time.perf_counter() - t0


def bench_query(n: int, repeats: int) -> list[list]:
    def arr(values):
        return ", ".join(f"'{v}'" for v in values)

    sql = FILL_SQL.format(things=arr(THINGS), nt=len(THINGS), places=arr(PLACES), np=len(PLACES),
                          lats=", ".join(str(c[0]) for c in CITIES), lons=", ".join(str(c[1]) for c in CITIES),
                          nc=len(CITIES))
    rows = []
    with scratch_database() as engine:
        with session_scope(engine) as s:
            sid = get_or_create_source(s, "bench", "folder").id
        t0 = time.perf_counter()
        step = 100_000
        for lo in range(1, n + 1, step):
            with engine.begin() as conn:
                conn.execute(text(sql), {"sid": sid, "lo": lo, "hi": min(n, lo + step - 1)})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE records"))
        fill = time.perf_counter() - t0
        print(f"filled {n:,} records in {fill:.0f} s", file=sys.stderr)
        rng = random.Random(7)
        cases = {
            "years + text + bbox": lambda: RecordQuery(year_from=(y := rng.randint(1880, 1970)), year_to=y + 10,
                                                       text=rng.choice(THINGS), bbox=_box(rng), limit=50),
            "years + text + bbox, 2 words, diacritics off": lambda: RecordQuery(
                year_from=(y := rng.randint(1880, 1970)), year_to=y + 20,
                text=f"{rng.choice(THINGS[:10])} chisinau", bbox=_box(rng), limit=50),
            "text only (Cyrillic)": lambda: RecordQuery(text=rng.choice(THINGS[10:]), limit=50),
            "years only": lambda: RecordQuery(year_from=(y := rng.randint(1880, 1970)), year_to=y + 5, limit=50),
        }
        for name, make in cases.items():
            times, totals = [], []
            with session_scope(engine) as s:
                for _ in range(repeats):
                    q = make()
                    t0 = time.perf_counter()
                    page = search_records(s, q)
                    times.append((time.perf_counter() - t0) * 1000)
                    totals.append(page.total)
            times.sort()
            p50 = statistics.median(times)
            p95 = times[int(0.95 * (len(times) - 1))]
            rows.append([name, f"{n:,}", repeats, f"{statistics.median(totals):,.0f}", f"{p50:.1f}", f"{p95:.1f}"])
    return rows


def _box(rng: random.Random):
    lat, lon = rng.choice(CITIES)
    return (lon - 0.15, lat - 0.1, lon + 0.15, lat + 0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--single", type=int, default=5_000)
    ap.add_argument("--query-records", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2, help="rounds of each batched upsert mode")
    ap.add_argument("--skip-upsert", action="store_true")
    ap.add_argument("--skip-query", action="store_true")
    args = ap.parse_args()
    if not args.skip_upsert:
        print_table(f"Upsert (best of {args.rounds} rounds and their mean; ratio: best against one record per call)",
                    ["mode", "records", "seconds best / mean", "records/s best", "records/s mean",
                     "vs one-at-a-time"],
                    bench_upsert(args.records, args.single, args.rounds))
    if not args.skip_query:
        print_table("Search latency (search_records: page of 50 + exact total count), ms",
                    ["query", "catalogue size", "queries", "median matches", "p50 ms", "p95 ms"],
                    bench_query(args.query_records, args.repeats))


if __name__ == "__main__":
    main()
