"""search vectors from at most 100,000 characters of text; failed colorizations keep their reason

A record whose text makes a search vector over PostgreSQL's 1 MB limit could not be stored at
all (and, before per-record bisection, failed its whole batch). The vector is now built from the
first 100,000 characters of the record's words (title, description, place, author, date): even
100,000 one-letter words in four-byte letters stay under the limit. The full text is stored as
before. Vectors already stored are not recomputed: a record with more text than that keeps its
longer vector until it changes (it was under the limit, or it could not have been stored).

Colorizations get ``error``: the reason a photo could not be colorized by a model version with
given parameters (status ``failed``, no result), so later runs skip it unless asked to retry.

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

import importlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH_TEXT_CHARS = 100_000  # catalog.records_in.SEARCH_TEXT_CHARS
FULL_TEXT = "arhiva_fold(coalesce(t, ''))"
CAPPED_TEXT = f"arhiva_fold(left(coalesce(t, ''), {SEARCH_TEXT_CHARS}))"


def _search_vector_ddl() -> str:
    """arhiva_search_vector as the first migration made it (this one changes one expression)."""
    first = importlib.import_module("migrations.versions.0001_initial_catalogue")
    ddl = next(f for f in first.CREATE_FUNCTIONS if "FUNCTION arhiva_search_vector" in f)
    assert FULL_TEXT in ddl
    return ddl


def upgrade() -> None:
    op.execute(_search_vector_ddl().replace(FULL_TEXT, CAPPED_TEXT))
    op.add_column("colorizations", sa.Column("error", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("colorizations", "error")
    op.execute(_search_vector_ddl())
