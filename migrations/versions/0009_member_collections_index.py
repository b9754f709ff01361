"""a record's collections answered by an index alone: (record_id, collection_id)

Facets count, for each match (or a hashed share of 2,500 of them), the collections it belongs
to. With an index on ``record_id`` alone each probe also read the membership's row from the
table for its ``collection_id``: 2,500 probes took 120 ms at 10 million records, most of it
random heap reads. The index on (record_id, collection_id) replaces it (it serves the foreign
key's lookups as well) and lets those probes be index-only scans. Building it reads the
memberships once (about 30 s for ten million on a 2-core machine).

Revision ID: 0009
Revises: 0008
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_collection_members_record_collection", "collection_members", ["record_id", "collection_id"])
    op.drop_index("ix_collection_members_record_id", table_name="collection_members")


def downgrade() -> None:
    op.create_index("ix_collection_members_record_id", "collection_members", ["record_id"])
    op.drop_index("ix_collection_members_record_collection", table_name="collection_members")
