"""Shared helpers for the benchmarks: a scratch database and a table printer."""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager

import psycopg
from sqlalchemy import create_engine

from catalog.db import ENGINE_OPTIONS

SERVER = os.environ.get("ARHIVA_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")


@contextmanager
def scratch_database(prefix: str = "arhiva_bench", keep: bool = False, migrated: bool = True):
    """A fresh database, migrated to arhiva's schema unless not ``migrated`` (e.g. for Prefect's
    server); dropped afterwards unless keep."""
    from catalog import migrate

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    engine = create_engine(SERVER.replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}", **ENGINE_OPTIONS)
    try:
        if migrated:
            migrate.upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        if not keep:
            with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    cells = [[str(c) for c in r] for r in rows]
    if not cells:
        print(f"\n{title}\n(no rows)")
        return
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")


def named_database(name: str):
    """An engine on database ``name`` (created and migrated when missing; kept afterwards): a large
    benchmark catalogue filled once and measured many times."""
    from catalog import migrate

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    engine = create_engine(SERVER.replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}", **ENGINE_OPTIONS)
    migrate.upgrade(engine)
    return engine
