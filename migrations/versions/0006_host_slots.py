"""host_slots: per-host politeness shared by crawl processes on any machine

One row per remote host: the earliest time the next request to it may start.
Crawl processes reserve start times from it (``catalog.hostslots``), so two
crawls of one host together keep the host's delay.

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "host_slots",
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("host", name="pk_host_slots"),
    )


def downgrade() -> None:
    op.drop_table("host_slots")
