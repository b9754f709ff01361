"""Colorization work in the catalogue: what is pending, claims, results written back.

The colorize flow calls these; they are plain SQL over the catalogue (no torch here).
A photo is a ``PhotoRef`` (also what training selects: ``catalog.model_versions``); the
parameters of a run are keyed by ``params_hash`` (a sha256 of their canonical JSON, the
``colorizations.params_hash`` column; not the perceptual hash ``assets.phash``).
Colorization work is claimed by locking the source assets' rows
``FOR UPDATE SKIP LOCKED`` inside the transaction that also writes the
results: two workers never take the same photo, and a worker that dies
leaves nothing behind but its lock, released with its connection. A photo
that cannot be colorized is recorded as failed (with the reason) for that
model and parameters, and skipped by later runs unless they retry failures.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, exists, not_, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from catalog.models import (
    Asset,
    Collection,
    CollectionMember,
    Colorization,
    ModelVersion,
    Record,
    RecordAsset,
)
from catalog.names import collection_name


@dataclass
class PhotoRef:
    """One photo to work on: its asset, blob path, crop box and the records showing it."""

    sha256: str
    blob_key: str
    width: int | None
    height: int | None
    crop_box: list[int] | None
    record_ids: list[int] = field(default_factory=list)


def params_hash(params: dict[str, Any]) -> str:
    """The key of a run's parameters: sha256 of their canonical JSON (sorted keys, compact)."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def collection_id_of(session: Session, name: str) -> int:
    """The id of the collection ``name`` (in any Unicode form: names are kept in NFC); LookupError
    naming it when there is none."""
    cid = session.execute(select(Collection.id).where(Collection.name == collection_name(name))).scalar()
    if cid is None:
        raise LookupError(f"no collection named {name!r}")
    return cid


def original_photos(session: Session, collection_id: int):
    """(crop box, asset sha256, blob key, width, height, record id) of active records' originals in a
    collection; only the columns the work needs (no payloads, no search vectors)."""
    return (
        select(RecordAsset.crop_box, Asset.sha256, Asset.blob_key, Asset.width, Asset.height,
               Record.id.label("record_id"))
        .join(Asset, Asset.sha256 == RecordAsset.asset_sha256)
        .join(Record, Record.id == RecordAsset.record_id)
        .join(CollectionMember, and_(CollectionMember.record_id == Record.id,
                                     CollectionMember.collection_id == collection_id))
        .where(RecordAsset.role == "original", Record.status == "active", Asset.width.is_not(None))
    )


def photo_refs(rows) -> list[PhotoRef]:
    refs: dict[str, PhotoRef] = {}
    for crop_box, sha, blob_key, width, height, record_id in rows:
        ref = refs.get(sha)
        if ref is None:
            ref = refs[sha] = PhotoRef(sha, blob_key, width, height, crop_box)
        if record_id not in ref.record_ids:
            ref.record_ids.append(record_id)
        if ref.crop_box is None and crop_box:
            ref.crop_box = crop_box
    return list(refs.values())


def _finished(model_version_id: int, params_hash: str, retry_failed: bool = False):
    """A photo this model has colorized with these parameters, or (unless ``retry_failed``)
    could not colorize: a failure is recorded with its reason and skipped by later runs."""
    statuses = ("done",) if retry_failed else ("done", "failed")
    return exists().where(Colorization.source_sha256 == Asset.sha256,
                          Colorization.model_version_id == model_version_id,
                          Colorization.params_hash == params_hash, Colorization.status.in_(statuses))


def _pending(session: Session, collection_id: int, model_version_id: int, params_hash: str,
             year_from: int | None, year_to: int | None, retry_failed: bool = False):
    done = _finished(model_version_id, params_hash, retry_failed)
    stmt = original_photos(session, collection_id).where(Asset.is_colour.is_(False), not_(done))
    if year_from is not None or year_to is not None:
        conds = [or_(Record.year_lo.is_not(None), Record.year_hi.is_not(None))]
        if year_to is not None:
            conds.append(or_(Record.year_lo.is_(None), Record.year_lo <= year_to))
        if year_from is not None:
            conds.append(or_(Record.year_hi.is_(None), Record.year_hi >= year_from))
        stmt = stmt.where(and_(*conds))
    return stmt


def pending_shas(session: Session, collection: str, model_version_id: int, params_hash: str,
                 year_from: int | None, year_to: int | None, retry_failed: bool = False) -> list[str]:
    """Every photo still to do, in order: a worker's candidate list (claims re-check each one)."""
    sub = _pending(session, collection_id_of(session, collection), model_version_id, params_hash, year_from,
                   year_to, retry_failed).subquery()
    return list(session.execute(select(sub.c.sha256).distinct().order_by(sub.c.sha256)).scalars())


