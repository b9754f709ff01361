"""The ingestion API every harvester uses.

``upsert_records`` stores a batch of records idempotently, keyed by
(source, source key): new keys are inserted, changed payloads update the
record and add exactly one revision, unchanged ones only move "last seen".
Invalid records are rejected with a message naming the record and the
field; the valid records of the same batch are still stored.
"""
from __future__ import annotations

import hashlib
import json
import math
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import orjson
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from catalog.models import Collection, CollectionMember, Record, Source

MAPPED = (
    "title", "description", "date_text", "year_lo", "year_hi", "place", "lat", "lon", "direction",
    "author", "licence", "rights", "attribution", "url",
)


@dataclass
class RecordIn:
    """One record as a harvester found it: mapped fields plus the raw payload."""

    source_key: str
    title: str | None = None
    description: str | None = None
    date_text: str | None = None
    year_lo: int | None = None
    year_hi: int | None = None
    place: str | None = None
    lat: float | None = None
    lon: float | None = None
    direction: str | None = None
    author: str | None = None
    licence: str | None = None
    rights: str | None = None
    attribution: str | None = None
    url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    def mapped(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in MAPPED} | {"extra": self.extra}

    def payload_hash(self) -> str:
        """sha256 over the raw payload and the mapped fields (as stored on the record)."""
        return _serialise(self)[2]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecordIn:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Rejection:
    source_key: str | None
    field: str
    message: str

    def __str__(self) -> str:
        return f"record {self.source_key!r}: {self.field}: {self.message}"


@dataclass
class UpsertReport:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)
    new_keys: list[str] = field(default_factory=list)
    changed_keys: list[str] = field(default_factory=list)

    def merge(self, other: UpsertReport) -> None:
        self.new += other.new
        self.changed += other.changed
        self.unchanged += other.unchanged
        self.rejected += other.rejected
        self.ids.update(other.ids)
        self.new_keys += other.new_keys
        self.changed_keys += other.changed_keys

    def as_stats(self) -> dict[str, Any]:
        return {"new": self.new, "changed": self.changed, "unchanged": self.unchanged,
                "rejected": len(self.rejected), "rejections": [asdict(r) for r in self.rejected[:100]]}


