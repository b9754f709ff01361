"""initial catalogue

Revision ID: 0001
Revises: 
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Folds case and diacritics (NFD, combining marks removed) so that "Chișinău",
# "Chisinau" and "CHIŞINĂU" — or "Ёлка" and "елка" — index alike.
#
# The search vector holds the words (text search configuration `arhiva`) plus
# place/time tokens no user text can produce: "~d193" for each decade the
# record's years overlap (open ends clamped to 1800..2039) and "~g1_47_28" /
# "~g01_470_288" for its 1° and 0.1° grid cells, and both combined ("~g01_470_288_d193"). A map +
# years + words query
# is then one GIN index scan; the exact interval and box are rechecked on the
# few candidate rows. Both functions are IMMUTABLE (the column is generated).
CREATE_FUNCTIONS = [
    # Words in Latin letters (Romanian, folded to ASCII) go to the Romanian stemmer, words in
    # other letters (Cyrillic) to the Russian one: one pass, one lexeme per word.
    "CREATE TEXT SEARCH CONFIGURATION arhiva (COPY = pg_catalog.romanian)",
    "ALTER TEXT SEARCH CONFIGURATION arhiva ALTER MAPPING FOR asciiword, asciihword, hword_asciipart "
    "WITH romanian_stem",
    "ALTER TEXT SEARCH CONFIGURATION arhiva ALTER MAPPING FOR word, hword, hword_part WITH russian_stem",
    r"""
