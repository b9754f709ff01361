"""A record as a harvester hands it over: its fields, its checks, its canonical serialisation.

``RecordIn`` is what every harvester builds. ``validate`` says what keeps one out of the
catalogue (naming the field); the payload hash is a sha256 over canonical JSON of the raw
payload and the mapped fields, so the same record always hashes alike; ``copy_chunk`` turns
records into COPY rows for ``catalog.ingest``, which stores them. No database here.
"""
from __future__ import annotations

import hashlib
import math
import operator
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import orjson

from catalog.fields import FIELDS, MAPPED, SHORT_TEXT_CHARS, TEXT_FIELDS, YEAR_FIELDS

_MAPPED_AND_EXTRA = (*MAPPED, "extra")
_get_mapped_and_extra = operator.attrgetter(*_MAPPED_AND_EXTRA)


@dataclass
class RecordIn:
    """One record as a harvester found it: mapped fields (``catalog.fields``, in its order) plus the raw payload."""

    source_key: str
    title: str | None = None
    description: str | None = None
    date_text: str | None = None
    year_lo: int | None = None
    year_hi: int | None = None
    place: str | None = None
    lat: float | None = None
    lon: float | None = None
    direction: str | None = None
    author: str | None = None
    licence: str | None = None
    rights: str | None = None
    attribution: str | None = None
    url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    # Paths into ``raw`` that change without the record changing (view counters): stored, but
    # left out of the payload hash. Dotted; ``*`` is any key or list item ("giveForPage.regions.*.cc").
    volatile: tuple[str, ...] = ()

    def mapped(self) -> dict[str, Any]:
        return dict(zip(_MAPPED_AND_EXTRA, _get_mapped_and_extra(self)))

    def payload_hash(self) -> str:
        """sha256 over the raw payload and the mapped fields (as stored on the record)."""
        return _serialise(self)[2]  # raises _NotStorable (a ValueError) if it cannot be stored

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecordIn:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Rejection:
    source_key: str | None
    field: str
    message: str

    def __str__(self) -> str:
        return f"record {self.source_key!r}: {self.field}: {self.message}"


def validate(rec: RecordIn) -> Rejection | None:
    """The first problem that keeps ``rec`` out of the catalogue, or None."""
    problem = check_fields(rec)
    if problem is None:
        try:
            _serialise(rec)
        except _NotStorable as exc:
            return exc.rejection
    return problem


# Per-record limits, checked before anything is sent to PostgreSQL so that one record can never
# fail its batch: a key must fit the unique index (a b-tree entry holds at most ~2.7 kB), text
# fields and payloads stay far below PostgreSQL's own limits. (The search vector is built from at
# most SEARCH_TEXT_CHARS characters of the record's text, in the database: migration 0005; the
# full text is stored.)
MAX_KEY_BYTES = 2_000
MAX_SHORT_TEXT_CHARS = SHORT_TEXT_CHARS  # title, date_text, place, author, licence, url
MAX_TEXT_CHARS = {f.name: f.max_chars for f in FIELDS if f.type is str and f.max_chars != SHORT_TEXT_CHARS}
MAX_PAYLOAD_BYTES = 32_000_000      # raw payload or extra, as JSON
SEARCH_TEXT_CHARS = 100_000


