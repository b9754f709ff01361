"""The JSON API under ``/api``: records, assets, runs, model versions, collections, sources.

Every route reads in a read-only transaction. The writing routes (collection
membership) are added by ``write_router`` only when a token is configured.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator
from sqlalchemy import delete, func, literal, select, union_all
from sqlalchemy.orm import Session

from catalog.db import run_retrying, session_scope
from catalog.ingest import add_to_collection, collection_name_problem
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
from catalog.names import SENT_MAX, collection_name
from catalog.provenance import RUN_MODELS, model_ref, produced_by, record_provenance, run_out
from catalog.queries import MAX_OFFSET as SEARCH_MAX_OFFSET
from catalog.queries import RECORD_LOADS, decode_cursor, list_collections, list_sources, search_records
from catalog.web import schemas
from catalog.web.deps import (
    MAX_OFFSET,
    YEAR_MAX,
    YEAR_MIN,
    asset_urls,
    base_url,
    build_query,
    known_query,
    read_session,
    record_out,
    reject_nul,
    require_token,
    settings_of,
)

router = APIRouter(prefix="/api", dependencies=[Depends(known_query)])
DB = Annotated[Session, Depends(read_session)]
RecordId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Record id.")]
Sha256 = Annotated[str, Path(pattern="^[0-9a-f]{64}$", description="sha256 of the file (lower-case hex).")]
Limit = Annotated[int, Query(ge=1, description="Page size; capped at the server's page_size_max.")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
NOT_FOUND = {404: {"model": schemas.Problem, "description": "No such thing."}}


def load_record(session: Session, record_id: int) -> Record:
    rec = session.execute(
        select(Record).where(Record.id == record_id)
        .options(*RECORD_LOADS)
    ).scalar_one_or_none()
    if rec is None:
        raise HTTPException(404, f"record {record_id} not found")
    return rec


def _cap(request: Request, limit: int) -> int:
    return max(1, min(limit, settings_of(request).page_size_max))


@router.get("/records", response_model=schemas.RecordPage, tags=["records"])
def search(
    request: Request, session: DB,
    # the bound is on the name as sent (a decomposed one is longer); the search looks it up in NFC
    collection: Annotated[str | None, Query(max_length=SENT_MAX, description="Collection name.")] = None,
    source: Annotated[str | None, Query(max_length=100, description="Source slug.")] = None,
    year_from: Annotated[int | None, Query(ge=YEAR_MIN, le=YEAR_MAX, description="Records whose years overlap "
                                           "[year_from, year_to].")] = None,
    year_to: Annotated[int | None, Query(ge=YEAR_MIN, le=YEAR_MAX)] = None,
    include_undated: Annotated[bool, Query(description="With a year filter, keep undated records too.")] = False,
    bbox: Annotated[str | None, Query(max_length=200, description="W,S,E,N in degrees (longitude first).",
                                      examples=["26.6,45.4,30.2,48.5"])] = None,
    q: Annotated[str | None, Query(max_length=500, description="Words (any inflection, diacritics optional).")] = None,
    colorized: Annotated[bool | None, Query(description="true: has a colorized version; false: lacks one.")] = None,
    status: Literal["active", "withdrawn", "any"] = "active",
    limit: Limit = 24,
    offset: Annotated[int, Query(ge=0, description=f"Records to skip, at most {SEARCH_MAX_OFFSET:,}: deeper "
                                 "pages follow the `next` link (cursor `after`).")] = 0,
    after: Annotated[str | None, Query(max_length=100, description="Cursor from a page's `next` link: the "
                                       "page after it.")] = None,
    before: Annotated[str | None, Query(max_length=100, description="Cursor from a page's `previous` link.")] = None,
    count: Annotated[Literal["auto", "exact"], Query(description="auto: exact up to the server's count_exact_max "
                                                     "matches, an estimate beyond; exact: always exact (slower "
                                                     "on broad searches).")] = "auto",
    facets: Annotated[bool, Query(description="Also count the matches per decade, collection and "
                                  "colorization.")] = False,
) -> dict[str, Any]:
    """Find records by collection, source, years, place, words and colorization, in id order."""
    settings = settings_of(request)
    query = build_query(collection=collection, source=source, year_from=year_from, year_to=year_to,
                        include_undated=include_undated, bbox=bbox, q=q, colorized=colorized, status=status,
                        limit=limit, offset=offset, max_limit=settings.page_size_max)
    if after:
        query.after = decode_cursor(after)
    elif before:
        query.before = decode_cursor(before)
    page = search_records(session, query, max_limit=settings.page_size_max, count=count, with_facets=facets,
                          exact_max=settings.count_exact_max, sample_rows=settings.count_sample_rows)
    base = base_url(request)

    def link(**params: Any) -> str:  # under ARHIVA_PUBLIC_URL when set, not the request's Host header
        own = [k for k in request.query_params if k.startswith("_")]  # a cache buster is the client's, not the link's
        url = request.url.remove_query_params(["offset", "after", "before", *own]).include_query_params(
            **params, limit=page.limit)
        return f"{base}{request.url.path.lstrip('/')}?{url.query}"

    nxt = link(after=page.next_cursor) if page.next_cursor else None
    prev = link(before=page.prev_cursor) if page.prev_cursor else None
    out = {"total": page.total, "total_exact": page.total_exact, "total_label": page.total_label,
           "limit": page.limit, "offset": page.offset, "next": nxt, "next_cursor": page.next_cursor,
           "previous": prev, "previous_cursor": page.prev_cursor, "items": [record_out(r, base) for r in page.items]}
    if page.facets is not None:
        out["facets"] = page.facets.as_dict()
    return out


@router.get("/records/{record_id}", response_model=schemas.RecordDetail, responses=NOT_FOUND, tags=["records"])
def record(request: Request, session: DB, record_id: RecordId) -> dict[str, Any]:
    """A record with its assets, collections, revisions (what changed), colorizations and timeline."""
    rec = load_record(session, record_id)
    return record_out(rec, base_url(request)) | record_provenance(session, rec)


@router.get("/assets/{sha256}", response_model=schemas.AssetOut, responses=NOT_FOUND, tags=["assets"])
def asset(request: Request, session: DB, sha256: Sha256) -> dict[str, Any]:
    """An asset's measurements, the records that use it and the colorization that made it."""
    a = session.get(Asset, sha256)
    if a is None:
        raise HTTPException(404, f"asset {sha256} not found")
    links = session.execute(select(RecordAsset.record_id, RecordAsset.role).where(RecordAsset.asset_sha256 == sha256)
                            .order_by(RecordAsset.record_id).limit(1000)).all()
    cols = {c.name: getattr(a, c.name) for c in Asset.__table__.columns}
    return cols | asset_urls(base_url(request), sha256) | {
        "records": [{"record_id": r.record_id, "role": r.role} for r in links],
        "produced_by": produced_by(session, sha256)}


