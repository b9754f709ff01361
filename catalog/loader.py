"""``arhiva load``: records from a JSON Lines file into the catalogue, in bulk.

For metadata that arrives as a file rather than through a harvester: an archive's own dump,
records prepared by a script, or ``arhiva export --format jsonl`` from another arhiva. Each
line is one JSON object with at least ``source_key`` and any of the record fields
(``title``, ``description``, ``date_text``, ``year_lo``, ``year_hi``, ``place``, ``lat``,
``lon``, ``direction``, ``author``, ``licence``, ``rights``, ``attribution``, ``url``,
``extra``) and, optionally, ``raw``: the payload as the source gave it. Without ``raw``
the line itself is kept as the raw payload (less what an arhiva export adds about its own
catalogue: ``id``, ``source``, ``status``, first/last seen and ``assets``).

The file is read in blocks and stored with ``bulk_upsert`` (several connections, each block's
slices committed as they finish); the load is one crawl run of its source. A load is not a
complete listing, so nothing is withdrawn. Re-running the same file changes nothing; a line
that is not JSON, or a record that fails validation, is reported by line or key and the rest
is stored.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TextIO

from catalog.db import open_catalog, session_scope
from catalog.ingest import RecordIn, bulk_upsert, get_or_create_source
from catalog.runs import activity

# What an ``arhiva export --format jsonl`` line says about the exporting catalogue, not the record.
EXPORT_ONLY = ("id", "source", "status", "first_seen_at", "last_seen_at", "assets")
_RECORD_FIELDS = {f.name for f in fields(RecordIn)}


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
                "error_samples": self.errors[:100]}


def record_from_line(obj: Any) -> RecordIn:
    """A record from one decoded line; raises ValueError naming what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError(f"not a JSON object but {type(obj).__name__}")
    key = obj.get("source_key")
    if key is None or (isinstance(key, str) and not key.strip()):
        raise ValueError("no source_key")
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        key = str(key)  # numeric identifiers are common in dumps
    data = {k: v for k, v in obj.items() if k in _RECORD_FIELDS} | {"source_key": key}
    if "raw" not in obj:
        data["raw"] = {k: v for k, v in obj.items() if k not in EXPORT_ONLY}
    for name in ("extra", "raw"):
        if data.get(name) is None:
            data[name] = {}
    return RecordIn.from_dict(data)


def _blocks(stream: TextIO, report: LoadReport, block: int) -> Iterator[list[RecordIn]]:
    records: list[RecordIn] = []
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        report.lines += 1
        try:
            records.append(record_from_line(json.loads(line)))
        except json.JSONDecodeError as exc:
            report.errors.append({"where": f"line {number}", "message": f"not JSON: {exc.msg} (column {exc.colno})"})
        except ValueError as exc:
            report.errors.append({"where": f"line {number}", "message": str(exc)})
        if len(records) >= block:
            yield records
            records = []
    if records:
        yield records


def load_jsonl(path: Path | str, *, source: str, collection: str | None = None, workers: int = 2,
               block: int = 50_000, engine=None, progress: Callable[[LoadReport], None] | None = None) -> LoadReport:
    """Load a JSON Lines file (``-`` or a path) into ``source``; see the module docstring."""
    import sys

    engine = engine or open_catalog()
    report = LoadReport(source=source)
    name = "-" if str(path) == "-" else str(Path(path).resolve())
    stream = sys.stdin if name == "-" else open(name, encoding="utf-8", errors="strict")  # noqa: SIM115
    with session_scope(engine) as s:
        source_id = get_or_create_source(s, source, "file").id
    try:
        with activity("crawl", "load", {"file": name, "collection": collection}, engine=engine,
                      stats=lambda: {"summary": report.as_stats()}, source_id=source_id) as run:
            report.run_id = run.id

            def tick(n: int) -> None:
                report.stored += n
                if progress is not None:
                    progress(report)

            try:
                for records in _blocks(stream, report, block):
                    done = bulk_upsert(engine, source_id, records, run_id=report.run_id, collection=collection,
                                       workers=workers, progress=tick)
                    report.new += done.new
                    report.changed += done.changed
                    report.unchanged += done.unchanged
                    report.errors += [{"where": f"record {r.source_key!r}", "message": f"{r.field}: {r.message}"}
                                      for r in done.rejected]
                    if progress is not None:
                        progress(report)
            except UnicodeDecodeError as exc:
                raise ValueError(f"{name} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    finally:
        if stream is not sys.stdin:
            stream.close()
    return report


__all__ = ["EXPORT_ONLY", "LoadReport", "load_jsonl", "record_from_line"]
