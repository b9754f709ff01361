"""A record's mapped fields, defined once: name, type, text limit, Dublin Core element, description.

Everything that lists the fields derives the list from ``FIELDS``: what a harvester may set
(``catalog.records_in``: the checks, the payload hash, the COPY rows), the catalogue's upsert
(``catalog.ingest``), the public JSON shape (``catalog.queries.record_dict``, the web API's
``RecordOut``), the exports (CSV columns, Dublin Core elements) and the sidecar columns of a
folder import. ``RecordIn`` and the ``records`` table (``catalog.models.Record``) declare them
by hand, typed; tests/test_fields.py checks that both agree with ``FIELDS``.

A new field: add it here, to ``RecordIn`` and ``Record``, and a migration.
"""
from __future__ import annotations

from dataclasses import dataclass

SHORT_TEXT_CHARS = 10_000  # the limit of a text field unless it says otherwise


@dataclass(frozen=True)
class RecordField:
    name: str
    type: type  # str, int or float; every field may be missing (None)
    max_chars: int | None = None  # text: the most characters a record may hold
    dc: str | None = None  # the Dublin Core element it is exported as (None: no element of its own)
    description: str | None = None  # for the API's documentation


FIELDS: tuple[RecordField, ...] = (
    RecordField("title", str, SHORT_TEXT_CHARS, "dc:title"),
    RecordField("description", str, 4_000_000, "dc:description"),
    # exported as dc:date, with the years when the source wrote no date (catalog.exports)
    RecordField("date_text", str, SHORT_TEXT_CHARS, "dc:date", "The date as the source wrote it."),
    RecordField("year_lo", int, description="Earliest year (inclusive); null: open or undated."),
    RecordField("year_hi", int, description="Latest year (inclusive); null: open or undated."),
    RecordField("place", str, SHORT_TEXT_CHARS, "dc:coverage"),
    RecordField("lat", float),  # lat and lon are exported together as dcterms:spatial
    RecordField("lon", float),
    RecordField("direction", str, SHORT_TEXT_CHARS),  # and at most 20 characters (the column's width)
    RecordField("author", str, SHORT_TEXT_CHARS, "dc:creator"),
    RecordField("licence", str, SHORT_TEXT_CHARS, "dc:rights"),
    RecordField("rights", str, 100_000, "dc:rights"),
    RecordField("attribution", str, 100_000, "dcterms:bibliographicCitation"),
    RecordField("url", str, SHORT_TEXT_CHARS, "dc:identifier", "The record at its source."),
)

MAPPED: tuple[str, ...] = tuple(f.name for f in FIELDS)
TEXT_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.type is str)
YEAR_FIELDS = ("year_lo", "year_hi")

__all__ = ["RecordField", "FIELDS", "MAPPED", "TEXT_FIELDS", "YEAR_FIELDS", "SHORT_TEXT_CHARS"]