def validate(rec: RecordIn) -> Rejection | None:
    key = rec.source_key
    if not isinstance(key, str) or not key.strip():
        return Rejection(None if not isinstance(key, str) else key, "source_key", "missing source key")
    for name in ("year_lo", "year_hi"):
        v = getattr(rec, name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            return Rejection(key, name, f"must be an integer year, got {v!r}")
    if rec.year_lo is not None and rec.year_hi is not None and rec.year_lo > rec.year_hi:
        return Rejection(key, "year_lo", f"year_lo {rec.year_lo} is after year_hi {rec.year_hi}")
    for name, limit in (("lat", 90.0), ("lon", 180.0)):
        v = getattr(rec, name)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return Rejection(key, name, f"must be a number, got {v!r}")
        if not -limit <= v <= limit:
            return Rejection(key, name, f"{name} {v} is outside ±{limit:g}")
    if (rec.lat is None) != (rec.lon is None):
        return Rejection(key, "lat" if rec.lat is None else "lon", "latitude and longitude must come together")
    for name in ("title", "description", "date_text", "place", "author", "licence", "rights", "attribution", "url"):
        v = getattr(rec, name)
        if v is not None and not isinstance(v, str):
            return Rejection(key, name, f"must be text, got {type(v).__name__}")
        if isinstance(v, str) and "\x00" in v:
            return Rejection(key, name, "contains a NUL character")
    if not isinstance(rec.raw, dict) or not isinstance(rec.extra, dict):
        return Rejection(key, "raw", "raw payload and extra must be JSON objects")
    try:
        json.dumps(rec.raw, default=str)
    except (TypeError, ValueError) as exc:
        return Rejection(key, "raw", f"payload is not JSON-serialisable: {exc}")
    return None


def get_or_create_source(session: Session, slug: str, kind: str, base_url: str | None = None,
                         config: dict[str, Any] | None = None) -> Source:
    session.execute(
        pg_insert(Source).values(slug=slug, kind=kind, base_url=base_url, config=config or {})
        .on_conflict_do_nothing(index_elements=["slug"])
    )
    return session.execute(select(Source).where(Source.slug == slug)).scalar_one()


def get_or_create_collection(session: Session, name: str, description: str | None = None) -> int:
    if not name or not name.strip():
        raise ValueError("collection name must not be empty")
    session.execute(
        pg_insert(Collection).values(name=name, description=description).on_conflict_do_nothing(index_elements=["name"])
    )
    return session.execute(select(Collection.id).where(Collection.name == name)).scalar_one()


def add_to_collection(session: Session, collection: str, record_ids: Iterable[int]) -> None:
    ids = sorted(set(record_ids))
    if not ids:
        return
    cid = get_or_create_collection(session, collection)
    session.execute(
        pg_insert(CollectionMember).values([{"collection_id": cid, "record_id": i} for i in ids])
        .on_conflict_do_nothing()
    )


def upsert_records(session: Session, source_id: int, records: Sequence[RecordIn], *, run_id: int | None = None,
                   collection: str | None = None, batch_size: int = 1000) -> UpsertReport:
    """Store records idempotently; see the module docstring. Runs in the caller's transaction."""
    report = UpsertReport()
    good: dict[str, RecordIn] = {}
    for rec in records:
        problem = validate(rec)
        if problem:
            report.rejected.append(problem)
        else:
            good[rec.source_key] = rec  # a key twice in one batch: the last one wins
    keys = sorted(good)
    chunks = [[good[k] for k in keys[i:i + batch_size]] for i in range(0, len(keys), batch_size)]
    if len(chunks) <= 1:
        for chunk in chunks:
            report.merge(_upsert_chunk(session, source_id, _copy_rows(chunk), run_id))
    else:
        # Serialise the next chunk in a thread while PostgreSQL works on this one (psycopg
        # releases the GIL while it waits): the two cores of a small machine both work.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="arhiva-upsert") as pool:
            pending = pool.submit(_copy_rows, chunks[0])
            for nxt in [*chunks[1:], None]:
                rows = pending.result()
                if nxt is not None:
                    pending = pool.submit(_copy_rows, nxt)
                report.merge(_upsert_chunk(session, source_id, rows, run_id))
    if collection and report.ids:
        add_to_collection(session, collection, report.ids.values())
    return report


_COPY_COLS = ("source_key", *MAPPED, "extra", "raw", "fields", "payload_hash")
_TEMP_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS arhiva_incoming (source_key text, title text, description text, "
    "date_text text, year_lo int, year_hi int, place text, lat float8, lon float8, direction text, author text, "
    "licence text, rights text, attribution text, url text, extra jsonb, raw jsonb, fields jsonb, "
    "payload_hash text) ON COMMIT DELETE ROWS"
)
_UPSERT_COLS = (*MAPPED, "extra", "raw", "payload_hash")
_UPSERT_SQL = text(
    "INSERT INTO records (source_id, first_seen_run_id, last_seen_run_id, source_key, "
    + ", ".join(_UPSERT_COLS) + ") SELECT :source_id, :run_id, :run_id, i.source_key, "
    + ", ".join(f"i.{c}" for c in _UPSERT_COLS)
    + " FROM arhiva_incoming i WHERE NOT (i.source_key = ANY(CAST(:same AS text[]))) ORDER BY i.source_key "
    "ON CONFLICT ON CONSTRAINT uq_records_source_key DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _UPSERT_COLS)
    + ", last_seen_run_id = excluded.last_seen_run_id, last_seen_at = now(), updated_at = now(), "
    "status = 'active', withdrawn_at = NULL "
    "WHERE records.payload_hash IS DISTINCT FROM excluded.payload_hash "
    "RETURNING id, source_key, (xmax = 0) AS inserted"
)
# Every statement below reaches records through an index (key or id arrays),
# never by joining the unanalysed temporary table to the whole catalogue.
_LOCK_SQL = text(
    "SELECT id, source_key, payload_hash FROM records WHERE source_id = :source_id "
    "AND source_key = ANY(CAST(:keys AS text[])) ORDER BY source_key FOR UPDATE"
)
_REVISIONS_SQL = text(
    "INSERT INTO record_revisions (record_id, revision, payload_hash, raw, fields, run_id) "
    "SELECT r.id, CASE WHEN r.inserted THEN 1 ELSE coalesce((SELECT max(rr.revision) FROM record_revisions rr "
    "WHERE rr.record_id = r.id), 0) + 1 END, i.payload_hash, i.raw, i.fields, :run_id "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:id_keys AS text[]), CAST(:inserted AS boolean[])) "
    "AS r(id, source_key, inserted) JOIN arhiva_incoming i ON i.source_key = r.source_key"
)
_KEYS_SQL = text(
    "SELECT id, source_key FROM records WHERE source_id = :source_id AND source_key = ANY(CAST(:keys AS text[]))"
)
_TOUCH_SQL = text(
    "UPDATE records SET last_seen_at = now(), last_seen_run_id = :run_id, status = 'active', withdrawn_at = NULL "
    "WHERE id = ANY(CAST(:ids AS bigint[]))"
)


