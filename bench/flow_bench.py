"""Colorize N catalogued photos through the Prefect flow vs the engine directly (same files, same run).

    python bench/flow_bench.py [--photos 500] [--size 640x480] [--batch-size 8] [--render-size 256]

Both paths use the same untrained full-size generator (ResNet-18 U-Net, width 64) from one
checkpoint. The engine baseline loads each photo, colorizes it and writes a JPEG; the flow also
claims the work in PostgreSQL, stores each result as a content-addressed asset, links it to its
record and writes the colorization rows and artifacts. The two paths take turns (A B B A …,
``--repeats`` rounds; the machine is noisy) with the temporary Prefect server up for both; the flow's results
are deleted before each repeat so every flow run does the whole job. Prints a table; target:
flow overhead ≤ 20 % of the engine's time.
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
    ap.add_argument("--repeats", type=int, default=2, help="rounds of both paths, taking turns to go first")
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

        # The temporary Prefect server is started first (and timed) so that both paths run with it up.
        from prefect import flow

        from flows import prefect_env  # noqa: F401

        @flow
        def warm() -> int:
            return 1

        t0 = time.perf_counter()
        warm()
        server = time.perf_counter() - t0
        from flows.colorize import colorize_flow

        col = Colorizer(ckpt, device="cpu", render_size=args.render_size, batch_size=args.batch_size)
        col.colorize(paths[: args.batch_size])  # warm-up (torch's first call)
        rows, times = [], {"direct": [], "flow": []}
        n = args.photos

        def direct_run(rep: int) -> None:
            """The engine directly: load, colorize, write a JPEG per photo."""
            out_dir = home / f"direct-{rep}"
            out_dir.mkdir()
            c0, t0 = _cpu(), time.perf_counter()
            for start in range(0, len(paths), args.batch_size):
                batch = paths[start:start + args.batch_size]
                for p, im in zip(batch, col.colorize(batch)):
                    im.convert("RGB").save(out_dir / f"{p.name}.jpg", "JPEG", quality=95, subsampling=0)
            seconds = time.perf_counter() - t0
            times["direct"].append(seconds)
            rows.append([rep, "engine directly (load, colorize, write JPEG)", f"{seconds:.1f}", f"{n / seconds:.2f}",
                         _cpu_since(c0)])

        def flow_run(rep: int) -> None:
            _forget_results(engine, store)  # every run colorizes and stores all photos afresh
            c0, t0 = _cpu(), time.perf_counter()
            summary = colorize_flow(collection="bench", batch_size=args.batch_size, render_size=args.render_size,
                                    device="cpu")
            seconds = time.perf_counter() - t0
            assert summary["photos"] == n, summary
            times["flow"].append(seconds)
            rows.append([rep, "colorize flow (claims, assets, links, rows, artifacts)", f"{seconds:.1f}",
                         f"{n / seconds:.2f}", _cpu_since(c0)])
            for label, key in (("engine inside the flow", "engine_s"), ("claiming (SQL)", "claim_s"),
                               ("storing results (encode, measure, blob, rows)", "write_s")):
                rows.append([rep, f"  of which {label}", f"{summary[key]:.1f}", "", ""])

        # A B B A …: the two paths take turns going first, so a slow spell of the machine
        # does not land on one of them only.
        for rep in range(1, args.repeats + 1):
            for run in ((direct_run, flow_run) if rep % 2 else (flow_run, direct_run)):
                run(rep)
        mean = {k: sum(v) / len(v) for k, v in times.items()}
        best = {k: min(v) for k, v in times.items()}
        rows.append(["mean", "engine directly", f"{mean['direct']:.1f}", f"{n / mean['direct']:.2f}", ""])
        rows.append(["mean", "colorize flow", f"{mean['flow']:.1f}", f"{n / mean['flow']:.2f}",
                     f"overhead {100 * (mean['flow'] - mean['direct']) / mean['direct']:+.1f} %"])
        rows.append(["best", "colorize flow vs engine directly", f"{best['flow']:.1f} vs {best['direct']:.1f}", "",
                     f"overhead {100 * (best['flow'] - best['direct']) / best['direct']:+.1f} %"])
        rows.append(["", "temporary Prefect server start (once, before both; not counted)", f"{server:.1f}", "", ""])

    print_table(f"Colorize {n} catalogued photos {w}×{h}, render {args.render_size}, batch {args.batch_size}, CPU "
                f"({torch.get_num_threads()} threads); CPU s = this process + the Prefect server",
                ["run", "path", "seconds", "photos/s", "CPU s"], rows)


def _cpu() -> tuple[float, float]:
    """CPU seconds used so far by this process and by its children still running (the Prefect server)."""
    try:
        import psutil
    except ImportError:
        return (time.process_time(), 0.0)
    me = psutil.Process()
    kids = 0.0
    for k in me.children(recursive=True):
        try:
            kids += sum(k.cpu_times()[:2])
        except psutil.Error:
            pass
    return (sum(me.cpu_times()[:2]), kids)


def _cpu_since(before: tuple[float, float]) -> str:
    now = _cpu()
    return f"{now[0] - before[0]:.1f} + {now[1] - before[1]:.1f}"


def _forget_results(engine, store) -> None:
    """Delete earlier results (rows, links, blobs) so a repeat does the whole job again."""
    with engine.begin() as conn:
        shas = [r[0] for r in conn.exec_driver_sql("SELECT result_sha256 FROM colorizations")]
        conn.exec_driver_sql("DELETE FROM record_assets WHERE role = 'colorized'")
        conn.exec_driver_sql("DELETE FROM colorizations")
        conn.exec_driver_sql("DELETE FROM assets WHERE sha256 = ANY(%s)", (shas,))
    for sha in shas:
        store.path(sha).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
