"""The ``colorize`` flow: greyscale originals of a collection, by year range, through a model.

Work is claimed in the catalogue batch by batch (``FOR UPDATE SKIP LOCKED`` on
the source assets, inside the transaction that writes the results), so
several workers can share a collection, nothing is done twice, and a run
killed midway leaves no half-written file or row. A run that finds nothing left
to claim while other runs still hold photos waits for them: if one of them dies,
its claim rolls back and the runs still alive finish its photos.

The ``colorize_batch`` task takes data and returns data: a ``BatchJob`` (which photos to claim,
with which model version and parameters) in, a ``BatchResult`` (counts, timings, failures and a
few small before/after copies for the grid) out. It opens the catalogue and loads the model the
job names itself (``load_colorizer``: loaded once per process and kept for the next batches).
Progress is stored on the run's row as the flow goes (``arhiva colorize`` shows it from there).
"""
from __future__ import annotations

import io
import os
import socket
import time
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE as NO_CACHE

from colorization import DEFAULT_VIVID

OUTPUT = {"format": "JPEG", "quality": 95, "subsampling": 0}
CLAIM_WAIT_S = 2.0  # a run out of claimable photos looks again this often while others still hold some
GRID_SIZE = 6


def colorization_params(render_size: int, vivid: float = DEFAULT_VIVID) -> dict[str, Any]:
    """What determines a result; its hash makes (source, model, parameters) unique."""
    return {"render_size": int(render_size), "vivid": float(vivid), "output": "jpeg-q95-444", "crop": "record"}


def photo_sources(store, shas: list[str]) -> list:
    """What the colorizer reads: each photo's bytes, checked against the hash the catalogue knows
    it by (a file replaced in the store since, by another valid image, would otherwise be colorized
    and recorded as the record's photo), opened from memory; fetched 8 at a time where the store
    is remote (each photo is read once: no cache copy)."""
    from catalog.blobs import BlobCorrupt, BlobMissing, LocalBlobStore, sha256_bytes

    def checked(sha: str) -> bytes:
        if not isinstance(store, LocalBlobStore):
            return store.read(sha)  # a remote store's read checks the hash itself
        try:
            data = store.path(sha).read_bytes()
        except FileNotFoundError:
            raise BlobMissing(f"the stored image file of photo {sha[:12]}… is missing ({store.path(sha)}; "
                              "arhiva blobs verify lists such files)") from None
        if sha256_bytes(data) != sha:
            raise BlobCorrupt(f"the stored file of photo {sha[:12]}… no longer matches its hash (it changed since "
                              "it was catalogued; arhiva blobs verify lists such files)")
        return data

    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    from catalog.imaging import ImageRejected, bomb_pixels, over_pixel_limit

    def opened(data: bytes):
        """Opened lazily, under the pixel limit as set now (it may have been lowered since the
        photo was catalogued): one over it fails as that photo's, in arhiva's words."""
        limit = Image.MAX_IMAGE_PIXELS  # the flow set it (catalog.imaging.use_pixel_limit)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # told below
                image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            raise ImageRejected(over_pixel_limit(limit, pixels=bomb_pixels(exc))) from None
        if limit and image.width * image.height > limit:
            raise ImageRejected(over_pixel_limit(limit, size=image.size))
        return image

    with ThreadPoolExecutor(min(8, max(1, len(shas)))) as pool:
        return [opened(data) for data in pool.map(checked, shas)]


def encode(image) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, OUTPUT["format"], quality=OUTPUT["quality"], subsampling=OUTPUT["subsampling"])
    return buf.getvalue()


def _small(image, side: int = 384):
    from catalog.imaging import shrink

    image.draft("RGB", (side, side))  # a JPEG decodes at a reduced scale
    return shrink(image, side).convert("RGB")


def _photo_errors() -> tuple[type[BaseException], ...]:
    """What one unreadable photo raises (colorization.imageio.photo_errors, and a blob missing from
    the store); anything else (the model, the device, the database) stops the run."""
    from colorization.imageio import photo_errors

    return (*photo_errors(), LookupError)


def _out_of_memory(exc: BaseException) -> bool:
    """torch could not allocate for this batch (CPU or GPU): a batch is tried again photo by
    photo, and a photo that alone does not fit is that photo's failure, not the run's."""
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and ("can't allocate memory" in str(exc) or "out of memory" in str(exc)))


