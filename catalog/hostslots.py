"""Per-host politeness shared by every crawl process, on any machine, through PostgreSQL.

Two limits, both keyed by the host name:

* **delay**: the row ``host_slots(host, next_at)`` holds the earliest start of the next
  request. A request reserves its start time in one statement
  (``next_at = greatest(next_at, now) + delay``, returning the old value) and waits
  until then, so the starts of all processes' requests to a host are at least
  ``delay`` apart. The row is locked only for that statement.
* **concurrency**: a request holds one of ``n`` session advisory locks
  ``(hash(host), i)`` while it is downloaded. A free slot is taken on the process's
  main connection (one round trip, lock and start time together); a request that finds
  every slot taken waits in PostgreSQL's lock queue on a connection of its own (first
  come, first served: a process that just let go cannot take the slot again ahead of
  one that was waiting). A process that dies loses its connections and, with them,
  its locks: nothing stays taken.

The gate has its own connections (never the crawl's pool, whose connections the
catalogue writes need): one when no other process competes for the host, one more
per request waiting in line. ``enter`` and ``leave`` block: call them from a thread.
"""
from __future__ import annotations

import random
import threading
import zlib

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

NAMESPACE = "arhiva-host:"
WAIT_STEP = "1s"   # a blocked wait is retried every WAIT_STEP, so a closing crawl is not held up

_RESERVE = """
    INSERT INTO host_slots AS h (host, next_at)
    SELECT :host, clock_timestamp() + make_interval(secs => :delay) FROM slot
    ON CONFLICT (host) DO UPDATE SET next_at = greatest(h.next_at, clock_timestamp()) + make_interval(secs => :delay)
    RETURNING h.next_at
"""
_RESULT = "SELECT slot.i, extract(epoch FROM reserved.next_at - clock_timestamp()) - :delay AS wait FROM slot, reserved"
_TRY = text(f"""
WITH slot AS (
    SELECT i FROM generate_series(0, CAST(:n AS int) - 1) AS i
    WHERE i <> ALL(CAST(:held AS int[])) AND pg_try_advisory_lock(CAST(:key AS int), i) LIMIT 1
), reserved AS ({_RESERVE})
{_RESULT}""")
_WAIT = text(f"""
WITH slot AS (SELECT CAST(:i AS int) AS i FROM (SELECT pg_advisory_lock(CAST(:key AS int), CAST(:i AS int))) AS locked),
reserved AS ({_RESERVE})
{_RESULT}""")
_LEAVE = text("SELECT pg_advisory_unlock(CAST(:key AS int), CAST(:i AS int))")


def host_key(host: str) -> int:
    """The advisory lock key of a host (a signed 32-bit integer)."""
    h = zlib.crc32((NAMESPACE + host.lower()).encode())
    return h - (1 << 32) if h >= 1 << 31 else h


class HostGate:
    """One process's door to the shared per-host limits (thread-safe)."""

    def __init__(self, engine: Engine):
        self.engine = create_engine(engine.url, poolclass=NullPool)
        self._main = None
        self._main_lock = threading.Lock()   # the main connection runs one statement at a time
        self._lock = threading.Lock()        # the bookkeeping below
        self._spare: list = []
        self._held: dict[tuple[str, int], object] = {}   # (host, slot) → the connection holding its lock
        self._closed = False

    def _connect(self):
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql(f"SET lock_timeout = '{WAIT_STEP}'")
        return conn

    def enter(self, host: str, delay: float, concurrency: int = 1) -> tuple[int, float] | None:
        """Take one of ``concurrency`` slots of ``host`` (waiting in line while all are taken) and
        reserve a start time: (slot, seconds to wait before starting, ≥ 0); None once closed."""
        params = {"n": max(1, concurrency), "key": host_key(host), "host": host, "delay": max(0.0, float(delay))}
        with self._main_lock:
            if self._closed:
                return None
            if self._main is None:
                self._main = self._connect()
            with self._lock:
                held = [i for h, i in self._held if h == host]  # a session's advisory locks are re-entrant
            try:
                row = self._main.execute(_TRY, params | {"held": held}).first()
            except BaseException:
                _drop(self._main)
                self._main = None
                raise
            if row is not None:
                return self._took(host, row, self._main)
        return self._wait(host, params)

    def _wait(self, host: str, params: dict) -> tuple[int, float] | None:
        with self._lock:
            conn = self._spare.pop() if self._spare else None
        conn = conn or self._connect()
        row = None
        try:
            while row is None and not self._closed:
                try:
                    row = conn.execute(_WAIT, params | {"i": random.randrange(params["n"])}).first()
                except OperationalError as exc:
                    if getattr(exc.orig, "sqlstate", None) != "55P03":  # not our lock_timeout: a real error
                        raise
        except BaseException:
            _drop(conn)
            raise
        if row is None:
            _drop(conn)
            return None
        return self._took(host, row, conn)

    def _took(self, host: str, row, conn) -> tuple[int, float]:
        with self._lock:
            self._held[(host, row.i)] = conn
        return row.i, max(0.0, float(row.wait))

    def leave(self, host: str, slot: int) -> None:
        with self._lock:
            conn = self._held.pop((host, slot), None)
        if conn is None:
            return
        params = {"key": host_key(host), "i": slot}
        if conn is self._main:
            with self._main_lock:
                if conn is self._main:  # not dropped meanwhile (its locks went with it)
                    conn.execute(_LEAVE, params)
            return
        try:
            conn.execute(_LEAVE, params)
        except BaseException:
            _drop(conn)
            raise
        with self._lock:
            if not self._closed:
                self._spare.append(conn)
                return
        _drop(conn)

    def close(self) -> None:
        """Close every connection (their advisory locks go with them)."""
        self._closed = True
        with self._lock:
            conns = self._spare + [c for c in self._held.values() if c is not self._main]
            self._spare, self._held = [], {}
        for conn in conns:
            _drop(conn)
        with self._main_lock:
            if self._main is not None:
                _drop(self._main)
                self._main = None
        self.engine.dispose()


def _drop(conn) -> None:
    """Really close (not back to the engine's pool): the session's advisory locks must go with it."""
    try:
        conn.invalidate()
    finally:
        conn.close()
