"""Catalogue side of training and colorization: what to work on, claims, results, lineage.

The flows call these; they are plain SQL over the catalogue (no torch here).
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

from sqlalchemy import and_, exists, func, not_, or_, select, text
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
    TrainingExample,
)


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
    return hashlib.sha256(json.dumps(params, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _collection_id(session: Session, name: str) -> int:
    cid = session.execute(select(Collection.id).where(Collection.name == name)).scalar()
    if cid is None:
        raise LookupError(f"no collection named {name!r}")
    return cid


def _originals(session: Session, collection_id: int):
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


def _group(rows) -> list[PhotoRef]:
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


def training_candidates(session: Session, collection: str, *, min_side: int = 64) -> list[PhotoRef]:
    """Colour originals of a collection that no model version has trained or validated on yet."""
    cid = _collection_id(session, collection)
    used = exists().where(TrainingExample.asset_sha256 == Asset.sha256)
    stmt = _originals(session, cid).where(Asset.is_colour.is_(True), not_(used),
                                          Asset.width >= min_side, Asset.height >= min_side)
    return sorted(_group(session.execute(stmt.order_by(Asset.sha256)).all()), key=lambda r: r.sha256)


def stable_split(refs: list[PhotoRef], val_fraction: float = 0.1) -> tuple[list[PhotoRef], list[PhotoRef]]:
    """Train/validation split by content hash: the same photo always lands on the same side."""
    if not refs:
        return [], []
    cut = int(val_fraction * 2**32)
    val = [r for r in refs if int(hashlib.sha256(("val:" + r.sha256).encode()).hexdigest()[:8], 16) < cut]
    train = [r for r in refs if r not in val]
    if not val and len(train) > 1:
        val = [train.pop()]
    return train, val


def latest_model(session: Session, name: str | None = None) -> ModelVersion | None:
    stmt = select(ModelVersion)
    stmt = stmt.where(ModelVersion.name == name) if name else stmt.order_by(ModelVersion.id.desc()).limit(1)
    return session.execute(stmt).scalar()


def current_model(session: Session) -> ModelVersion | None:
    """The current model version (scheduled and default colorization use it)."""
    return session.execute(select(ModelVersion).where(ModelVersion.is_current)).scalar()


def model_for_colorization(session: Session, name: str | None = None) -> ModelVersion | None:
    """The version asked for by name, else the current one (else, in a catalogue that has none, the newest)."""
    if name:
        return latest_model(session, name)
    return current_model(session) or latest_model(session)


def register_model_version(session: Session, *, name: str, checkpoint_sha256: str, architecture: str,
                           config: dict[str, Any], metrics: dict[str, Any], training_run_id: int | None,
                           parent_id: int | None, train: list[PhotoRef], val: list[PhotoRef]) -> ModelVersion:
    mv = ModelVersion(name=name, checkpoint_sha256=checkpoint_sha256, architecture=architecture, config=config,
                      metrics=metrics, training_run_id=training_run_id, parent_id=parent_id)
    session.add(mv)
    session.flush()
    rows = [{"model_version_id": mv.id, "asset_sha256": r.sha256, "record_id": r.record_ids[0], "split": split}
            for split, refs in (("train", train), ("val", val)) for r in refs]
    if rows:
        session.execute(pg_insert(TrainingExample).values(rows).on_conflict_do_nothing())
    return mv


def _finished(model_version_id: int, phash: str, retry_failed: bool = False):
    """A photo this model has colorized with these parameters, or (unless ``retry_failed``)
    could not colorize: a failure is recorded with its reason and skipped by later runs."""
    statuses = ("done",) if retry_failed else ("done", "failed")
    return exists().where(Colorization.source_sha256 == Asset.sha256,
                          Colorization.model_version_id == model_version_id,
                          Colorization.params_hash == phash, Colorization.status.in_(statuses))


def _pending(session: Session, collection_id: int, model_version_id: int, phash: str,
             year_from: int | None, year_to: int | None, retry_failed: bool = False):
    done = _finished(model_version_id, phash, retry_failed)
    stmt = _originals(session, collection_id).where(Asset.is_colour.is_(False), not_(done))
    if year_from is not None or year_to is not None:
        conds = [or_(Record.year_lo.is_not(None), Record.year_hi.is_not(None))]
        if year_to is not None:
            conds.append(or_(Record.year_lo.is_(None), Record.year_lo <= year_to))
        if year_from is not None:
            conds.append(or_(Record.year_hi.is_(None), Record.year_hi >= year_from))
        stmt = stmt.where(and_(*conds))
    return stmt


def pending_shas(session: Session, collection: str, model_version_id: int, phash: str,
                 year_from: int | None, year_to: int | None, retry_failed: bool = False) -> list[str]:
    """Every photo still to do, in order: a worker's candidate list (claims re-check each one)."""
    sub = _pending(session, _collection_id(session, collection), model_version_id, phash, year_from,
                   year_to, retry_failed).subquery()
    return list(session.execute(select(sub.c.sha256).distinct().order_by(sub.c.sha256)).scalars())


