"""The ``colorize`` flow: greyscale originals of a collection, by year range, through a model.

Work is claimed in the catalogue batch by batch (``FOR UPDATE SKIP LOCKED`` on
the source assets, inside the transaction that writes the results), so
several workers can share a collection, nothing is done twice, and a run
killed midway leaves no half-written file or row: run it again and it
finishes the rest.
"""
from __future__ import annotations

import io
import os
import socket
import time
from typing import Any

from flows import prefect_env  # noqa: F401  (before prefect)
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE as NO_CACHE

from colorization import DEFAULT_VIVID

OUTPUT = {"format": "JPEG", "quality": 95, "subsampling": 0}
GRID_SIZE = 6


def colorization_params(render_size: int, vivid: float = DEFAULT_VIVID) -> dict[str, Any]:
    """What determines a result; its hash makes (source, model, parameters) unique."""
    return {"render_size": int(render_size), "vivid": float(vivid), "output": "jpeg-q95-444", "crop": "record"}


def encode(image) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, OUTPUT["format"], quality=OUTPUT["quality"], subsampling=OUTPUT["subsampling"])
    return buf.getvalue()


@task(name="colorize-batch", cache_policy=NO_CACHE)
def colorize_batch(engine, colorizer, *, collection: str, model_version_id: int, phash: str,
                   params: dict[str, Any], year_from: int | None, year_to: int | None, limit: int,
                   run_id: int, grid: list, candidates: list[str]) -> dict[str, Any]:
    """Claim up to ``limit`` photos, colorize them in engine batches, write the results; the rows
    all in the claim's transaction (blobs first: a result row never points at a missing file)."""
    from PIL import Image

    from catalog.assets import get_store, prepare_made_image, register_prepared
    from catalog.db import session_scope
    from catalog.work import claim_colorization_batch, record_colorizations

    store = get_store()
    t0 = time.perf_counter()
    engine_s = write_s = 0.0
    with session_scope(engine) as s:
        refs = claim_colorization_batch(s, collection, model_version_id, phash, year_from, year_to, limit,
                                        candidates=candidates)
        if not refs:
            return {"photos": 0}
        claim_s = time.perf_counter() - t0
        results = []
        for start in range(0, len(refs), colorizer.batch_size):
            part = refs[start:start + colorizer.batch_size]
            t1 = time.perf_counter()
            outputs = colorizer.colorize([store.path(r.sha256) for r in part], crop_boxes=[r.crop_box for r in part])
            t2 = time.perf_counter()
            for ref, out in zip(part, outputs):
                results.append((ref, prepare_made_image(store, out, encode(out), OUTPUT["format"])))
                if len(grid) < GRID_SIZE:
                    grid.append((Image.open(store.path(ref.sha256)), out))
            engine_s += t2 - t1
            write_s += time.perf_counter() - t2
        t3 = time.perf_counter()
        register_prepared(s, *(image for _, image in results))
        record_colorizations(s, [(ref, image.sha256) for ref, image in results], model_version_id=model_version_id,
                             phash=phash, params=params, run_id=run_id)
    write_s += time.perf_counter() - t3
    return {"photos": len(refs), "records": sum(len(r.record_ids) for r in refs), "claim_s": claim_s,
            "engine_s": engine_s, "write_s": write_s}


