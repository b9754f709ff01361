"""Where a record came from: the one place that asks the catalogue about provenance.

Two readings of the same rows, both plain dicts (JSON-ready):

* ``record_provenance``: revisions with what changed, colorizations, collections and a
  timeline, shaped like the web API's models (``catalog.web.schemas``); the JSON API and the
  record page render it.
* ``lineage``: the chain behind a record and each of its colorized images, back to the model
  version, its training run and the crawled photos it learned from; ``arhiva records --id N
  --provenance`` renders it (a tree, or JSON).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from catalog.models import (
    Collection,
    CollectionMember,
    Colorization,
    ColorizationRun,
    CrawlRun,
    ModelVersion,
    Record,
    RecordAsset,
    RecordRevision,
    Source,
    TrainingExample,
    TrainingRun,
)
from catalog.runs import crawl_run_kind

RUN_MODELS = {"crawl": CrawlRun, "training": TrainingRun, "colorization": ColorizationRun}


def run_ref(kind: str, run: Any) -> dict[str, Any] | None:
    if run is None:
        return None
    # kind: the table (``/api/runs/{kind}/{id}``); label: what the run was (an import, a load, a crawl…)
    return {"kind": kind, "label": crawl_run_kind(run.agent) if kind == "crawl" else kind, "id": run.id,
            "agent": run.agent, "code_version": run.code_version, "status": run.status,
            "started_at": run.started_at, "ended_at": run.ended_at}


def run_out(kind: str, run: Any) -> dict[str, Any]:
    out = run_ref(kind, run) | {"parameters": run.parameters or {}, "stats": run.stats or {}, "error": run.error}
    if kind == "crawl":
        out["source"] = run.source.slug if run.source else None
    else:
        out["collection_id"] = run.collection_id
    if kind == "colorization":
        out["model_version_id"] = run.model_version_id
    return out


def crawl_run_kinds(session: Session, ids: set[int | None]) -> dict[int, str]:
    """The kind of each of these crawl runs, by id (``catalog.runs.crawl_run_kind``: a folder's
    import, a JSON Lines load, else a harvest by a spider)."""
    return {i: crawl_run_kind(run.agent) for i, run in _by_id(session, CrawlRun, ids).items()}


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


def _by_id(session: Session, model: Any, ids: set[int | None]) -> dict[int, Any]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return {row.id: row for row in session.execute(select(model).where(model.id.in_(ids))).scalars()}


def colorization_dicts(session: Session, rows: list[Colorization]) -> list[dict[str, Any]]:
    mvs = _by_id(session, ModelVersion, {c.model_version_id for c in rows})
    runs = _by_id(session, ColorizationRun, {c.run_id for c in rows})
    return [{"id": c.id, "source_sha256": c.source_sha256, "result_sha256": c.result_sha256, "status": c.status,
             "params": c.params or {}, "created_at": c.created_at,
             "model_version": model_ref(mvs.get(c.model_version_id)),
             "run": run_ref("colorization", runs.get(c.run_id))} for c in rows]


def collections_of(session: Session, record_id: int) -> list[str]:
    return list(session.execute(
        select(Collection.name).join(CollectionMember, CollectionMember.collection_id == Collection.id)
        .where(CollectionMember.record_id == record_id).order_by(Collection.name)).scalars())


def timeline(session: Session, rec: Record, revs: list[dict[str, Any]], cols: list[dict[str, Any]]
             ) -> list[dict[str, Any]]:
    """Every event in the record's life, oldest first."""
    runs = _by_id(session, CrawlRun, {r["run_id"] for r in revs} | {rec.last_seen_run_id}
                  | {ra.first_seen_run_id for ra in rec.assets})
    events: list[dict[str, Any]] = []
    for r in revs:
        run = run_ref("crawl", runs.get(r["run_id"]))
        if r["revision"] == 1:
            how = {"import": "Imported into", "load": "Loaded into"}.get(run["label"] if run else "", "Harvested from")
            summary = f"{how} {rec.source.slug} (revision 1)"
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


