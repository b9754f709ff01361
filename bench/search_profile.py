"""Where a search's time goes, statement by statement: the slowest of a draw of searches.

Runs searches of years (10) + one of the rarer words of the catalogue benchmark, with facets, as
the web search page asks for them, on a catalogue filled by ``bench/catalog_bench.py``, and
prints each slow search's statements with their time in PostgreSQL (execution and transfer) and
the rest (Python):

    python bench/search_profile.py --db arhiva_bench_10m --queries 80 --show 8
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event  # noqa: E402

from bench._common import named_database  # noqa: E402
from bench.catalog_bench import WORDS  # noqa: E402
from catalog.db import session_scope  # noqa: E402
from catalog.queries import RecordQuery, search_records  # noqa: E402

QUIET = ("current_setting", "set_config", "reltuples")  # settings and statistics reads: under 1 ms each


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="arhiva_bench_10m")
    ap.add_argument("--queries", type=int, default=80)
    ap.add_argument("--show", type=int, default=8, help="the slowest searches shown statement by statement")
    ap.add_argument("--no-facets", action="store_true")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    engine = named_database(args.db)
    log: list[tuple[str, float, int]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):
        conn.info["t0"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):
        log.append((" ".join(statement.split())[:100], (time.perf_counter() - conn.info["t0"]) * 1000, cursor.rowcount))

    rng = random.Random(args.seed)
    runs = []
    with session_scope(engine) as s:
        for _ in range(args.queries):
            y = rng.randint(1880, 1980)
            q = RecordQuery(year_from=y, year_to=y + 9, text=rng.choice(WORDS[5:]))
            log.clear()
            t0 = time.perf_counter()
            page = search_records(s, q, with_facets=not args.no_facets)
            total = (time.perf_counter() - t0) * 1000
            runs.append((total, sum(t for _, t, _ in log), page.total, page.total_exact, q, list(log)))
            s.expunge_all()
    times = sorted(r[0] for r in runs)
    print(f"{len(runs)} searches: p50 {statistics.median(times):.1f} ms, p95 {times[int(0.95 * len(times)) - 1]:.1f} ms; "
          f"share in PostgreSQL {sum(r[1] for r in runs) / sum(r[0] for r in runs):.0%}")
    for total, sql, n, exact, q, statements in sorted(runs, key=lambda r: -r[0])[:args.show]:
        print(f"\n{total:.1f} ms (PostgreSQL {sql:.1f}, Python {total - sql:.1f}): {q.text} {q.year_from}-{q.year_to}, "
              f"{n:,} matches{'' if exact else ' (estimated)'}")
        for statement, t, rows in statements:
            if not any(k in statement for k in QUIET):
                print(f"  {t:7.1f} ms  rows {rows:<6} {statement}")


if __name__ == "__main__":
    main()
