"""Export records as CSV, JSON Lines or Dublin Core XML (streamed)."""
from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable
from typing import TextIO
from xml.sax.saxutils import escape

from catalog.fields import FIELDS, MAPPED
from catalog.models import Record
from catalog.queries import record_dict

_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

FORMATS = ("csv", "jsonl", "dc")
CSV_COLUMNS = ("id", "source", "source_key", *MAPPED, "status", "original_sha256", "colorized_sha256")
# Dublin Core: each field with an element of its own (catalog.fields), identifiers first; the
# catalogue's own identifier follows them. The years go into dc:date when the source wrote no
# date, lat and lon into dcterms:spatial.
DC_FIELDS = tuple(sorted(((f.dc, f.name) for f in FIELDS if f.dc), key=lambda e: e[0] != "dc:identifier"))


# A cell a spreadsheet would read as a formula (OWASP's "CSV injection": =, +, -, @, a tab or a
# carriage return first): a harvested title "=HYPERLINK(...)" or "=cmd|' /C calc'!A0" runs when
# the file is opened in Excel or LibreOffice. Such text cells get a leading apostrophe, which the
# spreadsheet shows as text; numbers (lat -12.5) are left as they are. JSON Lines keeps the text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(row: dict) -> dict:
    """``row`` with each text cell that a spreadsheet would run as a formula made plain text."""
    return {k: ("'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v) for k, v in row.items()}


def csv_row(rec: Record) -> dict:
    d = record_dict(rec)
    row = {k: d.get(k) for k in CSV_COLUMNS}
    row["original_sha256"] = " ".join(a["sha256"] for a in d["assets"] if a["role"] == "original")
    row["colorized_sha256"] = " ".join(a["sha256"] for a in d["assets"] if a["role"] == "colorized")
    return spreadsheet_safe(row)


def write_csv(records: Iterable[Record], out: TextIO) -> int:
    w = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    w.writeheader()
    n = 0
    for rec in records:
        w.writerow(csv_row(rec))
        n += 1
    return n


def write_jsonl(records: Iterable[Record], out: TextIO) -> int:
    n = 0
    for rec in records:
        out.write(json.dumps(record_dict(rec), ensure_ascii=False) + "\n")
        n += 1
    return n


def _dc_date(rec: Record) -> str | None:
    if rec.date_text:
        return rec.date_text
    if rec.year_lo is not None and rec.year_hi is not None:
        return str(rec.year_lo) if rec.year_lo == rec.year_hi else f"{rec.year_lo}/{rec.year_hi}"
    return None


def write_dc(records: Iterable[Record], out: TextIO) -> int:
    """OAI-PMH style ``oai_dc`` records inside one ``<records>`` element."""
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write('<records xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" '
              'xmlns:dc="http://purl.org/dc/elements/1.1/" '
              'xmlns:dcterms="http://purl.org/dc/terms/">\n')
    n = 0
    for rec in records:
        fields = [(tag, _dc_date(rec) if name == "date_text" else getattr(rec, name)) for tag, name in DC_FIELDS]
        ids = sum(tag == "dc:identifier" for tag, _ in fields)
        fields[ids:ids] = [("dc:identifier", f"arhiva:{rec.source.slug}:{rec.source_key}")]
        fields += [("dc:source", rec.source.slug), ("dc:type", "StillImage")]
        if rec.lat is not None and rec.lon is not None:
            fields.append(("dcterms:spatial", f"{rec.lat:.6f},{rec.lon:.6f}"))
        for ra in rec.assets:
            fields.append(("dc:relation", f"{ra.role}:sha256:{ra.asset_sha256}"))
        out.write("  <oai_dc:dc>\n")
        for tag, value in fields:
            if value not in (None, ""):
                # a carriage return as a character reference: written raw, every XML reader makes it a newline
                out.write(f"    <{tag}>{escape(_XML_ILLEGAL.sub('', str(value)), {chr(13): '&#13;'})}</{tag}>\n")
        out.write("  </oai_dc:dc>\n")
        n += 1
    out.write("</records>\n")
    return n


WRITERS = {"csv": write_csv, "jsonl": write_jsonl, "dc": write_dc}
