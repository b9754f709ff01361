"""The ingestion API every harvester uses.

``upsert_records`` stores a batch of records idempotently, keyed by
(source, source key): new keys are inserted, changed payloads update the
record and add exactly one revision, unchanged ones only move "last seen".
Invalid records are rejected with a message naming the record and the
field; the valid records of the same batch are still stored. Per-record limits
(``catalog.records_in``: key bytes, text and payload sizes) are checked before
anything reaches PostgreSQL; if PostgreSQL still refuses a chunk's data, the
chunk is bisected (savepoints) until only the refused record is rejected.

How: each chunk of key-sorted records is validated and serialised into COPY
text (on a thread, while PostgreSQL works on the previous chunk); its stored
rows are looked up and locked in key order. New keys are COPYed straight into
``records`` (a record holds its current payload: its history starts empty);
changed ones go through a temporary table and one merge statement, which also
moves the payloads they replace into ``record_history``; unchanged ones only
move "last seen". ``bulk_upsert`` runs the same over several connections for
large loads, one transaction per slice.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from sqlalchemy import Engine, delete, exists, func, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from catalog.db import local_settings
from catalog.models import Collection, CollectionMember, Record, Source
from catalog.names import collection_name, collection_name_problem, source_slug  # the check is used from here too
from catalog.records_in import (  # RecordIn, Rejection and validate are used from here too
    COPY_COLUMNS,
    MAPPED,
    CopyChunk,
    RecordIn,
    Rejection,
    check_fields,
    copy_chunk,
    validate,
)


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


def get_or_create_source(session: Session, slug: str, kind: str, base_url: str | None = None,
                         config: dict[str, Any] | None = None) -> Source:
    slug = source_slug(slug)
    session.execute(
        pg_insert(Source).values(slug=slug, kind=kind, base_url=base_url, config=config or {})
        .on_conflict_do_nothing(index_elements=["slug"])
    )
    return session.execute(select(Source).where(Source.slug == slug)).scalar_one()


def remember_source(session: Session, slug: str, kind: str, base_url: str | None = None,
                    config: dict[str, Any] | None = None) -> Source:
    """The source ``slug``, created or updated to the URLs it is being harvested from now."""
    slug = source_slug(slug)
    stmt = pg_insert(Source).values(slug=slug, kind=kind, base_url=base_url, config=config or {})
    session.execute(stmt.on_conflict_do_update(
        index_elements=["slug"],
        set_={"base_url": func.coalesce(stmt.excluded.base_url, Source.base_url),
              "config": Source.config.op("||")(stmt.excluded.config)}))
    return session.execute(select(Source).where(Source.slug == slug)
                           .execution_options(populate_existing=True)).scalar_one()


def get_or_create_collection(session: Session, name: str, description: str | None = None) -> int:
    return _collection_for_load(session, name, description)[0]


def add_to_collection(session: Session, collection: str, record_ids: Iterable[int]) -> None:
    if record_ids := list(record_ids):
        _add_members(session, get_or_create_collection(session, collection), record_ids)


_ADD_MEMBERS = text("INSERT INTO collection_members (collection_id, record_id) "
                    "SELECT :cid, unnest(CAST(:ids AS bigint[])) ON CONFLICT DO NOTHING")


def _add_members(session: Session, cid: int, record_ids: Iterable[int]) -> None:
    """The records join the collection (those already in it stay); the triggers of migration 0017
    add it to ``records.collections`` where it is missing."""
    ids = sorted(set(record_ids))
    if not ids:
        return
    # one array parameter: a VALUES row of two parameters a member took SQLAlchemy 60 µs to compile
    # and send (a slice of 5,000: 310 ms of the load's Python, against 6 ms for the array)
    session.execute(_ADD_MEMBERS, {"cid": cid, "ids": ids})


def upsert_records(session: Session, source_id: int, records: Sequence[RecordIn], *, run_id: int | None = None,
                   collection: str | None = None, batch_size: int = 2000) -> UpsertReport:
    """Store records idempotently; see the module docstring. Runs in the caller's transaction.

    A key given twice in one call: the last one wins (and is the one validated).
    """
    report = UpsertReport()
    chunks = _sorted_chunks(records, batch_size, report)
    cid, created = _collection_for_load(session, collection) if collection and chunks else (None, False)
    if len(chunks) == 1:
        report.merge(_store_prepared(session, source_id, [copy_chunk(chunks[0])], run_id, cid))
    elif chunks:
        report.merge(_store_prepared(session, source_id, _prepared_ahead(chunks), run_id, cid))
    if created:
        _drop_if_empty(session, cid)
    return report


def _collection_for_load(session: Session, name: str, description: str | None = None) -> tuple[int, bool]:
    """The collection's id, made when missing, and whether this made it (a load makes it before
    its records: a new record's collection is written with its row, migration 0017)."""
    problem = collection_name_problem(name)
    if problem:
        raise ValueError(f"{name!r}: {problem}")
    name = collection_name(name)  # every load, import, crawl and membership call makes or finds it here
    made = session.execute(pg_insert(Collection).values(name=name, description=description)
                           .on_conflict_do_nothing(index_elements=["name"]).returning(Collection.id)).scalar()
    if made is not None:
        return made, True
    return session.execute(select(Collection.id).where(Collection.name == name)).scalar_one(), False