CREATE OR REPLACE FUNCTION arhiva_fold(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
RETURN regexp_replace(normalize(lower(t), NFD), '[\u0300-\u036f]', '', 'g')
""",
    r"""
CREATE OR REPLACE FUNCTION arhiva_search_vector(t text, y_lo int, y_hi int, lat float8, lon float8)
RETURNS tsvector LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    f text := arhiva_fold(coalesce(t, ''));
    tokens text[] := '{}';
    cells text[] := '{}';
    cell text;
    d int;
BEGIN
    IF lat IS NOT NULL AND lon IS NOT NULL THEN
        cells := ARRAY['~g1_' || floor(lat)::int || '_' || floor(lon)::int,
                       '~g01_' || floor(lat * 10)::int || '_' || floor(lon * 10)::int];
        tokens := cells;
    END IF;
    IF y_lo IS NOT NULL OR y_hi IS NOT NULL THEN
        FOR d IN (least(greatest(coalesce(y_lo, 1800), 1800), 2039) / 10)
                 .. (least(greatest(coalesce(y_hi, 2039), 1800), 2039) / 10) LOOP
            tokens := tokens || ('~d' || d);
            FOREACH cell IN ARRAY cells LOOP  -- place × decade: a map + years query hits short lists
                tokens := tokens || (cell || '_d' || d);
            END LOOP;
        END LOOP;
    END IF;
    RETURN to_tsvector('arhiva'::regconfig, f) || array_to_tsvector(tokens);
END $$
""",
]


def upgrade() -> None:
    for ddl in CREATE_FUNCTIONS:
        op.execute(ddl)
    op.create_table('assets',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('media_type', sa.String(length=100), nullable=False),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.Column('phash', sa.String(length=16), nullable=True),
    sa.Column('colourfulness', sa.Double(), nullable=True),
    sa.Column('chroma_mean', sa.Double(), nullable=True),
    sa.Column('chroma_spread', sa.Double(), nullable=True),
    sa.Column('is_colour', sa.Boolean(), nullable=True),
    sa.Column('blob_key', sa.Text(), nullable=False),
    sa.Column('info', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('sha256', name=op.f('pk_assets'))
    )
    op.create_index(op.f('ix_assets_phash'), 'assets', ['phash'], unique=False)
    op.create_table('collections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_collections')),
    sa.UniqueConstraint('name', name=op.f('uq_collections_name'))
    )
    op.create_table('sources',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('base_url', sa.Text(), nullable=True),
    sa.Column('config', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('pastvu', 'page', 'iiif', 'oai', 'folder', 'archive')", name=op.f('ck_sources_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sources')),
    sa.UniqueConstraint('slug', name=op.f('uq_sources_slug'))
    )
    op.create_table('crawl_runs',
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agent', sa.String(length=200), nullable=False),
    sa.Column('code_version', sa.String(length=100), nullable=False),
    sa.Column('parameters', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=20), server_default='running', nullable=False),
    sa.Column('stats', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('running', 'succeeded', 'failed', 'cancelled')", name=op.f('ck_crawl_runs_status')),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], name=op.f('fk_crawl_runs_source_id_sources')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crawl_runs'))
    )
    op.create_index(op.f('ix_crawl_runs_source_id'), 'crawl_runs', ['source_id'], unique=False)
    op.create_table('training_runs',
    sa.Column('collection_id', sa.Integer(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agent', sa.String(length=200), nullable=False),
    sa.Column('code_version', sa.String(length=100), nullable=False),
    sa.Column('parameters', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=20), server_default='running', nullable=False),
    sa.Column('stats', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('running', 'succeeded', 'failed', 'cancelled')", name=op.f('ck_training_runs_status')),
    sa.ForeignKeyConstraint(['collection_id'], ['collections.id'], name=op.f('fk_training_runs_collection_id_collections')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_runs'))
    )
    op.create_table('model_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('checkpoint_sha256', sa.String(length=64), nullable=False),
    sa.Column('architecture', sa.String(length=200), nullable=False),
    sa.Column('config', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('metrics', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('training_run_id', sa.Integer(), nullable=True),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['checkpoint_sha256'], ['assets.sha256'], name=op.f('fk_model_versions_checkpoint_sha256_assets')),
    sa.ForeignKeyConstraint(['parent_id'], ['model_versions.id'], name=op.f('fk_model_versions_parent_id_model_versions')),
    sa.ForeignKeyConstraint(['training_run_id'], ['training_runs.id'], name=op.f('fk_model_versions_training_run_id_training_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_versions')),
    sa.UniqueConstraint('name', name=op.f('uq_model_versions_name'))
    )
    op.create_table('records',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('source_key', sa.Text(), nullable=False),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('date_text', sa.Text(), nullable=True),
    sa.Column('year_lo', sa.Integer(), nullable=True),
    sa.Column('year_hi', sa.Integer(), nullable=True),
    sa.Column('place', sa.Text(), nullable=True),
    sa.Column('lat', sa.Double(), nullable=True),
    sa.Column('lon', sa.Double(), nullable=True),
    sa.Column('direction', sa.String(length=20), nullable=True),
    sa.Column('author', sa.Text(), nullable=True),
    sa.Column('licence', sa.Text(), nullable=True),
    sa.Column('rights', sa.Text(), nullable=True),
    sa.Column('attribution', sa.Text(), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('extra', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('raw', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('payload_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=20), server_default='active', nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('first_seen_run_id', sa.Integer(), nullable=True),
    sa.Column('last_seen_run_id', sa.Integer(), nullable=True),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('search', postgresql.TSVECTOR(), sa.Computed("arhiva_search_vector(coalesce(title, '') || ' ' || coalesce(description, '') || ' ' || coalesce(place, '') || ' ' || coalesce(author, '') || ' ' || coalesce(date_text, ''), year_lo, year_hi, lat, lon)", persisted=True), nullable=True),
    sa.CheckConstraint("status IN ('active', 'withdrawn')", name=op.f('ck_records_status')),
    sa.CheckConstraint('lat IS NULL OR (lat >= -90 AND lat <= 90)', name=op.f('ck_records_lat_range')),
    sa.CheckConstraint('lon IS NULL OR (lon >= -180 AND lon <= 180)', name=op.f('ck_records_lon_range')),
    sa.CheckConstraint('year_lo IS NULL OR year_hi IS NULL OR year_lo <= year_hi', name=op.f('ck_records_year_order')),
    sa.ForeignKeyConstraint(['first_seen_run_id'], ['crawl_runs.id'], name=op.f('fk_records_first_seen_run_id_crawl_runs')),
    sa.ForeignKeyConstraint(['last_seen_run_id'], ['crawl_runs.id'], name=op.f('fk_records_last_seen_run_id_crawl_runs')),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], name=op.f('fk_records_source_id_sources')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_records')),
    sa.UniqueConstraint('source_id', 'source_key', name='uq_records_source_key')
    )
    op.create_index('ix_records_search', 'records', ['search'], unique=False, postgresql_using='gin')
    op.create_table('collection_members',
    sa.Column('collection_id', sa.Integer(), nullable=False),
    sa.Column('record_id', sa.BigInteger(), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['collection_id'], ['collections.id'], name=op.f('fk_collection_members_collection_id_collections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['record_id'], ['records.id'], name=op.f('fk_collection_members_record_id_records'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('collection_id', 'record_id', name=op.f('pk_collection_members'))
    )
    op.create_index(op.f('ix_collection_members_record_id'), 'collection_members', ['record_id'], unique=False)
    op.create_table('colorization_runs',
    sa.Column('collection_id', sa.Integer(), nullable=True),
    sa.Column('model_version_id', sa.Integer(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agent', sa.String(length=200), nullable=False),
    sa.Column('code_version', sa.String(length=100), nullable=False),
    sa.Column('parameters', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=20), server_default='running', nullable=False),
    sa.Column('stats', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('running', 'succeeded', 'failed', 'cancelled')", name=op.f('ck_colorization_runs_status')),
    sa.ForeignKeyConstraint(['collection_id'], ['collections.id'], name=op.f('fk_colorization_runs_collection_id_collections')),
    sa.ForeignKeyConstraint(['model_version_id'], ['model_versions.id'], name=op.f('fk_colorization_runs_model_version_id_model_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_colorization_runs'))
    )
    op.create_table('record_assets',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('record_id', sa.BigInteger(), nullable=False),
    sa.Column('asset_sha256', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=30), nullable=False),
    sa.Column('source_url', sa.Text(), nullable=True),
    sa.Column('first_seen_run_id', sa.Integer(), nullable=True),
    sa.Column('last_seen_run_id', sa.Integer(), nullable=True),
    sa.Column('etag', sa.Text(), nullable=True),
    sa.Column('last_modified', sa.Text(), nullable=True),
    sa.Column('crop_box', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['asset_sha256'], ['assets.sha256'], name=op.f('fk_record_assets_asset_sha256_assets')),
    sa.ForeignKeyConstraint(['first_seen_run_id'], ['crawl_runs.id'], name=op.f('fk_record_assets_first_seen_run_id_crawl_runs')),
    sa.ForeignKeyConstraint(['last_seen_run_id'], ['crawl_runs.id'], name=op.f('fk_record_assets_last_seen_run_id_crawl_runs')),
    sa.ForeignKeyConstraint(['record_id'], ['records.id'], name=op.f('fk_record_assets_record_id_records'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_record_assets')),
    sa.UniqueConstraint('record_id', 'asset_sha256', 'role', name='uq_record_assets_link')
    )
    op.create_index(op.f('ix_record_assets_asset_sha256'), 'record_assets', ['asset_sha256'], unique=False)
    op.create_index(op.f('ix_record_assets_record_id'), 'record_assets', ['record_id'], unique=False)
    op.create_table('record_revisions',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('record_id', sa.BigInteger(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('payload_hash', sa.String(length=64), nullable=False),
    sa.Column('raw', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('fields', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['record_id'], ['records.id'], name=op.f('fk_record_revisions_record_id_records'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['crawl_runs.id'], name=op.f('fk_record_revisions_run_id_crawl_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_record_revisions')),
    sa.UniqueConstraint('record_id', 'revision', name='uq_record_revisions_record_rev')
    )
    op.create_table('training_examples',
    sa.Column('model_version_id', sa.Integer(), nullable=False),
    sa.Column('asset_sha256', sa.String(length=64), nullable=False),
    sa.Column('record_id', sa.BigInteger(), nullable=True),
    sa.Column('split', sa.String(length=10), nullable=False),
    sa.CheckConstraint("split IN ('train', 'val')", name=op.f('ck_training_examples_split')),
    sa.ForeignKeyConstraint(['asset_sha256'], ['assets.sha256'], name=op.f('fk_training_examples_asset_sha256_assets')),
    sa.ForeignKeyConstraint(['model_version_id'], ['model_versions.id'], name=op.f('fk_training_examples_model_version_id_model_versions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['record_id'], ['records.id'], name=op.f('fk_training_examples_record_id_records')),
    sa.PrimaryKeyConstraint('model_version_id', 'asset_sha256', name=op.f('pk_training_examples'))
    )
    op.create_index(op.f('ix_training_examples_asset_sha256'), 'training_examples', ['asset_sha256'], unique=False)
    op.create_table('colorizations',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('source_sha256', sa.String(length=64), nullable=False),
    sa.Column('result_sha256', sa.String(length=64), nullable=True),
    sa.Column('model_version_id', sa.Integer(), nullable=False),
    sa.Column('params_hash', sa.String(length=64), nullable=False),
    sa.Column('params', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('record_id', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=20), server_default='done', nullable=False),
    sa.Column('claimed_by', sa.Text(), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('claimed', 'done', 'failed')", name=op.f('ck_colorizations_status')),
    sa.ForeignKeyConstraint(['model_version_id'], ['model_versions.id'], name=op.f('fk_colorizations_model_version_id_model_versions')),
    sa.ForeignKeyConstraint(['record_id'], ['records.id'], name=op.f('fk_colorizations_record_id_records')),
    sa.ForeignKeyConstraint(['result_sha256'], ['assets.sha256'], name=op.f('fk_colorizations_result_sha256_assets')),
    sa.ForeignKeyConstraint(['run_id'], ['colorization_runs.id'], name=op.f('fk_colorizations_run_id_colorization_runs')),
    sa.ForeignKeyConstraint(['source_sha256'], ['assets.sha256'], name=op.f('fk_colorizations_source_sha256_assets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_colorizations')),
    sa.UniqueConstraint('source_sha256', 'model_version_id', 'params_hash', name='uq_colorizations_job')
    )
    op.create_index(op.f('ix_colorizations_result_sha256'), 'colorizations', ['result_sha256'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_colorizations_result_sha256'), table_name='colorizations')
    op.drop_table('colorizations')
    op.drop_index(op.f('ix_training_examples_asset_sha256'), table_name='training_examples')
    op.drop_table('training_examples')
    op.drop_table('record_revisions')
    op.drop_index(op.f('ix_record_assets_record_id'), table_name='record_assets')
    op.drop_index(op.f('ix_record_assets_asset_sha256'), table_name='record_assets')
    op.drop_table('record_assets')
    op.drop_table('colorization_runs')
    op.drop_index(op.f('ix_collection_members_record_id'), table_name='collection_members')
    op.drop_table('collection_members')
    op.drop_index('ix_records_search', table_name='records', postgresql_using='gin')
    op.drop_table('records')
    op.drop_table('model_versions')
    op.drop_table('training_runs')
    op.drop_index(op.f('ix_crawl_runs_source_id'), table_name='crawl_runs')
    op.drop_table('crawl_runs')
    op.drop_table('sources')
    op.drop_table('collections')
    op.drop_index(op.f('ix_assets_phash'), table_name='assets')
    op.drop_table('assets')
    op.execute("DROP FUNCTION IF EXISTS arhiva_search_vector(text, int, int, float8, float8)")
    op.execute("DROP FUNCTION IF EXISTS arhiva_fold(text)")
    op.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS arhiva")