def claim_colorization_batch(session: Session, collection: str, model_version_id: int, phash: str,
                             year_from: int | None, year_to: int | None, limit: int,
                             candidates: list[str] | None = None, retry_failed: bool = False) -> list[PhotoRef]:
    """Lock up to ``limit`` greyscale originals that lack this result (SKIP LOCKED); hold the
    transaction open until their results are written.

    ``candidates`` (from ``pending_shas``, consumed from the front) makes each claim a few index
    lookups instead of a scan of the collection; without it the whole collection is searched.
    """
    cid = _collection_id(session, collection)
    # The claim's transaction is short SQL around long engine work: JIT compiling its joins
    # (their cost estimates cross jit_above_cost on big collections) only adds latency.
    session.execute(text("SET LOCAL jit = off"))
    done = _finished(model_version_id, phash, retry_failed)
    while True:
        if candidates is None:
            pending = _pending(session, cid, model_version_id, phash, year_from, year_to, retry_failed).subquery()
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
    stmt = _pending(session, cid, model_version_id, phash, year_from, year_to,
                    retry_failed).where(Asset.sha256.in_(locked))
    return sorted(_group(session.execute(stmt).all()), key=lambda r: r.sha256)


def record_colorizations(session: Session, results: list[tuple[PhotoRef, str]], *, model_version_id: int,
                         phash: str, params: dict[str, Any], run_id: int | None) -> None:
    """Write a batch of results (photo, result asset sha256) in two statements: the colorization
    rows and a `colorized` link on every record of each photo."""
    from catalog.assets import link_assets

    if not results:
        return
    stmt = pg_insert(Colorization).values([
        {"source_sha256": ref.sha256, "result_sha256": sha, "model_version_id": model_version_id,
         "params_hash": phash, "params": params, "run_id": run_id, "record_id": ref.record_ids[0], "status": "done"}
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


def set_current(session: Session, mv: ModelVersion, decision: str) -> int:
    """Make ``mv`` the current version, say why, and show its results where it has made some.

    Returns how many records now show one of its results (older results stay as history).
    """
    session.execute(text("UPDATE model_versions SET is_current = false WHERE is_current AND id <> :id"), {"id": mv.id})
    session.flush()
    mv.is_current = True
    mv.promoted_at = func.now()
    mv.decision = decision
    session.flush()
    rows = session.execute(text(
        "SELECT DISTINCT ON (ra.record_id) ra.record_id, ra.id FROM record_assets ra "
        "JOIN colorizations c ON c.result_sha256 = ra.asset_sha256 AND c.model_version_id = :mv AND c.status = 'done' "
        "WHERE ra.role = 'colorized' ORDER BY ra.record_id, c.id DESC"), {"mv": mv.id}).all()
    mark_shown(session, {rid: lid for rid, lid in rows}, replace=True)
    return len(rows)


# A candidate must lower the mean CIEDE2000 on the held-out photos and may not paint more false
# colour than the current version (beyond this tolerance, a share of the pixels).
FALSE_COLOUR_TOLERANCE = 0.002


def promotion_decision(candidate: dict[str, float], current: dict[str, float] | None,
                       current_name: str | None) -> tuple[bool, str]:
    """Whether a new version (held-out metrics ``candidate``) should replace the current one, and why."""
    if current is None:
        return True, "current: the first model version with held-out metrics" if current_name is None else (
            f"current: {current_name} has no metrics on these held-out photos")

    def nums(m):
        return f"CIEDE2000 {m['ciede2000']:.2f}, false colour {100 * m['false_colour']:.2f}%"

    if current.get("ciede2000") is None or current.get("false_colour") is None:
        return True, f"current: {current_name} has no metrics on these held-out photos"
    better = candidate["ciede2000"] < current["ciede2000"]
    clean = candidate["false_colour"] <= current["false_colour"] + FALSE_COLOUR_TOLERANCE
    versus = f"({nums(candidate)}) vs {current_name} ({nums(current)}) on the held-out photos"
    if better and clean:
        return True, f"current: beats {current_name} {versus}"
    why = "no lower CIEDE2000" if not better else "more false colour"
    return False, f"not promoted: {why} {versus}"


def record_colorization_failures(session: Session, failures: list[tuple[PhotoRef, str]], *, model_version_id: int,
                                 phash: str, params: dict[str, Any], run_id: int | None) -> None:
    """Photos this model could not colorize with these parameters (photo, reason): one row each,
    status 'failed' with the reason and no result; later runs skip them unless they retry failures.
    A photo that fails again keeps its row, with the latest run and reason."""
    if not failures:
        return
    stmt = pg_insert(Colorization).values([
        {"source_sha256": ref.sha256, "result_sha256": None, "model_version_id": model_version_id,
         "params_hash": phash, "params": params, "run_id": run_id, "record_id": ref.record_ids[0],
         "status": "failed", "error": reason[:2000]}
        for ref, reason in {ref.sha256: (ref, reason) for ref, reason in failures}.values()])
    session.execute(stmt.on_conflict_do_update(
        constraint="uq_colorizations_job", where=Colorization.status != "done",
        set_={"run_id": stmt.excluded.run_id, "status": "failed", "error": stmt.excluded.error}))


def provenance(session: Session, record_id: int) -> dict[str, Any]:
    """The chain behind a record and each of its colorized images, as plain data."""
    rows = session.execute(text(PROVENANCE_SQL), {"rid": record_id}).mappings().all()
    rec = session.get(Record, record_id)
    if rec is None:
        raise LookupError(f"no record with id {record_id}")
    revisions = session.execute(text(
        "SELECT revision, run_id, seen_at FROM record_revisions WHERE record_id = :rid ORDER BY revision"),
        {"rid": record_id}).mappings().all()
    originals = session.execute(text(
        "SELECT ra.asset_sha256, ra.source_url, ra.first_seen_run_id, ra.last_seen_run_id, ra.crop_box "
        "FROM record_assets ra WHERE ra.record_id = :rid AND ra.role = 'original' ORDER BY ra.id"),
        {"rid": record_id}).mappings().all()
    out: dict[str, Any] = {
        "record": {"id": rec.id, "source": rec.source.slug, "source_key": rec.source_key, "title": rec.title,
                   "first_seen_run_id": rec.first_seen_run_id, "last_seen_run_id": rec.last_seen_run_id},
        "revisions": [dict(r) for r in revisions],
        "originals": [dict(o) for o in originals],
        "colorizations": [],
    }
    for row in rows:
        mv_id = row["model_version_id"]
        examples = session.execute(text(TRAINING_SQL), {"mv": mv_id}).mappings().all()
        out["colorizations"].append(dict(row) | {"training_examples": [dict(e) for e in examples]})
    return out


PROVENANCE_SQL = """
SELECT c.result_sha256, c.source_sha256, c.params, c.run_id AS colorization_run_id, cr.started_at AS colorized_at,
       c.model_version_id, mv.name AS model_version, mv.architecture, mv.parent_id AS parent_model_version_id,
       mv.checkpoint_sha256, mv.training_run_id, tr.started_at AS trained_at, tr.code_version AS training_code_version
FROM record_assets ra
JOIN colorizations c ON c.result_sha256 = ra.asset_sha256
JOIN model_versions mv ON mv.id = c.model_version_id
LEFT JOIN colorization_runs cr ON cr.id = c.run_id
LEFT JOIN training_runs tr ON tr.id = mv.training_run_id
WHERE ra.record_id = :rid AND ra.role = 'colorized'
ORDER BY c.id
"""

TRAINING_SQL = """
SELECT te.asset_sha256, te.split, te.record_id, r.source_key, s.slug AS source,
       r.first_seen_run_id AS record_first_crawl_run_id,
       (SELECT min(ra.first_seen_run_id) FROM record_assets ra
         WHERE ra.record_id = te.record_id AND ra.asset_sha256 = te.asset_sha256) AS asset_first_crawl_run_id
FROM training_examples te
LEFT JOIN records r ON r.id = te.record_id
LEFT JOIN sources s ON s.id = r.source_id
WHERE te.model_version_id = :mv
ORDER BY te.split, te.asset_sha256
"""
