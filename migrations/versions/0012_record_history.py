"""record history: superseded payloads in ``record_history``, the current one on the record itself

Every record stored a first revision row beside itself: its raw payload and mapped fields a
second time, with two b-trees and two foreign keys to maintain. That row cost a sixth of storing
a new record (bench/catalog_bench.py, bulk_upsert of 100,000 new records, before and after
taking turns: 15,236 and 15,514 records/s best with it, 17,882 and 18,381 without) and doubled
the catalogue's payload bytes, for information the record already holds. Now, as in SQL:2011's
system-versioned tables, ``record_history`` keeps only the payloads a record *had*: when a
harvest changes a record, the version it replaces is moved there (with the run and time that
first saw it, and the run and time that replaced it), in the same statement that updates the
record.

``record_revisions`` becomes a view with the columns it had (less the surrogate ``id``): every
history row, then each record's current payload as its last revision, numbered after its
history, seen by the run that replaced the last history row (or, with no history, the run
that first saw the record). Queries that read revisions read the same rows as before.

Upgrading moves every revision that has a successor into the history and drops the rest (the
records hold them); downgrading puts the table back from the view.

Revision ID: 0012
Revises: 0011
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The mapped fields as a revision stores them (catalog.fields.MAPPED at this revision, plus extra).
MAPPED = ("title", "description", "date_text", "year_lo", "year_hi", "place", "lat", "lon", "direction", "author",
          "licence", "rights", "attribution", "url", "extra")
FIELDS_OF_R = "jsonb_build_object(" + ", ".join(f"'{c}', r.{c}" for c in MAPPED) + ")"
# A record's last history row (its number, and the run and time that replaced it), for r.
LAST = ("LEFT JOIN LATERAL (SELECT h.revision, h.replaced_run_id, h.replaced_at FROM record_history h "
        "WHERE h.record_id = r.id ORDER BY h.revision DESC LIMIT 1) last ON true")
# The current payload of r as a revision: numbered after its history, seen by the run that replaced
# the last history row or, without history, by the run that first saw the record.
CURRENT = (f"r.id AS record_id, coalesce(last.revision, 0) + 1 AS revision, r.payload_hash, r.raw, "
           f"{FIELDS_OF_R} AS fields, coalesce(last.replaced_run_id, r.first_seen_run_id) AS run_id, "
           f"coalesce(last.replaced_at, r.first_seen_at) AS seen_at")
VIEW = (
    "CREATE VIEW record_revisions AS "
    "SELECT h.record_id, h.revision, h.payload_hash, h.raw, h.fields, h.run_id, h.seen_at FROM record_history h "
    f"UNION ALL SELECT {CURRENT} FROM records r {LAST}"
)


def upgrade() -> None:
    op.create_table(
        'record_history',
        sa.Column('record_id', sa.BigInteger(), nullable=False),
        sa.Column('revision', sa.Integer(), nullable=False),
        sa.Column('payload_hash', sa.String(length=64), nullable=False),
        sa.Column('raw', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('fields', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=True),
        sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('replaced_run_id', sa.Integer(), nullable=True),
        sa.Column('replaced_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['record_id'], ['records.id'], name=op.f('fk_record_history_record_id_records'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['run_id'], ['crawl_runs.id'], name=op.f('fk_record_history_run_id_crawl_runs')),
        sa.ForeignKeyConstraint(['replaced_run_id'], ['crawl_runs.id'],
                                name=op.f('fk_record_history_replaced_run_id_crawl_runs')),
        sa.PrimaryKeyConstraint('record_id', 'revision', name=op.f('pk_record_history')),
    )
    # Each revision that has a successor, with the successor's run and time as what replaced it.
    op.execute(
        "INSERT INTO record_history (record_id, revision, payload_hash, raw, fields, run_id, seen_at, "
        "replaced_run_id, replaced_at) "
        "SELECT o.record_id, o.revision, o.payload_hash, o.raw, o.fields, o.run_id, o.seen_at, n.run_id, n.seen_at "
        "FROM record_revisions o JOIN record_revisions n ON n.record_id = o.record_id AND n.revision = o.revision + 1 "
        "ORDER BY o.record_id, o.revision")
    op.drop_table('record_revisions')
    op.execute(VIEW)
    op.execute("ANALYZE record_history")


def downgrade() -> None:
    op.execute("CREATE TEMP TABLE arhiva_revisions_down ON COMMIT DROP AS "
               "SELECT * FROM record_revisions ORDER BY record_id, revision")
    op.execute("DROP VIEW record_revisions")
    op.drop_table('record_history')
    op.create_table(
        'record_revisions',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('record_id', sa.BigInteger(), nullable=False),
        sa.Column('revision', sa.Integer(), nullable=False),
        sa.Column('payload_hash', sa.String(length=64), nullable=False),
        sa.Column('raw', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('fields', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"),
                  nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=True),
        sa.Column('seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['record_id'], ['records.id'], name=op.f('fk_record_revisions_record_id_records'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['run_id'], ['crawl_runs.id'], name=op.f('fk_record_revisions_run_id_crawl_runs')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_record_revisions')),
        sa.UniqueConstraint('record_id', 'revision', name='uq_record_revisions_record_rev'),
    )
    op.execute("INSERT INTO record_revisions (record_id, revision, payload_hash, raw, fields, run_id, seen_at) "
               "SELECT record_id, revision, payload_hash, raw, fields, run_id, seen_at FROM arhiva_revisions_down "
               "ORDER BY record_id, revision")