def _upsert_chunk(session: Session, source_id: int, rows: list[tuple], run_id: int | None) -> UpsertReport:
    """Upsert one sorted chunk (rows from ``_copy_rows``): COPY into a temporary table, then set-based SQL."""
    report = UpsertReport()
    session.execute(text(_TEMP_DDL))
    session.execute(text("DELETE FROM arhiva_incoming"))
    hashes: dict[str, str] = {row[0]: row[-1] for row in rows}
    raw_conn = session.connection().connection.driver_connection
    with raw_conn.cursor() as cur:
        with cur.copy(f"COPY arhiva_incoming ({', '.join(_COPY_COLS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    session.execute(text("ANALYZE arhiva_incoming"))  # real row counts: hash joins, not nested loops
    params = {"source_id": source_id, "run_id": run_id}
    # Lock the rows we already have, in key order (no deadlocks between workers).
    existing = session.execute(_LOCK_SQL, params | {"keys": list(hashes)}).all()
    same = {row.source_key: row.id for row in existing if row.payload_hash == hashes[row.source_key]}
    done: dict[str, tuple[int, bool]] = {}
    if len(same) < len(rows):
        done = {row.source_key: (row.id, bool(row.inserted))
                for row in session.execute(_UPSERT_SQL, params | {"same": list(same)})}
    if done:
        session.execute(_REVISIONS_SQL, params | {"ids": [v[0] for v in done.values()], "id_keys": list(done),
                                                   "inserted": [v[1] for v in done.values()]})
    # Keys another worker stored with the same payload meanwhile are unchanged too.
    raced = [k for k in hashes if k not in same and k not in done]
    if raced:
        same.update({row.source_key: row.id for row in session.execute(_KEYS_SQL, params | {"keys": raced})})
    if same:
        session.execute(_TOUCH_SQL, params | {"ids": list(same.values())})
    for k, (rid, inserted) in done.items():
        report.ids[k] = rid
        if inserted:
            report.new += 1
            report.new_keys.append(k)
        else:
            report.changed += 1
            report.changed_keys.append(k)
    report.ids.update(same)
    report.unchanged = len(same)
    return report


def _copy_rows(chunk: list[RecordIn]) -> list[tuple]:
    """The COPY rows of a chunk, in ``_COPY_COLS`` order (payload hash last)."""
    rows = []
    for rec in chunk:
        raw_json, fields_json, digest = _serialise(rec)
        rows.append((rec.source_key, *(getattr(rec, n) for n in MAPPED), _json(rec.extra), raw_json, fields_json,
                     digest))
    return rows


_JSON_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def _json(value: Any) -> str:
    """Canonical JSON (sorted keys, compact, UTF-8); anything unknown as its str()."""
    return orjson.dumps(value, option=_JSON_OPTS, default=str).decode("utf-8")


def _serialise(rec: RecordIn) -> tuple[str, str, str]:
    raw_json = _json(rec.raw)
    fields_json = _json(rec.mapped())
    digest = hashlib.sha256(f"{raw_json}\n{fields_json}".encode("utf-8")).hexdigest()
    return raw_json, fields_json, digest


def withdraw_records(session: Session, source_id: int, keys: Iterable[str], *, run_id: int | None = None) -> int:
    """Mark records gone from their source as withdrawn (never deleted). Returns how many changed."""
    keys = sorted(set(keys))
    if not keys:
        return 0
    result = session.execute(
        update(Record).where(Record.source_id == source_id, Record.source_key.in_(keys), Record.status == "active")
        .values(status="withdrawn", withdrawn_at=func.now(), updated_at=func.now())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


__all__ = [
    "RecordIn", "Rejection", "UpsertReport", "upsert_records", "withdraw_records", "get_or_create_source",
    "get_or_create_collection", "add_to_collection", "validate",
]
