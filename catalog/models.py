"""The catalogue schema: typed SQLAlchemy 2 models.

Names follow the archive's language: source, record, revision, asset, run,
collection, model version, colorization. Every activity (crawl, training,
colorization) is a run row (a PROV Activity) and everything it produced
points back to it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SOURCE_KINDS = ("pastvu", "page", "iiif", "oai", "folder", "archive", "file")
RUN_STATUSES = ("running", "succeeded", "partial", "skipped", "failed", "cancelled")
RECORD_STATUSES = ("active", "withdrawn")

# Search: the generated column holds the folded, stemmed words (Romanian and
# Russian) plus decade, start/end-year and grid-cell tokens; SQL functions arhiva_fold and
# arhiva_search_vector are created by the first migration, arhiva_fold redone
# with unaccent by the third and split at punctuation by migration 0016; a ``~k<id>`` token for
# each of the record's collections (arhiva_collection_tokens, migration 0017).
WORD_PLACES_EXPR = "arhiva_word_place_keys(search, year_lo, year_hi, lat, lon)"
SEARCH_EXPR = "arhiva_search_vector(coalesce(title, '') || ' ' || coalesce(description, '') || ' ' || coalesce(place, '') || ' ' || coalesce(author, '') || ' ' || coalesce(date_text, ''), year_lo, year_hi, lat, lon) || arhiva_collection_tokens(collections)"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSONB, datetime: DateTime(timezone=True)}


def _now():
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Source(Base):
    __tablename__ = "sources"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    base_url: Mapped[str | None] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = _now()
    __table_args__ = (CheckConstraint(f"kind IN {SOURCE_KINDS}", name="kind"),)


class _RunMixin:
    """A PROV Activity: what ran, which code, with which parameters, when, how it ended."""

    id: Mapped[int] = mapped_column(primary_key=True)
    agent: Mapped[str] = mapped_column(String(200))  # spider or flow name
    code_version: Mapped[str] = mapped_column(String(100))
    parameters: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    started_at: Mapped[datetime] = _now()
    ended_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), server_default="running")
    stats: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    error: Mapped[str | None] = mapped_column(Text)
    # who runs it: host, process id and that process's start (a reused pid is not the owner)
    owner_host: Mapped[str | None] = mapped_column(Text)
    owner_pid: Mapped[int | None] = mapped_column(Integer)
    owner_start: Mapped[str | None] = mapped_column(Text)
    heartbeat_at: Mapped[datetime | None]


def _run_table_args(table: str) -> tuple:
    return (CheckConstraint(f"status IN {RUN_STATUSES}", name="status"),
            Index(f"ix_{table}_running", "id", postgresql_where=text("status = 'running'")))


class CrawlRun(_RunMixin, Base):
    __tablename__ = "crawl_runs"
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    source: Mapped[Source] = relationship()
    __table_args__ = _run_table_args("crawl_runs")


class TrainingRun(_RunMixin, Base):
    __tablename__ = "training_runs"
    collection_id: Mapped[int | None] = mapped_column(ForeignKey("collections.id"))
    __table_args__ = _run_table_args("training_runs")


class ColorizationRun(_RunMixin, Base):
    __tablename__ = "colorization_runs"
    collection_id: Mapped[int | None] = mapped_column(ForeignKey("collections.id"))
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    __table_args__ = _run_table_args("colorization_runs")


class Record(Base):
    __tablename__ = "records"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # The source and the crawl runs are checked once a statement by triggers, not by foreign
    # keys (migration 0014: one lookup per source or run named, not one per record).
    source_id: Mapped[int] = mapped_column()
    source_key: Mapped[str] = mapped_column(Text(collation="C"))  # an identifier: bytewise, fast
    title: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    date_text: Mapped[str | None] = mapped_column(Text)
    year_lo: Mapped[int | None] = mapped_column(Integer)
    year_hi: Mapped[int | None] = mapped_column(Integer)
    place: Mapped[str | None] = mapped_column(Text)
    lat: Mapped[float | None] = mapped_column(Double)
    lon: Mapped[float | None] = mapped_column(Double)
    direction: Mapped[str | None] = mapped_column(String(20))
    author: Mapped[str | None] = mapped_column(Text)
    licence: Mapped[str | None] = mapped_column(Text)
    rights: Mapped[str | None] = mapped_column(Text)
    attribution: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    raw: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    payload_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), server_default="active")
    first_seen_at: Mapped[datetime] = _now()
    last_seen_at: Mapped[datetime] = _now()
    first_seen_run_id: Mapped[int | None] = mapped_column()
    last_seen_run_id: Mapped[int | None] = mapped_column()
    withdrawn_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = _now()
    # the ids of the record's collections, sorted: kept equal to its rows in collection_members
    # by triggers on that table (migration 0017); a new record's come with its row (catalog.ingest)
    collections: Mapped[list[int]] = mapped_column(ARRAY(Integer), server_default=text("'{}'"), nullable=False)
    search: Mapped[Any] = mapped_column(TSVECTOR, Computed(SEARCH_EXPR, persisted=True), nullable=True)

    source: Mapped[Source] = relationship(primaryjoin="foreign(Record.source_id) == Source.id")
    # originals first, then the colorized version shown (see RecordAsset.shown), then the rest: the
    # ones the latest harvest saw first (a scan replaced in its folder, an image its archive swapped:
    # the new one; the old link stays as history), then as added
    assets: Mapped[list[RecordAsset]] = relationship(
        back_populates="record",
        order_by=lambda: [RecordAsset.role != "original", RecordAsset.shown.desc(),
                          RecordAsset.last_seen_run_id.desc().nulls_last(), RecordAsset.id])

    __table_args__ = (
        UniqueConstraint("source_id", "source_key", name="uq_records_source_key"),
        CheckConstraint("year_lo IS NULL OR year_hi IS NULL OR year_lo <= year_hi", name="year_order"),
        CheckConstraint("lat IS NULL OR (lat >= -90 AND lat <= 90)", name="lat_range"),
        CheckConstraint("lon IS NULL OR (lon >= -180 AND lon <= 180)", name="lon_range"),
        CheckConstraint(f"status IN {RECORD_STATUSES}", name="status"),
        # Words, decades and grid cells are all in the search vector: one GIN
        # index answers map + years + words (see catalog/queries.py).
        Index("ix_records_search", "search", postgresql_using="gin"),
        # The same for one record in sixteen, by a hash of its id (migration 0018): counts of
        # broad searches estimated from it (catalog.sampled).
        Index("ix_records_search_sample", "search", postgresql_using="gin",
              postgresql_where=text("(hashint8(id) & 15) = 0")),
        # Each word of a located, dated record with its 0.01° cell and decade, as one bigint
        # (migrations 0010, 0013): a word in a few streets over a decade reads only the records
        # that have all three.
        Index("ix_records_word_place_keys", text(WORD_PLACES_EXPR), postgresql_using="gin"),
        # An OAI record found again under a moved item page (migration 0015, catalog.harvest).
        Index("ix_records_oai_identifier", "source_id", text("(extra ->> 'oai_identifier')"),
              postgresql_where=text("extra ? 'oai_identifier'")),
    )


class RecordHistory(Base):
    """A payload a record had before its current one (migration 0012): the record itself holds
    the current payload, so a new record writes nothing here. When a harvest changes a record,
    the version it replaces is moved here, with the run and time that first saw it and those
    that replaced it. Read revisions through ``RecordRevision``."""

    __tablename__ = "record_history"
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, primary_key=True)
    payload_hash: Mapped[str] = mapped_column(String(64))
    raw: Mapped[dict[str, Any]]
    fields: Mapped[dict[str, Any]]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id"))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    replaced_run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id"))
    replaced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class _View(DeclarativeBase):
    """Views (made by the migrations, read only): kept out of ``Base.metadata``, which the
    migrations' drift check compares with the tables."""

    type_annotation_map = Base.type_annotation_map


