"""Engine and sessions for the catalogue, from the one settings object."""
from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TypeVar

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from catalog.settings import Settings, get_settings

T = TypeVar("T")


class DatabaseUnavailable(RuntimeError):
    """The catalogue database cannot be reached; the message is one line for the user."""


def resolve_url(settings: Settings | None = None) -> str:
    """The catalogue URL: ``ARHIVA_DATABASE_URL`` or the embedded server's."""
    settings = settings or get_settings()
    if settings.database_url:
        url = settings.database_url
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        if not url.startswith("postgresql"):
            raise DatabaseUnavailable(f"ARHIVA_DATABASE_URL must be a PostgreSQL URL, got {make_url(url).drivername!r}")
        return url
    from catalog.embedded import EmbeddedUnavailable, embedded_url

    try:
        return embedded_url(settings.embedded_pgdata)
    except EmbeddedUnavailable as exc:
        raise DatabaseUnavailable(str(exc)) from exc


def describe_url(url: str) -> str:
    """URL without password, for messages."""
    return make_url(url).render_as_string(hide_password=True)


# How arhiva's engines talk to PostgreSQL (the benchmarks use the same). prepare_threshold=None:
# no server-side prepared statements, so PostgreSQL plans each search with its real tokens and
# ranges (a generic plan can be far worse for these queries: a window of 64,000 records tested
# for a word took 164-178 ms with the word's tsquery built again for every row, 31 ms planned
# with the word known).
ENGINE_OPTIONS: dict = {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 5,
                        "connect_args": {"prepare_threshold": None}}


@lru_cache(maxsize=8)
def _engine_for(url: str) -> Engine:
    return create_engine(url, **ENGINE_OPTIONS)


def get_engine(settings: Settings | None = None, *, check: bool = True) -> Engine:
    url = resolve_url(settings)
    engine = _engine_for(url)
    if check:
        check_connection(engine)
    return engine


def check_connection(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # OperationalError and friends
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
        raise DatabaseUnavailable(
            f"cannot reach the catalogue database at {describe_url(str(engine.url))}: {reason}"
        ) from None


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A transaction: commits on success, rolls back on any error."""
    engine = engine or get_engine()
    with session_factory(engine)() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# PostgreSQL broke a transaction off to end a deadlock, or a serialization failure
RETRIED_STATES = ("40P01", "40001")


def run_retrying(work: Callable[[], T], attempts: int = 3) -> T:
    """``work()`` (a transaction of its own: it opens and commits its session), run again when
    PostgreSQL broke it off to end a deadlock (the other transaction then went on, so the same
    work goes through once it is done) or a serialization failure; any other error, and the
    last attempt's, is raised. Two writers of the same records in different orders deadlock now
    and then (a load into a collection and the web API adding some of its records to it did)."""
    for attempt in range(attempts):
        try:
            return work()
        except Exception as exc:
            state = getattr(exc, "sqlstate", None) or getattr(getattr(exc, "orig", None), "sqlstate", None)
            if attempt + 1 >= attempts or state not in RETRIED_STATES:
                raise
            time.sleep(0.05 * (attempt + 1) * (1 + random.random()))
    raise AssertionError("unreachable")


class CatalogueNotMigrated(DatabaseUnavailable):
    pass


def open_catalog(settings: Settings | None = None, *, migrate: bool | None = None) -> Engine:
    """The engine of a ready catalogue.

    The embedded default is migrated automatically. A configured server is
    migrated only when asked (``arhiva db upgrade``); otherwise an out-of-date
    schema gives one clear line.
    """
    from catalog import migrate as migrations

    settings = settings or get_settings()
    engine = get_engine(settings)
    auto = settings.database_url is None if migrate is None else migrate
    if auto:
        migrations.ensure_current(engine)
        return engine
    st = migrations.state(engine)
    if not st.up_to_date:
        raise CatalogueNotMigrated(
            f"the catalogue at {describe_url(str(engine.url))} is at schema revision {st.current or 'none'}, "
            f"this arhiva needs {st.head}: run `arhiva db upgrade`"
        )
    return engine


MEMORY_SETTINGS = ("work_mem", "maintenance_work_mem")


@contextmanager
def local_settings(session: Session, **values: str) -> Iterator[None]:
    """PostgreSQL settings for the statements inside (``jit="off"``), then as the caller had them;
    a memory setting (``work_mem="32MB"``) is raised to the value, never lowered.

    One round trip saves and sets them (``set_config(..., true)``: this transaction only). They are
    put back when the block ends normally; after an error the transaction (or savepoint) is rolled
    back, which drops them anyway, and a statement in an aborted transaction would only hide the
    error."""
    names = list(values)
    if not names:
        yield
        return

    def new(i: int, n: str) -> str:  # memory is only ever raised: a server given more keeps it
        return (f"CASE WHEN pg_size_bytes(current_setting('{n}')) < pg_size_bytes(:v{i}) THEN :v{i} "
                f"ELSE current_setting('{n}') END" if n in MEMORY_SETTINGS else f":v{i}")

    saved = session.execute(text("SELECT " + ", ".join(
        [f"current_setting('{n}')" for n in names] + [f"set_config('{n}', {new(i, n)}, true)"
                                                      for i, n in enumerate(names)])),
        {f"v{i}": str(v) for i, v in enumerate(values.values())}).one()[:len(names)]
    yield
    session.execute(text("SELECT " + ", ".join(f"set_config('{n}', :v{i}, true)" for i, n in enumerate(names))),
                    {f"v{i}": v for i, v in enumerate(saved)})

