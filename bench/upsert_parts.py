"""What the parts of a bulk load of new records cost: ``bulk_upsert`` of the catalogue benchmark's
records into a fresh catalogue, as it is and with one part taken away, the variants taking turns
(the machine is noisy), best and mean of the rounds against the current code in the same run.

    python bench/upsert_parts.py                       # 100,000 records, 3 rounds
    python bench/upsert_parts.py --records 50000 --rounds 4 --only current,prepared

Variants (each measures what one part costs; none is a way to run arhiva):
- ``current``: bulk_upsert over 2 connections, 5,000 records a transaction;
- ``no reference checks``: the triggers that check each INSERT's sources and runs (migration
  0014) dropped;
- ``foreign keys``: the references checked as before migration 0014, by three foreign keys
  (each new row looked up on its own);
- ``prepared``: every slice validated and serialised beforehand, so the load only talks to
  PostgreSQL (the most any client-side speed-up could give);
- ``no word × place index``: ix_records_word_place_keys dropped (what migrations 0010 and 0013 cost a load);
- ``fold without punctuation split``: the words folded as before migration 0016 (unaccent only, no
  regexp splitting them at punctuation): what that split costs a load;
- ``no OAI identifier index``: ix_records_oai_identifier dropped (what migration 0015's partial
  index costs a load of records that carry no OAI identifier: one test of ``extra ? ...`` a row);
- ``no sample search index``: ix_records_search_sample dropped (what migration 0018 costs a load:
  the search vector of one record in sixteen in a GIN index of its own);
- ``into a collection``: the load into a collection (``--collection``, as a harvest or an import
  into one stores it): each new record's row names it, and its members are added;
- ``in a crawl run``: the load inside a crawl run, as a harvest stores it (each new record then
  names the run as first and last seen: two more foreign-key checks); the other variants, like
  ``catalog_bench.py``, load without a run;
- ``text word × place tokens``: the word × place index as it was before migration 0013, a text
  token a word (``<cell>_<decade>_<word>``) instead of a 64-bit key;
- ``as before 0013 and 0014``: both of the above (text tokens and foreign keys);
- ``64 MB pending lists``: both GIN indexes keep up to 64 MB of new keys in their pending lists
  (4 MB by default), which are then cleaned (``gin_clean_pending_list``) within the clock;
- ``work_mem 64 MB``: the load's connections with 64 MB of ``work_mem`` (4 MB by default), the
  memory in which an insert that cleans a GIN pending list gathers its keys before writing them
  to the index (more gathered: fewer writes of a shared key);
- ``indexes built after``: both GIN indexes dropped for the load and built again (with 256 MB of
  maintenance_work_mem) within the clock, as restores do;
- ``1 MB pending lists``, ``256 kB pending lists``: both GIN indexes clean their pending lists
  (into their trees) at that size instead of 4 MB: smaller, more frequent merges;
- ``word × place without pending list``: the word × place index (whose keys are nearly all
  distinct, so a pending list gathers few repeats) takes each key straight into its tree;
- ``GIL switch 0.5 ms``: Python's thread switch interval at 0.5 ms instead of 5 during the load
  (does a worker thread whose statement has returned wait for the thread serialising the next
  slices to let go of the interpreter?).

With ``--again`` the clock times storing the same records a second time instead (a re-harvest
of unchanged records: each is only marked seen again, by a new crawl run in the crawl-run variants).
Also prints how long validating and serialising takes per record (``copy_chunk``, one thread).
"""
from __future__ import annotations

import argparse
import importlib
import random
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import print_table, scratch_database  # noqa: E402
from bench.catalog_bench import synthetic  # noqa: E402
from catalog import ingest  # noqa: E402
from catalog.db import session_scope  # noqa: E402
from catalog.models import WORD_PLACES_EXPR  # noqa: E402
from catalog.records_in import copy_chunk  # noqa: E402
from catalog.runs import activity  # noqa: E402

_GIN = {"ix_records_search": "search", "ix_records_word_place_keys": WORD_PLACES_EXPR}
_FOREIGN_KEYS = "DROP TRIGGER records_named_new ON records; DROP TRIGGER records_named_changed ON records; " + "; ".join(
    f"ALTER TABLE records ADD CONSTRAINT {name} FOREIGN KEY ({column}) REFERENCES {table} (id)"
    for name, column, table in importlib.import_module("migrations.versions.0014_record_references_per_statement")
    .FOREIGN_KEYS)
_TEXT_TOKENS = (importlib.import_module("migrations.versions.0010_word_place_index").WORD_PLACES
                + "; DROP INDEX ix_records_word_place_keys; CREATE INDEX ix_records_word_places ON records "
                "USING gin (arhiva_word_places(search, year_lo, year_hi, lat, lon))")
# migration 0003's fold (before 0016 split words at punctuation), for the records it is given
_OLD_FOLD = ("DO $$ DECLARE s text := (SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n "
             "ON n.oid = e.extnamespace WHERE e.extname = 'unaccent'); BEGIN EXECUTE format($f$"
             + importlib.import_module("migrations.versions.0003_fold_with_unaccent").NEW_FOLD
             .replace("{schema}", "%%1$s") + "$f$, s); END $$")
