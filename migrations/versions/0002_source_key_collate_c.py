"""record source keys compare bytewise (COLLATE "C"); sources of kind 'file' (arhiva load)

Source keys are identifiers, not words: ordering them by the database's locale buys nothing
and costs every comparison a strcoll() call (the unique index, the key-ordered locking and
the sorts of each ingestion batch). Byte order of UTF-8 is code-point order, the order
Python sorts them in.

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


OLD_KINDS = "('pastvu', 'page', 'iiif', 'oai', 'folder', 'archive')"
NEW_KINDS = "('pastvu', 'page', 'iiif', 'oai', 'folder', 'archive', 'file')"


def upgrade() -> None:
    # Only the collation changes: no table rewrite, the unique index is rebuilt.
    op.execute('ALTER TABLE records ALTER COLUMN source_key TYPE text COLLATE "C"')
    _kinds(NEW_KINDS)


def downgrade() -> None:
    # Sources loaded from files become 'folder' sources (the nearest older kind).
    op.execute("UPDATE sources SET kind = 'folder' WHERE kind = 'file'")
    _kinds(OLD_KINDS)
    op.execute('ALTER TABLE records ALTER COLUMN source_key TYPE text COLLATE "default"')


def _kinds(kinds: str) -> None:
    op.execute("ALTER TABLE sources DROP CONSTRAINT ck_sources_kind")
    op.execute(f"ALTER TABLE sources ADD CONSTRAINT ck_sources_kind CHECK (kind IN {kinds})")
