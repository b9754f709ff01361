"""The metadata sidecars of ``arhiva import`` (``importers.folder``): ``metadata.csv`` or
``metadata.json`` (``arhiva.csv`` / ``arhiva.json`` too) in a file's folder or any folder above
it, the nearer one winning. Columns: ``file`` (the path relative to the sidecar's folder), then
the record's fields, with one ``date`` for the years; aliases (``license``, ``filename``,
``creator``, ``year``, ``latitude``…) are read as those. A bad row is reported with the sidecar's
path and line and left out; the good rows are used."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Protocol

from catalog.fields import MAPPED, YEAR_FIELDS

SIDECAR_NAMES = ("metadata.csv", "metadata.json", "arhiva.csv", "arhiva.json")
# The sidecar's columns: the file, then the record's fields, with one ``date`` (parsed into the years) in
# place of date_text, year_lo and year_hi.
COLUMNS = ("file", *("date" if name == "date_text" else name for name in MAPPED if name not in YEAR_FIELDS))
ALIASES = {"license": "licence", "filename": "file", "path": "file", "creator": "author", "year": "date",
           "latitude": "lat", "longitude": "lon", "source": "attribution"}
CSV_FIELD_MAX = 16_000_000  # characters of one sidecar field (a record's longest text takes 4,000,000)


class Reports(Protocol):
    """Where a sidecar's problems go (``importers.folder.ImportReport``)."""

    def error(self, where: str, message: str) -> None: ...


def _norm_key(key: str) -> str:
    k = (key or "").strip().lower().lstrip("\ufeff")
    return ALIASES.get(k, k)


def read_sidecar(path: Path, report: Reports) -> dict[str, dict[str, Any]]:
    """Rows of a sidecar by file path (relative to the sidecar's folder, POSIX). Bad rows are reported."""
    rows: list[tuple[str, dict[str, Any]]] = []  # (where, row)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        report.error(str(path), f"sidecar is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at {exc.start:,}); "
                                "save it as UTF-8 (in Excel: 'CSV UTF-8'); its rows are not used")
        return {}
    except OSError as exc:
        report.error(str(path), f"sidecar cannot be read: {exc.strerror or exc}")
        return {}
    if path.suffix.lower() == ".csv":
        try:
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        # a field may be as long as the longest text a record takes (csv's own limit: 131,072)
        csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_MAX))
        reader = csv.reader(io.StringIO(text), dialect)
        header: list[str] | None = None
        for row in _csv_rows(reader, path, report):
            line = reader.line_num
            if header is None:
                if not any(c.strip() for c in row):
                    continue
                header = [_norm_key(c) for c in row]
                if "file" not in header:
                    report.error(f"{path}:{line}", "the header has no 'file' column; sidecar ignored")
                    return {}
                continue
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                report.error(f"{path}:{line}", f"expected {len(header)} fields, found {len(row)}; row ignored")
                continue
            rows.append((f"{path}:{line}", dict(zip(header, row))))
    else:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:  # (nested past Python's recursion limit)
            report.error(str(path), f"sidecar is not valid JSON: {exc}")
            return {}
        if isinstance(data, dict) and isinstance(data.get("files"), list):
            data = data["files"]
        if isinstance(data, dict):
            data = [{"file": k, **v} if isinstance(v, dict) else {"file": k, "_bad": v} for k, v in data.items()]
        if not isinstance(data, list):
            report.error(str(path), "sidecar JSON must be a list of objects (or an object keyed by file)")
            return {}
        for i, obj in enumerate(data, 1):
            where = f"{path} item {i}"
            if not isinstance(obj, dict) or "_bad" in obj:
                report.error(where, "not an object; item ignored")
                continue
            rows.append((where, {_norm_key(k): v for k, v in obj.items()}))
    out: dict[str, dict[str, Any]] = {}
    for where, row in rows:
        checked = _check_row(row, where, path.parent, report)
        if checked is not None:
            rel, values = checked
            if rel in out:
                report.error(where, f"{rel!r} is described twice; the first row is used")
                continue
            out[rel] = values | {"_where": where}
    return out


def _csv_rows(reader, path: Path, report: Reports):
    """The reader's rows until one it cannot parse, which is reported (the rows before it count)."""
    try:
        yield from reader
    except csv.Error as exc:
        report.error(f"{path}:{reader.line_num}", f"sidecar cannot be read further: {exc}; rows from here ignored")


def _check_row(row: dict[str, Any], where: str, base: Path, report: Reports
               ) -> tuple[str, dict[str, Any]] | None:
    name = str(row.get("file") or "").strip().replace("\\", "/")
    if not name:
        report.error(where, "no file named; row ignored")
        return None
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts:
        report.error(where, f"file {name!r} must be a path inside the sidecar's folder; row ignored")
        return None
    if not (base / rel).is_file():
        report.error(where, f"file {name!r} does not exist; row ignored")
        return None
    values: dict[str, Any] = {}
    for k, v in row.items():
        if k == "file":
            continue
        if v is None or (isinstance(v, str) and not v.strip()):
            continue
        if isinstance(v, (dict, list)) and k in COLUMNS:  # (other columns keep theirs in extra.sidecar)
            report.error(where, f"{k}: a JSON {'object' if isinstance(v, dict) else 'list'}, not one value; left out")
            continue
        values[k] = v.strip() if isinstance(v, str) else v
    for coord, limit in (("lat", 90.0), ("lon", 180.0)):
        if coord in values:
            try:
                num = float(str(values[coord]).replace(",", "."))
            except ValueError:
                report.error(where, f"{coord} {values[coord]!r} is not a number; row ignored")
                return None
            if not -limit <= num <= limit:
                report.error(where, f"{coord} {num} is outside ±{limit:g}; row ignored")
                return None
            values[coord] = num
    if ("lat" in values) != ("lon" in values):
        report.error(where, "lat and lon must come together; row ignored")
        return None
    return rel.as_posix(), values


def sidecars(folder: Path, files: list[Path], report: Reports) -> dict[str, dict[str, Any]]:
    """Metadata by path relative to the import folder; a sidecar nearer the file wins."""
    found: dict[str, dict[str, Any]] = {}
    paths = [p for p in files if p.name in SIDECAR_NAMES and p.is_file()]
    for sc in sorted(paths, key=lambda p: -len(p.relative_to(folder).parts)):  # deepest first
        for rel, values in read_sidecar(sc, report).items():
            key = (sc.parent.relative_to(folder) / rel).as_posix()
            found.setdefault(key, values | {"_sidecar": sc.relative_to(folder).as_posix()})
    return found
