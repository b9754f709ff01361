"""What the search syntax costs: two words, the same two as a "phrase", OR, -exclusions, against
one word, on a catalogue filled by ``bench/catalog_bench.py --db NAME`` (1M records by default).

Each search as the API runs it (a page of 50 in id order plus its count, no facets), random
words of the benchmark's vocabulary, the cases taking turns so that a busy moment slows all
alike. Prints p50/p95 per case and the ratio of its p50 to that of two words.

    python bench/catalog_bench.py --db arhiva_bench_1m --skip-upsert --only narrow --repeats 10
    python bench/search_syntax.py --db arhiva_bench_1m
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import select  # noqa: E402

from bench._common import named_database, print_table  # noqa: E402
from bench.catalog_bench import TOWNS, WORDS, _pctl  # noqa: E402
from catalog.db import session_scope  # noqa: E402
from catalog.models import Record  # noqa: E402
from catalog.queries import RecordQuery, search_records  # noqa: E402


def cases(rng: random.Random) -> dict:
    def years():
        y = rng.randint(1900, 1960)
        return {"year_from": y, "year_to": y + 9}

    def box():
        _, lat, lon = rng.choice(TOWNS)
        return {"bbox": (lon - 0.03, lat - 0.03, lon + 0.03, lat + 0.03)}

    def two(pool=WORDS):
        return rng.sample(pool, 2)

    return {
        "one word": lambda: RecordQuery(text=rng.choice(WORDS)),
        "two words": lambda: RecordQuery(text=" ".join(two())),
        '"two words" (phrase)': lambda: RecordQuery(text='"{} {}"'.format(*two())),
        "word OR word": lambda: RecordQuery(text=" OR ".join(two())),
        "word -word": lambda: RecordQuery(text=" -".join(two())),
        "-word (exclusion only)": lambda: RecordQuery(text="-" + rng.choice(WORDS)),
        "two words + years": lambda: RecordQuery(text=" ".join(two(WORDS[5:])), **years()),
        '"two words" + years': lambda: RecordQuery(text='"{} {}"'.format(*two(WORDS[5:])), **years()),
        "word OR word + years": lambda: RecordQuery(text=" OR ".join(two(WORDS[5:])), **years()),
        "word OR word + years + box": lambda: RecordQuery(text=" OR ".join(two(WORDS[5:])), **years(), **box()),
        "word -word + years + box": lambda: RecordQuery(text=" -".join(two(WORDS[5:])), **years(), **box()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", required=True, help="a catalogue filled by bench/catalog_bench.py --db NAME")
    ap.add_argument("--repeats", type=int, default=30, help="queries per case")
    args = ap.parse_args()
    rng = random.Random(7)
    made = cases(rng)
    times: dict[str, list[float]] = {name: [] for name in made}
    totals: dict[str, list[tuple[int, bool]]] = {name: [] for name in made}
    engine = named_database(args.db)
    with session_scope(engine) as s:
        if s.scalar(select(Record.id).limit(1)) is None:
            sys.exit(f"{args.db} holds no records: fill it first with bench/catalog_bench.py --db {args.db}")
    for _ in range(args.repeats):
        for name, make in made.items():
            q = make()
            with session_scope(engine) as s:
                t0 = time.perf_counter()
                page = search_records(s, q)
                times[name].append((time.perf_counter() - t0) * 1000)
            totals[name].append((page.total, page.total_exact))
    base = _pctl(times["two words"])[0]
    rows = []
    for name in made:
        p50, p95 = _pctl(times[name])
        n = len(totals[name])
        rows.append([name, f"{sum(t for t, _ in totals[name]) / n:,.0f}",
                     f"{sum(not e for _, e in totals[name])}/{n}", f"{p50:.1f} / {p95:.1f}", f"{p50 / base:.2f}×"])
    print_table(f"Search syntax on {args.db} ({args.repeats} queries a case, taking turns)",
                ["search", "mean matches", "estimated", "p50 / p95 ms", "p50 vs two words"], rows)


if __name__ == "__main__":
    main()
