"""Run and inspect Alembic migrations from code (the CLI and the embedded default use this)."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

import migrations

SCRIPT_LOCATION = Path(migrations.__file__).parent


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    cfg.attributes["url"] = engine.url.render_as_string(hide_password=False)
    return cfg


@dataclass
class MigrationState:
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def state(engine: Engine) -> MigrationState:
    script = ScriptDirectory.from_config(alembic_config(engine))
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return MigrationState(current=current, head=script.get_current_head())


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


_migrating = threading.Lock()


def ensure_current(engine: Engine) -> None:
    """Migrate to head if behind (the embedded default does this on every start).

    One migration at a time: threads of this process wait on a lock (Alembic's context is
    global), other processes on a PostgreSQL advisory lock; whoever comes second finds the
    catalogue current."""
    if state(engine).up_to_date:
        return
    with _migrating, engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(hashtextextended('arhiva:migrate', 0))"))
        conn.commit()
        try:
            if not state(engine).up_to_date:
                upgrade(engine)
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(hashtextextended('arhiva:migrate', 0))"))
            conn.commit()
