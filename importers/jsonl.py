"""``arhiva load``: records from a JSON Lines file into the catalogue, in bulk.

For metadata that arrives as a file rather than through a harvester: an archive's own dump,
records prepared by a script, or ``arhiva export --format jsonl`` from another arhiva. Each
line is one JSON object with at least ``source_key`` and any of the record fields
(``catalog.fields``: ``title``, ``description``, ``date_text``, ``year_lo``, ``year_hi``, ``place``, ``lat``,
``lon``, ``direction``, ``author``, ``licence``, ``rights``, ``attribution``, ``url``,
``extra``) and, optionally, ``raw``: the payload as the source gave it. Without ``raw``
the line itself is kept as the raw payload (less what an arhiva export adds about its own
catalogue: ``id``, ``source``, ``status``, first/last seen and ``assets``).

The file is read in blocks and stored with ``bulk_upsert`` (several connections, each block's
slices committed as they finish); the load is one crawl run of its source. A load is not a
complete listing, so nothing is withdrawn. Re-running the same file changes nothing; a line
that is not JSON (NaN, Infinity and numbers too large for a float are not), nested too deeply
to read, or a record that fails validation, is reported by its line number and the rest is
stored. A file is checked to be UTF-8 before anything is stored; on standard input a line that
is not UTF-8 stops the load, which says what was stored before it.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, BinaryIO

from catalog.db import open_catalog, session_scope
from catalog.ingest import RecordIn, UpsertReport, bulk_upsert, collection_name_problem, get_or_create_source
from catalog.names import collection_name, source_slug
from catalog.runs import activity

# What an ``arhiva export --format jsonl`` line says about the exporting catalogue, not the record.
EXPORT_ONLY = ("id", "source", "status", "first_seen_at", "last_seen_at", "assets")
_RECORD_FIELDS = {f.name for f in fields(RecordIn)}
ERRORS_KEPT = 100  # problems of a load kept on its run (all are counted)


@dataclass
class LoadReport:
    source: str
    run_id: int | None = None
    lines: int = 0
    stored: int = 0  # records through the database so far (new, changed, unchanged or rejected)
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_stats(self) -> dict[str, Any]:
        return {"source": self.source, "run_id": self.run_id, "lines": self.lines, "stored": self.stored,
                "new": self.new, "changed": self.changed, "unchanged": self.unchanged, "errors": len(self.errors),
                "error_samples": self.errors[:ERRORS_KEPT]}


def record_from_line(obj: Any) -> RecordIn:
    """A record from one decoded line; raises ValueError naming what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError(f"not a JSON object but {type(obj).__name__}")
    key = obj.get("source_key")
    if key is None or (isinstance(key, str) and not key.strip()):
        raise ValueError("no source_key")
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        key = str(key)  # numeric identifiers are common in dumps (non-finite ones never parse)
    elif not isinstance(key, str):
        raise ValueError(f"source_key must be text or a number, not {type(key).__name__}")
    data = {k: v for k, v in obj.items() if k in _RECORD_FIELDS} | {"source_key": key}
    if "raw" not in obj:
        data["raw"] = {k: v for k, v in obj.items() if k not in EXPORT_ONLY}
    for name in ("extra", "raw"):
        if data.get(name) is None:
            data[name] = {}
    return RecordIn.from_dict(data)


class NotUTF8(ValueError):
    """A line that is not UTF-8 text: where, and what was stored before it."""


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def parse_line(line: bytes | str) -> Any:
    """One JSON line: strict UTF-8, no NaN/Infinity, no number too large for a float;
    nesting too deep to read is an error of this line, not of the load (ValueError)."""
    try:
        return json.loads(line, parse_constant=_constant, parse_float=_finite)
    except RecursionError:
        raise ValueError("nested too deeply to read") from None


