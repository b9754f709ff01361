"""records found by their OAI identifier: a partial index for the re-harvest of moved item pages

An OAI-PMH record is catalogued under its item page's URL (``source_key``) and keeps its OAI
identifier in ``extra ->> 'oai_identifier'``. When a repository moves its item pages (a DSpace or
Islandora upgrade gives every handle a new URL) the identifier stays: a re-harvest looks the
identifiers it did not find by key up here and updates the record it had (a revision, the new
page in ``url``), instead of cataloguing the photograph a second time. Only records that carry an
OAI identifier are in the index; the rest of the catalogue pays one test of ``extra ? ...`` per
row written.

Revision ID: 0015
Revises: 0014
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_records_oai_identifier ON records (source_id, (extra ->> 'oai_identifier')) "
               "WHERE extra ? 'oai_identifier'")


def downgrade() -> None:
    op.execute("DROP INDEX ix_records_oai_identifier")
