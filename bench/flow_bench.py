"""Colorize N catalogued photos through the Prefect flow vs the engine directly (same files, same run).

    python bench/flow_bench.py [--photos 500] [--size 640x480] [--batch-size 8] [--render-size 256]

Both paths use the same untrained full-size generator (ResNet-18 U-Net, width 64) from one
checkpoint. The engine baseline loads each photo, colorizes it and writes a JPEG; the flow also
claims the work in PostgreSQL, stores each result as a content-addressed asset, links it to its
record and writes the colorization rows and artifacts. Prints a table; target: flow overhead
≤ 20 % of the engine's time. The temporary Prefect server is started (and timed) before the run.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from bench._common import print_table, scratch_database  # noqa: E402


def make_photo(i: int, w: int, h: int) -> bytes:
    rng = np.random.default_rng(i)
    y, x = np.mgrid[0:h, 0:w]
    g = 110 + 70 * np.sin(x / (9 + i % 7)) * np.cos(y / (13 + i % 5)) + rng.normal(0, 8, (h, w))
    buf = io.BytesIO()
    Image.fromarray(np.clip(g, 0, 255).astype("uint8"), "L").save(buf, "JPEG", quality=88)
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=500)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--render-size", type=int, default=256)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    home = Path(tempfile.mkdtemp(prefix="arhiva-flowbench-"))
    os.environ["ARHIVA_HOME"] = str(home)
    os.environ.setdefault("PREFECT_HOME", str(home / "prefect"))

    with scratch_database("arhiva_flowbench") as engine:
        os.environ["ARHIVA_DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
        from catalog.settings import reset_settings_cache

        reset_settings_cache()
        import torch

        from catalog.assets import get_store, link_asset, register_file, register_image
        from catalog.db import session_scope
        from catalog.ingest import RecordIn, get_or_create_source, upsert_records
        from catalog.models import ModelVersion
        from colorization.checkpoint import save_checkpoint
        from colorization.infer import Colorizer
        from colorization.networks import UNetGenerator

        torch.manual_seed(0)
        ckpt = home / "bench.safetensors"
        save_checkpoint(ckpt, UNetGenerator(64), {"recipe": "engine", "note": "benchmark, untrained"})
        store = get_store()
        paths: list[Path] = []
        t0 = time.perf_counter()
        with session_scope(engine) as s:
            sid = get_or_create_source(s, "bench", "folder").id
            ids = upsert_records(s, sid, [RecordIn(str(i), title=f"Photo {i}", year_lo=1930, year_hi=1930)
                                          for i in range(args.photos)], collection="bench").ids
            for i in range(args.photos):
                a = register_image(s, store, make_photo(i, w, h))
                link_asset(s, ids[str(i)], a.sha256, "original")
                paths.append(store.path(a.sha256))
            ck = register_file(s, store, ckpt.read_bytes(), "application/vnd.arhiva.colorizer+safetensors")
            s.add(ModelVersion(name="bench", checkpoint_sha256=ck.sha256, architecture="unet-resnet18-lean-w64"))
        setup = time.perf_counter() - t0
        print(f"catalogued {args.photos} photos ({w}×{h}) in {setup:.1f} s", file=sys.stderr)

        # engine directly: load, colorize, write a JPEG per photo
        out_dir = home / "direct"
        out_dir.mkdir()
        col = Colorizer(ckpt, device="cpu", render_size=args.render_size, batch_size=args.batch_size)
        col.colorize(paths[: args.batch_size])  # warm-up (same for both)
        t0 = time.perf_counter()
        for start in range(0, len(paths), args.batch_size):
            batch = paths[start:start + args.batch_size]
            for p, im in zip(batch, col.colorize(batch)):
                im.convert("RGB").save(out_dir / f"{p.name}.jpg", "JPEG", quality=95, subsampling=0)
        direct = time.perf_counter() - t0
        del col

        from flows import prefect_env  # noqa: F401
        from prefect import flow

        @flow
        def warm() -> int:
            return 1

        t0 = time.perf_counter()
        warm()
        server = time.perf_counter() - t0
        from flows.colorize import colorize_flow

        t0 = time.perf_counter()
        summary = colorize_flow(collection="bench", batch_size=args.batch_size, render_size=args.render_size,
                                device="cpu")
        flowed = time.perf_counter() - t0
        assert summary["photos"] == args.photos, summary

    n = args.photos
    rows = [
        ["engine directly (load, colorize, write JPEG)", n, f"{direct:.1f}", f"{n / direct:.2f}", "—"],
        ["colorize flow (claims, assets, links, rows, artifacts)", n, f"{flowed:.1f}", f"{n / flowed:.2f}",
         f"{100 * (flowed - direct) / direct:+.1f} %"],
        ["  of which engine inside the flow", n, f"{summary['engine_s']:.1f}", "", ""],
        ["  of which claiming (SQL)", n, f"{summary['claim_s']:.1f}", "", ""],
        ["  of which storing results (encode, blob, rows)", n, f"{summary['write_s']:.1f}", "", ""],
        ["temporary Prefect server start (once, not counted)", "", f"{server:.1f}", "", ""],
    ]
    print_table(f"Colorize {n} catalogued photos {w}×{h}, render {args.render_size}, batch {args.batch_size}, CPU "
                f"({torch.get_num_threads()} threads)", ["path", "photos", "seconds", "photos/s", "overhead vs engine"],
                rows)


if __name__ == "__main__":
    main()