@router.get("/runs", response_model=schemas.RunPage, tags=["provenance"])
def runs(request: Request, session: DB, kind: schemas.RunKind | None = None,
         status: Literal["running", "succeeded", "partial", "failed", "cancelled"] | None = None,
         limit: Limit = 50, offset: Annotated[int, Query(ge=0, le=100_000)] = 0) -> dict[str, Any]:
    """Crawl, training and colorization runs (PROV activities), newest first."""
    limit = _cap(request, limit)
    kinds = [kind] if kind else list(RUN_MODELS)
    parts = []
    for k in kinds:
        m = RUN_MODELS[k]
        part = select(literal(k).label("kind"), m.id.label("id"), m.started_at.label("started_at"))
        parts.append(part.where(m.status == status) if status else part)
    index = union_all(*parts).subquery()
    total = session.scalar(select(func.count()).select_from(index))
    rows = session.execute(select(index.c.kind, index.c.id).order_by(index.c.started_at.desc(), index.c.id.desc())
                           .limit(limit).offset(offset)).all()
    loaded: dict[tuple[str, int], Any] = {}
    for k in kinds:
        ids = [r.id for r in rows if r.kind == k]
        if ids:
            m = RUN_MODELS[k]
            loaded.update({(k, run.id): run for run in session.execute(select(m).where(m.id.in_(ids))).scalars()})
    return {"total": total, "limit": limit, "offset": offset,
            "items": [run_out(r.kind, loaded[(r.kind, r.id)]) for r in rows]}