@flow(name="colorize", log_prints=True)
def colorize_flow(collection: str, years: str | None = None, model: str | None = None, limit: int | None = None,
                  batch_size: int = 8, render_size: int = 256, device: str = "auto",
                  claim_size: int | None = None, vivid: float = DEFAULT_VIVID) -> dict[str, Any]:
    """Colorize the greyscale originals of ``collection`` whose years overlap ``years`` (FROM-TO)
    that lack a result from ``model`` (default: the current version) with these parameters
    (``vivid``: 0 conservative .. 1 vivid, part of the parameters like the render size).

    A result of the current version becomes the one its records show; one of another version
    only where a record shows none yet (the others stay in the record's history).

    Each task claims ``claim_size`` photos (default 4 × ``batch_size``) and runs them through the
    engine ``batch_size`` at a time."""
    from colorization.infer import Colorizer

    from catalog.assets import get_store
    from catalog.db import open_catalog, session_scope
    from sqlalchemy import select

    from catalog.models import Collection
    from catalog.queries import parse_years
    from catalog.runs import finish_run, start_run
    from catalog.settings import get_settings
    from catalog.work import model_for_colorization, params_hash, pending_shas
    from colorization.chroma import check_vivid
    from flows.artifacts import before_after_grid, image_artifact, summary_table

    log = get_run_logger()
    year_from, year_to = parse_years(years) if years else (None, None)
    engine = open_catalog()
    params = colorization_params(render_size, check_vivid(vivid))
    phash = params_hash(params)
    with session_scope(engine) as s:
        mv = model_for_colorization(s, model)
        if mv is None:
            raise LookupError(f"no model version {model!r}" if model else "no model version yet: run `arhiva train`")
        cid = s.execute(select(Collection.id).where(Collection.name == collection)).scalar()
        if cid is None:
            raise LookupError(f"no collection named {collection!r}")
        candidates = pending_shas(s, collection, mv.id, phash, year_from, year_to)
        pending = len(candidates)
        run_id = start_run(s, "colorization", "prefect:colorize",
                           {"collection": collection, "years": years, "model": mv.name, "limit": limit,
                            "batch_size": batch_size, "claim_size": claim_size, "device": device,
                            "worker": f"{socket.gethostname()}:{os.getpid()}", "params": params},
                           collection_id=cid, model_version_id=mv.id)
        mv_id, mv_name, ckpt = mv.id, mv.name, get_store().path(mv.checkpoint_sha256)
    log.info("colorize %s (years %s) with %s: %d photo(s) pending", collection, years or "any", mv_name, pending)
    colorizer = Colorizer(ckpt, device=device, render_size=render_size, batch_size=batch_size, vivid=vivid)
    claim = max(1, claim_size or 4 * batch_size)
    totals = {"photos": 0, "records": 0, "batches": 0, "claim_s": 0.0, "engine_s": 0.0, "write_s": 0.0}
    grid: list = []
    started = time.perf_counter()
    status, error = "succeeded", None
    try:
        while limit is None or totals["photos"] < limit:
            n = claim if limit is None else min(claim, limit - totals["photos"])
            got = colorize_batch(engine, colorizer, collection=collection, model_version_id=mv_id, phash=phash,
                                 params=params, year_from=year_from, year_to=year_to, limit=n, run_id=run_id,
                                 grid=grid, candidates=candidates)
            if not got["photos"]:
                break
            totals["batches"] += 1
            for k in ("photos", "records", "claim_s", "engine_s", "write_s"):
                totals[k] += got[k]
            log.info("colorized %d / %d photo(s)", totals["photos"], pending if limit is None else min(pending, limit))
    except BaseException as exc:
        status, error = ("cancelled" if isinstance(exc, KeyboardInterrupt) else "failed"), repr(exc)
        raise
    finally:
        totals |= {"seconds": round(time.perf_counter() - started, 3), "pending_before": pending,
                   "model_version": mv_name, "run_id": run_id, "status": status}
        for k in ("claim_s", "engine_s", "write_s"):
            totals[k] = round(totals[k], 3)
        with session_scope(engine) as s:
            finish_run(s, "colorization", run_id, status, totals, error)
    summary_table(f"colorize-{run_id}", totals, f"Colorization run {run_id}: {collection}, {years or 'all years'}")
    path = before_after_grid(grid, get_settings().home / "artifacts" / f"colorize-{run_id}.png")
    if path:
        image_artifact(f"colorize-grid-{run_id}", path, f"Before / after, colorization run {run_id}")
        totals["grid"] = str(path)
    return totals


__all__ = ["colorize_flow", "colorization_params"]
