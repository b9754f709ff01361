"""What the per-host politeness shared through PostgreSQL costs a single crawl.

    python -m bench.politeness [--photos 400] [--polite-photos 60] [--repeats 2] [--calls 2000]

Tables: the round trip of one request's slot (``HostGate.enter`` + ``leave``, no
contention, this machine's PostgreSQL), and the pastvu crawl against the local fake
PastVu with ``ARHIVA_SHARED_POLITENESS`` on and off, alternating, each into a fresh
database, in two profiles: *fast* (no delay, 16 requests at a time: nothing but the
shared slots could slow it, the worst case) and *polite* (a 0.2 s delay, one request
at a time: the shape of a real crawl, whose default delay is 1 s).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import print_table, scratch_database  # noqa: E402
from bench.crawl_pastvu import AREA, make_server  # noqa: E402


def gate_cost(engine, calls: int) -> list[float]:
    from catalog.hostslots import HostGate

    gate = HostGate(engine)
    try:
        out = []
        for i in range(calls + 50):
            t0 = time.perf_counter()
            slot, _ = gate.enter("bench.example", 0.0, 16)
            gate.leave("bench.example", slot)
            if i >= 50:  # warm-up: connections made, plans cached
                out.append(time.perf_counter() - t0)
        return out
    finally:
        gate.close()


def crawl(server, concurrency: int, delay: float, shared: bool) -> dict:
    from crawlers.runner import run_crawl
    from crawlers.settings import LOCAL_PROFILE

    settings = LOCAL_PROFILE | {"CONCURRENT_REQUESTS": max(8, concurrency), "DOWNLOAD_DELAY": delay,
                                "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
                                "LOG_LEVEL": "WARNING", "DOWNLOAD_TIMEOUT": 30, "ARHIVA_PROGRESS_INTERVAL": 5,
                                "ARHIVA_SHARED_POLITENESS": shared}
    server.reset_counts()
    t0 = time.perf_counter()
    summary = run_crawl("pastvu", {"bbox": list(AREA), "api_url": server.api_url, "tile_size": 0.25},
                        settings_overrides=settings)
    return {"seconds": time.perf_counter() - t0, "requests": server.counts["total"],
            "records": summary["records"]["new"], "status": summary["status"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=400)
    ap.add_argument("--polite-photos", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--calls", type=int, default=2000)
    args = ap.parse_args()

    with scratch_database() as engine:
        costs = gate_cost(engine, args.calls)
    ms = sorted(c * 1000 for c in costs)
    print_table(f"one request's shared slot (enter + leave), {args.calls} calls, no contention",
                ["measure", "ms"], [["median", f"{statistics.median(ms):.2f}"],
                                    ["p95", f"{ms[int(len(ms) * 0.95)]:.2f}"], ["best", f"{ms[0]:.2f}"]])

    for profile, photos, concurrency, delay in (("fast", args.photos, 16, 0.0),
                                                ("polite", args.polite_photos, 1, 0.2)):
        runs = compare(photos, concurrency, delay, args.repeats)
        rows = []
        for shared in (False, True):
            best = min(r["seconds"] for r in runs[shared])
            rows.append(["on" if shared else "off", runs[shared][0]["requests"], f"{best:.2f}",
                         " ".join(f"{r['seconds']:.2f}" for r in runs[shared]),
                         f"{runs[shared][0]['requests'] / best:.1f}"])
        print_table(f"{profile}: pastvu crawl, {photos} photos, one host, {concurrency} request(s) at a time, "
                    f"delay {delay} s", ["shared politeness", "requests", "best s", "all runs s", "requests/s"], rows)
        off, on = (min(r["seconds"] for r in runs[k]) for k in (False, True))
        print(f"{profile}: shared / not shared (best runs): {on / off:.2f}×")


def compare(photos: int, concurrency: int, delay: float, repeats: int) -> dict[bool, list[dict]]:
    from catalog.settings import reset_settings_cache

    server = make_server(photos, 0.0).start()
    runs: dict[bool, list[dict]] = {True: [], False: []}
    try:
        for _ in range(repeats):
            for shared in (False, True):
                with scratch_database() as engine, tempfile.TemporaryDirectory() as home:
                    os.environ["ARHIVA_DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
                    os.environ["ARHIVA_HOME"] = home
                    reset_settings_cache()
                    r = crawl(server, concurrency, delay, shared)
                    assert r["status"] == "succeeded", r
                    runs[shared].append(r)
    finally:
        server.stop()
    return runs


if __name__ == "__main__":
    main()