def lineage(session: Session, record_id: int) -> dict[str, Any]:
    """The chain behind a record and each of its colorized images: record, revisions, originals,
    and for each colorized image its colorization run, model version, training run and the
    training examples with the records and crawl runs they came from."""
    rec = session.get(Record, record_id)
    if rec is None:
        raise LookupError(f"no record with id {record_id}")
    revs = session.execute(select(RecordRevision.revision, RecordRevision.run_id, RecordRevision.seen_at)
                           .where(RecordRevision.record_id == record_id).order_by(RecordRevision.revision))
    results = [ra.asset_sha256 for ra in rec.assets if ra.role == "colorized"]
    cols = session.execute(select(Colorization).where(Colorization.result_sha256.in_(results))
                           .order_by(Colorization.id)).scalars().all() if results else []
    mvs = _by_id(session, ModelVersion, {c.model_version_id for c in cols})
    runs = _by_id(session, ColorizationRun, {c.run_id for c in cols})
    trainings = _by_id(session, TrainingRun, {mv.training_run_id for mv in mvs.values()})
    examples = {mv_id: training_examples(session, mv_id) for mv_id in mvs}
    revs = [dict(r) for r in revs.mappings()]
    originals = [ra for ra in sorted(rec.assets, key=lambda ra: ra.id) if ra.role == "original"]
    kinds = crawl_run_kinds(session, {rec.first_seen_run_id, rec.last_seen_run_id} | {r["run_id"] for r in revs}
                            | {ra.first_seen_run_id for ra in originals} | {ra.last_seen_run_id for ra in originals})
    for rev in revs:
        rev["run_kind"] = kinds.get(rev["run_id"])
    chain = []
    for c in cols:
        mv, run = mvs[c.model_version_id], runs.get(c.run_id)
        tr = trainings.get(mv.training_run_id)
        chain.append({
            "result_sha256": c.result_sha256, "source_sha256": c.source_sha256, "params": c.params,
            "colorization_run_id": c.run_id, "colorized_at": run.started_at if run else None,
            "model_version_id": mv.id, "model_version": mv.name, "architecture": mv.architecture,
            "parent_model_version_id": mv.parent_id, "checkpoint_sha256": mv.checkpoint_sha256,
            "training_run_id": mv.training_run_id, "trained_at": tr.started_at if tr else None,
            "training_code_version": tr.code_version if tr else None,
            "training_examples": examples[mv.id]})
    return {
        "record": {"id": rec.id, "source": rec.source.slug, "source_key": rec.source_key, "title": rec.title,
                   "first_seen_run_id": rec.first_seen_run_id, "first_seen_run_kind": kinds.get(rec.first_seen_run_id),
                   "last_seen_run_id": rec.last_seen_run_id, "last_seen_run_kind": kinds.get(rec.last_seen_run_id)},
        "revisions": revs,
        "originals": [{"asset_sha256": ra.asset_sha256, "source_url": ra.source_url,
                       "first_seen_run_id": ra.first_seen_run_id, "first_seen_run_kind": kinds.get(ra.first_seen_run_id),
                       "last_seen_run_id": ra.last_seen_run_id, "last_seen_run_kind": kinds.get(ra.last_seen_run_id),
                       "crop_box": ra.crop_box} for ra in originals],
        "colorizations": chain,
    }


def training_examples(session: Session, model_version_id: int) -> list[dict[str, Any]]:
    """The assets that trained and validated a model version, each with its record, source and the
    run that first brought the asset (or, failing that, the record): ``first_run_id`` and its kind,
    ``first_run_kind`` (import, load or crawl)."""
    first_crawl = (select(func.min(RecordAsset.first_seen_run_id))
                   .where(RecordAsset.record_id == TrainingExample.record_id,
                          RecordAsset.asset_sha256 == TrainingExample.asset_sha256).scalar_subquery())
    rows = session.execute(
        select(TrainingExample.asset_sha256, TrainingExample.split, TrainingExample.record_id, Record.source_key,
               Source.slug.label("source"), Record.first_seen_run_id.label("record_first_crawl_run_id"),
               first_crawl.label("asset_first_crawl_run_id"))
        .outerjoin(Record, Record.id == TrainingExample.record_id)
        .outerjoin(Source, Source.id == Record.source_id)
        .where(TrainingExample.model_version_id == model_version_id)
        .order_by(TrainingExample.split, TrainingExample.asset_sha256))
    out = [dict(r) for r in rows.mappings()]
    for e in out:
        e["first_run_id"] = e["asset_first_crawl_run_id"] or e["record_first_crawl_run_id"]
    kinds = crawl_run_kinds(session, {e["first_run_id"] for e in out})
    for e in out:
        e["first_run_kind"] = kinds.get(e["first_run_id"])
    return out
