"""Two (or more) values of one search constant, taking turns query by query on the same draw.

The machine's speed drifts within minutes, so two runs of ``catalog_bench.py`` an hour apart
compare poorly; here each query of a case's draw runs once with every value, in an order
picked at random per query, and each value's p50/p95 is printed side by side:

    python bench/search_ab.py --db arhiva_bench_10m --attr catalog.counts.BITMAP_MEM \\
        --values 4MB 32MB --queries 40 --case "one collection + years" --case "facets: narrow"

``--attr`` names a module attribute the search reads when it runs (a constant of
``catalog.counts``, ``catalog.seek``, ...); values are taken as integers or floats when they
read as such, as strings otherwise. The cases are ``catalog_bench.py``'s, drawn with its seed.
"""
from __future__ import annotations

import argparse
import importlib
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import named_database, print_table  # noqa: E402
from bench.catalog_bench import COLLECTIONS, _cursor_at, _pctl, facet_cases, query_cases  # noqa: E402
from catalog.db import session_scope  # noqa: E402
from catalog.queries import RecordQuery, search_records  # noqa: E402


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default="arhiva_bench_10m", help="a catalogue catalog_bench.py filled")
    ap.add_argument("--attr", required=True, help="module.path.NAME of the constant to vary")
    ap.add_argument("--values", nargs="+", required=True)
    ap.add_argument("--case", action="append", required=True, help="a case of catalog_bench.py (name contains)")
    ap.add_argument("--queries", type=int, default=40)
    args = ap.parse_args()
    module_name, _, attr = args.attr.rpartition(".")
    module = importlib.import_module(module_name)
    if not hasattr(module, attr):
        sys.exit(f"{module_name} has no {attr}")
    original = getattr(module, attr)
    engine = named_database(args.db)
    rows = []
    for wanted in args.case:
        rng = random.Random(7)  # catalog_bench's seed: the same draw as its run of this case alone
        collections = [c for c, _ in COLLECTIONS]
        cases = {**query_cases(rng, collections), **facet_cases(rng, collections)}
        name = next((n for n in cases if wanted in n), None)
        if name is None:
            sys.exit(f"no case named like {wanted!r}; cases: {list(cases)}")
        draw = [cases[name]() for _ in range(args.queries)]
        order = random.Random(11)
        times: dict[str, list[float]] = {v: [] for v in args.values}
        try:
            with session_scope(engine) as s:
                for q in draw:
                    if isinstance(q, tuple):
                        q, skip = q
                        q = RecordQuery(**{**q.__dict__, "after": _cursor_at(s, q, skip)})
                    for v in order.sample(args.values, len(args.values)):
                        setattr(module, attr, _value(v))
                        t0 = time.perf_counter()
                        search_records(s, q, with_facets=name.startswith("facets"))
                        times[v].append((time.perf_counter() - t0) * 1000)
                        s.expunge_all()
        finally:
            setattr(module, attr, original)
        rows.append([name, len(draw)] + [" / ".join(f"{t:.1f}" for t in _pctl(times[v])) for v in args.values])
        print(f"  {name}: " + ", ".join(f"{v} p95 {_pctl(times[v])[1]:.1f}" for v in args.values), flush=True)
    print_table(f"{args.attr}: its values taking turns query by query; p50 / p95 ms",
                ["case", "queries"] + [f"{attr} = {v}" for v in args.values], rows)


if __name__ == "__main__":
    main()