def _decode(raw: bytes, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotUTF8(f"line {number} is not UTF-8 text ({exc.reason} at byte {exc.start} of the line)") from None


def check_utf8(path: Path) -> None:
    """Read a file once before loading it: a file that is not UTF-8 is refused before anything is stored."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            _decode(raw, number)


def _blocks(stream: BinaryIO, report: LoadReport, block: int,
            lines_of: dict[str, int]) -> Iterator[list[RecordIn]]:
    records: list[RecordIn] = []
    for number, raw in enumerate(stream, 1):
        line = _decode(raw, number)
        if not line.strip():
            continue
        report.lines += 1
        try:
            rec = record_from_line(parse_line(line))
            records.append(rec)
            lines_of[rec.source_key] = number
        except json.JSONDecodeError as exc:
            report.errors.append({"where": f"line {number}", "message": f"not JSON: {exc.msg} (column {exc.colno})"})
        except ValueError as exc:
            report.errors.append({"where": f"line {number}", "message": str(exc)})
        if len(records) >= block:
            yield records
            records = []
    if records:
        yield records


def _where(key: str | None, lines_of: dict[str, int]) -> str:
    """'line N (record 'key')' for a rejection, its line found by key (a key shortened in a
    message by its beginning)."""
    number = lines_of.get(key) if key is not None else None
    if number is None and key and key.endswith("…"):
        number = next((n for k, n in lines_of.items() if k.startswith(key[:-1])), None)
    shown = key if key is None or len(key) <= 200 else key[:200] + "…"
    return f"line {number} (record {shown!r})" if number else f"record {shown!r}"


def load_jsonl(path: Path | str, *, source: str, collection: str | None = None, workers: int = 2,
               block: int = 50_000, engine=None, progress: Callable[[LoadReport], None] | None = None) -> LoadReport:
    """Load a JSON Lines file (``-`` or a path) into ``source``; see the module docstring."""
    import sys

    if collection is not None and collection_name_problem(collection):
        raise ValueError(f"--collection {collection!r}: {collection_name_problem(collection)}")
    if collection is not None:  # as stored (NFC): the run's parameters name it as the catalogue does
        collection = collection_name(collection)
    engine = engine or open_catalog()
    report = LoadReport(source=source_slug(source))  # as stored (NFC)
    name = "-" if str(path) == "-" else str(Path(path).resolve())
    with session_scope(engine) as s:
        src = get_or_create_source(s, source, "file")
        if src.kind == "folder":
            # the folder's next import would withdraw every record loaded here as a file gone
            raise ValueError(f"--source {report.source}: a folder's source (`arhiva import` keeps it equal to the "
                             "folder's files and would withdraw what a load puts there); name another --source")
        source_id = src.id
    stream = sys.stdin.buffer if name == "-" else open(name, "rb")  # noqa: SIM115
    lines_of: dict[str, int] = {}
    try:
        with activity("crawl", "load", {"file": name, "collection": collection}, engine=engine,
                      stats=lambda: {"summary": report.as_stats()}, source_id=source_id) as run:
            report.run_id = run.id

            def tick(n: int) -> None:
                report.stored += n
                if progress is not None:
                    progress(report)

            try:
                if name != "-":
                    check_utf8(Path(name))  # refused before anything is stored
                for records in _blocks(stream, report, block, lines_of):
                    done = UpsertReport()
                    try:  # the slices committed are counted, the load stopped (Ctrl-C) or not
                        bulk_upsert(engine, source_id, records, run_id=report.run_id, collection=collection,
                                    workers=workers, progress=tick, into=done)
                    finally:
                        report.new += done.new
                        report.changed += done.changed
                        report.unchanged += done.unchanged
                        report.errors += [{"where": _where(r.source_key, lines_of),
                                           "message": f"{r.field}: {r.message}"} for r in done.rejected]
                    lines_of.clear()
                    if progress is not None:
                        progress(report)
                if report.errors:  # not a success: the run says so (the command exits 1)
                    kept = report.new + report.changed + report.unchanged
                    run.end("partial" if kept else "failed",
                            f"{len(report.errors):,} line(s) refused" + ("" if kept else ", none loaded")
                            + " (each is named in the run's errors)")
            except NotUTF8 as exc:  # a file is checked first; standard input says what was stored before the line
                raise NotUTF8(f"{name}: {exc}; nothing was stored" if name != "-" else (
                    f"{exc}; the {report.new + report.changed:,} new or changed records of the lines before it were "
                    f"stored (run {report.run_id}); loading the corrected input again stores the rest")) from None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    return report


__all__ = ["EXPORT_ONLY", "LoadReport", "NotUTF8", "load_jsonl", "record_from_line", "parse_line", "check_utf8"]
