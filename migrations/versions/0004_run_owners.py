"""runs carry their owner (host, process) and a heartbeat; statuses 'partial' and 'skipped'

A run whose process was killed used to stay 'running' forever. Each run row now names the
host and process that own it (with the process's start time, so a reused process id is not
mistaken for the owner) and the time of its owner's last heartbeat; the next command that
lists or starts runs closes a run whose owner is gone as failed. 'partial' ends a run whose
source answered some requests with errors; 'skipped' one that found nothing to do.

Adding nullable columns rewrites nothing: instant on any catalogue.

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("crawl_runs", "training_runs", "colorization_runs")
OLD = "('running', 'succeeded', 'failed', 'cancelled')"
NEW = "('running', 'succeeded', 'partial', 'skipped', 'failed', 'cancelled')"


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column('owner_host', sa.Text(), nullable=True))
        op.add_column(table, sa.Column('owner_pid', sa.Integer(), nullable=True))
        op.add_column(table, sa.Column('owner_start', sa.Text(), nullable=True))
        op.add_column(table, sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))
        _statuses(table, NEW)
        op.create_index(f'ix_{table}_running', table, ['id'], postgresql_where=sa.text("status = 'running'"))


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(f'ix_{table}_running', table_name=table)
        # the older schema has no word for these: a partial run lost pages, a skipped one had nothing to do
        op.execute(f"UPDATE {table} SET status = 'failed' WHERE status = 'partial'")
        op.execute(f"UPDATE {table} SET status = 'succeeded' WHERE status = 'skipped'")
        _statuses(table, OLD)
        for column in ('heartbeat_at', 'owner_start', 'owner_pid', 'owner_host'):
            op.drop_column(table, column)


def _statuses(table: str, statuses: str) -> None:
    op.execute(f"ALTER TABLE {table} DROP CONSTRAINT ck_{table}_status")
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT ck_{table}_status CHECK (status IN {statuses})")