class RecordRevision(_View):
    """Every distinct payload a record had, in order, with the run that saw it: the view
    ``record_revisions`` (migration 0012), the rows of ``record_history`` and then each record's
    current payload as its last revision."""

    __tablename__ = "record_revisions"
    record_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, primary_key=True)
    payload_hash: Mapped[str] = mapped_column(String(64))
    raw: Mapped[dict[str, Any]]
    fields: Mapped[dict[str, Any]]
    run_id: Mapped[int | None]
    seen_at: Mapped[datetime]


class Asset(Base):
    """A file kept by content. Images carry their measurements."""

    __tablename__ = "assets"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(100))
    width: Mapped[int | None]
    height: Mapped[int | None]
    bytes: Mapped[int] = mapped_column(BigInteger)
    phash: Mapped[str | None] = mapped_column(String(16), index=True)
    colourfulness: Mapped[float | None] = mapped_column(Double)
    chroma_mean: Mapped[float | None] = mapped_column(Double)
    chroma_spread: Mapped[float | None] = mapped_column(Double)
    is_colour: Mapped[bool | None] = mapped_column(Boolean)
    blob_key: Mapped[str] = mapped_column(Text)
    info: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = _now()


class RecordAsset(Base):
    __tablename__ = "record_assets"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), index=True)
    asset_sha256: Mapped[str] = mapped_column(ForeignKey("assets.sha256"), index=True)
    role: Mapped[str] = mapped_column(String(30))
    source_url: Mapped[str | None] = mapped_column(Text)
    first_seen_run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id"))
    last_seen_run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id"))
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    # Region of the image that is the photo itself: [left, top, right, bottom]
    # in pixels (e.g. PastVu's watermark strip left out). NULL = whole image.
    crop_box: Mapped[list[int] | None] = mapped_column(JSONB)
    # The colorized version a record shows first (record page, IIIF Choice, exports): the result of
    # the current model version; older results stay as history. At most one per record.
    shown: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = _now()
    record: Mapped[Record] = relationship(back_populates="assets")
    asset: Mapped[Asset] = relationship()
    __table_args__ = (
        UniqueConstraint("record_id", "asset_sha256", "role", name="uq_record_assets_link"),
        CheckConstraint("NOT shown OR role = 'colorized'", name="shown_colorized"),
        Index("uq_record_assets_shown", "record_id", unique=True, postgresql_where=text("shown")),
    )


