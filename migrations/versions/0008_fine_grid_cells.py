"""search vector: grid cells of 0.01° (about 1 km) beside the 1° and 0.1° ones

A search for a small box in a dense town (a few streets of Chișinău, a decade, a word) was
answered by the 0.1° cells (about 11 × 8 km): in the benchmark's 10-million-record catalogue,
where half the records sit around one town, nine in ten of the records those cells gave the
search were then read from the table only to be dropped by the exact box test (p95 over a
second). Each record with coordinates now also carries its 0.01° cell, alone and with each of
its decades, and a box of up to 64 such cells (about 0.08° × 0.08°) is looked up by them.

The function is replaced and the search column dropped and added again, so every record's
vector is recomputed (a table rewrite, like migration 0003: about 20 s per million records on
a 2-core machine) and its GIN index rebuilt. The index grows by about a fifth. Downgrading puts
the old function back the same way.

Revision ID: 0008
Revises: 0007
"""
from __future__ import annotations

import importlib
from collections.abc import Sequence

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COARSE_CELL = "'~g01_' || floor(lat * 10)::int || '_' || floor(lon * 10)::int"
FINE_CELL = "'~g001_' || floor(lat * 100)::int || '_' || floor(lon * 100)::int"


def _search_vector_ddl() -> str:
    """arhiva_search_vector as migration 0005 left it (text capped at 100,000 characters)."""
    capped = importlib.import_module("migrations.versions.0005_record_limits_failed_colorizations")
    ddl = capped._search_vector_ddl().replace(capped.FULL_TEXT, capped.CAPPED_TEXT)
    assert COARSE_CELL + "]" in ddl and capped.CAPPED_TEXT in ddl
    return ddl


def fine_cells_ddl() -> str:
    """arhiva_search_vector as this migration makes it."""
    return _search_vector_ddl().replace(COARSE_CELL + "]", f"{COARSE_CELL},\n{' ' * 23}{FINE_CELL}]")


def upgrade() -> None:
    _rebuild_search(fine_cells_ddl())


def downgrade() -> None:
    _rebuild_search(_search_vector_ddl())


def _rebuild_search(function_ddl: str) -> None:
    """Drop the search column and its index, replace the function, add both again (as 0003 does)."""
    importlib.import_module("migrations.versions.0003_fold_with_unaccent")._rebuild_search(function_ddl)
