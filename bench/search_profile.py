"""Where a search's time goes, statement by statement: the slowest of a draw of searches.

Runs one search case of ``bench/catalog_bench.py`` (facets of years + word by default, as the web
search page asks for them) on a catalogue it filled, and prints each slow search's statements with
their time as the client sees it (execution and transfer) and what is left (Python's), after
the time a search spends on each kind of statement on average:

    python bench/search_profile.py --db arhiva_bench_10m --queries 80 --show 8
    python bench/search_profile.py --db arhiva_bench_10m --case "narrow: years" --show 3
    python bench/search_profile.py --db arhiva_bench_10m --explain 1

The queries are the benchmark's own draw (its seed: ``catalog_bench.py --only CASE`` run alone
asks the same ones). ``--explain N`` also prints ``EXPLAIN (ANALYZE, BUFFERS)`` of the slowest
statement of the N slowest searches, run again as the search ran it. ``--years``/``--text``/``--collection``
(``--facets``) run one search of your own ``--queries`` times instead; ``--prepared`` opens the
database with psycopg's default (a statement prepared on the server after its fifth run) instead
of arhiva's engine options (never prepared):

    python bench/search_profile.py --years 1889-1898 --text cetatea --facets --queries 6 --show 0
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, event  # noqa: E402

from bench._common import named_database  # noqa: E402
from bench.catalog_bench import COLLECTIONS, _cursor_at, facet_cases, query_cases  # noqa: E402
from catalog.counts import QUICK_SETTINGS  # noqa: E402
from catalog.db import session_scope  # noqa: E402
from catalog.queries import RecordQuery, parse_years, search_records  # noqa: E402

# what a statement does, by a phrase of its SQL (the first that appears names it)
KINDS = (("TABLESAMPLE", "sample"), ("array_agg", "window in id order"), ("FROM matches", "matches through the index"),
         ("hashtext(lex", "word × place keys"), ("numnode(", "words checked"), ("reltuples", "table size"),
         ("pg_stats", "statistics"), ("FROM collections", "collections"), ("FROM records", "records"))


def kind(sql: str) -> str:
    return next((name for phrase, name in KINDS if phrase in sql), sql.split(" FROM ")[0][:40])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default="arhiva_bench_10m", help="a catalogue catalog_bench.py filled (--db NAME)")
    ap.add_argument("--case", default="facets: narrow",
                    help="a search case of catalog_bench.py (the first whose name contains this)")
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--show", type=int, default=5, help="the slowest searches shown statement by statement")
    ap.add_argument("--no-facets", action="store_true", help="a facets case without its facets")
    ap.add_argument("--explain", type=int, default=0, help="EXPLAIN ANALYZE the slowest statement of the N slowest")
    ap.add_argument("--years", help="one search of your own (FROM-TO), run --queries times, instead of a case")
    ap.add_argument("--text", help="one search of your own: its words")
    ap.add_argument("--collection", help="one search of your own: within this collection")
    ap.add_argument("--facets", action="store_true", help="one search of your own: with its facets")
    ap.add_argument("--prepared", action="store_true",
                    help="statements prepared on the server after five runs (psycopg's default), not as arhiva runs")
    args = ap.parse_args()
    engine = named_database(args.db)
    if args.prepared:
        engine = create_engine(engine.url)
    rng = random.Random(7)  # catalog_bench's seed; building the cases draws nothing
    collections = [c for c, _ in COLLECTIONS]
    cases = {**query_cases(rng, collections), **facet_cases(rng, collections)}
    if args.years or args.text or args.collection:
        lo, hi = parse_years(args.years) if args.years else (None, None)
        name = " ".join(filter(None, ("facets:" if args.facets else "", args.collection, args.text, args.years)))
        cases[name] = lambda: RecordQuery(year_from=lo, year_to=hi, text=args.text, collection=args.collection)
    else:
        name = next((n for n in cases if args.case in n), None)
    if name is None:
        sys.exit(f"no case named like {args.case!r}; cases: {list(cases)}")
    statements: list[tuple[float, str, str, object]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _start(conn, cursor, statement, params, context, executemany):
        conn.info["arhiva_t0"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _end(conn, cursor, statement, params, context, executemany):
        if not statement.lstrip().upper().startswith(("SET", "RESET", "SELECT SET_CONFIG")):
            statements.append(((time.perf_counter() - conn.info["arhiva_t0"]) * 1000, kind(statement), statement, params))

    queries = []
    with session_scope(engine) as s:
        for _ in range(args.queries):
            q = cases[name]()
            skip = 0
            if isinstance(q, tuple):
                q, skip = q
                q = RecordQuery(**{**q.__dict__, "after": _cursor_at(s, q, skip)})
            statements.clear()
            t0 = time.perf_counter()
            page = search_records(s, q, with_facets=name.startswith("facets") and not args.no_facets)
            ms = (time.perf_counter() - t0) * 1000
            queries.append((ms, q, page.total, page.total_exact, list(statements)))
            s.expunge_all()
    times = sorted(ms for ms, *_ in queries)
    python = statistics.mean(ms - sum(t for t, *_ in stmts) for ms, *_, stmts in queries)
    print(f"{name}: {args.queries} queries, p50 {statistics.median(times):.1f} ms, "
          f"p95 {times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]:.1f} ms; a search: "
          f"{statistics.mean(len(stmts) for *_, stmts in queries):.1f} statements, Python {python:.1f} ms")
    by_kind: dict[str, list[float]] = {}
    for *_, stmts in queries:
        for t, what, *_ in stmts:
            by_kind.setdefault(what, []).append(t)
    print("per search, by statement: " + ", ".join(
        f"{what} {sum(ts) / len(queries):.1f} ms ({len(ts) / len(queries):.1f}×, median {statistics.median(ts):.1f})"
        for what, ts in sorted(by_kind.items(), key=lambda kv: -sum(kv[1]))))
    slowest = sorted(queries, key=lambda r: -r[0])
    for ms, q, total, exact, stmts in slowest[:args.show]:
        asked = {k: v for k, v in q.__dict__.items() if v not in (None, False, 0, 50, "active", ())}
        sql_ms = sum(t for t, *_ in stmts)
        print(f"\n{ms:.1f} ms  {asked}  {total:,} {'exact' if exact else 'estimated'}  "
              f"(SQL {sql_ms:.1f}, Python {ms - sql_ms:.1f})")
        for t, what, *_ in stmts:
            print(f"  {t:7.1f}  {what}")
    for ms, *_, stmts in slowest[:args.explain]:
        t, what, sql, params = max(stmts, key=lambda st: st[0])
        print(f"\nEXPLAIN of the {what} statement ({t:.1f} ms) of the {ms:.1f} ms query:")
        with engine.connect() as conn, conn.connection.driver_connection.cursor() as cur:
            for key, value in QUICK_SETTINGS.items():  # as the search ran it
                cur.execute(f"SET {key} = '{value}'")
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            print("\n".join(line for (line,) in cur.fetchall()))


if __name__ == "__main__":
    main()
