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


FILL_SQL = """
INSERT INTO records (source_id, source_key, title, description, date_text, year_lo, year_hi, place, lat, lon,
                     raw, payload_hash)
SELECT :sid, g::text,
       initcap(t1.w) || ' ' || t2.w || ' din ' || p.name || ' #' || g,
       'Fotografie: ' || t3.w || ', ' || p.name || '.',
       y::text, CASE WHEN g % 20 = 0 THEN NULL ELSE y END, CASE WHEN g % 20 = 0 THEN NULL ELSE y + (g % 4) * 3 END,
       p.name, c.lat + (random() - 0.5) * 0.2, c.lon + (random() - 0.5) * 0.2,
       jsonb_build_object('cid', g), md5(g::text) || md5(g::text)
FROM generate_series(:lo, :hi) AS g
CROSS JOIN LATERAL (SELECT 1860 + (hashint4(g) & 127) AS y) AS yy
CROSS JOIN LATERAL (SELECT (ARRAY[{things}])[1 + (hashint4(g + 1) & 2147483647) % {nt}] AS w) AS t1
CROSS JOIN LATERAL (SELECT (ARRAY[{things}])[1 + (hashint4(g + 2) & 2147483647) % {nt}] AS w) AS t2
CROSS JOIN LATERAL (SELECT (ARRAY[{things}])[1 + (hashint4(g + 3) & 2147483647) % {nt}] AS w) AS t3
CROSS JOIN LATERAL (SELECT (ARRAY[{places}])[1 + (hashint4(g + 4) & 2147483647) % {np}] AS name) AS p
CROSS JOIN LATERAL (SELECT (ARRAY[{lats}])[1 + (hashint4(g + 5) & 2147483647) % {nc}] AS lat,
                           (ARRAY[{lons}])[1 + (hashint4(g + 5) & 2147483647) % {nc}] AS lon) AS c
"""


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