# the memory an insert that cleans a GIN pending list gathers its keys in (work_mem; 4 MB by default)
_WORK_MEM = "DO $$ BEGIN EXECUTE format('ALTER DATABASE %%I SET work_mem = ''{}''', current_database()); END $$"
# variant: (SQL before the clock starts, SQL after the load within the clock)
VARIANTS = {
    "current": ("", ""),
    "no reference checks": ("DROP TRIGGER records_named_new ON records", ""),
    "foreign keys": (_FOREIGN_KEYS, ""),
    "prepared": ("", ""),
    "no word × place index": ("DROP INDEX ix_records_word_place_keys", ""),
    "no OAI identifier index": ("DROP INDEX ix_records_oai_identifier", ""),
    "no sample search index": ("DROP INDEX ix_records_search_sample", ""),
    "fold without punctuation split": (_OLD_FOLD, ""),
    "into a collection": ("", ""),
    "in a crawl run": ("", ""),
    "foreign keys in a crawl run": (_FOREIGN_KEYS, ""),
    "text word × place tokens": (_TEXT_TOKENS, ""),
    "as before 0013 and 0014": (_TEXT_TOKENS + "; " + _FOREIGN_KEYS, ""),
    "64 MB pending lists": (";".join(f"ALTER INDEX {i} SET (gin_pending_list_limit = 65536)" for i in _GIN),
                            "SET maintenance_work_mem = '256MB';"
                            + ";".join(f"SELECT gin_clean_pending_list('{i}')" for i in _GIN)),
    "work_mem 64 MB": (_WORK_MEM.format("64MB"), ""),
    "1 MB pending lists": (";".join(f"ALTER INDEX {i} SET (gin_pending_list_limit = 1024)" for i in _GIN), ""),
    "256 kB pending lists": (";".join(f"ALTER INDEX {i} SET (gin_pending_list_limit = 256)" for i in _GIN), ""),
    "word × place without pending list": ("ALTER INDEX ix_records_word_place_keys SET (fastupdate = off)", ""),
    "GIL switch 0.5 ms": ("", ""),
    "indexes built after": (";".join(f"DROP INDEX {i}" for i in _GIN),
                            "SET maintenance_work_mem = '256MB';"
                            + ";".join(f"CREATE INDEX {i} ON records USING gin ({e})" for i, e in _GIN.items())),
}


@contextmanager
def prepared_beforehand(slices: dict):
    """ingest.copy_chunk answered from ``slices`` (made before the clock starts)."""
    ingest.copy_chunk = lambda part: slices[(part[0].source_key, part[-1].source_key, len(part))]
    try:
        yield
    finally:
        ingest.copy_chunk = copy_chunk


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", help="comma-separated variant names (default: all)")
    ap.add_argument("--again", action="store_true",
                    help="time storing the same records a second time, unchanged (a re-harvest: each record is "
                         "only marked seen again; in a new crawl run for the crawl-run variants), not the first load")
    args = ap.parse_args()
    names = [n.strip() for n in args.only.split(",")] if args.only else list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variant(s) {unknown}; known: {list(VARIANTS)}")
    rng = random.Random(1)
    batch = [synthetic(i, rng) for i in range(args.records)]
    slices = {}
    t0 = time.perf_counter()
    for part in ingest._sorted_chunks(batch, 5_000, ingest.UpsertReport()):
        slices[(part[0].source_key, part[-1].source_key, len(part))] = copy_chunk(part)
    prep_us = (time.perf_counter() - t0) / args.records * 1e6
    rates: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.rounds):
        for name in (names if r % 2 == 0 else names[::-1]):  # turns: A B C, C B A, ...
            with scratch_database() as engine:
                before, after = VARIANTS[name]
                if before:
                    with engine.begin() as conn:
                        conn.exec_driver_sql(before)
                    engine.dispose()  # new connections: a database's settings apply from their start
                with session_scope(engine) as s:
                    sid = ingest.get_or_create_source(s, "bench", "folder").id
                with ExitStack() as stack:
                    if name == "prepared":
                        stack.enter_context(prepared_beforehand(slices))
                    if name == "GIL switch 0.5 ms":
                        stack.callback(sys.setswitchinterval, sys.getswitchinterval())
                        sys.setswitchinterval(0.0005)
                    runs = [stack.enter_context(activity("crawl", "bench", engine=engine, source_id=sid)).id
                            if name.endswith("in a crawl run") else None for _ in range(2 if args.again else 1)]
                    collection = "bench" if name == "into a collection" else None
                    if args.again:
                        ingest.bulk_upsert(engine, sid, batch, run_id=runs[0], workers=2, collection=collection)
                    t = time.perf_counter()
                    report = ingest.bulk_upsert(engine, sid, batch, run_id=runs[-1], workers=2, collection=collection)
                    if after:
                        with engine.begin() as conn:
                            conn.exec_driver_sql(after)
                    rates[name].append(args.records / (time.perf_counter() - t))
                assert (report.unchanged if args.again else report.new) == args.records, report.as_stats()
            print(f"  round {r + 1}: {name} {rates[name][-1]:,.0f} records/s", file=sys.stderr, flush=True)
    base = rates.get("current")
    rows = []
    for name in names:
        best, mean = max(rates[name]), sum(rates[name]) / len(rates[name])
        ratio = f"{mean / (sum(base) / len(base)):.2f}×" if base else ""
        rows.append([name, f"{best:,.0f}", f"{mean:,.0f}", ratio])
    what = "the same records again (unchanged)" if args.again else "new records"
    print_table(f"bulk_upsert of {args.records:,} {what}, 2 connections, {args.rounds} rounds taking turns "
                f"(validating and serialising: {prep_us:.1f} µs a record on one thread)",
                ["variant", "records/s best", "records/s mean", "mean vs current"], rows)


if __name__ == "__main__":
    main()
