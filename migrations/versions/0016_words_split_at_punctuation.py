"""search words split at punctuation, in the index as in a query

PostgreSQL's text parser keeps some runs of letters and punctuation as one token: a host
(``O.Popescu``, ``vedere.gara``), an address (``http://example.org/foto/gara``, ``user@mail.md``),
a file path (``nr.5/7``), a signed number (the ``-1840`` of ``1836–1840``, the ``-08`` of
``1989-08-27``), and it drops what looks like a tag (``Strada <Lenin>``, ``<script>``). A search
reads its words the way a person does (letters and digits, anything else between them), so a
record titled "foto: O.Popescu" was not found by ``popescu``, nor "Catedrala (1836–1840)" by
``1840``. The fold now turns every run of ASCII punctuation into a space after ``unaccent``
(which has already turned « » „ “ — – into ASCII), so the parser sees only words; a query's words
are folded by the same function, so both sides agree. Phrases still work (``"O.Popescu"`` is
*o* then *popescu*; ``"strada Alba-Iulia"`` as before).

The search column is dropped and added again, so every record's vector is recomputed (a table
rewrite, as in migrations 0003 and 0011: a few minutes for ten million records on a 2-core
machine), and the search indexes are built again. Downgrading puts 0003's fold back the same way.

Revision ID: 0016
Revises: 0015
"""
from __future__ import annotations

import importlib
from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# ASCII punctuation: ! to /, : to @, [ to ` (the backslash escaped), { to ~
PUNCTUATION = r"[!-/:-@\[-`{-~]+"
SPLIT_FOLD = """
CREATE OR REPLACE FUNCTION arhiva_fold(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
RETURN regexp_replace({schema}.unaccent('{schema}.unaccent'::regdictionary, replace(lower(t), 'ӂ', 'ж')),
                      '{punctuation}', ' ', 'g')
"""


def _schema() -> str:
    return op.get_bind().execute(text(
        "SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'unaccent'")).scalar_one()


def _rebuild(fold_ddl: str) -> None:
    op.execute("SET LOCAL maintenance_work_mem = '256MB'")
    importlib.import_module("migrations.versions.0003_fold_with_unaccent")._rebuild_search(fold_ddl)
    op.execute("ANALYZE records")


def upgrade() -> None:
    _rebuild(SPLIT_FOLD.format(schema=_schema(), punctuation=PUNCTUATION))


def downgrade() -> None:
    _rebuild(importlib.import_module("migrations.versions.0003_fold_with_unaccent").NEW_FOLD.format(schema=_schema()))
