"""Benchmark the pastvu crawl against the local fake PastVu.

    python -m bench.crawl_pastvu [--photos 5000] [--latency 0] [--concurrency 16]

Three runs over the same server (metadata + ~50 KB JPEGs, politeness off):
the Scrapy crawl (first crawl, then a re-crawl) into one scratch database,
and a plain sequential loop of ``requests`` calls doing the same first
crawl (same API calls, same catalogue writes, one record per transaction)
into another. Prints a table: seconds, records/s, requests.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import print_table, scratch_database  # noqa: E402
from crawlers.pastvu.tiles import TILE_SIZE  # noqa: E402
from tests.pastvu_server import FakePastvu, generate_photos, jpeg_with_strip, with_comment  # noqa: E402

AREA = (28.0, 46.5, 29.0, 47.5)
W, H = 600, 400


def make_server(n: int, latency: float) -> FakePastvu:
    photos = generate_photos(n, AREA, seed=42, non_public=0.0, no_geo=0.0, w=W, h=H)
    bases = [jpeg_with_strip(W, H, 14, seed=i, texture=7) for i in range(8)]

    def image(photo, size):  # unique bytes per photo (a JPEG comment), ~50 KB each
        return with_comment(bases[photo["cid"] % len(bases)], f"pastvu.com/{photo['cid']} {photo['file']}")

    return FakePastvu(photos, latency=latency, image_maker=image)


def scrapy_crawl(server: FakePastvu, concurrency: int, tile: float, workers: int) -> dict:
    from crawlers.runner import run_crawl
    from crawlers.settings import LOCAL_PROFILE

    settings = LOCAL_PROFILE | {"CONCURRENT_REQUESTS": concurrency, "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
                                "ARHIVA_BATCH_SIZE": 200, "LOG_LEVEL": "WARNING", "DOWNLOAD_TIMEOUT": 30,
                                "ARHIVA_PROGRESS_INTERVAL": 5, "ARHIVA_IMAGE_WORKERS": workers}
    server.reset_counts()
    t0 = time.perf_counter()
    summary = run_crawl("pastvu", {"bbox": list(AREA), "api_url": server.api_url, "tile_size": tile},
                        settings_overrides=settings | server.allow)
    wall = time.perf_counter() - t0
    rec = summary["records"]
    return {"seconds": wall, "records": rec["new"] + rec["changed"] + rec["unchanged"],
            "requests": server.counts["total"], "detail": summary}


def plain_loop(server: FakePastvu, tile: float) -> dict:
    """The naive harvester: one request after another, one transaction per record."""
    import requests

    from catalog.assets import get_store, link_asset, register_image
    from catalog.db import get_engine, session_scope
    from catalog.ingest import get_or_create_source, upsert_records
    from crawlers.pastvu import api
    from crawlers.pastvu.mapping import crop_box_rule, image_url, listing_entry, to_record
    from crawlers.pastvu.tiles import BBox, grid, polygon
    from crawlers.settings import user_agent

    engine, store = get_engine(), get_store()
    with session_scope(engine) as s:
        source_id = get_or_create_source(s, "pastvu", "pastvu", server.base_url).id
    http = requests.Session()
    http.headers["User-Agent"] = user_agent()
    server.reset_counts()
    t0 = time.perf_counter()
    seen, n = set(), 0
    for t in grid(BBox(*AREA), tile):
        r = http.get(api.call_url(server.api_url, "photo.getByBounds", api.bounds_params(polygon(t))), timeout=30)
        for photo in api.parse(r.status_code, r.content)["photos"]:
            entry = listing_entry(photo)
            if entry["cid"] in seen:
                continue
            seen.add(entry["cid"])
            r = http.get(api.call_url(server.api_url, "photo.giveForPage", {"cid": entry["cid"]}), timeout=30)
            result = api.parse(r.status_code, r.content)
            rec = to_record(result, entry, base_url=server.base_url)
            url = image_url(server.base_url, "d", result["photo"]["file"])
            img = http.get(url, headers={"Accept": "image/jpeg,*/*;q=0.5"}, timeout=30).content
            with session_scope(engine) as s:
                rid = upsert_records(s, source_id, [rec]).ids[rec.source_key]
                asset = register_image(s, store, img)
                link_asset(s, rid, asset.sha256, source_url=url,
                           crop_box=crop_box_rule(result["photo"].get("waterhs"))(asset.width, asset.height))
            n += 1
    return {"seconds": time.perf_counter() - t0, "records": n, "requests": server.counts["total"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=5000)
    ap.add_argument("--latency", type=float, default=0.0, help="seconds the server waits per request")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2, help="image-measuring processes (ARHIVA_IMAGE_WORKERS)")
    ap.add_argument("--tile", type=float, default=TILE_SIZE, help="tile side in degrees (the crawl default)")
    args = ap.parse_args()

    from catalog.settings import reset_settings_cache

    server = make_server(args.photos, args.latency).start()
    rows = []
    try:
        for name in ("scrapy", "loop"):
            with scratch_database() as engine, tempfile.TemporaryDirectory() as home:
                os.environ["ARHIVA_DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
                os.environ["ARHIVA_HOME"] = home
                reset_settings_cache()
                if name == "scrapy":
                    first = scrapy_crawl(server, args.concurrency, args.tile, args.workers)
                    again = scrapy_crawl(server, args.concurrency, args.tile, args.workers)
                else:
                    loop = plain_loop(server, args.tile)
    finally:
        server.stop()

    def row(label, r):
        return [label, r["records"], r["requests"], f"{r['seconds']:.1f}", f"{r['records'] / r['seconds']:.1f}"]

    rows = [row("plain requests loop, first crawl", loop), row("scrapy, first crawl", first),
            row("scrapy, re-crawl", again)]
    print_table(f"pastvu crawl: {args.photos} photos, ~50 KB images, server latency {args.latency * 1000:.0f} ms, "
                f"scrapy concurrency {args.concurrency}",
                ["run", "records", "requests", "seconds", "records/s"], rows)
    print(f"\nfirst crawl vs plain loop: {loop['seconds'] / first['seconds']:.1f}× faster (target ≥ 3×)")
    print(f"re-crawl vs first crawl:   {first['seconds'] / again['seconds']:.1f}× faster (target ≥ 10×)")
    print(f"scrapy first-crawl errors: {first['detail']['errors']['count']}, "
          f"re-crawl giveForPage/images: {again['detail']['requests']['by_kind']}")


if __name__ == "__main__":
    main()
