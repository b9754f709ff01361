"""Migration 0012 (record history) on a catalogue stored the way arhiva stored it before: how
long it takes, the disk before and after, and what reading the ``record_revisions`` view costs.

    python bench/history_migration.py                  # 1,000,000 records (a few minutes to fill)
    python bench/history_migration.py --records 200000

A scratch catalogue at migration 0011 is filled with the catalogue benchmark's records
(``catalog_bench.fill``), each given the revision row ingestion wrote before 0012 and a tenth a
second one (changed once); then it is upgraded to the head.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from bench._common import print_table, scratch_database  # noqa: E402
from bench.catalog_bench import fill  # noqa: E402
from catalog import migrate  # noqa: E402

# What ingestion before 0012 stored: a revision row per record (payload and fields again).
REVISIONS = ("INSERT INTO record_revisions (record_id, revision, payload_hash, raw, fields, run_id) "
             "SELECT id, :rev, payload_hash, raw, jsonb_build_object('title', title, 'year_lo', year_lo, "
             "'year_hi', year_hi, 'place', place, 'lat', lat, 'lon', lon, 'extra', extra), NULL FROM records")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    args = ap.parse_args()
    with scratch_database(migrated=False) as engine:
        migrate.upgrade(engine, "0011")
        fill(engine, args.records)
        with engine.begin() as conn:
            conn.execute(text(REVISIONS), {"rev": 1})
            conn.execute(text(REVISIONS + " WHERE id % 10 = 0"), {"rev": 2})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE record_revisions"))
            revisions = conn.execute(text("SELECT count(*) FROM record_revisions")).scalar()
            before = conn.execute(text("SELECT pg_total_relation_size('record_revisions')")).scalar()
        t0 = time.perf_counter()
        migrate.upgrade(engine)
        upgrade_s = time.perf_counter() - t0
        with engine.connect() as conn:
            after = conn.execute(text("SELECT pg_total_relation_size('record_history')")).scalar()
            history = conn.execute(text("SELECT count(*) FROM record_history")).scalar()
            t0 = time.perf_counter()
            seen = conn.execute(text("SELECT count(*) FROM record_revisions")).scalar()
            all_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            lookups = 1_000
            for k in range(1, lookups + 1):
                conn.execute(text("SELECT * FROM record_revisions WHERE record_id = :r"),
                             {"r": k * args.records // (lookups + 1)})
            one_ms = (time.perf_counter() - t0) * 1000 / lookups
        assert seen == revisions, (seen, revisions)
    print_table(f"Migration 0012 on {args.records:,} records with {revisions:,} revisions",
                ["upgrade s", "revisions before MiB", "history after MiB", "history rows",
                 "view: all revisions s", "view: one record's revisions ms"],
                [[f"{upgrade_s:.1f}", f"{before / 2**20:.0f}", f"{after / 2**20:.1f}", f"{history:,}",
                  f"{all_s:.1f}", f"{one_ms:.2f}"]])


if __name__ == "__main__":
    main()
