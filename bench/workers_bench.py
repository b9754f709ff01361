"""The colorize flow on a work pool: 1 worker against 2 workers on this machine (same run, same photos).

    python bench/workers_bench.py [--photos 120] [--size 640x480] [--rounds 2]

What a user of several machines runs, on one: a real ``prefect server start`` (state in
PostgreSQL), SeaweedFS as the S3 blob store (``--blobs folder`` for a shared folder instead), the
flows deployed on a process work pool (``arhiva deploy``), ``arhiva worker`` processes with
homes of their own, and ``arhiva colorize --runs N``: N flow runs claiming photos from PostgreSQL.
The time is from submitting the runs until the last photo's result is in the catalogue (workers
already started and polling; the model is an untrained full-size generator). The configurations
take turns (1, 2, 2, 1 … workers); results are deleted between rounds. Prints a table.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import SERVER, print_table, scratch_database  # noqa: E402
from bench.flow_bench import make_photo  # noqa: E402

POOL = "arhiva-bench"


def arhiva(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    exe = str(Path(sys.executable).parent / "arhiva")
    return subprocess.run([exe, *args], env=env, capture_output=True, text=True, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=120)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of both configurations, taking turns")
    ap.add_argument("--blobs", choices=["s3", "folder"], default="s3")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="arhiva-workersbench-"))

    from tests.prefect_server import PrefectServer
    from tests.s3_server import SeaweedS3, weed_binary

    s3 = SeaweedS3.start(tmp / "s3", weed_binary()) if args.blobs == "s3" else None
    if s3 is not None:
        s3.create_bucket("bench")
        os.environ.update(s3.env())
    blobs = "s3://bench/photos" if s3 is not None else str(tmp / "shared-blobs")
    try:
        with scratch_database("arhiva_workersbench") as engine, \
                scratch_database("arhiva_workersbench_prefect", migrated=False) as prefect_db:
            prefect_url = f"{SERVER}/{prefect_db.url.database}"
            (tmp / "prefect").mkdir()
            with PrefectServer.start(prefect_url, tmp / "prefect") as api:
                run_bench(args, engine, api, blobs, tmp, w, h)
    finally:
        if s3 is not None:
            s3.stop()


def run_bench(args, engine, api: str, blobs: str, tmp: Path, w: int, h: int) -> None:
    from sqlalchemy import delete, func, select

    from catalog.db import session_scope
    from catalog.models import Colorization, RecordAsset

    db_url = engine.url.render_as_string(hide_password=False)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ARHIVA_", "PREFECT_"))}
    base |= {"ARHIVA_DATABASE_URL": db_url, "ARHIVA_BLOBS": blobs, "PREFECT_API_URL": api,
             "PREFECT_WORKER_QUERY_SECONDS": "1"}
    desk = base | {"ARHIVA_HOME": str(tmp / "desk"), "PREFECT_HOME": str(tmp / "desk" / "prefect")}
    fill(desk, args.photos, w, h)
    arhiva("deploy", "--pool", POOL, env=desk)
    photos = args.photos

    def colorized() -> int:
        with session_scope(engine) as s:
            return s.execute(select(func.count()).select_from(Colorization)
                             .where(Colorization.status == "done")).scalar_one()

    rows, per = [], {1: [], 2: []}
    order = [n for r in range(args.rounds) for n in ((1, 2) if r % 2 == 0 else (2, 1))]
    for i, n in enumerate(order, 1):
        with session_scope(engine) as s:  # every round does the whole job
            s.execute(delete(RecordAsset).where(RecordAsset.role == "colorized"))
            s.execute(delete(Colorization))
        workers = [subprocess.Popen([str(Path(sys.executable).parent / "arhiva"), "worker", "--pool", POOL],
                                    env=base | {"ARHIVA_HOME": str(tmp / f"w{i}-{k}"),
                                                "PREFECT_HOME": str(tmp / f"w{i}-{k}" / "prefect")},
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
                   for k in range(n)]
        time.sleep(8)  # the workers are up and polling
        t0 = time.perf_counter()
        arhiva("colorize", "--collection", "bench", "--years", "1930-1930", "--runs", str(n), "--device", "cpu",
               env=desk)
        while colorized() < photos:
            time.sleep(0.25)
        seconds = time.perf_counter() - t0
        for p in workers:
            os.killpg(p.pid, signal.SIGTERM)
        for p in workers:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        per[n].append(seconds)
        rows.append([i, n, photos, f"{seconds:.1f}", f"{photos / seconds:.2f}"])
        print(f"round {i}: {n} worker(s) {seconds:.1f} s", flush=True)
    print_table(f"colorize flow over a work pool: {photos} photos {w}×{h}, render 256, CPU, blobs {args.blobs}",
                ["round", "workers", "photos", "seconds", "photos/s"], rows)
    best1, best2 = min(per[1]), min(per[2])
    print_table("1 worker → 2 workers (best round of each)", ["1 worker s", "2 workers s", "speed-up"],
                [[f"{best1:.1f}", f"{best2:.1f}", f"{best1 / best2:.2f}×"]])


def fill(env: dict[str, str], n: int, w: int, h: int) -> None:
    """n greyscale photos dated 1930 in collection ``bench`` and an untrained model version."""
    os.environ.update({k: v for k, v in env.items() if k.startswith(("ARHIVA_", "AWS_"))})
    from catalog.settings import reset_settings_cache

    reset_settings_cache()
    import torch

    from catalog.assets import get_store, link_asset, register_file, register_image
    from catalog.db import open_catalog, session_scope
    from catalog.ingest import RecordIn, get_or_create_source, upsert_records
    from catalog.models import ModelVersion
    from colorization.checkpoint import save_checkpoint
    from colorization.networks import UNetGenerator

    torch.manual_seed(0)
    home = Path(env["ARHIVA_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    ckpt = home / "bench.safetensors"
    save_checkpoint(ckpt, UNetGenerator(64), {"recipe": "engine", "note": "benchmark, untrained"})
    store = get_store()
    with session_scope(open_catalog()) as s:
        sid = get_or_create_source(s, "bench", "folder").id
        ids = upsert_records(s, sid, [RecordIn(str(i), title=f"Photo {i}", year_lo=1930, year_hi=1930)
                                      for i in range(n)], collection="bench").ids
        for i in range(n):
            a = register_image(s, store, make_photo(i, w, h))
            link_asset(s, ids[str(i)], a.sha256, "original")
        asset = register_file(s, store, ckpt.read_bytes(), "application/vnd.arhiva.colorizer+safetensors", {})
        s.add(ModelVersion(name="bench", checkpoint_sha256=asset.sha256, architecture="unet", config={},
                           metrics={}))


if __name__ == "__main__":
    main()
