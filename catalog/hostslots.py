"""Per-host politeness shared by every crawl process, on any machine, through PostgreSQL.

Two limits, both keyed by the host name:

* **delay**: the row ``host_slots(host, next_at)`` holds the earliest start of the next
  request. A request reserves its start time in one statement
  (``next_at = greatest(next_at, now) + delay``, returning the old value) and waits
  until then, so the starts of all processes' requests to a host are at least
  ``delay`` apart. The row is locked only for that statement.
* **concurrency**: a request holds one of ``n`` session advisory locks
  ``(hash(host), i)`` while it is downloaded, each on a connection of its own. A
  request that finds every slot taken waits in PostgreSQL's lock queue (first come,
  first served: a process that just let go cannot take the slot again ahead of one
  that was waiting). A process that dies loses its connections and, with them, its
  locks: nothing stays taken.

``HostGate.enter`` takes a slot and reserves the start (one round trip when a slot is
free); ``leave`` gives the slot back. Both block: call them from a thread.
"""
from __future__ import annotations

import random
import threading
import zlib

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

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
    SELECT i FROM generate_series(0, CAST(:n AS int) - 1) AS i WHERE pg_try_advisory_lock(CAST(:key AS int), i) LIMIT 1
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
    """One process's door to the shared per-host limits: a connection for each request holding a slot."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._idle: list = []
        self._busy: dict[tuple[str, int], list] = {}
        self._lock = threading.Lock()
        self._closed = False

    def _take(self):
        with self._lock:
            if self._idle:
                return self._idle.pop()
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql(f"SET lock_timeout = '{WAIT_STEP}'")
        return conn

    def enter(self, host: str, delay: float, concurrency: int = 1) -> tuple[int, float] | None:
        """Take one of ``concurrency`` slots of ``host`` (waiting in line while all are taken) and
        reserve a start time: (slot, seconds to wait before starting, ≥ 0); None once closed."""
        params = {"n": max(1, concurrency), "key": host_key(host), "host": host, "delay": max(0.0, float(delay))}
        conn = self._take()
        try:
            row = conn.execute(_TRY, params).first()
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
        with self._lock:
            self._busy.setdefault((host, row.i), []).append(conn)
        return row.i, max(0.0, float(row.wait))

    def leave(self, host: str, slot: int) -> None:
        with self._lock:
            conns = self._busy.get((host, slot))
            conn = conns.pop() if conns else None
        if conn is None:
            return
        try:
            conn.execute(_LEAVE, {"key": host_key(host), "i": slot})
        except BaseException:
            _drop(conn)
            raise
        with self._lock:
            if self._closed:
                _drop(conn)
            else:
                self._idle.append(conn)

    def close(self) -> None:
        """Close every connection (their advisory locks go with them)."""
        with self._lock:
            self._closed = True
            conns = self._idle + [c for cs in self._busy.values() for c in cs]
            self._idle, self._busy = [], {}
        for conn in conns:
            _drop(conn)


def _drop(conn) -> None:
    """Really close (not back to the engine's pool): the session's advisory locks must go with it."""
    try:
        conn.invalidate()
    finally:
        conn.close()
