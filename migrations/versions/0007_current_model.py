"""one current model version, promoted on evidence; the colorized version each record shows

``model_versions`` gains ``is_current`` (at most one row: a partial unique index),
``promoted_at``, ``evaluation`` (the held-out photos, the version's metrics on them and the
metrics of the version it was compared with) and ``decision`` (why it is, or is not, current).
``record_assets`` gains ``shown``: the colorized version a record shows first (at most one per
record, only on colorized links).

Existing catalogues: the newest model version becomes current (what colorization used by
default before), and each record shows the result of that version if it has one, else its
newest colorized version. Adding columns with constant defaults does not rewrite the tables;
the two updates touch one row per model version and one per colorized record.

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("model_versions", sa.Column("is_current", sa.Boolean(), server_default=sa.text("false"),
                                              nullable=False))
    op.add_column("model_versions", sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("model_versions", sa.Column("evaluation", postgresql.JSONB(astext_type=sa.Text()),
                                              server_default=sa.text("'{}'::jsonb"), nullable=False))
    op.add_column("model_versions", sa.Column("decision", sa.Text(), nullable=True))
    op.create_index("uq_model_versions_current", "model_versions", ["is_current"], unique=True,
                    postgresql_where=sa.text("is_current"))
    op.add_column("record_assets", sa.Column("shown", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    op.create_check_constraint("ck_record_assets_shown_colorized", "record_assets", "NOT shown OR role = 'colorized'")
    op.create_index("uq_record_assets_shown", "record_assets", ["record_id"], unique=True,
                    postgresql_where=sa.text("shown"))
    op.execute("""
        UPDATE model_versions SET is_current = true, promoted_at = now(),
               decision = 'current: the newest version when arhiva began to keep one current model (migration 0006)'
        WHERE id = (SELECT max(id) FROM model_versions)
    """)
    op.execute("""
        UPDATE record_assets SET shown = true WHERE id IN (
            SELECT DISTINCT ON (ra.record_id) ra.id
            FROM record_assets ra
            LEFT JOIN colorizations c ON c.result_sha256 = ra.asset_sha256
                 AND c.model_version_id = (SELECT id FROM model_versions WHERE is_current)
            WHERE ra.role = 'colorized'
            ORDER BY ra.record_id, (c.id IS NOT NULL) DESC, ra.id DESC)
    """)


def downgrade() -> None:
    op.drop_index("uq_record_assets_shown", table_name="record_assets")
    op.drop_constraint("ck_record_assets_shown_colorized", "record_assets", type_="check")
    op.drop_column("record_assets", "shown")
    op.drop_index("uq_model_versions_current", table_name="model_versions")
    for col in ("decision", "evaluation", "promoted_at", "is_current"):
        op.drop_column("model_versions", col)