def claim_colorization_batch(session: Session, collection: str, model_version_id: int, params_hash: str,
                             year_from: int | None, year_to: int | None, limit: int,
                             candidates: list[str] | None = None, retry_failed: bool = False) -> list[PhotoRef]:
    """Lock up to ``limit`` greyscale originals that lack this result (SKIP LOCKED); hold the
    transaction open until their results are written.

    ``candidates`` (from ``pending_shas``, consumed from the front) makes each claim a few index
    lookups instead of a scan of the collection; without it the whole collection is searched.
    """
    cid = collection_id_of(session, collection)
    # The claim's transaction is short SQL around long engine work: JIT compiling its joins
    # (their cost estimates cross jit_above_cost on big collections) only adds latency.
    session.execute(text("SET LOCAL jit = off"))
    done = _finished(model_version_id, params_hash, retry_failed)
    while True:
        if candidates is None:
            pending = _pending(session, cid, model_version_id, params_hash, year_from, year_to, retry_failed).subquery()
            pool = select(pending.c.sha256)
        elif candidates:
            window = candidates[: max(4 * limit, 64)]
            pool = window
        else:
            return []
        locked = list(session.execute(
            select(Asset.sha256).where(Asset.sha256.in_(pool), not_(done))
            .order_by(Asset.sha256).limit(limit).with_for_update(skip_locked=True)
        ).scalars())
        if candidates is not None:
            # locked ones are ours now; a window with nothing left to lock is done or taken by others
            gone = set(locked) if locked else set(window)
            candidates[:] = [c for c in candidates if c not in gone]
        if locked or candidates is None:
            break
    if not locked:
        return []
    stmt = _pending(session, cid, model_version_id, params_hash, year_from, year_to,
                    retry_failed).where(Asset.sha256.in_(locked))
    return sorted(photo_refs(session.execute(stmt).all()), key=lambda r: r.sha256)


def record_colorizations(session: Session, results: list[tuple[PhotoRef, str]], *, model_version_id: int,
                         params_hash: str, params: dict[str, Any], run_id: int | None) -> None:
    """Write a batch of results (photo, result asset sha256) in two statements: the colorization
    rows and a `colorized` link on every record of each photo."""
    from catalog.assets import link_assets

    if not results:
        return
    stmt = pg_insert(Colorization).values([
        {"source_sha256": ref.sha256, "result_sha256": sha, "model_version_id": model_version_id,
         "params_hash": params_hash, "params": params, "run_id": run_id, "record_id": ref.record_ids[0], "status": "done"}
        for ref, sha in results])
    session.execute(stmt.on_conflict_do_update(
        constraint="uq_colorizations_job",
        set_={"result_sha256": stmt.excluded.result_sha256, "run_id": stmt.excluded.run_id, "status": "done",
              "error": None}))
    links = [{"record_id": rid, "asset_sha256": sha, "role": "colorized"} for ref, sha in results for rid in ref.record_ids]
    ids = link_assets(session, links)
    is_current = bool(session.execute(select(ModelVersion.is_current)
                                      .where(ModelVersion.id == model_version_id)).scalar())
    mark_shown(session, dict(zip((ln["record_id"] for ln in links), ids)), replace=is_current)


def mark_shown(session: Session, links: dict[int, int], *, replace: bool) -> None:
    """Make these colorized links (record id -> link id) the ones their records show.

    ``replace``: always (a result of the current version); else only for records that show none yet.
    """
    if not links:
        return
    ids = list(links.values())
    if replace:
        session.execute(text("UPDATE record_assets SET shown = false WHERE shown AND record_id = ANY(:rids) "
                             "AND id <> ALL(:ids)"), {"rids": list(links), "ids": ids})
        session.execute(text("UPDATE record_assets SET shown = true WHERE id = ANY(:ids) AND NOT shown"), {"ids": ids})
    else:
        session.execute(text(
            "UPDATE record_assets ra SET shown = true WHERE ra.id = ANY(:ids) AND NOT EXISTS "
            "(SELECT 1 FROM record_assets o WHERE o.record_id = ra.record_id AND o.shown)"), {"ids": ids})


def record_colorization_failures(session: Session, failures: list[tuple[PhotoRef, str]], *, model_version_id: int,
                                 params_hash: str, params: dict[str, Any], run_id: int | None) -> None:
    """Photos this model could not colorize with these parameters (photo, reason): one row each,
    status 'failed' with the reason and no result; later runs skip them unless they retry failures.
    A photo that fails again keeps its row, with the latest run and reason."""
    if not failures:
        return
    stmt = pg_insert(Colorization).values([
        {"source_sha256": ref.sha256, "result_sha256": None, "model_version_id": model_version_id,
         "params_hash": params_hash, "params": params, "run_id": run_id, "record_id": ref.record_ids[0],
         "status": "failed", "error": reason[:2000]}
        for ref, reason in {ref.sha256: (ref, reason) for ref, reason in failures}.values()])
    session.execute(stmt.on_conflict_do_update(
        constraint="uq_colorizations_job", where=Colorization.status != "done",
        set_={"run_id": stmt.excluded.run_id, "status": "failed", "error": stmt.excluded.error}))
