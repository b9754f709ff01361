"""The record's fields are defined once (catalog.fields): what a harvester builds, the table, the
web API's schema, the exports and the folder import's sidecar columns all agree with it."""
from __future__ import annotations

import csv
import io
import json
import typing
import xml.etree.ElementTree as ET
from xml.etree import ElementTree

from catalog.exports import CSV_COLUMNS, write_csv, write_dc, write_jsonl
from catalog.fields import FIELDS, MAPPED, TEXT_FIELDS
from catalog.ingest import _TEMP_DDL
from catalog.models import Record, Source
from catalog.queries import record_dict
from catalog.records_in import COPY_COLUMNS, MAX_SHORT_TEXT_CHARS, MAX_TEXT_CHARS, RecordIn
from catalog.web.schemas import RecordDetail, RecordOut
from importers.folder import COLUMNS as SIDECAR_COLUMNS

DC = "http://purl.org/dc/elements/1.1/"
DCTERMS = "http://purl.org/dc/terms/"


def _record() -> Record:
    """A record (not stored) with a distinct value in every field."""
    values = {f.name: {str: f"<{f.name}> value", int: 1900 + i, float: 10.0 + i}[f.type] for i, f in enumerate(FIELDS)}
    values["direction"] = "n"
    rec = Record(id=7, source_key="k-1", status="active", extra={"a": 1}, **values)
    rec.source = Source(slug="pastvu", kind="pastvu")
    return rec


def test_a_harvester_sets_exactly_the_fields_in_their_order_and_types():
    hints = typing.get_type_hints(RecordIn)
    names = [name for name in hints if name not in ("source_key", "extra", "raw", "volatile")]
    assert tuple(names) == MAPPED
    for f in FIELDS:
        assert hints[f.name] == f.type | None, f.name
    assert COPY_COLUMNS == ("source_key", *MAPPED, "extra", "raw", "payload_hash")
    assert {name: MAX_TEXT_CHARS.get(name, MAX_SHORT_TEXT_CHARS) for name in TEXT_FIELDS} == \
        {f.name: f.max_chars for f in FIELDS if f.type is str}


def test_the_table_has_a_nullable_column_of_the_same_type_for_each_field():
    table = Record.__table__
    for f in FIELDS:
        column = table.c[f.name]
        assert column.nullable, f.name
        assert column.type.python_type is f.type, f.name
    assert all(f"{name} " in _TEMP_DDL for name in COPY_COLUMNS)  # the upsert's staging table


def test_the_web_schema_lists_the_fields_in_order_with_their_descriptions():
    for model in (RecordOut, RecordDetail):
        names = list(model.model_fields)
        assert names[:3] == ["id", "source", "source_key"] and tuple(names[3:3 + len(MAPPED)]) == MAPPED
        for f in FIELDS:
            assert model.model_fields[f.name].annotation == f.type | None, f.name
    props = RecordOut.model_json_schema()["properties"]
    for f in FIELDS:
        assert props[f.name].get("description") == f.description, f.name
    rec = _record()
    assert RecordOut.model_validate(record_dict(rec)).model_dump(include=set(MAPPED)) == \
        {f.name: getattr(rec, f.name) for f in FIELDS}


def test_csv_and_json_exports_carry_every_field():
    rec = _record()
    out = io.StringIO()
    write_csv([rec], out)
    (row,) = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(CSV_COLUMNS) == ("id", "source", "source_key", *MAPPED, "status", "original_sha256",
                                  "colorized_sha256")
    assert list(row) == list(CSV_COLUMNS)
    assert all(row[f.name] == str(getattr(rec, f.name)) for f in FIELDS)
    out = io.StringIO()
    write_jsonl([rec], out)
    line = json.loads(out.getvalue())
    assert list(line)[3:3 + len(MAPPED)] == list(MAPPED)
    assert all(line[f.name] == getattr(rec, f.name) for f in FIELDS)
    assert set(line) == set(RecordOut.model_fields) - {"colorized", "links"}  # the API adds those two


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_plain_text():
    rec = _record()
    rec.title, rec.description, rec.author = "=HYPERLINK(\"http://evil\",\"x\")", "\t=1+1", "@SUM(1)"
    rec.place, rec.attribution, rec.lon = "-biserica", "Chișinău = capitala", -12.5
    out = io.StringIO()
    write_csv([rec], out)
    (row,) = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert (row["title"], row["description"], row["author"], row["place"]) == \
        ("'=HYPERLINK(\"http://evil\",\"x\")", "'\t=1+1", "'@SUM(1)", "'-biserica")
    assert row["attribution"] == "Chișinău = capitala" and row["lon"] == "-12.5"  # text inside, numbers: as they are
    out = io.StringIO()
    write_jsonl([rec], out)
    assert json.loads(out.getvalue())["title"] == rec.title  # JSON Lines keeps the text exactly


def test_dublin_core_exports_each_field_with_an_element_under_it():
    rec = _record()
    out = io.StringIO()
    write_dc([rec], out)
    (dc,) = ET.fromstring(out.getvalue())
    got: dict[str, list[str]] = {}
    for el in dc:
        tag = el.tag.replace("{" + DC + "}", "dc:").replace("{" + DCTERMS + "}", "dcterms:")
        got.setdefault(tag, []).append(el.text)
    for f in FIELDS:
        if f.dc:
            assert str(getattr(rec, f.name)) in got[f.dc], f.name
    assert got["dc:identifier"] == [rec.url, "arhiva:pastvu:k-1"]
    assert got["dcterms:spatial"] == [f"{rec.lat:.6f},{rec.lon:.6f}"]
    # every field is exported except the direction (no Dublin Core element says it)
    exported = {f.name for f in FIELDS if f.dc} | {"lat", "lon", "year_lo", "year_hi"}
    assert set(MAPPED) - exported == {"direction"}
    rec.date_text = None  # the years stand in for a date the source did not write
    out = io.StringIO()
    write_dc([rec], out)
    assert f"<dc:date>{rec.year_lo}/{rec.year_hi}</dc:date>" in out.getvalue()
    rec.description = "rândul unu\r\nrândul doi\rtrei"  # a CR survives an XML reader as a reference only
    out = io.StringIO()
    write_dc([rec], out)
    root = ElementTree.fromstring(out.getvalue())
    assert root.find(".//{http://purl.org/dc/elements/1.1/}description").text == rec.description


def test_a_folder_sidecar_has_a_column_for_each_field_and_one_date():
    assert SIDECAR_COLUMNS[0] == "file"
    assert set(SIDECAR_COLUMNS[1:]) == (set(MAPPED) - {"date_text", "year_lo", "year_hi"}) | {"date"}
