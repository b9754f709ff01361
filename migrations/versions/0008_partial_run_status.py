"""runs may end as 'partial': finished, but the source answered with errors (pages lost)

A crawl whose source refused pages (an OAI error other than noRecordsMatch, a list that could
not be completed, a feed or manifest that failed) used to end as 'succeeded'. The status check
of the three run tables now also allows 'partial'. Downgrading turns partial runs into failed
ones (the older schema has no word for them) and restores the old check.

Revision ID: 0008
Revises: 0003
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0008'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("crawl_runs", "training_runs", "colorization_runs")
NEW = "status IN ('running', 'succeeded', 'partial', 'failed', 'cancelled')"
OLD = "status IN ('running', 'succeeded', 'failed', 'cancelled')"


def _check(table: str, condition: str) -> None:
    op.drop_constraint(op.f(f"ck_{table}_status"), table, type_="check")
    op.create_check_constraint(op.f(f"ck_{table}_status"), table, condition)


def upgrade() -> None:
    for table in TABLES:
        _check(table, NEW)


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"UPDATE {table} SET status = 'failed' WHERE status = 'partial'")
        _check(table, OLD)