def _colorize(colorizer, store, part) -> tuple[list, list[tuple[Any, str]]]:
    """(photo, source, output) for each photo of ``part`` the model colorized, and (photo, reason)
    for each it could not read (or that alone does not fit in memory): a batch that fails is
    tried again photo by photo."""
    errors = _photo_errors()
    try:
        sources = photo_sources(store, [r.sha256 for r in part])
        outputs = colorizer.colorize(sources, crop_boxes=[r.crop_box for r in part])
        return list(zip(part, sources, outputs)), []
    except (*errors, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and not _out_of_memory(exc):
            raise
    done, failed = [], []
    for ref in part:
        try:
            (source,) = photo_sources(store, [ref.sha256])
            done += zip([ref], [source], colorizer.colorize([source], crop_boxes=[ref.crop_box]))
        except (*errors, RuntimeError) as exc:
            if isinstance(exc, RuntimeError) and not _out_of_memory(exc):
                raise
            failed.append((ref, _reason(exc)))
    return done, failed


def _reason(exc: BaseException) -> str:
    """Why a photo was not colorized, in one line: the blob store's and the pixel limit's own
    messages say it in words, anything else is named by its kind."""
    from catalog.blobs import BlobCorrupt, BlobMissing
    from catalog.imaging import ImageRejected

    text = " ".join(str(exc).split())
    worded = isinstance(exc, (BlobCorrupt, BlobMissing, ImageRejected))
    return (text if worded else f"{type(exc).__name__}: {text}")[:300]


# The largest sizes a run takes (flows.cli.flow_cmds gives its options the same bounds)
SIZE_BOUNDS = {"limit": 1_000_000_000, "batch_size": 1024, "claim_size": 10_000, "render_size": 4096}
SIZE_LEAST = {"limit": 1, "batch_size": 1, "claim_size": 1, "render_size": 32}


def check_sizes(**sizes: int | None) -> None:
    """Refuse, before any run is stored, a size out of bounds (a claim of 10^20 photos reached SQL's
    LIMIT as a crash of several kilobytes)."""
    for name, value in sizes.items():
        if value is not None and not SIZE_LEAST[name] <= value <= SIZE_BOUNDS[name]:
            raise ValueError(f"{name} {value}: must be from {SIZE_LEAST[name]} to {SIZE_BOUNDS[name]:,}")


@dataclass(frozen=True)
class ModelSpec:
    """Which model to load, and how it runs (what ``Colorizer`` is made from)."""

    checkpoint: Path
    device: str = "auto"
    render_size: int = 256
    batch_size: int = 8
    vivid: float = DEFAULT_VIVID


@lru_cache(maxsize=1)
def load_colorizer(spec: ModelSpec):
    """The model of ``spec``, loaded once: the batches of a run (and the next run with the same
    model) reuse it. A ``Colorizer`` holds no state between calls, so threads may share it."""
    from colorization.infer import Colorizer

    return Colorizer(spec.checkpoint, device=spec.device, render_size=spec.render_size, batch_size=spec.batch_size,
                     vivid=spec.vivid)


@dataclass(frozen=True)
class BatchJob:
    """One task's work: claim up to ``limit`` photos of ``collection`` (among ``candidates``) that
    lack a result of this model version with these parameters, colorize and record them."""

    model: ModelSpec
    collection: str
    model_version_id: int
    params: dict[str, Any]
    params_hash: str
    year_from: int | None
    year_to: int | None
    limit: int
    run_id: int
    candidates: tuple[str, ...]
    retry_failed: bool = False
    samples: int = 0  # how many small before/after copies to send back for the grid


@dataclass
class BatchResult:
    """What a task did: ``photos`` claimed (0: none was left to claim), their ``records``, the
    ``failed`` ones with why (also recorded as rows), timings, and small before/after ``samples``."""

    photos: int = 0
    claimed: list[str] = field(default_factory=list)
    records: int = 0
    failed: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    claim_s: float = 0.0
    engine_s: float = 0.0
    write_s: float = 0.0
    samples: list[tuple[Any, Any]] = field(default_factory=list)


@task(name="colorize-batch", cache_policy=NO_CACHE)
def colorize_batch(job: BatchJob) -> BatchResult:
    """Claim up to ``job.limit`` photos, colorize them in model batches, write the results; the rows
    all in the claim's transaction (blobs first: a result row never points at a missing file).
    A photo that cannot be read is recorded as failed, with the reason, and the others go on."""
    from PIL import Image

    from catalog.assets import get_store, prepare_made_image, register_prepared
    from catalog.claims import claim_colorization_batch, record_colorization_failures, record_colorizations
    from catalog.db import get_engine, session_scope

    store = get_store()
    colorizer = load_colorizer(job.model)
    t0 = time.perf_counter()
    done_by = BatchResult()
    with session_scope(get_engine(check=False)) as s:
        refs = claim_colorization_batch(s, job.collection, job.model_version_id, job.params_hash, job.year_from,
                                        job.year_to, job.limit, candidates=list(job.candidates),
                                        retry_failed=job.retry_failed)
        if not refs:
            return done_by
        done_by.claim_s = time.perf_counter() - t0
        results, failures = [], []
        for start in range(0, len(refs), colorizer.batch_size):
            part = refs[start:start + colorizer.batch_size]
            t1 = time.perf_counter()
            done, failed = _colorize(colorizer, store, part)
            failures += failed
            t2 = time.perf_counter()
            for ref, src, out in done:
                results.append((ref, prepare_made_image(store, out, encode(out), OUTPUT["format"])))
                if len(done_by.samples) < job.samples:  # small copies: the grid never holds full-size photos
                    done_by.samples.append((_small(src if isinstance(src, Image.Image) else Image.open(src)),
                                            _small(out)))
            done_by.engine_s += t2 - t1
            done_by.write_s += time.perf_counter() - t2
        t3 = time.perf_counter()
        register_prepared(s, *(image for _, image in results))
        record_colorizations(s, [(ref, image.sha256) for ref, image in results],
                             model_version_id=job.model_version_id, params_hash=job.params_hash, params=job.params,
                             run_id=job.run_id)
        record_colorization_failures(s, failures, model_version_id=job.model_version_id, params_hash=job.params_hash,
                                     params=job.params, run_id=job.run_id)
    done_by.write_s += time.perf_counter() - t3
    done_by.photos = len(refs)
    done_by.claimed = [r.sha256 for r in refs]
    done_by.records = sum(len(r.record_ids) for r, _ in results)
    done_by.failed = len(failures)
    done_by.failures = [{"sha256": r.sha256, "records": r.record_ids, "error": why} for r, why in failures]
    return done_by


@flow(name="colorize", log_prints=True)
def colorize_flow(collection: str, years: str | None = None, model: str | None = None, limit: int | None = None,
                  batch_size: int = 8, render_size: int = 256, device: str = "auto",
                  claim_size: int | None = None, retry_failed: bool = False,
                  vivid: float = DEFAULT_VIVID) -> dict[str, Any]:
    """Colorize the greyscale originals of ``collection`` whose years overlap ``years`` (FROM-TO)
    that lack a result from ``model`` (default: the current version) with these parameters
    (``vivid``: 0 conservative .. 1 vivid, part of the parameters like the render size).
    Photos recorded as failed by an earlier run are skipped unless ``retry_failed``.

    A result of the current version becomes the one its records show; one of another version
    only where a record shows none yet (the others stay in the record's history).

    Each task claims ``claim_size`` photos (default 4 × ``batch_size``) and runs them through the
    model ``batch_size`` at a time."""
    from catalog.assets import get_store
    from catalog.claims import collection_id_of, pending_shas
    from catalog.claims import params_hash as hash_of
    from catalog.db import open_catalog, session_scope
    from catalog.imaging import use_pixel_limit
    from catalog.model_versions import model_for_colorization
    from catalog.names import collection_name
    from catalog.queries import parse_years
    from catalog.runs import activity
    from catalog.settings import get_settings
    from colorization.chroma import check_vivid
    from colorization.config import device_problem
    from flows.artifacts import before_after_grid, image_artifact, summary_table
    from flows.outcome import nothing_to_do
    from flows.train import checkpoint_path

    check_sizes(limit=limit, batch_size=batch_size, render_size=render_size, claim_size=claim_size)
    if device_problem(device):
        raise ValueError(device_problem(device))
    log = get_run_logger()
    collection = collection_name(collection)  # as stored (NFC): the run's parameters spell it as the catalogue does
    use_pixel_limit(get_settings().max_image_pixels)  # photos open under the one pixel limit
    year_from, year_to = parse_years(years) if years else (None, None)
    engine = open_catalog()
    params = colorization_params(render_size, check_vivid(vivid))
    params_hash = hash_of(params)
    with session_scope(engine) as s:
        mv = model_for_colorization(s, model)
        if mv is None and model:
            raise LookupError(f"no model version {model!r}")
        cid = collection_id_of(s, collection)  # LookupError naming it when there is none
        candidates = pending_shas(s, collection, mv.id, params_hash, year_from, year_to, retry_failed) if mv else []
        pending = len(candidates)
        mv_id, mv_name = (mv.id, mv.name) if mv else (None, None)
        ckpt = checkpoint_path(get_store(), mv) if mv else None  # remote: fetched once
    parameters = {"collection": collection, "years": years, "model": mv_name, "limit": limit,
                  "batch_size": batch_size, "claim_size": claim_size, "device": device, "retry_failed": retry_failed, "vivid": vivid,
                  "worker": f"{socket.gethostname()}:{os.getpid()}", "params": params}
    totals = {"photos": 0, "failed": 0, "records": 0, "batches": 0, "claim_s": 0.0, "engine_s": 0.0,
              "write_s": 0.0, "failures": [], "pending_before": pending, "model_version": mv_name}
    started = time.perf_counter()

    def final() -> dict[str, Any]:
        totals["seconds"] = round(time.perf_counter() - started, 3)
        for k in ("claim_s", "engine_s", "write_s"):
            totals[k] = round(totals[k], 3)
        return totals

    grid: list = []
    with activity("colorization", "prefect:colorize", parameters, engine=engine, stats=final,
                  collection_id=cid, model_version_id=mv_id) as run:
        run_id = totals["run_id"] = run.id
        if mv is None or not pending:
            reason = ("no model version yet: run `arhiva train` first" if mv is None else
                      f"every greyscale photo of {collection!r}{f' in {years}' if years else ''} already has a "
                      f"result from {mv_name} with these parameters"
                      + ("" if retry_failed else " (or failed: --retry-failed tries those again)"))
            run.end("skipped", reason)
            return nothing_to_do(reason, final())
        log.info("colorize %s (years %s) with %s: %d photo(s) pending", collection, years or "any", mv_name,
                 pending)
        spec = ModelSpec(Path(ckpt), device=device, render_size=render_size, batch_size=batch_size, vivid=vivid)
        load_colorizer(spec)  # a checkpoint or device that does not work stops the run before any claim
        claim = claim_size or 4 * batch_size
        run.stats = {"progress": {"photos": 0, "pending_before": pending, "model_version": mv_name}}
        run.save_stats()
        tried: set[str] = set()  # photos this run claimed (a photo failing again is not retried in a loop)
        waiting = False
        while limit is None or totals["photos"] < limit:
            n = claim if limit is None else min(claim, limit - totals["photos"])
            got = colorize_batch(BatchJob(spec, collection, mv_id, params, params_hash, year_from, year_to, n, run_id,
                                          tuple(candidates), retry_failed, samples=GRID_SIZE - len(grid)))
            grid += got.samples
            if not got.photos:
                # What is still without a result is being done by other runs, or was let go by one that
                # died (its claim rolled back): wait for those, and take what comes free.
                with session_scope(engine) as s:
                    candidates = [c for c in pending_shas(s, collection, mv_id, params_hash, year_from, year_to,
                                                          retry_failed) if c not in tried]
                if not candidates:
                    break
                if not waiting:
                    log.info("%d photo(s) claimed by other runs: waiting until they are done or let go",
                             len(candidates))
                waiting = True
                time.sleep(CLAIM_WAIT_S)
                continue
            waiting = False
            tried.update(got.claimed)
            totals["batches"] += 1
            for k in ("photos", "failed", "records", "claim_s", "engine_s", "write_s"):
                totals[k] += getattr(got, k)
            totals["failures"] = (totals["failures"] + got.failures)[:100]  # all are rows of their own
            for f in got.failures:
                log.warning("photo %s (records %s) not colorized: %s", f["sha256"], f["records"], f["error"])
            log.info("colorized %d / %d photo(s)", totals["photos"], pending if limit is None else min(pending, limit))
            run.stats = {"progress": {k: v for k, v in totals.items() if k != "failures"}}
            run.save_stats()
        if totals["failed"]:
            run.end("partial", f"{totals['failed']} photo(s) could not be colorized (their reasons are recorded)")
    totals["status"] = "partial" if totals["failed"] else "succeeded"
    summary_table(f"colorize-{run_id}", totals, f"Colorization run {run_id}: {collection}, {years or 'all years'}")
    path = before_after_grid(grid, get_settings().home / "artifacts" / f"colorize-{run_id}.png")
    if path:
        totals["grid_sha256"] = get_store().put_file(path)  # an artifact is a blob too: any machine can fetch it
        image_artifact(f"colorize-grid-{run_id}", path, f"Before / after, colorization run {run_id}",
                       blob=totals["grid_sha256"])
        totals["grid"] = str(path)
    return totals


__all__ = ["colorize_flow", "colorization_params"]