def check_fields(rec: RecordIn) -> Rejection | None:
    """Everything ``validate`` checks except the JSON payloads (``_serialise`` checks those)."""
    key = rec.source_key
    if not isinstance(key, str) or not key.strip():
        return Rejection(None if not isinstance(key, str) else key, "source_key", "missing source key")
    if "\x00" in key:
        return Rejection(key, "source_key", "contains a NUL character")
    if len(key) > MAX_KEY_BYTES // 4 and len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return Rejection(key[:200] + "…", "source_key",
                         f"{len(key.encode('utf-8', 'surrogatepass')):,} bytes, over the limit of {MAX_KEY_BYTES:,}")
    for name in YEAR_FIELDS:
        v = getattr(rec, name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            return Rejection(key, name, f"must be an integer year, got {v!r}")
        if v is not None and not -9999 <= v <= 9999:
            return Rejection(key, name, f"year {v} is out of range")
    if rec.year_lo is not None and rec.year_hi is not None and rec.year_lo > rec.year_hi:
        return Rejection(key, "year_lo", f"year_lo {rec.year_lo} is after year_hi {rec.year_hi}")
    for name, limit in (("lat", 90.0), ("lon", 180.0)):
        v = getattr(rec, name)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return Rejection(key, name, f"must be a number, got {v!r}")
        if not -limit <= v <= limit:
            return Rejection(key, name, f"{name} {v} is outside ±{limit:g}")
    if (rec.lat is None) != (rec.lon is None):
        return Rejection(key, "lat" if rec.lat is None else "lon", "latitude and longitude must come together")
    for name in _TEXT_FIELDS:
        v = getattr(rec, name)
        if v is None:
            continue
        if not isinstance(v, str):
            return Rejection(key, name, f"must be text, got {type(v).__name__}")
        if "\x00" in v:
            return Rejection(key, name, "contains a NUL character")
        limit = MAX_TEXT_CHARS.get(name, MAX_SHORT_TEXT_CHARS)
        if len(v) > limit:
            return Rejection(key, name, f"{len(v):,} characters, over the limit of {limit:,}")
    if rec.direction is not None and len(rec.direction) > 20:
        return Rejection(key, "direction", f"at most 20 characters, got {len(rec.direction)}")
    if not isinstance(rec.raw, dict) or not isinstance(rec.extra, dict):
        return Rejection(key, "raw", "raw payload and extra must be JSON objects")
    return None


_TEXT_FIELDS = TEXT_FIELDS


@dataclass
class CopyChunk:
    """Records ready for COPY, in key order: each one's row of ``COPY_COLUMNS`` in COPY text
    format without the line end; the payload hash of each key (in the same order); and the
    records that cannot be stored."""

    lines: list[bytes]
    hashes: dict[str, str]
    rejected: list[Rejection]

    def part(self, picked: Sequence[int]) -> CopyChunk:
        """The records at the ``picked`` positions as a chunk of their own (no rejections)."""
        keys = list(self.hashes)
        return CopyChunk([self.lines[i] for i in picked], {keys[i]: self.hashes[keys[i]] for i in picked}, [])

    def data(self, picked: Iterable[int] | None = None) -> bytes:
        """The COPY text of all rows, or of the rows at the ``picked`` positions."""
        lines = self.lines if picked is None else [self.lines[i] for i in picked]
        return b"\n".join(lines) + b"\n" if lines else b""


COPY_COLUMNS = ("source_key", *MAPPED, "extra", "raw", "payload_hash")


def _copy_value(v: Any) -> str:
    """One field in COPY text format."""
    if v is None:
        return "\\N"
    if isinstance(v, str):
        if "\\" in v or "\t" in v or "\n" in v or "\r" in v:
            return v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
        return v
    return repr(v) if isinstance(v, float) else str(v)


def _copy_line(key: str, values: Sequence[Any]) -> bytes:
    """The key and the mapped ``values`` as COPY text cells (as ``_copy_value`` writes each), UTF-8.
    Most records have no text to escape: one scan of their text finds that out, and the cells
    are then written without a function call each."""
    text = key + "".join([v for v in values if isinstance(v, str)])
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return "\t".join(map(_copy_value, (key, *values))).encode("utf-8")
    return "\t".join([key, *["\\N" if v is None else v if isinstance(v, str) else repr(v) if isinstance(v, float)
                              else str(v) for v in values]]).encode("utf-8")


def copy_chunk(records: list[RecordIn]) -> CopyChunk:
    """Check and serialise records (sorted by key) into COPY rows; no database."""
    lines: list[bytes] = []
    hashes: dict[str, str] = {}
    rejected: list[Rejection] = []
    for rec in records:
        problem = check_fields(rec)
        if problem is None:
            values = _get_mapped_and_extra(rec)
            try:
                raw_json, _, digest, extra_json = _serialise(rec, values)
                line = _copy_line(rec.source_key, values[:-1])
            except _NotStorable as exc:
                problem = exc.rejection
            except UnicodeEncodeError as exc:  # only the key is not inside the JSON checked above
                problem = Rejection(None, "source_key", f"not valid Unicode text ({exc.reason})")
        if problem is None:
            lines.append(b"%s\t%s\t%s\t%s" % (line, _copy_json(extra_json), _copy_json(raw_json), digest.encode()))
            hashes[rec.source_key] = digest
        else:
            rejected.append(problem)
    return CopyChunk(lines, hashes, rejected)


def _copy_json(b: bytes) -> bytes:
    """Canonical JSON (``_json``) as a COPY text cell: it has no raw tab or line break (JSON
    escapes them), so only its backslashes are doubled."""
    return b.replace(b"\\", b"\\\\") if b"\\" in b else b


class _NotStorable(ValueError):
    def __init__(self, rejection: Rejection):
        super().__init__(str(rejection))
        self.rejection = rejection


_JSON_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
# PostgreSQL's jsonb cannot hold U+0000; an escaped backslash before "u0000" is not one.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _json(value: Any) -> bytes:
    """Canonical JSON (sorted keys, compact, UTF-8); anything unknown as its str()."""
    return orjson.dumps(value, option=_JSON_OPTS, default=str)


def _serialise(rec: RecordIn, values: tuple[Any, ...] | None = None) -> tuple[bytes, bytes, str, bytes]:
    """(raw JSON, mapped-fields JSON, payload hash, extra JSON), the JSON as UTF-8; raises _NotStorable.
    ``values``: the record's mapped fields and extra (``_get_mapped_and_extra``), when at hand."""
    try:
        raw, extra = _json(rec.raw), _json(rec.extra)
        fields = _json(dict(zip(_MAPPED_AND_EXTRA, _get_mapped_and_extra(rec) if values is None else values)))
    except (orjson.JSONEncodeError, TypeError) as exc:
        for name, value in (("raw", rec.raw), ("extra", rec.extra)):  # which part (fields: the first that passes)
            try:
                _json(value)
            except (orjson.JSONEncodeError, TypeError) as part_exc:
                raise _NotStorable(_unstorable(rec, name, part_exc)) from None
        raise _NotStorable(_unstorable(rec, "fields", exc)) from None
    for name, out in (("raw", raw), ("extra", extra)):
        if b"\\u0000" in out and _JSON_NUL.search(out):
            raise _NotStorable(Rejection(rec.source_key, name, "contains a NUL character (\\u0000)"))
        if len(out) > MAX_PAYLOAD_BYTES:
            raise _NotStorable(Rejection(rec.source_key, name, f"{len(out):,} bytes of JSON, "
                                                               f"over the limit of {MAX_PAYLOAD_BYTES:,}"))
    hashed_raw = _json(_without(rec.raw, rec.volatile)) if rec.volatile else raw
    digest = hashlib.sha256(b"%s\n%s" % (hashed_raw, fields)).hexdigest()
    return raw, fields, digest, extra


def _without(value: Any, paths: Iterable[str]) -> Any:
    """``value`` with the dotted ``paths`` removed (a copy of what they touch; ``*`` = every key/item)."""
    for path in paths:
        value = _drop(value, path.split("."))
    return value


def _drop(value: Any, parts: list[str]) -> Any:
    head, rest = parts[0], parts[1:]
    if isinstance(value, dict):
        keys = list(value) if head == "*" else [head] if head in value else []
        if not keys:
            return value
        out = dict(value)
        for k in keys:
            if rest:
                out[k] = _drop(out[k], rest)
            else:
                del out[k]
        return out
    if isinstance(value, list) and head == "*":
        return [_drop(v, rest) for v in value] if rest else []
    return value


def _unstorable(rec: RecordIn, part: str, exc: Exception) -> Rejection:
    """Why ``part`` (raw, extra or the mapped fields) could not be serialised: a text field that
    is not valid Unicode, named, or else the JSON error."""
    for name in ("source_key", *_TEXT_FIELDS):
        v = getattr(rec, name)
        try:
            v is None or v.encode("utf-8")
        except UnicodeEncodeError as bad:
            return Rejection(rec.source_key, name, f"not valid Unicode text ({bad.reason})")
    return Rejection(rec.source_key, "raw" if part == "fields" else part, f"not JSON-serialisable: {exc}")


__all__ = ["MAPPED", "COPY_COLUMNS", "RecordIn", "Rejection", "CopyChunk", "validate", "check_fields",
           "copy_chunk", "MAX_KEY_BYTES", "MAX_TEXT_CHARS", "MAX_SHORT_TEXT_CHARS", "MAX_PAYLOAD_BYTES",
           "SEARCH_TEXT_CHARS"]