class Collection(Base):
    __tablename__ = "collections"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()


class CollectionMember(Base):
    __tablename__ = "collection_members"
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), primary_key=True)
    added_at: Mapped[datetime] = _now()
    # a record's collections from the index alone (facets probe it per match; migration 0009)
    __table_args__ = (Index("ix_collection_members_record_collection", "record_id", "collection_id"),)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    checkpoint_sha256: Mapped[str] = mapped_column(ForeignKey("assets.sha256"))
    architecture: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    metrics: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    training_run_id: Mapped[int | None] = mapped_column(ForeignKey("training_runs.id"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    # One current version: the one scheduled and default colorization use. A new version becomes
    # current only when it beats the current one on the held-out photos (``evaluation``: those
    # photos, both versions' metrics and greyscale's); ``decision`` says why in words.
    is_current: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    promoted_at: Mapped[datetime | None]
    evaluation: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    decision: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    __table_args__ = (Index("uq_model_versions_current", "is_current", unique=True,
                            postgresql_where=text("is_current")),)


class TrainingExample(Base):
    """Which asset trained or validated which model version (lineage)."""

    __tablename__ = "training_examples"
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True)
    asset_sha256: Mapped[str] = mapped_column(ForeignKey("assets.sha256"), primary_key=True, index=True)
    record_id: Mapped[int | None] = mapped_column(ForeignKey("records.id"))
    split: Mapped[str] = mapped_column(String(10))
    __table_args__ = (CheckConstraint("split IN ('train', 'val')", name="split"),)


class Colorization(Base):
    """source asset → result asset, by a model version with parameters, in a run.

    A row is first claimed (status 'claimed', no result yet) by a worker and
    completed with its result; unique on (source, model version, parameters)
    so re-runs and parallel workers never do the same image twice.
    """

    __tablename__ = "colorizations"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    source_sha256: Mapped[str] = mapped_column(ForeignKey("assets.sha256"))
    result_sha256: Mapped[str | None] = mapped_column(ForeignKey("assets.sha256"), index=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    params_hash: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("colorization_runs.id"))
    record_id: Mapped[int | None] = mapped_column(ForeignKey("records.id"))
    status: Mapped[str] = mapped_column(String(20), server_default="done")
    error: Mapped[str | None] = mapped_column(Text)  # why it failed (status 'failed'; migration 0005)
    claimed_by: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _now()
    __table_args__ = (
        UniqueConstraint("source_sha256", "model_version_id", "params_hash", name="uq_colorizations_job"),
        CheckConstraint("status IN ('claimed', 'done', 'failed')", name="status"),
    )


class HostSlot(Base):
    """Politeness shared by crawl processes: the earliest start of the next request to ``host``
    (see ``catalog.hostslots``)."""

    __tablename__ = "host_slots"
    host: Mapped[str] = mapped_column(Text, primary_key=True)
    next_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