def _drop_if_empty(session: Session, cid: int) -> None:
    """A collection made for a load that stored nothing (every record refused) goes again, as if
    the load had never named it."""
    session.execute(delete(Collection).where(Collection.id == cid, ~exists().where(
        CollectionMember.collection_id == cid)))


def bulk_upsert(engine: Engine, source_id: int, records: Sequence[RecordIn], *, run_id: int | None = None,
                collection: str | None = None, workers: int = 2, transaction_size: int = 5_000,
                batch_size: int = 5_000, progress: Callable[[int], None] | None = None,
                into: UpsertReport | None = None) -> UpsertReport:
    """Upsert a large load over ``workers`` connections, ``transaction_size`` records per transaction.

    Unlike ``upsert_records`` this is not one transaction: each slice of sorted keys commits on
    its own, so after a failure (raised here, once the other workers have stopped) the slices
    already committed stay, and running the same load again stores the rest (upserts are
    idempotent). Slices are disjoint key ranges, so the workers never wait on each other's rows.
    One thread validates and serialises the slices ahead of the workers, which only talk to
    PostgreSQL. ``progress`` is called with the number of records of each committed slice.
    ``into``: the report to add each committed slice to as it commits (returned): what was stored
    is known to the caller even when the load is stopped (Ctrl-C) or fails. Interrupted, the
    load starts no new slice, lets the slices in hand finish, then raises.
    """
    from catalog.db import run_retrying, session_scope

    report = into if into is not None else UpsertReport()
    slices = _sorted_chunks(records, transaction_size, report)
    cid = created = None
    if collection and slices:  # made before the workers start (else they would wait on each other)
        with session_scope(engine) as s:
            cid, created = _collection_for_load(s, collection)
    workers = max(1, min(workers, 16))
    ready: queue.Queue = queue.Queue(maxsize=workers)
    lock = threading.Lock()
    failed: list[BaseException] = []

    def offer(item) -> bool:
        while not failed:
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def prepare_all() -> None:
        try:
            for part in slices:
                prepared = [copy_chunk(part[i:i + batch_size]) for i in range(0, len(part), batch_size)]
                if not offer((len(part), prepared)):
                    return
        except BaseException as exc:  # handed to the caller below
            with lock:
                failed.append(exc)
        finally:
            for _ in range(workers):
                offer(None)

    def work() -> None:
        while not failed:  # after a failure no new slice starts; the one in hand finishes
            try:
                item = ready.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is None:
                return
            def store(prepared=item[1]) -> UpsertReport:
                with session_scope(engine) as s:
                    return _store_prepared(s, source_id, prepared, run_id, cid)

            try:  # a slice is one transaction: broken off by a deadlock, it is run again
                got = run_retrying(store)
            except BaseException as exc:  # stop the others, re-raised below
                with lock:
                    failed.append(exc)
                return
            with lock:
                report.merge(got)
            if progress is not None:
                progress(item[0])

    threads = [threading.Thread(target=prepare_all, name="arhiva-bulk-prepare", daemon=True)]
    threads += [threading.Thread(target=work, name=f"arhiva-bulk-{i}", daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except BaseException as exc:  # Ctrl-C: no new slice; those in hand commit (or roll back) first
        with lock:
            failed.append(exc)
        for t in threads:
            t.join()
        raise
    if created and not report.ids:
        with session_scope(engine) as s:
            _drop_if_empty(s, cid)
    if failed:
        raise failed[0]
    return report


def _sorted_chunks(records: Sequence[RecordIn], size: int, report: UpsertReport) -> list[list[RecordIn]]:
    """The records by key (the last of a repeated key wins) in sorted chunks of ``size``; a record
    without a key goes to ``report.rejected``."""
    latest: dict[str, RecordIn] = {}
    for rec in records:
        key = rec.source_key
        if isinstance(key, str) and key.strip():
            latest[key] = rec
        else:
            report.rejected.append(check_fields(rec) or Rejection(None, "source_key", "missing source key"))
    keys = sorted(latest)
    return [[latest[k] for k in keys[i:i + size]] for i in range(0, len(keys), size)]


def _prepared_ahead(chunks: list[list[RecordIn]]) -> Iterator[CopyChunk]:
    """The chunks prepared one ahead on a thread, while PostgreSQL works on the current one
    (psycopg releases the GIL while it waits): both cores of a small machine work."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="arhiva-upsert") as pool:
        pending = pool.submit(copy_chunk, chunks[0])
        for nxt in [*chunks[1:], None]:
            prepared = pending.result()
            if nxt is not None:
                pending = pool.submit(copy_chunk, nxt)
            yield prepared


def _store_prepared(session: Session, source_id: int, prepared: Iterable[CopyChunk], run_id: int | None,
                    cid: int | None) -> UpsertReport:
    """Upsert prepared chunks in the session's transaction, in the collection ``cid`` if any."""
    report = UpsertReport()
    # JIT would compile each chunk's upsert afresh (~17 ms a statement, a fifth of the work),
    # and with the default 4 MB of work_mem the GIN index's pending-list cleanup (which the
    # inserts trigger) flushes its accumulator in many small passes: JIT off and 64 MB for
    # these statements only, then both put back as the caller had them.
    with local_settings(session, jit="off", work_mem="64MB"):
        for chunk in prepared:
            report.merge(_upsert_chunk(session, source_id, chunk, run_id, cid))
    if cid is not None and report.ids:
        _add_members(session, cid, report.ids.values())
    return report


# The staging table: the COPY columns, typed as in ``records``.
_TEMP_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS arhiva_incoming ("
    + ", ".join(f"{c} {Record.__table__.c[c].type.compile(dialect=postgresql.dialect())}" for c in COPY_COLUMNS)
    + ") ON COMMIT DELETE ROWS"
)
_UPSERT_COLS = (*MAPPED, "extra", "raw", "payload_hash")
# The statements below run on psycopg's own cursor (tuples back, no ORM rows), hence %(name)s.
#
# The chunk's stored rows, locked in key order (no deadlocks between workers), with their hashes.
_LOCK_SQL = (
    "SELECT id, source_key, payload_hash FROM records WHERE source_id = %(source_id)s "
    "AND source_key = ANY(%(keys)s::text[]) ORDER BY source_key FOR UPDATE"
)
# New keys: ids drawn from the records' sequence (in key order, as an INSERT would), then the
# rows COPYed straight into the table (no staging, no per-row conflict handling: the keys were
# just looked up; a key stored meanwhile by someone else fails the COPY, which is undone to a
# savepoint and merged instead). A new record is its own first revision: nothing else is written.
_IDS_SQL = (
    "SELECT nextval(q.seq) FROM (SELECT pg_get_serial_sequence('records', 'id')::regclass AS seq) q, "
    "generate_series(1, %(n)s)"
)
_COPY_NEW = (
    f"COPY records ({', '.join(COPY_COLUMNS)}, id, source_id, first_seen_run_id, last_seen_run_id%s) FROM STDIN"
)
# Changed payloads (and new keys whose COPY met a concurrent insert) are staged in a temporary
# table and merged by one statement: CTE ``old`` moves each payload being replaced into
# ``record_history`` (numbered after the record's history, with the run and time that saw it:
# those that replaced the last history row, or that first saw the record; and this run and now as
# what replaced it), and ``up`` inserts or updates the records. Both read the rows as they were
# before the statement; the rows were locked in _LOCK_SQL. A key stored meanwhile with the same
# payload returns nothing. ``fields`` are the mapped fields as stored (what ``RecordIn.mapped``
# gives; the same object the view ``record_revisions`` shows for a current payload).
_FIELDS_SQL = "jsonb_build_object(" + ", ".join(f"'{c}', r.{c}" for c in (*MAPPED, "extra")) + ")"
_MERGE_SQL = (
    "WITH old AS (INSERT INTO record_history (record_id, revision, payload_hash, raw, fields, run_id, seen_at, "
    "replaced_run_id, replaced_at) "
    "SELECT r.id, coalesce(last.revision, 0) + 1, r.payload_hash, r.raw, " + _FIELDS_SQL + ", "
    "coalesce(last.replaced_run_id, r.first_seen_run_id), coalesce(last.replaced_at, r.first_seen_at), "
    "%(run_id)s, now() FROM arhiva_incoming i JOIN records r ON r.source_id = %(source_id)s "
    "AND r.source_key = i.source_key "
    "LEFT JOIN LATERAL (SELECT h.revision, h.replaced_run_id, h.replaced_at FROM record_history h "
    "WHERE h.record_id = r.id ORDER BY h.revision DESC LIMIT 1) last ON true "
    "WHERE r.payload_hash IS DISTINCT FROM i.payload_hash), "
    "up AS (INSERT INTO records (source_id, first_seen_run_id, last_seen_run_id{collections}, source_key, "
    + ", ".join(_UPSERT_COLS) + ") SELECT %(source_id)s, %(run_id)s, %(run_id)s{in_collection}, i.source_key, "
    + ", ".join(f"i.{c}" for c in _UPSERT_COLS)
    + " FROM arhiva_incoming i ORDER BY i.source_key "
    "ON CONFLICT ON CONSTRAINT uq_records_source_key DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _UPSERT_COLS)
    + ", last_seen_run_id = excluded.last_seen_run_id, last_seen_at = now(), updated_at = now(), "
    "status = 'active', withdrawn_at = NULL "
    "WHERE records.payload_hash IS DISTINCT FROM excluded.payload_hash "
    "RETURNING id, source_key, (xmax = 0) AS inserted) "
    "SELECT id, source_key, inserted FROM up"
)
_TOUCH_SQL = (
    "UPDATE records SET last_seen_at = now(), last_seen_run_id = %(run_id)s, status = 'active', withdrawn_at = NULL "
    "WHERE id = ANY(%(ids)s::bigint[])"
)


def _merge_sql(cid: int | None) -> str:
    """_MERGE_SQL, its new records in the collection ``cid`` (without one, the columns named are
    those of every schema since 0012: the migrations' tests load records at older ones)."""
    if cid is None:
        return _MERGE_SQL.format(collections="", in_collection="")
    return _MERGE_SQL.format(collections=", collections", in_collection=f", ARRAY[{int(cid)}]::integer[]")


def _refused_record(exc: psycopg.Error) -> bool:
    """PostgreSQL refused the data of some row (a value too long for an index or a search vector,
    a constraint), not the connection or the transaction: bisecting the chunk finds the row."""
    state = getattr(exc, "sqlstate", None) or ""
    return state[:2] in ("22", "23", "54") and state != "23505"


def _upsert_chunk(session: Session, source_id: int, prepared: CopyChunk, run_id: int | None,
                  cid: int | None = None) -> UpsertReport:
    """Upsert one sorted chunk; when PostgreSQL refuses a row the per-record checks let through,
    the chunk is undone to a savepoint and bisected, so only that record is rejected (with its
    key and PostgreSQL's reason) and the others are stored."""
    report = UpsertReport(rejected=list(prepared.rejected))
    pending = [prepared]
    with session.connection().connection.driver_connection.cursor() as cur:
        while pending:
            part = pending.pop()
            if not part.hashes:
                continue
            cur.execute("SAVEPOINT arhiva_chunk")
            try:
                got = _upsert_part(cur, source_id, part, run_id, cid)
            except psycopg.Error as exc:
                cur.execute("ROLLBACK TO SAVEPOINT arhiva_chunk")
                if not _refused_record(exc):
                    raise
                keys = list(part.hashes)
                if len(keys) == 1:
                    reason = (exc.diag.message_primary or str(exc)).strip()
                    report.rejected.append(Rejection(keys[0], "record", f"refused by PostgreSQL: {reason}"))
                else:
                    half = len(keys) // 2
                    pending += [part.part(range(half, len(keys))), part.part(range(half))]  # first half first
                continue
            cur.execute("RELEASE SAVEPOINT arhiva_chunk")
            report.merge(got)
    return report


def _upsert_part(cur, source_id: int, prepared: CopyChunk, run_id: int | None, cid: int | None) -> UpsertReport:
    """Upsert one sorted chunk (from ``copy_chunk``): look its keys up, COPY the new ones
    straight in, merge the changed ones through a temporary table, touch the unchanged. New
    records are written in the collection ``cid`` (its members are added by the caller)."""
    report = UpsertReport()
    hashes = prepared.hashes
    keys = list(hashes)  # in key order
    if not keys:
        return report
    params = {"source_id": source_id, "run_id": run_id}
    stored = {key: (rid, digest) for rid, key, digest in cur.execute(_LOCK_SQL, params | {"keys": keys})}
    same = {key: rid for key, (rid, digest) in stored.items() if digest == hashes[key]}
    new = [i for i, key in enumerate(keys) if key not in stored]
    done: dict[str, tuple[int, bool]] = {}
    if new:
        _copy_new(cur, prepared, new, source_id, run_id, cid, done)  # what it could not store is merged
    merge = [i for i, key in enumerate(keys) if key not in same and key not in done]
    if merge:
        cur.execute(_TEMP_DDL)  # IF NOT EXISTS: made once per connection, emptied at each commit
        cur.execute("DELETE FROM arhiva_incoming")
        with cur.copy(f"COPY arhiva_incoming ({', '.join(COPY_COLUMNS)}) FROM STDIN") as copy:
            copy.write(prepared.data(merge))
        done.update((key, (rid, inserted)) for rid, key, inserted in cur.execute(_merge_sql(cid), params))
    # Keys another writer stored with the same payload meanwhile are unchanged too.
    raced = [k for k in keys if k not in same and k not in done]
    if raced:
        same.update({key: rid for rid, key, _ in cur.execute(_LOCK_SQL, params | {"keys": raced})})
    if same:
        cur.execute(_TOUCH_SQL, params | {"ids": list(same.values())})
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


def _copy_new(cur, prepared: CopyChunk, new: list[int], source_id: int, run_id: int | None, cid: int | None,
              done: dict[str, tuple[int, bool]]) -> bool:
    """COPY the records at positions ``new`` (keys not stored) and add them to ``done``; False,
    with nothing written, when another writer stored one of the keys meanwhile."""
    ids = [rid for (rid,) in cur.execute(_IDS_SQL, {"n": len(new)})]
    run = b"\\N" if run_id is None else str(run_id).encode()
    tail = b"\t%d\t%s\t%s%s\n" % (source_id, run, run, b"" if cid is None else b"\t{%d}" % cid)
    lines = prepared.lines
    cur.execute("SAVEPOINT arhiva_new_keys")
    try:
        with cur.copy(_COPY_NEW % ("" if cid is None else ", collections")) as copy:
            copy.write(b"".join(b"%s\t%d%s" % (lines[i], rid, tail) for i, rid in zip(new, ids)))
    except psycopg.errors.UniqueViolation:
        cur.execute("ROLLBACK TO SAVEPOINT arhiva_new_keys")
        return False
    cur.execute("RELEASE SAVEPOINT arhiva_new_keys")
    keys = list(prepared.hashes)
    done.update((keys[i], (rid, True)) for i, rid in zip(new, ids))
    return True


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
    "RecordIn", "Rejection", "UpsertReport", "upsert_records", "bulk_upsert", "withdraw_records",
    "get_or_create_source", "get_or_create_collection", "add_to_collection", "validate",
]