@router.get("/runs/{kind}/{run_id}", response_model=schemas.RunOut, responses=NOT_FOUND, tags=["provenance"])
def run(session: DB, kind: schemas.RunKind, run_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> dict[str, Any]:
    """One run: who/what ran, parameters, start and end, status, statistics."""
    found = session.get(RUN_MODELS[kind], run_id)
    if found is None:
        raise HTTPException(404, f"{kind} run {run_id} not found")
    return run_out(kind, found)


def _model_out(session: Session, mv: ModelVersion) -> dict[str, Any]:
    examples = session.scalar(select(func.count()).where(TrainingExample.model_version_id == mv.id))
    made = session.scalar(select(func.count()).where(Colorization.model_version_id == mv.id))
    return model_ref(mv) | {"checkpoint_sha256": mv.checkpoint_sha256, "config": mv.config or {},
                            "metrics": mv.metrics or {}, "training_run_id": mv.training_run_id,
                            "parent_id": mv.parent_id, "created_at": mv.created_at,
                            "training_examples": examples, "colorizations": made, "current": mv.is_current,
                            "decision": mv.decision, "evaluation": mv.evaluation or {}}


@router.get("/model-versions", response_model=schemas.ModelVersionPage, tags=["provenance"])
def model_versions(request: Request, session: DB, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """Colorization models: architecture, configuration, metrics, lineage (training run, parent)."""
    limit = _cap(request, limit)
    total = session.scalar(select(func.count()).select_from(ModelVersion))
    rows = session.execute(select(ModelVersion).order_by(ModelVersion.id.desc()).limit(limit).offset(offset)).scalars()
    return {"total": total, "limit": limit, "offset": offset, "items": [_model_out(session, m) for m in rows]}


@router.get("/model-versions/{model_id}", response_model=schemas.ModelVersionOut, responses=NOT_FOUND,
            tags=["provenance"])
def model_version(session: DB, model_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> dict[str, Any]:
    mv = session.get(ModelVersion, model_id)
    if mv is None:
        raise HTTPException(404, f"model version {model_id} not found")
    return _model_out(session, mv)


@router.get("/collections", response_model=list[schemas.CollectionOut], tags=["records"])
def collections(session: DB) -> list[dict[str, Any]]:
    """Named sets of records, with their sizes."""
    return list_collections(session)


@router.get("/sources", response_model=list[schemas.SourceOut], tags=["records"])
def sources(session: DB) -> list[dict[str, Any]]:
    """Harvested sources, with how many records each has."""
    return list_sources(session)


# --- writing: only with a token ------------------------------------------------------

write_router = APIRouter(prefix="/api", dependencies=[Depends(require_token), Depends(known_query)],
                         tags=["writing (token)"])
# ``{name:path}``: a collection's name may hold ``/`` (sent as it is or as %2F, which the server
# decodes before routing), so the name is everything before the route's last ``/records``
# (and record id): unambiguous, since each route ends in a fixed tail. The name as stored: NFC,
# bounded as sent by SENT_MAX (a 200-character name sent decomposed is longer); its stored length
# is collection_name_problem's to check, which says why.
CollectionName = Annotated[str, Path(min_length=1, max_length=SENT_MAX, pattern=r"^[^\x00]+$",
                                     description="Collection name (it may hold /)."), AfterValidator(collection_name)]
AUTH = {401: {"model": schemas.Problem}, 403: {"model": schemas.Problem}}


@write_router.post("/collections/{name:path}/records", response_model=schemas.CollectionOut,
                   responses=AUTH | NOT_FOUND | {400: {"model": schemas.Problem,
                                                        "description": "The body is not JSON."}})
def add_members(request: Request, name: CollectionName, body: schemas.MembersIn) -> dict[str, Any]:
    """Add records to a collection (created if new). Needs `Authorization: Bearer <ARHIVA_WEB_TOKEN>`."""
    reject_nul(name=name)
    problem = collection_name_problem(name)
    if problem:  # shaped as FastAPI's own 422, as the schema says
        raise RequestValidationError([{"loc": ("path", "name"), "msg": f"collection {name!r}: {problem}",
                                       "type": "value_error"}])
    ids = sorted(set(body.record_ids))

    def add() -> dict[str, Any]:
        with session_scope(request.app.state.engine) as session:
            found = set(session.execute(select(Record.id).where(Record.id.in_(ids))).scalars())
            missing = [i for i in ids if i not in found]
            if missing:
                raise HTTPException(404, f"records not found: {', '.join(map(str, missing[:20]))}")
            add_to_collection(session, name, ids)
            return next(c for c in list_collections(session) if c["name"] == name)

    return run_retrying(add)  # a load writing the same records may deadlock with it: the loser runs again


@write_router.delete("/collections/{name:path}/records/{record_id}", status_code=204, responses=AUTH | NOT_FOUND)
def remove_member(request: Request, name: CollectionName, record_id: RecordId) -> Response:
    """Take a record out of a collection. Needs the token."""
    def remove() -> None:
        with session_scope(request.app.state.engine) as session:
            cid = session.scalar(select(Collection.id).where(Collection.name == name))
            if cid is None:
                raise HTTPException(404, f"no collection {name!r}")
            gone = session.execute(delete(CollectionMember).where(
                CollectionMember.collection_id == cid, CollectionMember.record_id == record_id)).rowcount
            if not gone:
                raise HTTPException(404, f"record {record_id} is not in collection {name!r}")

    run_retrying(remove)
    return Response(status_code=204)
