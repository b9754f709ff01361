"""Response models of the JSON API: they make the OpenAPI document useful."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, create_model

from catalog.fields import FIELDS

RunKind = Literal["crawl", "training", "colorization"]


class Problem(BaseModel):
    """An error: what was asked for and why it cannot be answered."""

    detail: str


class AssetLink(BaseModel):
    sha256: str
    role: str = Field(description="original, colorized, thumbnail, …")
    media_type: str | None = None
    width: int | None = None
    height: int | None = None
    is_colour: bool | None = None
    source_url: str | None = None
    crop_box: list[int] | None = None
    url: str = Field(description="The file itself (stable, content-addressed).")
    thumbnail_url: str


# The record's mapped fields come from their one definition (catalog.fields), in its order.
RecordOut = create_model(
    "RecordOut",
    __doc__="A record: its catalogue identity, the mapped fields, its assets and links.",
    id=int,
    source=str,
    source_key=str,
    **{f.name: (f.type | None, Field(None, description=f.description)) for f in FIELDS},
    status=str,
    extra=(dict[str, Any], {}),
    first_seen_at=(str | None, None),
    last_seen_at=(str | None, None),
    assets=(list[AssetLink], []),
    colorized=(bool, False),
    links=(dict[str, str], Field(default_factory=dict,
                                 description="self, page, and manifest when the record has an image")),
)


class DecadeCount(BaseModel):
    decade: int | None = Field(description="First year of the decade (of the record's earliest year); null: undated.")
    count: int


class CollectionCount(BaseModel):
    name: str
    count: int


class SearchFacets(BaseModel):
    exact: bool = Field(description="false: the counts are estimates from a sample of the catalogue (broad searches).")
    decades: list[DecadeCount]
    collections: list[CollectionCount]
    colorized: dict[str, int] = Field(description="{'yes': n, 'no': n}")


class RecordPage(BaseModel):
    total: int = Field(description="How many records match (all pages): exact, or an estimate when total_exact "
                                   "is false.")
    total_exact: bool = Field(True, description="false: total is an estimate (more matches than the server counts "
                                                "exactly); ask count=exact for the exact number.")
    total_label: str = Field("", description="total in words: '1,234' or 'about 1.2 million'.")
    limit: int = Field(description="Page size applied (capped at the server's page_size_max).")
    offset: int
    items: list[RecordOut]
    next: str | None = Field(None, description="URL of the next page (a cursor, `after`), if any.")
    next_cursor: str | None = Field(None, description="The cursor in `next`, on its own.")
    previous: str | None = Field(None, description="URL of the previous page (a cursor, `before`), if any.")
    previous_cursor: str | None = None
    facets: SearchFacets | None = Field(None, description="With facets=true: matches per decade, collection and "
                                                          "colorization.")


class RunRef(BaseModel):
    kind: RunKind = Field(description="the run's table: /api/runs/{kind}/{id}")
    label: str | None = Field(None, description="what the run was: import, load or crawl (a crawl run's "
                                                "row), training, colorization")
    id: int
    agent: str | None = None
    code_version: str | None = None
    status: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None


class RunOut(RunRef):
    parameters: dict[str, Any] = {}
    stats: dict[str, Any] = {}
    error: str | None = None
    source: str | None = Field(None, description="Crawl runs: the source harvested.")
    collection_id: int | None = None
    model_version_id: int | None = None


class RunPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[RunOut]


class FieldChange(BaseModel):
    field: str
    before: Any = None
    after: Any = None


class RevisionOut(BaseModel):
    revision: int
    seen_at: datetime
    run_id: int | None = None
    payload_hash: str
    changes: list[FieldChange] = Field(default_factory=list,
                                       description="Mapped fields that differ from the revision before.")
    raw_changed: bool = Field(False, description="The source payload differs from the revision before.")


class ModelVersionRef(BaseModel):
    id: int
    name: str
    architecture: str


class ModelVersionOut(ModelVersionRef):
    checkpoint_sha256: str
    config: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    training_run_id: int | None = None
    parent_id: int | None = None
    created_at: datetime
    training_examples: int = 0
    colorizations: int = 0
    current: bool = Field(False, description="The version default and scheduled colorization use.")
    decision: str | None = Field(None, description="Why it is (or is not) the current version.")
    evaluation: dict[str, Any] = Field({}, description="Held-out photos and metrics it was judged on.")


class ModelVersionPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[ModelVersionOut]


class ColorizationOut(BaseModel):
    id: int
    source_sha256: str
    result_sha256: str | None = None
    status: str
    params: dict[str, Any] = {}
    created_at: datetime
    model_version: ModelVersionRef | None = None
    run: RunRef | None = None


class TimelineEvent(BaseModel):
    at: datetime | None = None
    kind: str = Field(description="harvested, revised, seen, asset, colorized, withdrawn")
    summary: str
    run: RunRef | None = None


class RecordDetail(RecordOut):  # type: ignore[misc, valid-type]
    collections: list[str] = []
    revisions: list[RevisionOut] = []
    colorizations: list[ColorizationOut] = []
    timeline: list[TimelineEvent] = []


class AssetOut(BaseModel):
    sha256: str
    media_type: str
    width: int | None = None
    height: int | None = None
    bytes: int
    phash: str | None = None
    colourfulness: float | None = None
    chroma_mean: float | None = None
    chroma_spread: float | None = None
    is_colour: bool | None = None
    info: dict[str, Any] = {}
    created_at: datetime
    url: str
    thumbnail_url: str
    records: list[dict[str, Any]] = Field(default_factory=list, description="Records using it: id and role.")
    produced_by: ColorizationOut | None = Field(None, description="The colorization that made it, if any.")


class CollectionOut(BaseModel):
    name: str
    description: str | None = None
    records: int = Field(description="Records it holds: exact up to 200,000, an estimate beyond (records_exact).")
    records_exact: bool = True
    records_label: str = Field(description="'1,234' when exact, 'about 1.2 million' when estimated.")


class SourceOut(BaseModel):
    slug: str
    kind: str
    base_url: str | None = None
    records: int = Field(description="Records it holds: exact up to 200,000, an estimate beyond (records_exact).")
    records_exact: bool = True
    records_label: str = Field(description="'1,234' when exact, 'about 1.2 million' when estimated.")


class MembersIn(BaseModel):
    record_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(min_length=1, max_length=1000)
