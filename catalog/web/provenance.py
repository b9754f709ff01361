"""Where a record came from: revisions with what changed, colorizations, a timeline.

Plain dicts shaped like the API's models (``schemas``), shared by the JSON
API and the record page.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from catalog.models import (
    Collection,
    CollectionMember,
    Colorization,
    ColorizationRun,
    CrawlRun,
    ModelVersion,
    Record,
    RecordRevision,
    TrainingRun,
)

RUN_MODELS = {"crawl": CrawlRun, "training": TrainingRun, "colorization": ColorizationRun}


def run_ref(kind: str, run: Any) -> dict[str, Any] | None:
    if run is None:
        return None
    return {"kind": kind, "id": run.id, "agent": run.agent, "code_version": run.code_version,
            "status": run.status, "started_at": run.started_at, "ended_at": run.ended_at}


def run_out(kind: str, run: Any) -> dict[str, Any]:
    out = run_ref(kind, run) | {"parameters": run.parameters or {}, "stats": run.stats or {}, "error": run.error}
    if kind == "crawl":
        out["source"] = run.source.slug if run.source else None
    else:
        out["collection_id"] = run.collection_id
    if kind == "colorization":
        out["model_version_id"] = run.model_version_id
    return out


def model_ref(mv: ModelVersion | None) -> dict[str, Any] | None:
    return None if mv is None else {"id": mv.id, "name": mv.name, "architecture": mv.architecture}


def revisions(session: Session, record_id: int) -> list[dict[str, Any]]:
    rows = session.execute(select(RecordRevision).where(RecordRevision.record_id == record_id)
                           .order_by(RecordRevision.revision)).scalars().all()
    out, before = [], None
    for rev in rows:
        fields = rev.fields or {}
        changes = []
        if before is not None:
            old = before.fields or {}
            for name in sorted(set(old) | set(fields)):
                if old.get(name) != fields.get(name):
                    changes.append({"field": name, "before": old.get(name), "after": fields.get(name)})
        out.append({"revision": rev.revision, "seen_at": rev.seen_at, "run_id": rev.run_id,
                    "payload_hash": rev.payload_hash, "changes": changes,
                    "raw_changed": before is not None and (before.raw or {}) != (rev.raw or {})})
        before = rev
    return out


def colorizations(session: Session, rec: Record) -> list[dict[str, Any]]:
    """Colorizations whose result is one of the record's assets (or that name the record)."""
    results = [ra.asset_sha256 for ra in rec.assets if ra.role == "colorized"]
    cond = Colorization.record_id == rec.id
    if results:
        cond = or_(cond, Colorization.result_sha256.in_(results))
    rows = session.execute(select(Colorization).where(cond).order_by(Colorization.created_at, Colorization.id)
                           ).scalars().all()
    return colorization_dicts(session, rows)


def produced_by(session: Session, result_sha256: str) -> dict[str, Any] | None:
    """The colorization whose result is this asset, if any."""
    rows = session.execute(select(Colorization).where(Colorization.result_sha256 == result_sha256)
                           .order_by(Colorization.id).limit(1)).scalars().all()
    return (colorization_dicts(session, rows) or [None])[0]


def colorization_dicts(session: Session, rows: list[Colorization]) -> list[dict[str, Any]]:
    mv_ids = {c.model_version_id for c in rows}
    run_ids = {c.run_id for c in rows if c.run_id}
    mvs = {m.id: m for m in session.execute(select(ModelVersion).where(ModelVersion.id.in_(mv_ids))).scalars()} \
        if mv_ids else {}
    runs = {r.id: r for r in session.execute(select(ColorizationRun).where(ColorizationRun.id.in_(run_ids))
                                             ).scalars()} if run_ids else {}
    return [{"id": c.id, "source_sha256": c.source_sha256, "result_sha256": c.result_sha256, "status": c.status,
             "params": c.params or {}, "created_at": c.created_at,
             "model_version": model_ref(mvs.get(c.model_version_id)),
             "run": run_ref("colorization", runs.get(c.run_id))} for c in rows]


def collections_of(session: Session, record_id: int) -> list[str]:
    return list(session.execute(
        select(Collection.name).join(CollectionMember, CollectionMember.collection_id == Collection.id)
        .where(CollectionMember.record_id == record_id).order_by(Collection.name)).scalars())


def _crawl_runs(session: Session, ids: set[int]) -> dict[int, CrawlRun]:
    ids.discard(None)
    if not ids:
        return {}
    return {r.id: r for r in session.execute(select(CrawlRun).where(CrawlRun.id.in_(ids))).scalars()}


def timeline(session: Session, rec: Record, revs: list[dict[str, Any]], cols: list[dict[str, Any]]
             ) -> list[dict[str, Any]]:
    """Every event in the record's life, oldest first."""
    runs = _crawl_runs(session, {r["run_id"] for r in revs} | {rec.last_seen_run_id}
                       | {ra.first_seen_run_id for ra in rec.assets})
    events: list[dict[str, Any]] = []
    for r in revs:
        run = run_ref("crawl", runs.get(r["run_id"]))
        if r["revision"] == 1:
            summary = f"Harvested from {rec.source.slug} (revision 1)"
            events.append({"at": r["seen_at"], "kind": "harvested", "summary": summary, "run": run})
            continue
        names = ", ".join(c["field"] for c in r["changes"])
        what = f"changed: {names}" if names else "the source payload changed, mapped fields did not"
        events.append({"at": r["seen_at"], "kind": "revised", "summary": f"Revision {r['revision']}: {what}",
                       "run": run})
    for ra in rec.assets:
        if ra.role == "colorized":
            continue  # told by its colorization below
        events.append({"at": ra.created_at, "kind": "asset",
                       "summary": f"{ra.role.capitalize()} image {ra.asset_sha256[:12]}… stored"
                                  + (f" from {ra.source_url}" if ra.source_url else ""),
                       "run": run_ref("crawl", runs.get(ra.first_seen_run_id))})
    for c in cols:
        mv = c["model_version"]
        model = f"model {mv['name']} ({mv['architecture']})" if mv else "an unknown model"
        state = "Colorized" if c["status"] == "done" else f"Colorization {c['status']}"
        events.append({"at": c["created_at"], "kind": "colorized", "summary": f"{state} by {model}", "run": c["run"]})
    if rec.last_seen_at and revs and rec.last_seen_at > revs[-1]["seen_at"]:
        events.append({"at": rec.last_seen_at, "kind": "seen", "summary": "Last seen unchanged at the source",
                       "run": run_ref("crawl", runs.get(rec.last_seen_run_id))})
    if rec.status == "withdrawn":
        events.append({"at": rec.withdrawn_at, "kind": "withdrawn", "summary": "Withdrawn: gone from the source",
                       "run": None})
    events.sort(key=lambda e: (e["at"] is None, e["at"]))
    return events


def record_provenance(session: Session, rec: Record) -> dict[str, Any]:
    revs = revisions(session, rec.id)
    cols = colorizations(session, rec)
    return {"collections": collections_of(session, rec.id), "revisions": revs, "colorizations": cols,
            "timeline": timeline(session, rec, revs, cols)}
